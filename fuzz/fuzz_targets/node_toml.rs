#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("node_toml"), |data: &[u8]| {
    mesh_fuzz::targets::node_toml(data);
});
