//! Claimed evidence is believed only as far as the reporter could have
//! observed (TRUST.md §5, "Claims"). The attack: a spy names its protégé
//! with a hundred observations in its very first report, to be believed
//! at full confidence at once.

mod common;

use common::{NOW, report_at};
use mesh_iatp::testing::identity;
use mesh_iatp::{Identity, Score, Timestamp};
use mesh_trust::scoring::confidence;
use mesh_trust::{Evidence, EvidenceKind, TrustConfig, TrustEngine};

/// Engines for `me` with the default claim cap and with claims believed as
/// made, both having seen `spy` succeed 30 times.
fn engines(me: &Identity, spy: &Identity, others: &[&Identity]) -> [TrustEngine; 2] {
    let mut off = TrustConfig::default();
    off.aggregation.claim_floor = f64::from(u32::MAX);
    [TrustConfig::default(), off].map(|config| {
        let mut e = TrustEngine::new(me.did().clone(), config).unwrap_or_else(|e| panic!("{e}"));
        for a in others.iter().chain([&spy]) {
            e.register_agent(a.did().clone(), Score::saturating(500), Score::MAX);
        }
        for i in 0..30 {
            e.record(Evidence::new(
                spy.did().clone(),
                EvidenceKind::TaskSuccess,
                NOW.minus_secs(100 - i),
            ));
        }
        e
    })
}

/// The weight behind `subject`'s global score with the cap, over the
/// weight without it, after both engines took `bytes` at `at`.
fn believed_share(
    engines: &mut [TrustEngine; 2],
    bytes: &[u8],
    at: Timestamp,
    subject: &Identity,
) -> f64 {
    let [capped, open] = engines.each_mut().map(|e| {
        e.receive_report(bytes, at)
            .unwrap_or_else(|e| panic!("{e}"));
        e.refresh(at);
        e.explain(subject.did(), at).global.weight
    });
    capped / open
}

#[test]
fn a_claim_is_believed_only_as_fast_as_it_could_have_been_observed() {
    let (me, spy) = (identity("agent me"), identity("agent spy"));
    let (protege, later) = (identity("agent protege"), identity("agent later"));
    let mut e = engines(&me, &spy, &[&protege, &later]);
    let k = TrustConfig::default().blend_evidence;
    let share = |believed: f64| confidence(believed, k) / confidence(100.0, k);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;

    // First report: a hundred claimed, the floor (10) believed.
    let first = report_at(&spy, 1, NOW, vec![(protege.did().clone(), 1000, 100)]);
    let got = believed_share(&mut e, &first, NOW, &protege);
    assert!(close(got, share(10.0)), "{got}");

    // Half an hour later, again a hundred: 10 + 60/h × 0.5 h = 40. A
    // subject named for the first time gets the rate for the half hour
    // (30) -- it could have been observed meanwhile.
    let t1 = NOW.plus_secs(1800);
    let second = report_at(
        &spy,
        2,
        t1,
        vec![
            (protege.did().clone(), 1000, 100),
            (later.did().clone(), 1000, 100),
        ],
    );
    let got = believed_share(&mut e, &second, t1, &protege);
    assert!(close(got, share(40.0)), "{got}");
    let [capped, open] = e
        .each_ref()
        .map(|x| x.explain(later.did(), t1).global.weight);
    assert!(close(capped / open, share(30.0)), "{}", capped / open);

    // Two hours on, the claim is within what could have been seen: all
    // of it is believed.
    let t2 = t1.plus_secs(7200);
    let third = report_at(&spy, 3, t2, vec![(protege.did().clone(), 1000, 100)]);
    let got = believed_share(&mut e, &third, t2, &protege);
    assert!(close(got, 1.0), "{got}");

    // An honest claim under the cap is believed as made, from the start.
    let (me2, honest) = (identity("agent me 2"), identity("agent honest"));
    let mut e = engines(&me2, &honest, &[&protege]);
    let modest = report_at(&honest, 1, NOW, vec![(protege.did().clone(), 300, 6)]);
    let got = believed_share(&mut e, &modest, NOW, &protege);
    assert!(close(got, 1.0), "{got}");
}
