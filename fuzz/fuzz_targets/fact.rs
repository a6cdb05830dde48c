#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("fact"), |data: &[u8]| {
    mesh_fuzz::targets::fact(data);
});
