//! Model mode: determinism, the effect of gating, and the CLI's outputs.
//! Runs are small (CI time); the 100k-agent scale run is in
//! docs/PERFORMANCE.md with its command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use mesh_sim::model;
use mesh_sim::scenario::Scenario;

fn scenario(name: &str, overrides: &[(&str, &str)]) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(path).unwrap();
    Scenario::from_toml_str_with(&text, overrides).unwrap()
}

#[test]
fn the_same_seed_gives_identical_results_and_another_seed_does_not() {
    for name in ["always_bad", "collective", "spy", "sybil", "free_rider"] {
        let s = scenario(name, &[("rounds", "30")]);
        let a = model::run(&s, |_| {});
        let b = model::run(&s, |_| {});
        assert_eq!(a, b, "{name}");
        let other = model::run(&scenario(name, &[("rounds", "30"), ("seed", "7")]), |_| {});
        assert_ne!(a.timeline, other.timeline, "{name}: the seed must matter");
    }
}

#[test]
fn gating_cuts_delegation_to_always_bad_agents_and_blocks_sybil_spawning() {
    let run = |name: &str, gate: &str| {
        model::run(
            &scenario(
                name,
                &[("gate.enabled", gate), ("adversary.fraction", "0.4")],
            ),
            |_| {},
        )
        .results
    };
    let (gated, ungated) = (run("always_bad", "true"), run("always_bad", "false"));
    assert!(
        (ungated.fraction_to_malicious - 0.4).abs() < 0.03,
        "{ungated:?}"
    );
    assert!(
        gated.fraction_to_malicious < 0.75 * ungated.fraction_to_malicious,
        "{gated:?}"
    );
    // Honest agents end up trusted above the malicious ones.
    assert!(gated.mean_score_by_class["honest"] > gated.mean_score_by_class["always_bad"] + 100.0);
    // Without the gate sybils spawn their children; with it, SpawnPolicy's
    // threshold (700) is above their score and they spawn none.
    let (gated, ungated) = (run("sybil", "true"), run("sybil", "false"));
    assert_eq!(gated.agents, 200);
    assert_eq!(ungated.agents, 200 + 80 * 10);
    assert!(ungated.fraction_to_malicious > 0.8);
    // Equivocators are caught at the first epoch: a few rounds of tasks.
    let eq = run("equivocating", "true");
    assert_eq!(eq.mean_score_by_class["equivocating"], 0.0);
    assert!(eq.fraction_to_malicious < 0.05, "{eq:?}");
}

