//! Deterministic attacks on the trust engine: colluding reporters, sybils,
//! camouflage. Run with `--nocapture` to see the figures quoted in
//! docs/TRUST.md.

// Test code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NOW, report};
use mesh_iatp::testing::identity;
use mesh_iatp::{Did, Identity, Score};
use mesh_trust::{Evidence, EvidenceKind, TrustConfig, TrustEngine};

/// A small deterministic generator (SplitMix64), so the populations are
/// the same on every run without a dependency.
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The evaluating node: honest[0], pre-trusting honest[0..3], every agent
/// registered with the same generous policy (initial 500, ceiling 1000), so
/// only the aggregation protects it.
/// An engine that holds every report it is sent: the unproven-reporter
/// quota (tested on its own below) would refuse the sybils, and these
/// tests show what the weighting does with them held.
fn evaluator(honest: &[Identity], all: &[&Identity]) -> TrustEngine {
    let mut config = TrustConfig::default();
    config.aggregation.max_unproven_reporters = usize::MAX;
    let mut engine = TrustEngine::new(honest[0].did().clone(), config).expect("config");
    for h in &honest[1..3] {
        engine.add_pre_trusted(h.did().clone());
    }
    for a in all {
        engine.register_agent(a.did().clone(), Score::saturating(500), Score::MAX);
    }
    engine
}

struct Outcome {
    honest_min: u16,
    honest_mean: f64,
    malicious_max: u16,
    malicious_mean: f64,
}

fn collusion(agents: usize, malicious_fraction: f64, seed: u64) -> Outcome {
    let n_bad = (agents as f64 * malicious_fraction).round() as usize;
    let honest: Vec<Identity> = (0..agents - n_bad)
        .map(|i| identity(&format!("honest {i}")))
        .collect();
    let malicious: Vec<Identity> = (0..n_bad)
        .map(|i| identity(&format!("colluder {i}")))
        .collect();
    let all: Vec<&Identity> = honest.iter().chain(&malicious).collect();
    let mut engine = evaluator(&honest, &all);
    let mut rng = Mix(seed);
    let h = honest.len();

    // Honest agents report what they saw: a few peers each (sparse), the
    // next honest agent on a ring, and one colluder each (so every colluder
    // has been seen misbehaving by someone honest).
    for (i, me) in honest.iter().enumerate() {
        let mut known: Vec<&Identity> = vec![&honest[(i + 1) % h]];
        for _ in 0..8 {
            known.push(all[rng.below(all.len())]);
        }
        if n_bad > 0 {
            known.push(&malicious[i % n_bad]);
        }
        let mut entries = Vec::new();
        for peer in known {
            if peer.did() == me.did()
                || entries
                    .iter()
                    .any(|(d, _, _): &(Did, u16, u32)| d == peer.did())
            {
                continue;
            }
            let bad = malicious.iter().any(|m| m.did() == peer.did());
            let score = if bad {
                100 + rng.below(150) as u16
            } else {
                720 + rng.below(160) as u16
            };
            entries.push((peer.did().clone(), score, 20));
        }
        if i != 0 {
            engine
                .receive_report(&report(me, 1, entries), NOW)
                .expect("honest report");
        }
    }
    // Colluders praise each other to the maximum and slander every honest agent.
    for me in &malicious {
        let mut entries: Vec<(Did, u16, u32)> = malicious
            .iter()
            .filter(|m| m.did() != me.did())
            .map(|m| (m.did().clone(), 1000, 100_000))
            .collect();
        entries.extend(honest.iter().map(|x| (x.did().clone(), 0, 100_000)));
        engine
            .receive_report(&report(me, 1, entries), NOW)
            .expect("colluder report");
    }
    let stats = engine.refresh(NOW);
    assert!(stats.converged, "aggregation must converge");

    let scores = |set: &[Identity]| -> Vec<u16> {
        set.iter()
            .map(|a| engine.score(a.did(), NOW).get())
            .collect()
    };
    let hs = scores(&honest[1..]);
    let ms = scores(&malicious);
    let mean = |v: &[u16]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64;
    Outcome {
        honest_min: *hs.iter().min().expect("honest"),
        honest_mean: mean(&hs),
        malicious_max: ms.iter().copied().max().unwrap_or(0),
        malicious_mean: mean(&ms),
    }
}

