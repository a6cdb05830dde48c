#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("credential"), |data: &[u8]| {
    mesh_fuzz::targets::credential(data);
});