#[test]
fn the_cli_writes_results_timeline_plots_and_sweep_tables() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_mesh-sim");
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let out = dir.path().join("run");
    let o = Command::new(bin)
        .args(["run"])
        .arg(scenarios.join("camouflaged.toml"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["strategy"], "camouflaged");
    assert_eq!(results["rounds"], 100);
    // The summary names failed tasks and refusals apart, as results.json
    // counts them (it once printed "0 refused or failed" over 1,592
    // failures).
    let failed = results["failed"].as_u64().unwrap();
    assert!(failed > 0, "{results}");
    assert_eq!(
        results["fraction_failed"].as_f64().unwrap(),
        failed as f64 / results["tasks"].as_f64().unwrap()
    );
    let summary = String::from_utf8_lossy(&o.stdout);
    for part in [
        format!("{} refused by the gate", results["refused"]),
        format!("{failed} failed tasks"),
        "gate on (min_trust 400)".to_string(),
    ] {
        assert!(summary.contains(&part), "no {part:?} in {summary}");
    }
    let timeline = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    assert_eq!(timeline.lines().count(), 101);
    for plot in ["trust_over_time", "to_malicious_over_time", "refusals"] {
        for ext in ["png", "svg"] {
            let p = out.join(format!("{plot}.{ext}"));
            assert!(
                std::fs::metadata(&p).unwrap().len() > 1000,
                "{}",
                p.display()
            );
        }
    }
    let png = std::fs::read(out.join("trust_over_time.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let svg = std::fs::read_to_string(out.join("trust_over_time.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("honest"));
    // Plots say which scenario and gate they show, where the gate's floor
    // is, and what the run would give without the gate.
    assert!(svg.contains("camouflaged") && svg.contains("min_trust 400"));
    let share = std::fs::read_to_string(out.join("to_malicious_over_time.svg")).unwrap();
    assert!(
        share.contains("gate off (same scenario and seed)"),
        "{share}"
    );

    let sweep = dir.path().join("sweep");
    let o = Command::new(bin)
        .args(["sweep"])
        .arg(scenarios.join("always_bad.toml"))
        .arg(scenarios.join("sybil.toml"))
        .args([
            "--param",
            "adversary.fraction",
            "--values",
            "0,0.3",
            "--out",
        ])
        .arg(&sweep)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(sweep.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2, "{csv}");
    let md = std::fs::read_to_string(sweep.join("sweep.md")).unwrap();
    assert!(
        md.contains("| always_bad |") && md.contains("| sybil |"),
        "{md}"
    );
    assert!(sweep.join("sweep_sybil.png").exists() && sweep.join("sweep_sybil.svg").exists());

    // Refusals name the problem.
    let o = Command::new(bin)
        .args(["sweep"])
        .arg(scenarios.join("always_bad.toml"))
        .args([
            "--param",
            "adversary.fraction",
            "--values",
            "0.2,1.0",
            "--out",
        ])
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("adversary.fraction"));
    // Protocol mode through the CLI, on a small copy of a shipped scenario.
    let small = dir.path().join("small.toml");
    let text = std::fs::read_to_string(scenarios.join("spy.toml"))
        .unwrap()
        .replace("agents = 200", "agents = 12")
        .replace("rounds = 100", "rounds = 5");
    std::fs::write(&small, text).unwrap();
    let p = dir.path().join("p");
    let o = Command::new(bin)
        .args(["run"])
        .arg(&small)
        .args(["--mode", "protocol", "--out"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["mode"], "protocol");
    assert_eq!(results["agents"], 12);
    assert_eq!(results["tasks"], 5 * 10);
    // Protocol mode runs on the deterministic harness: the same seed gives
    // the same files, byte for byte.
    let again = dir.path().join("p2");
    let o = Command::new(bin)
        .args(["run"])
        .arg(&small)
        .args(["--mode", "protocol", "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for file in ["results.json", "timeline.csv"] {
        assert_eq!(
            std::fs::read(p.join(file)).unwrap(),
            std::fs::read(again.join(file)).unwrap(),
            "{file} differs between two runs of one seed"
        );
    }
    // The real-network mode still runs the same scenario.
    let net = dir.path().join("n");
    let o = Command::new(bin)
        .args(["run"])
        .arg(&small)
        .args(["--mode", "network", "--out"])
        .arg(&net)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(net.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["mode"], "network");
    assert_eq!(results["tasks"], 5 * 10);
}

/// Protocol mode (the agents' real protocol on the deterministic harness)
/// and model mode agree on a 50-agent scenario: without gating within 0.05 of each other
/// (both near the 20% base rate), with gating within 0.10 (both score with
/// `mesh_trust::scoring`, but protocol mode decays evidence, counts
/// handshakes, and gives each node its own view; docs/SIMULATIONS.md §3;
/// measured 0.077 against 0.120 on 2026-12-03), and gating helps in both.
#[test]
fn protocol_and_model_modes_agree_on_fifty_agents() {
    let mut cells = Vec::new();
    for gate in ["true", "false"] {
        let s = scenario(
            "always_bad",
            &[("agents", "50"), ("rounds", "20"), ("gate.enabled", gate)],
        );
        let model = model::run(&s, |_| {}).results;
        let protocol = mesh_sim::harness::run(&s, |_| {}).results;
        assert_eq!(protocol.mode, "protocol");
        assert_eq!(
            (protocol.agents, protocol.malicious),
            (model.agents, model.malicious)
        );
        assert_eq!(protocol.tasks, model.tasks, "same workload draws");
        eprintln!(
            "gate {gate}: model {:.3}, protocol {:.3}",
            model.fraction_to_malicious, protocol.fraction_to_malicious
        );
        cells.push((model.fraction_to_malicious, protocol.fraction_to_malicious));
    }
    let (gated, ungated) = (cells[0], cells[1]);
    assert!((ungated.0 - ungated.1).abs() <= 0.05, "ungated {ungated:?}");
    assert!((gated.0 - gated.1).abs() <= 0.10, "gated {gated:?}");
    assert!(gated.0 < ungated.0 && gated.1 < ungated.1, "{cells:?}");
}

/// Issue 16's targets on EigenTrust's own setup (the shipped
/// `eigentrust_*` scenarios: 100 agents, 3 anchors, 1,500 rounds, reports
/// every 50), in model mode: at most 5% of tasks fail at a malicious agent
/// — half EigenTrust's ≈ 0.10 or better — in threat models A and B at 20%
/// and 70% malicious, C (camouflaged, good half the time) at 27%, and D
/// (spies and their protégés) at 39% and 70%; and an honest mesh is never
/// refused.
#[test]
fn eigentrust_threat_models_stay_at_or_under_five_percent_inauthentic() {
    let cells: [(&str, &[&str]); 4] = [
        ("eigentrust_a", &["0.2", "0.7"]),
        ("eigentrust_b", &["0.2", "0.7"]),
        ("eigentrust_c", &["0.27"]),
        ("eigentrust_d", &["0.39", "0.7"]),
    ];
    for (name, fractions) in cells {
        for f in fractions {
            let r = model::run(&scenario(name, &[("adversary.fraction", f)]), |_| {}).results;
            eprintln!(
                "{name} at {f}: inauthentic {:.3}, work Gini {:.3}",
                r.fraction_inauthentic, r.gini_honest_work
            );
            assert!(r.fraction_inauthentic <= 0.05, "{name} at {f}: {r:?}");
            // Every honest agent gets work.
            assert_eq!(r.honest_without_work, 0, "{name} at {f}: {r:?}");
            // Without the gate the same run is at the base rate.
            let ungated = model::run(
                &scenario(
                    name,
                    &[("adversary.fraction", f), ("gate.enabled", "false")],
                ),
                |_| {},
            )
            .results;
            assert!(ungated.fraction_inauthentic > 2.0 * r.fraction_inauthentic);
        }
    }
    let honest = model::run(
        &scenario("eigentrust_a", &[("adversary.fraction", "0")]),
        |_| {},
    );
    assert_eq!(honest.results.refused, 0, "{:?}", honest.results);
}

#[test]
fn gini_is_zero_for_equal_work_and_grows_as_it_concentrates() {
    assert_eq!(model::gini(&[5, 5, 5, 5]), 0.0);
    assert_eq!(model::gini(&[0, 0]), 0.0);
    // One of four gets everything: (n − 1) / n.
    assert!((model::gini(&[0, 0, 0, 8]) - 0.75).abs() < 1e-12);
    let spread = model::gini(&[1, 2, 3, 4]);
    assert!((spread - 0.25).abs() < 1e-12, "{spread}");
}

/// In protocol mode a sybil's spawned children fail their tasks as their
/// parent does: every task delegated to a malicious agent fails (the
/// harness's default handler answers success, and the children once ran
/// it).
#[test]
fn protocol_mode_sybil_children_fail_their_tasks() {
    let s = scenario(
        "sybil",
        &[("agents", "20"), ("rounds", "5"), ("gate.enabled", "false")],
    );
    let r = mesh_sim::harness::run(&s, |_| {}).results;
    assert!(r.agents > 20, "children joined: {r:?}");
    assert!(r.to_malicious > 0, "{r:?}");
    assert_eq!(r.inauthentic, r.to_malicious, "{r:?}");
}