#[test]
fn colluding_reporters_neither_lift_themselves_nor_sink_honest_agents() {
    for fraction in [0.2, 0.4, 0.6] {
        let o = collusion(100, fraction, 7);
        println!(
            "collusion {:>3.0}% of 100: honest min {} mean {:.1}; colluders max {} mean {:.1}",
            fraction * 100.0,
            o.honest_min,
            o.honest_mean,
            o.malicious_max,
            o.malicious_mean
        );
        assert!(
            o.malicious_max < o.honest_min,
            "at {fraction}: a colluder ({}) outranks an honest agent ({})",
            o.malicious_max,
            o.honest_min
        );
        assert!(
            o.honest_min >= 500,
            "at {fraction}: an honest agent fell to {}",
            o.honest_min
        );
    }
}

#[test]
fn a_thousand_sybils_count_for_less_than_one_honest_report() {
    let honest: Vec<Identity> = (0..10).map(|i| identity(&format!("honest {i}"))).collect();
    let target = identity("sybil master");
    let sybils: Vec<Identity> = (0..1000).map(|i| identity(&format!("sybil {i}"))).collect();
    let mut all: Vec<&Identity> = honest.iter().collect();
    all.push(&target);

    // The honest agents know and like each other.
    let honest_reports = |engine: &mut TrustEngine| {
        for (i, me) in honest.iter().enumerate().skip(1) {
            let entries = honest
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, x)| (x.did().clone(), 800, 20))
                .collect();
            engine
                .receive_report(&report(me, 1, entries), NOW)
                .expect("report");
        }
    };

    // A: the sybils (fresh identities) praise the target and each other.
    let mut a = evaluator(&honest, &all);
    honest_reports(&mut a);
    for (i, s) in sybils.iter().enumerate() {
        let mut entries = vec![(target.did().clone(), 1000, 1_000_000)];
        entries.push((
            sybils[(i + 1) % sybils.len()].did().clone(),
            1000,
            1_000_000,
        ));
        a.receive_report(&report(s, 1, entries), NOW)
            .expect("sybil report");
    }
    a.refresh(NOW);
    let with_sybils = a.score(target.did(), NOW).get();

    // B: instead, one honest agent (not pre-trusted) praises it once.
    let mut b = evaluator(&honest, &all);
    honest_reports(&mut b);
    let mut entries: Vec<(Did, u16, u32)> = honest
        .iter()
        .skip(1)
        .filter(|x| x.did() != honest[5].did())
        .map(|x| (x.did().clone(), 800, 20))
        .collect();
    entries.push((target.did().clone(), 1000, 20));
    b.receive_report(&report(&honest[5], 2, entries), NOW)
        .expect("report");
    b.refresh(NOW);
    let with_one_honest = b.score(target.did(), NOW).get();

    println!(
        "sybils: target at {with_sybils} after 1000 sybil reports, {with_one_honest} after one honest report (prior 500); \
         largest sybil credibility {:.3e}",
        sybils
            .iter()
            .map(|s| a.credibility(s.did()))
            .fold(0.0, f64::max)
    );
    assert_eq!(
        with_sybils, 500,
        "sybil praise must not move the target off its prior"
    );
    assert!(with_sybils <= with_one_honest);
    assert!(with_one_honest > 500, "one honest report does count");
    assert!(sybils.iter().all(|s| a.credibility(s.did()) == 0.0));
}

#[test]
fn a_camouflaged_agent_ends_below_an_always_good_one() {
    let me = identity("evaluator");
    let good = identity("always good");
    let camo = identity("camouflaged");
    let mut engine = TrustEngine::new(me.did().clone(), TrustConfig::default()).expect("config");
    for a in [&good, &camo] {
        engine.register_agent(a.did().clone(), Score::saturating(500), Score::MAX);
    }
    for i in 0..200u64 {
        let at = NOW.plus_secs(i * 60);
        for a in [&good, &camo] {
            engine.record(Evidence::new(
                a.did().clone(),
                EvidenceKind::HandshakeCompleted,
                at,
            ));
            engine.record(Evidence::new(
                a.did().clone(),
                EvidenceKind::DelegationHonoured,
                at,
            ));
        }
        engine.record(Evidence::new(
            good.did().clone(),
            EvidenceKind::TaskSuccess,
            at,
        ));
        // Good four times in five.
        let kind = if i % 5 == 4 {
            EvidenceKind::TaskFailure
        } else {
            EvidenceKind::TaskSuccess
        };
        engine.record(Evidence::new(camo.did().clone(), kind, at));
    }
    let end = NOW.plus_secs(200 * 60);
    engine.refresh(end);
    let (g, c) = (engine.score(good.did(), end), engine.score(camo.did(), end));
    println!("camouflage: always-good {g}, good-80%-of-the-time {c}");
    assert!(c < g);
    assert!(engine.tier(camo.did(), end) < engine.tier(good.did(), end));
}

