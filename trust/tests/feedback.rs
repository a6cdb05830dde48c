//! What reports carry and how they are weighed. Feedback credibility
//! (TRUST.md §5, "Agreement"): a reporter whose
//! opinions contradict what the pre-trusted peers saw themselves is
//! discounted, however credible its good behaviour made it. The attack is
//! EigenTrust's threat model D: a spy that does its own work well and
//! vouches for an always-bad protégé.

mod common;

use common::{NOW, report};
use mesh_iatp::testing::identity;
use mesh_iatp::{Identity, Score};
use mesh_trust::{Evidence, EvidenceKind, TrustConfig, TrustEngine};

/// An engine for `me`, every one of `agents` registered at 500 with no
/// ceiling.
fn engine(me: &Identity, config: TrustConfig, agents: &[&Identity]) -> TrustEngine {
    let mut engine = TrustEngine::new(me.did().clone(), config).unwrap_or_else(|e| panic!("{e}"));
    for a in agents {
        engine.register_agent(a.did().clone(), Score::saturating(500), Score::MAX);
    }
    engine
}

/// A default config with this `agreement_power`.
fn power(agreement_power: f64) -> TrustConfig {
    let mut config = TrustConfig::default();
    config.aggregation.agreement_power = agreement_power;
    config
}

/// `n` items of `kind` about `agent`, one a second, the first `ago`
/// seconds before now.
fn saw(engine: &mut TrustEngine, agent: &Identity, kind: EvidenceKind, n: u64, ago: u64) {
    for i in 0..n {
        engine.record(Evidence::new(
            agent.did().clone(),
            kind,
            NOW.minus_secs(ago - i),
        ));
    }
}

/// The protégé's global score at an engine that has seen the spy succeed
/// 30 times and the protégé fail 5 times, after the spy's report praising
/// the protégé (1000, claiming 100 observations).
fn protege_global(agreement_power: f64) -> f64 {
    let me = identity("agent me");
    let spy = identity("agent spy");
    let protege = identity("agent protege");
    let mut engine = engine(&me, power(agreement_power), &[&spy, &protege]);
    saw(&mut engine, &spy, EvidenceKind::TaskSuccess, 30, 100);
    saw(&mut engine, &protege, EvidenceKind::TaskFailure, 5, 50);
    engine
        .receive_report(
            &report(&spy, 1, vec![(protege.did().clone(), 1000, 100)]),
            NOW,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    engine.refresh(NOW);
    assert!(engine.credibility(spy.did()) > 0.1, "the spy is credible");
    engine.explain(protege.did(), NOW).global.score
}

#[test]
fn a_spy_vouching_against_what_we_saw_is_discounted() {
    let without = protege_global(0.0);
    let with = protege_global(2.0);
    eprintln!("protégé's global score: {without:.1} without agreement, {with:.1} with");
    // Undiscounted, the praise lifts the protégé well above its prior.
    assert!(without > 560.0, "{without}");
    // Discounted by (1 − |1000 − ours| / 1000)², it barely moves it.
    assert!(with < 520.0, "{with}");
}

#[test]
fn a_reporter_that_agrees_is_not_discounted() {
    let me = identity("agent me");
    let friend = identity("agent friend");
    let subject = identity("agent subject");
    let global = |agreement_power: f64| {
        let mut engine = engine(&me, power(agreement_power), &[&friend, &subject]);
        saw(&mut engine, &friend, EvidenceKind::TaskSuccess, 30, 100);
        saw(&mut engine, &subject, EvidenceKind::TaskSuccess, 30, 100);
        let ours = engine.explain(subject.did(), NOW).direct_score.round() as u16;
        engine
            .receive_report(
                &report(&friend, 1, vec![(subject.did().clone(), ours, 90)]),
                NOW,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        engine.refresh(NOW);
        engine.explain(subject.did(), NOW).global.score
    };
    let (off, on) = (global(0.0), global(2.0));
    // Agreement up to the report's rounding to an integer: a factor within
    // 0.1% of 1, the same score to 0.1 either way, and the report moves
    // the subject above its prior.
    assert!((off - on).abs() < 0.1, "{off} vs {on}");
    assert!(on > 520.0, "{on}");
}

/// A node that has seen more subjects than a report holds keeps the bad
/// news: an agent that failed it twice is reported before partners it has
/// worked with well many times (TRUST.md §4).
#[test]
fn a_full_report_keeps_the_bad_news() {
    let me = identity("agent me");
    let bad = identity("agent flaky");
    let mut config = TrustConfig::default();
    config.aggregation.max_report_entries = 2;
    let good: Vec<_> = (0..3)
        .map(|i| identity(&format!("agent good {i}")))
        .collect();
    let mut engine = engine(&me, config, &[&good[0], &good[1], &good[2], &bad]);
    for (k, g) in good.iter().enumerate() {
        saw(
            &mut engine,
            g,
            EvidenceKind::TaskSuccess,
            20 + 5 * k as u64,
            200,
        );
    }
    saw(&mut engine, &bad, EvidenceKind::TaskFailure, 2, 10);
    let bytes = engine
        .make_report(&me, 1, 1, NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    let report =
        mesh_trust::report::verify_report(&bytes, 16, NOW, 60).unwrap_or_else(|e| panic!("{e}"));
    let subjects: Vec<_> = report.entries.iter().map(|(s, _, _)| s.clone()).collect();
    // The flaky agent first, then the most-evidenced good partner.
    assert_eq!(subjects, [bad.did().clone(), good[2].did().clone()]);
    assert!(report.entries[0].1.get() < 500);
}

/// A spy that pads its report with ten truths about agents we know, to
/// look like an honest reporter, still cannot lift its protégé: each
/// entry is weighed by its own agreement too.
#[test]
fn padding_a_report_with_truths_does_not_buy_weight_for_a_lie() {
    let me = identity("agent me");
    let spy = identity("agent spy");
    let protege = identity("agent protege");
    let known: Vec<_> = (0..10)
        .map(|i| identity(&format!("agent known {i}")))
        .collect();
    let everyone: Vec<&Identity> = known.iter().chain([&spy, &protege]).collect();
    // Claims believed as made: this test is about agreement alone (the
    // claim cap is tests/claims.rs's).
    let mut config = TrustConfig::default();
    config.aggregation.claim_floor = f64::from(u32::MAX);
    let mut engine = engine(&me, config, &everyone);
    for a in known.iter().chain([&spy]) {
        saw(&mut engine, a, EvidenceKind::TaskSuccess, 30, 100);
    }
    saw(&mut engine, &protege, EvidenceKind::TaskFailure, 5, 50);
    let mut entries: Vec<_> = known
        .iter()
        .map(|a| {
            let ours = engine.explain(a.did(), NOW).direct_score.round() as u16;
            (a.did().clone(), ours, 90)
        })
        .collect();
    entries.push((protege.did().clone(), 1000, 100));
    engine
        .receive_report(&report(&spy, 1, entries), NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    engine.refresh(NOW);
    let global = engine.explain(protege.did(), NOW).global.score;
    eprintln!("padded spy: protégé's global score {global:.1}");
    assert!(global < 520.0, "{global}");
    // The truths themselves still count: a known agent's global score
    // moves from its prior toward what the spy (rightly) said.
    let truth = engine.explain(known[0].did(), NOW).global.score;
    assert!(truth > 505.0, "{truth}");
}
