//! Chain verification: the honest chain, and each way a chain can be wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use mesh_delegation::chain::chain_hash;
use mesh_delegation::{ChainError, Grant, SignedGrant, verify_chain};
use mesh_iatp::envelope::{self, EnvelopeError};

fn verify(w: &World, chain: &[SignedGrant], requester: &mesh_iatp::Did) -> Result<(), ChainError> {
    let owner = did(&w.owner);
    verify_chain(chain, requester, |d| *d == owner).map(|_| ())
}

#[test]
fn an_honest_depth_three_chain_verifies() {
    let w = World::new();
    let chain = chain3(&w);
    let v = verify_chain(&chain, &did(&w.carol), |d| *d == did(&w.owner)).unwrap();
    assert_eq!(v.links.len(), 3);
    assert_eq!(v.leaf().audience, did(&w.carol));
    assert_eq!(v.links[1].link.hash, chain[1].hash());
}

#[test]
fn empty_and_over_long_chains_are_refused_before_decoding() {
    let w = World::new();
    assert_eq!(verify(&w, &[], &did(&w.carol)), Err(ChainError::Empty));
    let junk = vec![SignedGrant(vec![0xff; 10]); 9];
    assert_eq!(
        verify(&w, &junk, &did(&w.carol)),
        Err(ChainError::TooLong { len: 9 })
    );
}

#[test]
fn a_forged_link_is_refused_naming_it() {
    let w = World::new();
    let mut chain = chain3(&w);
    // Mallory (carol's key) writes the middle link claiming alice issued it.
    let mut g1: Grant = envelope::open::<Grant>(&chain[1].0)
        .unwrap()
        .claimed()
        .clone();
    g1.capabilities = caps(&["tools/*:*"]);
    chain[1] = SignedGrant(envelope::seal(&g1, w.carol.identity()).unwrap());
    match verify(&w, &chain, &did(&w.carol)) {
        Err(ChainError::Invalid {
            link,
            source: EnvelopeError::BadSignature { signer },
        }) => {
            assert_eq!(link.index, 1);
            assert_eq!(link.hash, chain[1].hash());
            assert_eq!(signer, did(&w.alice));
        }
        other => panic!("expected a bad signature at link 1, got {other:?}"),
    }
}

#[test]
fn reordered_links_are_refused() {
    let w = World::new();
    let mut chain = chain3(&w);
    chain.swap(1, 2);
    assert!(
        matches!(verify(&w, &chain, &did(&w.carol)), Err(ChainError::BrokenLink { link }) if link.index == 1)
    );
}

#[test]
fn a_link_spliced_from_another_chain_is_refused() {
    let w = World::new();
    let chain = chain3(&w);
    // A second, separately issued chain owner → alice → bob (different nonce).
    let other0 = grant(
        w.owner.identity(),
        &did(&w.alice),
        None,
        GrantSpec {
            nonce: 9,
            ..GrantSpec::default()
        },
    );
    let other1 = grant(
        w.alice.identity(),
        &did(&w.bob),
        Some(&other0),
        GrantSpec {
            depth: 2,
            ..GrantSpec::default()
        },
    );
    let spliced = vec![chain[0].clone(), other1, chain[2].clone()];
    assert!(
        matches!(verify(&w, &spliced, &did(&w.carol)), Err(ChainError::BrokenLink { link }) if link.index == 1)
    );
}

#[test]
fn a_link_issued_by_someone_other_than_the_previous_audience_is_refused() {
    let w = World::new();
    let g0 = grant(
        w.owner.identity(),
        &did(&w.alice),
        None,
        GrantSpec::default(),
    );
    // bob re-delegates alice's grant as if it were his.
    let g1 = grant(
        w.bob.identity(),
        &did(&w.carol),
        Some(&g0),
        GrantSpec {
            depth: 2,
            ..GrantSpec::default()
        },
    );
    assert_eq!(
        verify(&w, &[g0, g1.clone()], &did(&w.carol)),
        Err(ChainError::IssuerNotAudience {
            link: mesh_delegation::LinkRef {
                index: 1,
                hash: g1.hash()
            },
            issuer: did(&w.bob),
            expected: did(&w.alice),
        })
    );
}

