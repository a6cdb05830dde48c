#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("confirm"), |data: &[u8]| {
    mesh_fuzz::targets::confirm(data);
});
