#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("record"), |data: &[u8]| {
    mesh_fuzz::targets::record(data);
});
