#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("trust_bundle"), |data: &[u8]| {
    mesh_fuzz::targets::trust_bundle(data);
});
