#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("spawn_certificate"), |data: &[u8]| {
    mesh_fuzz::targets::spawn_certificate(data);
});
