#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("action_frame"), |data: &[u8]| {
    mesh_fuzz::targets::action_frame(data);
});
