//! Revocations: who may revoke, what a revocation must carry, and how
//! revocation sets merge and prune.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use mesh_delegation::{
    Revocation, RevocationError, RevocationSet, SignedGrant, TargetKind, verify_revocation,
};
use mesh_iatp::Identity;
use serde_bytes::ByteBuf;

fn revocation(revoker: &Identity, chain: &[SignedGrant]) -> Revocation {
    Revocation {
        revoker: revoker.did().clone(),
        target: chain[chain.len() - 1].hash(),
        kind: TargetKind::Grant,
        chain: chain.iter().map(|g| ByteBuf::from(g.0.clone())).collect(),
        reason: "test".into(),
        issued: NOW,
    }
}

#[test]
fn the_issuer_and_anyone_above_may_revoke() {
    let w = World::new();
    let chain = chain3(&w);
    // The leaf (bob → carol) may be revoked by bob, alice or the owner.
    for issuer in [w.bob.identity(), w.alice.identity(), w.owner.identity()] {
        let v = verify_revocation(&revocation(issuer, &chain).sign(issuer).unwrap()).unwrap();
        assert_eq!(v.target, chain[2].hash());
        assert_eq!(v.revoker, *issuer.did());
    }
}

#[test]
fn strangers_and_those_below_may_not_revoke() {
    let w = World::new();
    let chain = chain3(&w);
    // carol is the leaf's audience, not an issuer at or above it.
    for who in [w.carol.identity(), w.gina.identity()] {
        assert_eq!(
            verify_revocation(&revocation(who, &chain).sign(who).unwrap()),
            Err(RevocationError::NotAuthorised {
                revoker: who.did().clone()
            })
        );
    }
    // bob cannot revoke the link above him (owner → alice).
    let bob = w.bob.identity();
    assert!(matches!(
        verify_revocation(&revocation(bob, &chain[..1]).sign(bob).unwrap()),
        Err(RevocationError::NotAuthorised { .. })
    ));
}

#[test]
fn a_revocation_must_carry_a_sound_chain_ending_at_its_target() {
    let w = World::new();
    let chain = chain3(&w);
    let owner = w.owner.identity();
    let mut r = revocation(owner, &chain);
    r.target = chain[1].hash();
    assert!(matches!(
        verify_revocation(&r.sign(owner).unwrap()),
        Err(RevocationError::TargetNotInChain { .. })
    ));
    let mut r = revocation(owner, &chain);
    r.chain.swap(0, 1);
    assert!(matches!(
        verify_revocation(&r.sign(owner).unwrap()),
        Err(RevocationError::BrokenChain { index: 0 })
    ));
    let mut r = revocation(owner, &chain);
    r.chain.clear();
    assert!(matches!(
        verify_revocation(&r.sign(owner).unwrap()),
        Err(RevocationError::Malformed(_))
    ));
    let mut r = revocation(owner, &chain);
    r.reason = "x".repeat(300);
    assert!(matches!(
        verify_revocation(&r.sign(owner).unwrap()),
        Err(RevocationError::Malformed(_))
    ));
    // Signed by someone other than the named revoker.
    let forged = revocation(owner, &chain).sign(w.carol.identity()).unwrap();
    assert!(matches!(
        verify_revocation(&forged),
        Err(RevocationError::Envelope(_))
    ));
}

#[test]
fn revocation_sets_merge_idempotently_in_any_order_and_prune_after_expiry() {
    let w = World::new();
    let chain = chain3(&w);
    let r1 = revocation(w.owner.identity(), &chain[..1])
        .sign(w.owner.identity())
        .unwrap();
    let r2 = revocation(w.bob.identity(), &chain)
        .sign(w.bob.identity())
        .unwrap();
    let mut a = RevocationSet::default();
    let mut b = RevocationSet::default();
    assert!(a.add(&r1).unwrap());
    assert!(!a.add(&r1).unwrap(), "adding again changes nothing");
    b.add(&r2).unwrap();
    let mut ab = a.clone();
    ab.merge(&b);
    let mut ba = b.clone();
    ba.merge(&a);
    assert_eq!(ab.signed(), ba.signed());
    assert_eq!(ab.merge(&ba), 0, "merging what it already has adds nothing");
    assert_eq!(ab.len(), 2);
    // Targets expire a day after NOW: kept within skew, dropped after.
    assert_eq!(ab.prune(NOW.plus_secs(DAY + 30), 60), 0);
    assert_eq!(ab.prune(NOW.plus_secs(DAY + 61), 60), 2);
    assert!(ab.is_empty());
}
