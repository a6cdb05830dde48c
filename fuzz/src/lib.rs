//! Fuzz targets for every decoder reachable from the network or a file
//! (issue 14). `fuzz_targets/NAME.rs` calls [`targets`]`::NAME`; the
//! functions live here so the seeds can be checked by `cargo test` too.

pub mod seeds;
pub mod targets;
pub mod world;

/// A target: does it accept the input (decoded, verified, admitted)?
pub type Target = fn(&[u8]) -> bool;

/// Every target by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("envelope", targets::envelope),
    ("hello", targets::hello),
    ("response", targets::response),
    ("confirm", targets::confirm),
    ("credential", targets::credential),
    ("trust_report", targets::trust_report),
    ("grant", targets::grant),
    ("spawn_certificate", targets::spawn_certificate),
    ("revocation", targets::revocation),
    ("note", targets::note),
    ("checkpoint", targets::checkpoint),
    ("cosignature", targets::cosignature),
    ("equivocation", targets::equivocation),
    ("record", targets::record),
    ("export", targets::export),
    ("iatp_frame", targets::iatp_frame),
    ("action_frame", targets::action_frame),
    ("fact", targets::fact),
    ("node_toml", targets::node_toml),
    ("trust_bundle", targets::trust_bundle),
    ("revoked_list", targets::revoked_list),
    ("agent_api_body", targets::agent_api_body),
];

/// The environment variable naming a directory to write a target's seeds
/// to (`fuzz/run` sets it; the binary then exits instead of fuzzing).
pub const SEEDS_ENV: &str = "MESH_FUZZ_SEEDS";

/// A target binary's start: with [`SEEDS_ENV`] set, write `target`'s seeds
/// there, check the target accepts at least one of them (a seed it refuses
/// would start the fuzzer nowhere useful), and exit.
pub fn init(target: &str) {
    let Some(dir) = std::env::var_os(SEEDS_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let seeds = seeds::all()
        .into_iter()
        .find(|(name, _)| *name == target)
        .map(|(_, s)| s)
        .unwrap_or_default();
    let run = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f);
    let accepted = run
        .map(|f| seeds.iter().filter(|s| f(s)).count())
        .unwrap_or(0);
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        seeds
            .iter()
            .enumerate()
            .try_for_each(|(i, s)| std::fs::write(dir.join(format!("seed-{i}")), s))
    });
    match written {
        Err(e) => {
            eprintln!("{target}: writing seeds to {}: {e}", dir.display());
            std::process::exit(2);
        }
        Ok(()) if accepted == 0 => {
            eprintln!("{target}: none of its {} seeds is accepted", seeds.len());
            std::process::exit(1);
        }
        Ok(()) => {
            println!("{target}: {} seeds, {accepted} accepted", seeds.len());
            std::process::exit(0);
        }
    }
}
