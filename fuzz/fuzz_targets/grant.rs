#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("grant"), |data: &[u8]| {
    mesh_fuzz::targets::grant(data);
});
