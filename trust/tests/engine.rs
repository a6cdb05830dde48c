//! The trust engine's bookkeeping: report ordering, freshness, round trips,
//! determinism, and its use as the handshake's trust source.

// Test code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_iatp::credential::RevokedCredentials;
use mesh_iatp::handshake::{
    Context, HandshakeConfig, Initiator, NoLineage, NonceCache, Refusal, Responder,
};
use mesh_iatp::testing::{FIXTURE_NOW, Federation, identity};
use mesh_iatp::{Identity, Score};
use mesh_trust::report::seal_report;
use mesh_trust::{
    Evidence, EvidenceKind, Proof, ReportEntry, ReportError, ReportOutcome, TrustConfig,
    TrustEngine, TrustReport,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

const NOW: mesh_iatp::Timestamp = FIXTURE_NOW;

fn report(from: &Identity, epoch: u64, sequence: u64, score: u16) -> Vec<u8> {
    seal_report(
        &TrustReport {
            reporter: from.did().clone(),
            epoch,
            sequence,
            issued: NOW,
            entries: vec![ReportEntry {
                subject: identity("subject").did().to_string(),
                score: Score::saturating(score),
                evidence: 10,
            }],
        },
        from,
    )
    .expect("seals")
}

fn engine() -> TrustEngine {
    TrustEngine::new(identity("me").did().clone(), TrustConfig::default()).expect("config")
}

#[test]
fn newer_replaces_older_is_ignored_duplicates_are_idempotent() {
    let mut e = engine();
    e.add_pre_trusted(identity("friend").did().clone());
    let friend = identity("friend");
    assert_eq!(
        e.receive_report(&report(&friend, 1, 5, 900), NOW),
        Ok(ReportOutcome::Accepted)
    );
    assert_eq!(
        e.receive_report(&report(&friend, 1, 5, 900), NOW),
        Ok(ReportOutcome::Duplicate)
    );
    assert_eq!(
        e.receive_report(&report(&friend, 1, 4, 100), NOW),
        Err(ReportError::Stale {
            have: (1, 5),
            got: (1, 4)
        })
    );
    assert!(matches!(
        e.receive_report(&report(&friend, 1, 5, 100), NOW),
        Err(ReportError::Conflicting {
            position: (1, 5),
            ..
        })
    ));
    e.refresh(NOW);
    let subject = identity("subject").did().clone();
    let before = e.score(&subject, NOW);
    assert!(
        before.get() > 300,
        "the friend's 900 lifted the subject: {before}"
    );
    // A new epoch (restart) with sequence 0 is newer than (1, 5).
    assert_eq!(
        e.receive_report(&report(&friend, 2, 0, 100), NOW),
        Ok(ReportOutcome::Accepted)
    );
    e.refresh(NOW);
    assert!(
        e.score(&subject, NOW) < before,
        "the newer, lower report replaced the old one"
    );
}

#[test]
fn reports_older_than_the_ttl_leave_the_aggregation() {
    let mut e = engine();
    let friend = identity("friend");
    e.add_pre_trusted(friend.did().clone());
    e.receive_report(&report(&friend, 1, 1, 1000), NOW)
        .expect("accepted");
    let subject = identity("subject").did().clone();
    e.refresh(NOW);
    assert!(e.score(&subject, NOW).get() > 300);
    let much_later = NOW.plus_secs(2 * 86_400);
    e.refresh(much_later);
    assert_eq!(
        e.score(&subject, much_later).get(),
        300,
        "back to the unknown-agent prior"
    );
}

#[test]
fn make_report_round_trips_into_another_engine() {
    let me = identity("me");
    let mut a = TrustEngine::new(me.did().clone(), TrustConfig::default()).expect("config");
    let peer = identity("peer").did().clone();
    a.register_agent(peer.clone(), Score::saturating(500), Score::MAX);
    for i in 0..30 {
        a.record(Evidence::new(
            peer.clone(),
            EvidenceKind::TaskSuccess,
            NOW.plus_secs(i),
        ));
    }
    let bytes = a.make_report(&me, 1, 1, NOW.plus_secs(30)).expect("signs");
    let mut b =
        TrustEngine::new(identity("other").did().clone(), TrustConfig::default()).expect("config");
    b.add_pre_trusted(me.did().clone());
    b.register_agent(peer.clone(), Score::saturating(500), Score::MAX);
    assert_eq!(
        b.receive_report(&bytes, NOW.plus_secs(30)),
        Ok(ReportOutcome::Accepted)
    );
    b.refresh(NOW.plus_secs(30));
    let why = b.explain(&peer, NOW.plus_secs(30));
    assert_eq!(why.global.reporters, 1);
    assert!(why.global.score > 500.0, "{}", why.global.score);
    assert_eq!(why.direct_evidence, 0.0);
}

#[test]
fn scores_do_not_depend_on_arrival_order() {
    let reporters: Vec<Identity> = (0..20).map(|i| identity(&format!("r{i}"))).collect();
    let reports: Vec<Vec<u8>> = reporters
        .iter()
        .enumerate()
        .map(|(i, r)| report(r, 1, 1, 400 + (i as u16 * 37) % 600))
        .collect();
    let run = |order: &mut dyn Iterator<Item = usize>| {
        let mut e = engine();
        for r in &reporters[..3] {
            e.add_pre_trusted(r.did().clone());
        }
        for i in order {
            e.receive_report(&reports[i], NOW).expect("accepted");
        }
        e.refresh(NOW);
        e.explain(&identity("subject").did().clone(), NOW)
    };
    let forward = run(&mut (0..20));
    let backward = run(&mut (0..20).rev());
    assert_eq!(forward.global, backward.global);
    assert_eq!(forward.score, backward.score);
}

#[test]
fn a_refresh_after_one_change_warm_starts_and_agrees_with_a_cold_one() {
    let reporters: Vec<Identity> = (0..50).map(|i| identity(&format!("r{i}"))).collect();
    let mut warm = engine();
    for r in &reporters[..5] {
        warm.add_pre_trusted(r.did().clone());
    }
    // Reporter i endorses the `shift`-th next three reporters on a ring.
    let ring = |i: usize, seq: u64, shift: usize| {
        let r = &reporters[i];
        seal_report(
            &TrustReport {
                reporter: r.did().clone(),
                epoch: 1,
                sequence: seq,
                issued: NOW,
                entries: (1..4)
                    .map(|k| ReportEntry {
                        subject: reporters[(i + k * shift) % 50].did().to_string(),
                        score: Score::saturating(800),
                        evidence: 20,
                    })
                    .collect(),
            },
            r,
        )
        .expect("seals")
    };
    for i in 0..50 {
        warm.receive_report(&ring(i, 1, 1), NOW).expect("ok");
    }
    let first = warm.refresh(NOW);
    assert!(!first.warm_start);
    warm.receive_report(&ring(7, 2, 11), NOW).expect("ok");
    let second = warm.refresh(NOW);
    assert!(second.warm_start);
    // A fresh engine fed the same reports computes cold.
    let mut fresh = engine();
    for r in &reporters[..5] {
        fresh.add_pre_trusted(r.did().clone());
    }
    for i in 0..50 {
        fresh
            .receive_report(
                &ring(i, if i == 7 { 2 } else { 1 }, if i == 7 { 11 } else { 1 }),
                NOW,
            )
            .expect("ok");
    }
    let cold_stats = fresh.refresh(NOW);
    println!(
        "refresh iterations: cold {} → warm after one changed report {}",
        cold_stats.iterations, second.iterations
    );
    assert!(second.iterations < cold_stats.iterations);
    for r in &reporters {
        assert!((warm.credibility(r.did()) - fresh.credibility(r.did())).abs() < 1e-7);
    }
}

/// An aggregation taken as a snapshot runs on another thread while the
/// engine goes on taking reports, and installs exactly what a refresh at
/// the snapshot would have computed; the report that came meanwhile counts
/// from the next one.
#[test]
fn an_aggregation_run_elsewhere_installs_what_a_refresh_would() {
    let reporters: Vec<Identity> = (0..3).map(|i| identity(&format!("a{i}"))).collect();
    let mut engine = engine();
    engine.add_pre_trusted(reporters[0].did().clone());
    engine
        .receive_report(&report(&reporters[0], 1, 1, 900), NOW)
        .expect("ok");
    let mut in_place = engine.clone();
    let job = engine.aggregation(NOW);
    assert_eq!(job.reports(), 1);
    let worker = std::thread::spawn(move || job.run());
    engine
        .receive_report(&report(&reporters[1], 1, 1, 100), NOW)
        .expect("taken while the aggregation runs");
    let done = worker.join().expect("the worker finished");
    let stats = engine.install(done);
    assert_eq!(stats, in_place.refresh(NOW));
    let subject = identity("subject").did().clone();
    assert_eq!(engine.score(&subject, NOW), in_place.score(&subject, NOW));
    assert_eq!(
        engine.explain(&subject, NOW).global,
        in_place.explain(&subject, NOW).global
    );
    assert_eq!(engine.refresh(NOW).reporters, 3, "the newcomer, next time");
}

#[test]
fn ceilings_cap_and_unknown_agents_start_low() {
    let mut e = engine();
    let peer = identity("peer").did().clone();
    assert_eq!(
        e.score(&peer, NOW).get(),
        300,
        "unknown agents start probationary"
    );
    e.register_agent(peer.clone(), Score::saturating(600), Score::saturating(650));
    for i in 0..100 {
        e.record(Evidence::new(
            peer.clone(),
            EvidenceKind::TaskSuccess,
            NOW.plus_secs(i),
        ));
        e.record(Evidence::new(
            peer.clone(),
            EvidenceKind::HandshakeCompleted,
            NOW.plus_secs(i),
        ));
    }
    let why = e.explain(&peer, NOW.plus_secs(100));
    assert_eq!(why.score.get(), 650);
    assert!(why.capped_by_ceiling);
    assert_eq!(why.recent_evidence.len(), 32);
    assert_eq!(why.dimensions.len(), 5);
}

#[test]
fn severe_evidence_keeps_its_proof_and_can_be_cleared() {
    let mut e = engine();
    let peer = identity("peer").did().clone();
    e.register_agent(peer.clone(), Score::saturating(700), Score::MAX);
    let proof = Proof {
        kind: "ledger/equivocation".into(),
        bytes: vec![1, 2, 3],
    };
    e.record(
        Evidence::new(peer.clone(), EvidenceKind::LedgerEquivocation, NOW)
            .with_proof(proof.clone()),
    );
    assert_eq!(e.score(&peer, NOW).get(), 0);
    let why = e.explain(&peer, NOW);
    assert_eq!(
        why.severe.as_ref().and_then(|s| s.evidence.proof.clone()),
        Some(proof)
    );
    assert!(e.clear_severe(&peer).is_some());
    assert_eq!(e.score(&peer, NOW).get(), 700);
}

#[test]
fn the_handshake_refuses_a_peer_the_engine_distrusts() {
    let fed = Federation::new();
    let alice = fed.agent(&fed.acme, "alice", &[]);
    let bob = fed.agent(&fed.globex, "bob", &[]);
    let mut trust =
        TrustEngine::new(bob.identity().did().clone(), TrustConfig::default()).expect("config");
    let (revoked, config) = (RevokedCredentials::default(), HandshakeConfig::default());
    let mut nonces = NonceCache::new(16, 60);
    let attempt = |trust: &TrustEngine, nonces: &mut NonceCache, seed: u64| {
        let view = trust.view(NOW);
        let ctx = |local| Context {
            local,
            bundle: &fed.bundle,
            revoked: &revoked,
            trust: &view,
            config: &config,
            lineage: &NoLineage,
        };
        let mut r = ChaCha20Rng::seed_from_u64(seed);
        let (_, hello) = Initiator::start(ctx(&alice), bob.peer_id(), NOW, &mut r).expect("hello");
        Responder::on_hello(ctx(&bob), alice.peer_id(), &hello, NOW, nonces, &mut r)
    };
    assert!(
        attempt(&trust, &mut nonces, 1).is_ok(),
        "unknown acme agent starts at acme's initial 500"
    );
    trust.record(Evidence::new(
        alice.identity().did().clone(),
        EvidenceKind::InvalidSignature,
        NOW,
    ));
    let refused = attempt(&trust, &mut nonces, 2).expect_err("refused");
    assert_eq!(
        refused.refusal,
        Refusal::BelowTrustFloor {
            score: Score::MIN,
            floor: Score::saturating(100)
        }
    );
}
