#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("export"), |data: &[u8]| {
    mesh_fuzz::targets::export(data);
});
