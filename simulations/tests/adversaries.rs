//! The adversaries issue 16 added: adaptive agents (behave until trusted,
//! then defect), whitewashers (a new identity once caught) and spies that
//! pad their reports; and `mesh-sim compare`. Model-mode runs are the
//! shipped 100-agent scenarios; protocol-mode runs are small (CI time).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use mesh_sim::scenario::Scenario;
use mesh_sim::{compare, harness, model, protocol};

fn text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    std::fs::read_to_string(path).unwrap()
}

fn scenario(name: &str, overrides: &[(&str, &str)]) -> Scenario {
    Scenario::from_toml_str_with(&text(name), overrides).unwrap()
}

/// An adaptive agent that never feels trusted enough behaves as an honest
/// one (its 2% errors aside); one that defects as soon as it is trusted
/// does harm, which the gate keeps under 5% of tasks.
#[test]
fn adaptive_agents_defect_once_trusted_and_the_gate_bounds_the_damage() {
    let run = |trusted_at: &str, gate: &str| {
        model::run(
            &scenario(
                "adaptive",
                &[("adversary.trusted_at", trusted_at), ("gate.enabled", gate)],
            ),
            |_| {},
        )
        .results
    };
    let patient = run("1000", "true");
    let eager = run("500", "true");
    let ungated = run("500", "false");
    eprintln!(
        "adaptive: never defects {:.3}, defects at 500 {:.3}, ungated {:.3}",
        patient.fraction_inauthentic, eager.fraction_inauthentic, ungated.fraction_inauthentic
    );
    assert!(patient.fraction_inauthentic < 0.01, "{patient:?}");
    assert!(
        eager.fraction_inauthentic > 2.0 * patient.fraction_inauthentic,
        "{eager:?}"
    );
    assert!(eager.fraction_inauthentic <= 0.05, "{eager:?}");
    assert!(ungated.fraction_inauthentic > 2.0 * eager.fraction_inauthentic);
    assert_eq!(eager.honest_without_work, 0);
}

/// Whitewashers come back under new names; a new name is unproven, so it
/// gets work only from the 5% of picks that explore, and the damage stays
/// under 5% of tasks.
#[test]
fn whitewashers_take_new_names_and_get_only_an_explorers_share() {
    let gated = model::run(&scenario("whitewashing", &[]), |_| {}).results;
    let ungated = model::run(
        &scenario("whitewashing", &[("gate.enabled", "false")]),
        |_| {},
    )
    .results;
    eprintln!(
        "whitewashing: {} new identities, inauthentic {:.3} (ungated {:.3})",
        gated.new_identities, gated.fraction_inauthentic, ungated.fraction_inauthentic
    );
    assert!(gated.new_identities > 20, "{gated:?}");
    assert!(gated.fraction_inauthentic <= 0.05, "{gated:?}");
    assert!(ungated.fraction_inauthentic > 2.0 * gated.fraction_inauthentic);
    assert_eq!(gated.honest_without_work, 0);
}

/// Padding changes the run (the spies' reports now mostly agree with the
/// anchors) but the protégés still get little work.
#[test]
fn spies_padding_their_reports_still_cannot_lift_their_proteges() {
    let padded = model::run(&scenario("spy_padding", &[]), |_| {}).results;
    let plain = model::run(
        &scenario("spy_padding", &[("adversary.padding", "false")]),
        |_| {},
    )
    .results;
    eprintln!(
        "spies: padded {:.4}, plain {:.4}",
        padded.fraction_inauthentic, plain.fraction_inauthentic
    );
    assert_ne!(padded, plain);
    assert!(padded.fraction_inauthentic <= 0.05, "{padded:?}");
}

/// Protocol mode plays both: a caught whitewasher's new agent joins (and
/// fails its tasks too); an adaptive agent's handler follows the flag the
/// simulator sets at each epoch.
#[test]
fn protocol_mode_plays_whitewashers_and_adaptive_agents() {
    let small = [
        ("agents", "30"),
        ("rounds", "60"),
        ("trust.report_every", "10"),
    ];
    let w = harness::run(&scenario("whitewashing", &small), |_| {}).results;
    assert!(w.new_identities > 0, "{w:?}");
    assert!(w.agents > 30, "the new identities joined: {w:?}");
    assert_eq!(w.inauthentic, w.to_malicious, "{w:?}");

    let adaptive = |trusted_at: &str| {
        let mut o = small.to_vec();
        o.push(("adversary.trusted_at", trusted_at));
        o.push(("gate.enabled", "false"));
        harness::run(&scenario("adaptive", &o), |_| {}).results
    };
    // Trusted at 0: defects from the first epoch on.
    let always = adaptive("0");
    let never = adaptive("1000");
    assert!(always.to_malicious > 0 && never.to_malicious > 0);
    assert!(
        always.inauthentic > 5 * never.inauthentic.max(1),
        "always {always:?} never {never:?}"
    );
}

/// Network mode does not play whitewashing or padding yet, and says so
/// instead of running something else.
#[test]
fn network_mode_refuses_what_it_does_not_play() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for s in [scenario("whitewashing", &[]), scenario("spy_padding", &[])] {
        let e = rt
            .block_on(protocol::run(&s, dir.path(), |_| {}))
            .err()
            .unwrap();
        assert!(matches!(e, protocol::ProtocolError::Unsupported(_)), "{e}");
        assert!(e.to_string().contains("model and protocol modes"), "{e}");
    }
}

/// `compare` runs each scenario in both modes and both gate settings.
#[test]
fn compare_puts_the_modes_side_by_side() {
    let texts = vec![("always_bad".to_string(), text("always_bad"))];
    let runs = std::sync::atomic::AtomicUsize::new(0);
    let cells = compare::compare(&texts, &[("agents", "30"), ("rounds", "10")], || {
        runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(runs.into_inner(), 4);
    assert_eq!(cells.len(), 2);
    assert!(cells[0].gate && !cells[1].gate);
    for c in &cells {
        assert!(c.gap().is_finite() && c.gap() <= 1.0, "{c:?}");
    }
    let table = compare::markdown(&cells, 0.05);
    assert!(table.contains("| always_bad | on |"), "{table}");
    // A bad override names the scenario.
    let (name, e) = compare::compare(&texts, &[("agents", "1")], || {}).unwrap_err();
    assert_eq!(name, "always_bad");
    assert!(e.to_string().contains("agents"), "{e}");
}
