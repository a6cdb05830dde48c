#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("envelope"), |data: &[u8]| {
    mesh_fuzz::targets::envelope(data);
});
