//! Spawning through the gate: threshold, budget, depth, capabilities,
//! ceilings, lineage and its revocation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use mesh_delegation::spawn::LineageError;
use mesh_delegation::{
    Decision, Denial, Gate, GateConfig, Request, Revocation, RevocationSet, SignedSpawnCertificate,
    SpawnPolicy, TargetKind, child_initial_score,
};
use mesh_iatp::testing::identity;
use mesh_iatp::{Did, Score};

fn spawn<'a>(
    parent: &'a Did,
    certificate: &'a SignedSpawnCertificate,
    lineage: &'a [SignedSpawnCertificate],
    alive: u32,
) -> Request<'a> {
    Request::Spawn {
        parent,
        certificate,
        lineage,
        children_alive: alive,
    }
}

fn deny(d: Decision) -> Denial {
    match d {
        Decision::Deny(why) => why,
        Decision::Allow => panic!("expected a denial, got Allow"),
    }
}

#[test]
fn a_trusted_parent_within_budget_may_spawn() {
    let w = World::new();
    let mut gate = w.gate();
    let child = identity("child one");
    let cert = certificate(w.alice.identity(), child.did(), None, CertSpec::default());
    let alice = did(&w.alice);
    let none = RevocationSet::default();
    assert_eq!(
        gate.decide(spawn(&alice, &cert, &[], 0), &w.peers, &none, NOW),
        Decision::Allow
    );
    assert_eq!(
        gate.decide(spawn(&alice, &cert, &[], 1), &w.peers, &none, NOW),
        Decision::Allow
    );
    // Trust 750 → budget 2.
    assert_eq!(
        deny(gate.decide(spawn(&alice, &cert, &[], 2), &w.peers, &none, NOW)),
        Denial::SpawnBudgetExhausted {
            alive: 2,
            budget: 2,
            score: Score::saturating(750)
        }
    );
    // The child starts at most at its ceiling and at most at its parent's score.
    let c = cert.open().unwrap();
    assert_eq!(child_initial_score(&c, Score::saturating(750)).get(), 600);
    assert_eq!(child_initial_score(&c, Score::saturating(550)).get(), 550);
}

#[test]
fn a_parent_below_the_threshold_may_not_spawn() {
    let mut w = World::new();
    w.set_trust(&w.alice.clone(), 650);
    let mut gate = w.gate();
    let cert = certificate(
        w.alice.identity(),
        identity("c").did(),
        None,
        CertSpec::default(),
    );
    assert_eq!(
        deny(gate.decide(
            spawn(&did(&w.alice), &cert, &[], 0),
            &w.peers,
            &RevocationSet::default(),
            NOW
        )),
        Denial::SpawnBelowThreshold {
            score: Score::saturating(650),
            threshold: Score::saturating(700)
        }
    );
}

#[test]
fn a_verified_partner_gets_a_larger_budget() {
    let mut w = World::new();
    w.set_trust(&w.alice.clone(), 950);
    let mut gate = w.gate();
    let cert = certificate(
        w.alice.identity(),
        identity("c").did(),
        None,
        CertSpec::default(),
    );
    let alice = did(&w.alice);
    let none = RevocationSet::default();
    assert!(
        gate.decide(spawn(&alice, &cert, &[], 7), &w.peers, &none, NOW)
            .is_allow()
    );
    assert!(matches!(
        deny(gate.decide(spawn(&alice, &cert, &[], 8), &w.peers, &none, NOW)),
        Denial::SpawnBudgetExhausted { budget: 8, .. }
    ));
    assert_eq!(SpawnPolicy::default().budget(Score::saturating(699)), 0);
}

