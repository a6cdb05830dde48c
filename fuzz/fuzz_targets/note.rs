#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("note"), |data: &[u8]| {
    mesh_fuzz::targets::note(data);
});
