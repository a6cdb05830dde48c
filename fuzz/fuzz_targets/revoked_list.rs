#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("revoked_list"), |data: &[u8]| {
    mesh_fuzz::targets::revoked_list(data);
});