#[test]
fn generations_beyond_the_maximum_depth_are_denied() {
    let mut w = World::new();
    let mut gate = Gate::new(GateConfig {
        spawn: SpawnPolicy {
            max_depth: 2,
            ..SpawnPolicy::default()
        },
        ..GateConfig::new([did(&w.owner)])
    });
    let gen1 = identity("gen1");
    let gen2 = identity("gen2");
    let gen3 = identity("gen3");
    let c1 = certificate(w.alice.identity(), gen1.did(), None, CertSpec::default());
    let c2 = certificate(
        &gen1,
        gen2.did(),
        Some(&c1),
        CertSpec {
            depth: 2,
            ceiling: 550,
            ..CertSpec::default()
        },
    );
    let c3 = certificate(
        &gen2,
        gen3.did(),
        Some(&c2),
        CertSpec {
            depth: 3,
            ceiling: 500,
            ..CertSpec::default()
        },
    );
    for g in [&gen1, &gen2] {
        w.peers
            .trust
            .insert(g.did().clone(), Score::saturating(750));
    }
    let none = RevocationSet::default();
    assert!(
        gate.decide(
            spawn(gen1.did(), &c2, std::slice::from_ref(&c1), 0),
            &w.peers,
            &none,
            NOW
        )
        .is_allow()
    );
    assert_eq!(
        deny(gate.decide(spawn(gen2.did(), &c3, &[c1, c2], 0), &w.peers, &none, NOW)),
        Denial::SpawnTooDeep { depth: 3, max: 2 }
    );
}

#[test]
fn a_child_may_not_have_more_than_its_parent() {
    let mut w = World::new();
    let mut gate = w.gate();
    let none = RevocationSet::default();
    let alice = did(&w.alice);
    // acme's bundle policy allows tools/* and search: shell access is beyond it.
    let wide = certificate(
        w.alice.identity(),
        identity("c").did(),
        None,
        CertSpec {
            caps: caps(&["*:*"]),
            ..CertSpec::default()
        },
    );
    assert!(matches!(
        deny(gate.decide(spawn(&alice, &wide, &[], 0), &w.peers, &none, NOW)),
        Denial::InvalidLineage(LineageError::CapabilityWidened { .. })
    ));
    // Ceiling above acme's ceiling (900).
    let high = certificate(
        w.alice.identity(),
        identity("c").did(),
        None,
        CertSpec {
            ceiling: 950,
            ..CertSpec::default()
        },
    );
    assert_eq!(
        deny(gate.decide(spawn(&alice, &high, &[], 0), &w.peers, &none, NOW)),
        Denial::SpawnCeilingAboveParent {
            ceiling: Score::saturating(950),
            parent_ceiling: Score::saturating(900)
        }
    );
    // Second generation: capabilities, ceiling and window within the first's.
    let gen1 = identity("gen1");
    w.peers
        .trust
        .insert(gen1.did().clone(), Score::saturating(750));
    let c1 = certificate(w.alice.identity(), gen1.did(), None, CertSpec::default());
    let lineage = std::slice::from_ref(&c1);
    let wider = certificate(
        &gen1,
        identity("g2").did(),
        Some(&c1),
        CertSpec {
            depth: 2,
            caps: caps(&["tools/*:*"]),
            ..CertSpec::default()
        },
    );
    assert!(matches!(
        deny(gate.decide(spawn(gen1.did(), &wider, lineage, 0), &w.peers, &none, NOW)),
        Denial::InvalidLineage(LineageError::CapabilityWidened { .. })
    ));
    let richer = certificate(
        &gen1,
        identity("g2").did(),
        Some(&c1),
        CertSpec {
            depth: 2,
            ceiling: 700,
            ..CertSpec::default()
        },
    );
    assert!(matches!(
        deny(gate.decide(spawn(gen1.did(), &richer, lineage, 0), &w.peers, &none, NOW)),
        Denial::InvalidLineage(LineageError::Exceeds {
            what: "trust ceiling",
            ..
        })
    ));
    let longer = certificate(
        &gen1,
        identity("g2").did(),
        Some(&c1),
        CertSpec {
            depth: 2,
            expires: NOW.plus_secs(9 * DAY),
            ..CertSpec::default()
        },
    );
    assert!(matches!(
        deny(gate.decide(spawn(gen1.did(), &longer, lineage, 0), &w.peers, &none, NOW)),
        Denial::InvalidLineage(LineageError::Exceeds { what: "window", .. })
    ));
}

