#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("equivocation"), |data: &[u8]| {
    mesh_fuzz::targets::equivocation(data);
});
