//! Revocations: who may revoke, what a revocation must carry, and how
//! revocation sets merge and prune.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use mesh_delegation::{
    Grant, Revocation, RevocationError, RevocationSet, SignedGrant, TargetKind, verify_revocation,
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

/// One key can mint chains of its own and revoke them without end: what a
/// node takes from the mesh is bounded per revoker, and revocations of
/// links that have expired are neither taken nor kept (issue 14).
#[test]
fn revocations_from_the_mesh_are_bounded_per_revoker_and_pruned_after_expiry() {
    use mesh_delegation::revocation::MAX_PER_REVOKER;

    let w = World::new();
    let minter = w.gina.identity();
    let own = |nonce: u16, expires: mesh_iatp::Timestamp| {
        let g = Grant {
            issuer: minter.did().clone(),
            audience: did(&w.carol),
            capabilities: caps(&["tools/x:read"]),
            not_before: NOW.minus_secs(60),
            expires,
            depth: 1,
            min_trust: mesh_iatp::Score::saturating(0),
            nonce: {
                let mut n = [0u8; 16];
                n[..2].copy_from_slice(&nonce.to_be_bytes());
                n
            },
            parent: None,
        }
        .sign(minter)
        .unwrap();
        verify_revocation(&revocation(minter, &[g]).sign(minter).unwrap()).unwrap()
    };
    let mut set = RevocationSet::default();
    for i in 0..MAX_PER_REVOKER as u16 {
        assert_eq!(
            set.insert_bounded(own(i, NOW.plus_secs(3600)), NOW, 60),
            Ok(true)
        );
    }
    assert!(matches!(
        set.insert_bounded(own(u16::MAX, NOW.plus_secs(3600)), NOW, 60),
        Err(RevocationError::Refused(_))
    ));
    // Another revoker is not held back by the first.
    let chain = chain3(&w);
    let bob = w.bob.identity();
    let theirs = verify_revocation(&revocation(bob, &chain).sign(bob).unwrap()).unwrap();
    assert_eq!(set.insert_bounded(theirs, NOW, 60), Ok(true));
    // A revocation of a link already expired revokes nothing.
    let mut fresh = RevocationSet::default();
    assert!(matches!(
        fresh.insert_bounded(own(7, NOW.minus_secs(3600)), NOW, 60),
        Err(RevocationError::Refused(_))
    ));
    // Once the minter's links expire they are pruned, and its share frees.
    assert_eq!(
        set.prune(NOW.plus_secs(7200), 60),
        MAX_PER_REVOKER,
        "every expired target goes; bob's chain (a day) stays"
    );
    assert_eq!(set.len(), 1);
    assert_eq!(
        set.insert_bounded(own(9, NOW.plus_secs(9000)), NOW.plus_secs(7200), 60),
        Ok(true)
    );
}
