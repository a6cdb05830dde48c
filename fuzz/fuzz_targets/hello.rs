#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("hello"), |data: &[u8]| {
    mesh_fuzz::targets::hello(data);
});
