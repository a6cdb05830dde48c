#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("checkpoint"), |data: &[u8]| {
    mesh_fuzz::targets::checkpoint(data);
});