/// Issue 14's attack: a colluder one honest agent barely endorses praises
/// its partner, and a thousand fresh keys send empty reports. Before
/// zero-credibility reporters lost their share of the prior, the thousand
/// silent reports lifted the partner from 505 to 860 (Trusted) on a real
/// node, and from 503 to 740 in this population.
#[test]
fn silent_fresh_keys_do_not_dilute_the_prior() {
    let honest: Vec<Identity> = (0..6).map(|i| identity(&format!("honest {i}"))).collect();
    let colluder = identity("colluder");
    let partner = identity("colluder's partner");
    let sybils: Vec<Identity> = (0..1000)
        .map(|i| identity(&format!("silent {i}")))
        .collect();
    let mut all: Vec<&Identity> = honest.iter().collect();
    all.extend([&colluder, &partner]);
    let base = |engine: &mut TrustEngine| {
        for (i, me) in honest.iter().enumerate().skip(1) {
            let mut entries: Vec<(Did, u16, u32)> = honest
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, x)| (x.did().clone(), 800, 20))
                .collect();
            if i == 3 {
                entries.push((colluder.did().clone(), 560, 2));
            }
            engine.receive_report(&report(me, 1, entries), NOW).unwrap();
        }
        let praise = vec![(partner.did().clone(), 1000, 1_000_000)];
        engine
            .receive_report(&report(&colluder, 1, praise), NOW)
            .unwrap();
    };
    let mut quiet = evaluator(&honest, &all);
    base(&mut quiet);
    quiet.refresh(NOW);
    let mut flooded = evaluator(&honest, &all);
    base(&mut flooded);
    for s in &sybils {
        flooded.receive_report(&report(s, 1, vec![]), NOW).unwrap();
    }
    flooded.refresh(NOW);
    let (before, after) = (
        quiet.score(partner.did(), NOW),
        flooded.score(partner.did(), NOW),
    );
    println!(
        "partner of a barely endorsed colluder: {before} alone, {after} with 1,000 silent keys"
    );
    assert_eq!(before, after);
}

mod zero_credibility {
    use super::*;
    use proptest::prelude::*;

    /// Reports as (reporter, [(subject, score, evidence)]) over indices.
    type Plan = Vec<(usize, Vec<(usize, u16, u32)>)>;

    fn plan(reporters: usize, subjects: usize) -> impl Strategy<Value = Plan> {
        prop::collection::vec(
            (
                0..reporters,
                prop::collection::vec((0..subjects, 0u16..=1000, 0u32..1_000_000), 0..6),
            ),
            0..reporters * 2,
        )
    }

