#![no_main]
libfuzzer_sys::fuzz_target!(init: mesh_fuzz::init("agent_api_body"), |data: &[u8]| {
    mesh_fuzz::targets::agent_api_body(data);
});
