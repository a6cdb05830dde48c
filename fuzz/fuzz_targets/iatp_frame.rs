#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("iatp_frame"), |data: &[u8]| {
    mesh_fuzz::targets::iatp_frame(data);
});