#[test]
fn widened_capabilities_windows_and_depths_are_refused() {
    let w = World::new();
    let g0 = grant(
        w.owner.identity(),
        &did(&w.alice),
        None,
        GrantSpec::default(),
    );
    let child = |spec: GrantSpec| grant(w.alice.identity(), &did(&w.bob), Some(&g0), spec);
    let r = |g: SignedGrant| verify(&w, &[g0.clone(), g], &did(&w.bob));

    assert!(matches!(
        r(child(GrantSpec { depth: 2, caps: caps(&["tools/*:read,admin"]), ..GrantSpec::default() })),
        Err(ChainError::CapabilityWidened { capability, .. }) if capability == "tools/*:admin,read"
    ));
    assert!(matches!(
        r(child(GrantSpec {
            depth: 2,
            caps: caps(&["*:read"]),
            ..GrantSpec::default()
        })),
        Err(ChainError::CapabilityWidened { .. })
    ));
    assert!(matches!(
        r(child(GrantSpec {
            depth: 2,
            expires: NOW.plus_secs(2 * DAY),
            ..GrantSpec::default()
        })),
        Err(ChainError::WindowWidened { .. })
    ));
    assert!(matches!(
        r(child(GrantSpec {
            depth: 2,
            not_before: NOW.minus_secs(2 * HOUR),
            ..GrantSpec::default()
        })),
        Err(ChainError::WindowWidened { .. })
    ));
    assert!(matches!(
        r(child(GrantSpec {
            depth: 3,
            ..GrantSpec::default()
        })),
        Err(ChainError::DepthNotDecreasing {
            depth: 3,
            parent_depth: 3,
            ..
        })
    ));
    // A narrower child is fine.
    assert_eq!(
        r(child(GrantSpec {
            depth: 0,
            caps: caps(&["tools/github/x:read"]),
            ..GrantSpec::default()
        })),
        Ok(())
    );
}

#[test]
fn a_grant_with_depth_zero_cannot_be_re_delegated() {
    let w = World::new();
    let g0 = grant(
        w.owner.identity(),
        &did(&w.alice),
        None,
        GrantSpec {
            depth: 0,
            ..GrantSpec::default()
        },
    );
    let g1 = grant(
        w.alice.identity(),
        &did(&w.bob),
        Some(&g0),
        GrantSpec {
            depth: 0,
            ..GrantSpec::default()
        },
    );
    assert!(matches!(
        verify(&w, &[g0, g1], &did(&w.bob)),
        Err(ChainError::DepthNotDecreasing {
            depth: 0,
            parent_depth: 0,
            ..
        })
    ));
}

#[test]
fn roots_must_be_accepted_and_parentless() {
    let w = World::new();
    let rogue_root = grant(w.alice.identity(), &did(&w.bob), None, GrantSpec::default());
    assert!(matches!(
        verify(&w, std::slice::from_ref(&rogue_root), &did(&w.bob)),
        Err(ChainError::UntrustedRoot { issuer, .. }) if issuer == did(&w.alice)
    ));
    let g0 = grant(
        w.owner.identity(),
        &did(&w.alice),
        None,
        GrantSpec::default(),
    );
    let orphan = grant(
        w.owner.identity(),
        &did(&w.alice),
        Some(&g0),
        GrantSpec::default(),
    );
    assert!(matches!(
        verify(&w, &[orphan], &did(&w.alice)),
        Err(ChainError::RootHasParent { .. })
    ));
}

#[test]
fn a_chain_for_someone_else_is_refused() {
    let w = World::new();
    let chain = chain3(&w);
    assert!(matches!(
        verify(&w, &chain, &did(&w.bob)),
        Err(ChainError::WrongAudience { audience, requester, .. }) if audience == did(&w.carol) && requester == did(&w.bob)
    ));
}

#[test]
fn malformed_windows_are_refused() {
    let w = World::new();
    let g = grant(
        w.owner.identity(),
        &did(&w.alice),
        None,
        GrantSpec {
            expires: NOW.minus_secs(2 * HOUR),
            ..GrantSpec::default()
        },
    );
    assert!(matches!(
        verify(&w, &[g], &did(&w.alice)),
        Err(ChainError::Malformed { .. })
    ));
}

#[test]
fn chain_hashes_name_the_exact_sequence() {
    let w = World::new();
    let chain = chain3(&w);
    let mut swapped = chain.clone();
    swapped.swap(0, 1);
    assert_ne!(chain_hash(&chain), chain_hash(&swapped));
    assert_eq!(chain_hash(&chain), chain_hash(&chain.clone()));
}