#[test]
fn forged_misattributed_and_mislinked_certificates_are_denied() {
    let w = World::new();
    let mut gate = w.gate();
    let none = RevocationSet::default();
    let alice = did(&w.alice);
    // bob's certificate presented as alice's spawn.
    let bobs = certificate(
        w.bob.identity(),
        identity("c").did(),
        None,
        CertSpec::default(),
    );
    assert_eq!(
        deny(gate.decide(spawn(&alice, &bobs, &[], 0), &w.peers, &none, NOW)),
        Denial::WrongParent {
            expected: alice.clone(),
            found: did(&w.bob)
        }
    );
    // A wrong spawn depth.
    let deep = certificate(
        w.alice.identity(),
        identity("c").did(),
        None,
        CertSpec {
            depth: 2,
            ..CertSpec::default()
        },
    );
    assert!(matches!(
        deny(gate.decide(spawn(&alice, &deep, &[], 0), &w.peers, &none, NOW)),
        Denial::InvalidLineage(LineageError::Broken { .. })
    ));
    // A forged signature.
    let mut forged = certificate(
        w.alice.identity(),
        identity("c").did(),
        None,
        CertSpec::default(),
    );
    let last = forged.0.len() - 1;
    forged.0[last - 70] ^= 1;
    assert!(matches!(
        deny(gate.decide(spawn(&alice, &forged, &[], 0), &w.peers, &none, NOW)),
        Denial::InvalidLineage(LineageError::Invalid { .. })
    ));
}

#[test]
fn revoking_a_certificate_stops_its_descendants_from_spawning() {
    let mut w = World::new();
    let mut gate = w.gate();
    let gen1 = identity("gen1");
    w.peers
        .trust
        .insert(gen1.did().clone(), Score::saturating(750));
    let c1 = certificate(w.alice.identity(), gen1.did(), None, CertSpec::default());
    let c2 = certificate(
        &gen1,
        identity("gen2").did(),
        Some(&c1),
        CertSpec {
            depth: 2,
            ceiling: 500,
            ..CertSpec::default()
        },
    );
    let lineage = std::slice::from_ref(&c1);
    let mut revoked = RevocationSet::default();
    assert!(
        gate.decide(spawn(gen1.did(), &c2, lineage, 0), &w.peers, &revoked, NOW)
            .is_allow()
    );
    let rev = Revocation {
        revoker: did(&w.alice),
        target: c1.hash(),
        kind: TargetKind::SpawnCertificate,
        chain: vec![serde_bytes::ByteBuf::from(c1.0.clone())],
        reason: "misbehaving child".into(),
        issued: NOW,
    }
    .sign(w.alice.identity())
    .unwrap();
    revoked.add(&rev).unwrap();
    assert_eq!(
        deny(gate.decide(spawn(gen1.did(), &c2, lineage, 0), &w.peers, &revoked, NOW)),
        Denial::RevokedAncestor {
            agent: gen1.did().clone(),
            certificate: c1.hash()
        }
    );
    // An expired parent certificate also stops it.
    let later = NOW.plus_secs(2 * DAY);
    assert!(matches!(
        deny(gate.decide(
            spawn(gen1.did(), &c2, lineage, 0),
            &w.peers,
            &RevocationSet::default(),
            later
        )),
        Denial::Expired { .. }
    ));
}

#[test]
fn an_unknown_org_may_not_spawn() {
    let w = World::new();
    let mut gate = w.gate();
    let stranger = w.fed.agent(&w.fed.rogue, "stranger", &[]);
    let cert = certificate(
        stranger.identity(),
        identity("c").did(),
        None,
        CertSpec::default(),
    );
    assert_eq!(
        deny(gate.decide(
            spawn(&did(&stranger), &cert, &[], 0),
            &w.peers,
            &RevocationSet::default(),
            NOW
        )),
        Denial::UnknownOrg {
            agent: did(&stranger)
        }
    );
}
