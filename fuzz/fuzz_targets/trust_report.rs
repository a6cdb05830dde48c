#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("trust_report"), |data: &[u8]| {
    mesh_fuzz::targets::trust_report(data);
});
