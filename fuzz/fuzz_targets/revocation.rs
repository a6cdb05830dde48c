#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("revocation"), |data: &[u8]| {
    mesh_fuzz::targets::revocation(data);
});
