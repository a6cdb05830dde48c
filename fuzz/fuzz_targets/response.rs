#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("response"), |data: &[u8]| {
    mesh_fuzz::targets::response(data);
});