    fn send(engine: &mut TrustEngine, plan: &Plan, from: &[Identity], about: &[&Identity]) {
        for (n, (r, entries)) in plan.iter().enumerate() {
            let entries = entries
                .iter()
                .filter(|(s, _, _)| about[*s].did() != from[*r].did())
                .map(|(s, score, e)| (about[*s].did().clone(), *score, *e))
                .collect();
            // Later reports from the same reporter replace earlier ones.
            let _ = engine.receive_report(&report(&from[*r], n as u64 + 1, entries), NOW);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Identities no credible peer endorses may report anything about
        /// anyone, each other included: no score of any agent moves.
        #[test]
        fn any_number_of_them_changes_no_score(
            honest_plan in plan(5, 8),
            sybil_plan in plan(40, 48),
        ) {
            let honest: Vec<Identity> =
                (0..5).map(|i| identity(&format!("honest {i}"))).collect();
            let others: Vec<Identity> =
                (0..3).map(|i| identity(&format!("other {i}"))).collect();
            let sybils: Vec<Identity> =
                (0..40).map(|i| identity(&format!("sybil {i}"))).collect();
            let known: Vec<&Identity> = honest.iter().chain(&others).collect();
            let anyone: Vec<&Identity> = known.iter().copied().chain(&sybils).collect();
            // Honest reporters (not the evaluator) speak of known agents only.
            let honest_plan: Plan = honest_plan.into_iter().filter(|(r, _)| *r > 0).collect();

            let mut quiet = evaluator(&honest, &known);
            send(&mut quiet, &honest_plan, &honest, &known);
            quiet.refresh(NOW);
            let mut flooded = evaluator(&honest, &known);
            send(&mut flooded, &honest_plan, &honest, &known);
            send(&mut flooded, &sybil_plan, &sybils, &anyone);
            flooded.refresh(NOW);
            for a in &known {
                prop_assert_eq!(quiet.score(a.did(), NOW), flooded.score(a.did(), NOW));
            }
        }
    }
}

/// Issue 14: 4,000 throwaway keys' reports were all kept (22 MB → 811 MB).
/// The store is bounded, fresh keys displace only each other, and a store
/// full of credible reporters refuses them.
#[test]
fn a_flood_of_reporters_never_displaces_a_credible_one() {
    let honest: Vec<Identity> = (0..5).map(|i| identity(&format!("honest {i}"))).collect();
    let all: Vec<&Identity> = honest.iter().collect();
    let engine_holding = |max_reporters: usize| {
        let mut config = TrustConfig::default();
        config.aggregation.max_reporters = max_reporters;
        let mut engine = TrustEngine::new(honest[0].did().clone(), config).unwrap();
        for h in &honest[1..3] {
            engine.add_pre_trusted(h.did().clone());
        }
        for a in &all {
            engine.register_agent(a.did().clone(), Score::saturating(500), Score::MAX);
        }
        // honest 1 (pre-trusted) vouches for 3 and 4, who report in turn.
        let vouch = vec![
            (honest[3].did().clone(), 900, 50),
            (honest[4].did().clone(), 900, 50),
        ];
        engine
            .receive_report(&report(&honest[1], 1, vouch), NOW)
            .unwrap();
        for h in &honest[3..5] {
            let entries = vec![(honest[2].did().clone(), 800, 10)];
            engine.receive_report(&report(h, 1, entries), NOW).unwrap();
        }
        engine.refresh(NOW);
        assert!(engine.credibility(honest[3].did()) > 0.0);
        engine
    };
    let throwaways: Vec<Identity> = (0..200)
        .map(|i| identity(&format!("throwaway {i}")))
        .collect();
    let flood = |engine: &mut TrustEngine| {
        let mut crowded = 0;
        for (i, fresh) in throwaways.iter().enumerate() {
            let entries = if i % 2 == 0 {
                vec![]
            } else {
                vec![(throwaways[i - 1].did().clone(), 1000, 1000)]
            };
            match engine.receive_report(&report(fresh, 1, entries), NOW) {
                Ok(_) => {}
                Err(mesh_trust::ReportError::Crowded { .. }) => crowded += 1,
                Err(e) => panic!("{e}"),
            }
        }
        crowded
    };

    let mut roomy = engine_holding(10);
    assert_eq!(flood(&mut roomy), 0, "fresh keys displace each other");
    assert_eq!(roomy.reporters(), 10);
    for h in [&honest[1], &honest[3], &honest[4]] {
        assert!(roomy.holds_report_from(h.did()), "{} displaced", h.did());
    }

    let mut full = engine_holding(3);
    assert_eq!(
        flood(&mut full),
        throwaways.len(),
        "no room among the credible"
    );
    assert_eq!(full.reporters(), 3);
}

/// Issue 14, the patient flood: fresh keys under the gossip rate limit are
/// each valid, so only a quota on reporters nobody vouches for keeps them
/// from filling the store (in a real node: 41 → 93 MB for 4,000 reports of
/// 64 entries without it). Credible and pre-trusted reporters still get in.
#[test]
fn fresh_keys_fill_only_the_unproven_quota() {
    let honest: Vec<Identity> = (0..4).map(|i| identity(&format!("honest {i}"))).collect();
    let mut config = TrustConfig::default();
    config.aggregation.max_unproven_reporters = 16;
    let mut engine = TrustEngine::new(honest[0].did().clone(), config).unwrap();
    engine.add_pre_trusted(honest[1].did().clone());
    for h in &honest {
        engine.register_agent(h.did().clone(), Score::saturating(500), Score::MAX);
    }
    // The pre-trusted honest 1 vouches for honest 2.
    let vouch = vec![(honest[2].did().clone(), 900, 50)];
    engine
        .receive_report(&report(&honest[1], 1, vouch), NOW)
        .unwrap();
    engine.refresh(NOW);
    assert!(engine.credibility(honest[2].did()) > 0.0);

    let mut crowded = 0;
    for i in 0..100 {
        let fresh = identity(&format!("patient throwaway {i}"));
        match engine.receive_report(&report(&fresh, 1, vec![]), NOW) {
            Ok(_) => {}
            Err(mesh_trust::ReportError::Crowded { .. }) => crowded += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        crowded,
        100 - 16,
        "only the quota of unproven reporters is held"
    );
    assert_eq!(engine.reporters(), 1 + 16);
    // A credible reporter is not counted against the quota.
    let entries = vec![(honest[3].did().clone(), 700, 5)];
    engine
        .receive_report(&report(&honest[2], 1, entries), NOW)
        .unwrap();
    assert!(engine.holds_report_from(honest[2].did()));
}
