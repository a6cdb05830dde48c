#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("cosignature"), |data: &[u8]| {
    mesh_fuzz::targets::cosignature(data);
});
