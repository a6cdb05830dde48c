//! The gate: every rule's allow and deny, the cache, cross-org policy and
//! the revocation cascade.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use mesh_delegation::{
    Decision, Denial, Gate, GateConfig, Request, Revocation, RevocationSet, SignedGrant, TargetKind,
};
use mesh_iatp::{CapabilityPattern, Did, Score};

fn res(s: &str) -> CapabilityPattern {
    CapabilityPattern::parse(s).unwrap()
}

fn use_as<'a>(
    who: &'a Did,
    resource: &'a CapabilityPattern,
    action: &'a str,
    chain: &'a [SignedGrant],
) -> Request<'a> {
    Request::Use {
        requester: who,
        resource,
        action,
        chain,
    }
}

fn deny(d: Decision) -> Denial {
    match d {
        Decision::Deny(why) => why,
        Decision::Allow => panic!("expected a denial, got Allow"),
    }
}

/// A revocation of `chain`'s last link by `revoker`.
fn revoke(revoker: &mesh_iatp::Identity, chain: &[SignedGrant]) -> Vec<u8> {
    Revocation {
        revoker: revoker.did().clone(),
        target: chain[chain.len() - 1].hash(),
        kind: TargetKind::Grant,
        chain: chain
            .iter()
            .map(|g| serde_bytes::ByteBuf::from(g.0.clone()))
            .collect(),
        reason: "test".into(),
        issued: NOW,
    }
    .sign(revoker)
    .unwrap()
}

#[test]
fn use_within_the_chain_is_allowed_and_outside_it_denied() {
    let w = World::new();
    let mut gate = w.gate();
    let chain = chain3(&w);
    let carol = did(&w.carol);
    let none = RevocationSet::default();
    let repo = res("tools/github/repo");
    assert_eq!(
        gate.decide(use_as(&carol, &repo, "read", &chain), &w.peers, &none, NOW),
        Decision::Allow
    );
    assert!(matches!(
        deny(gate.decide(use_as(&carol, &repo, "write", &chain), &w.peers, &none, NOW)),
        Denial::NotGranted { link, action, .. } if link.index == 2 && action == "write"
    ));
    let shell = res("tools/shell");
    assert!(matches!(
        deny(gate.decide(use_as(&carol, &shell, "read", &chain), &w.peers, &none, NOW)),
        Denial::NotGranted { .. }
    ));
    let pattern = res("tools/github/*");
    assert!(matches!(
        deny(gate.decide(
            use_as(&carol, &pattern, "read", &chain),
            &w.peers,
            &none,
            NOW
        )),
        Denial::NotConcrete(_)
    ));
}

#[test]
fn a_repeat_decision_uses_the_cache_but_still_checks_what_changes() {
    let mut w = World::new();
    let mut gate = w.gate();
    let chain = chain3(&w);
    let carol = did(&w.carol);
    let repo = res("tools/github/repo");
    let mut revoked = RevocationSet::default();
    for _ in 0..5 {
        assert!(
            gate.decide(
                use_as(&carol, &repo, "read", &chain),
                &w.peers,
                &revoked,
                NOW
            )
            .is_allow()
        );
    }
    assert_eq!(
        gate.verifications(),
        1,
        "verified once, then served from the cache"
    );
    // Time passes: the cached chain expires.
    let later = NOW.plus_secs(2 * DAY);
    assert!(matches!(
        deny(gate.decide(use_as(&carol, &repo, "read", &chain), &w.peers, &revoked, later)),
        Denial::Expired { link, .. } if link.index == 0
    ));
    // Trust falls below a link's minimum: carol drops to 100, and a chain
    // whose last link demands 500 is denied at that link.
    w.set_trust(&w.carol.clone(), 100);
    let g0 = &chain[0];
    let g1 = &chain[1];
    let strict = grant(
        w.bob.identity(),
        &carol,
        Some(g1),
        GrantSpec {
            depth: 1,
            caps: caps(&["tools/github/*:read"]),
            min_trust: 500,
            nonce: 3,
            ..GrantSpec::default()
        },
    );
    let strict_chain = vec![g0.clone(), g1.clone(), strict];
    assert!(matches!(
        deny(gate.decide(use_as(&carol, &repo, "read", &strict_chain), &w.peers, &revoked, NOW)),
        Denial::TrustBelowLinkMinimum { link, score, min, .. }
            if link.index == 2 && score == Score::saturating(100) && min == Score::saturating(500)
    ));
    // A revocation arrives: the cached chain is denied at once.
    revoked
        .add(&revoke(w.owner.identity(), &chain[..1]))
        .unwrap();
    assert!(matches!(
        deny(gate.decide(use_as(&carol, &repo, "read", &chain), &w.peers, &revoked, NOW)),
        Denial::Revoked { link } if link.index == 0
    ));
    // The cache is keyed by chain, but the audience is checked per request.
    let bob = did(&w.bob);
    assert!(matches!(
        deny(gate.decide(
            use_as(&bob, &repo, "read", &chain),
            &w.peers,
            &RevocationSet::default(),
            NOW
        )),
        Denial::InvalidChain(mesh_delegation::ChainError::WrongAudience { .. })
    ));
}

#[test]
fn not_yet_valid_and_over_long_chains_are_denied() {
    let w = World::new();
    let mut gate = Gate::new(GateConfig {
        max_chain_len: 2,
        ..GateConfig::new([did(&w.owner)])
    });
    let chain = chain3(&w);
    let carol = did(&w.carol);
    let repo = res("tools/github/repo");
    let none = RevocationSet::default();
    assert_eq!(
        deny(gate.decide(use_as(&carol, &repo, "read", &chain), &w.peers, &none, NOW)),
        Denial::ChainTooLong { len: 3, max: 2 }
    );
    let future = grant(
        w.owner.identity(),
        &did(&w.alice),
        None,
        GrantSpec {
            not_before: NOW.plus_secs(HOUR),
            ..GrantSpec::default()
        },
    );
    let alice = did(&w.alice);
    assert!(matches!(
        deny(gate.decide(
            use_as(&alice, &repo, "read", &[future]),
            &w.peers,
            &none,
            NOW
        )),
        Denial::NotYetValid { .. }
    ));
}

#[test]
fn per_capability_minimum_trust_applies_to_the_requester() {
    let mut w = World::new();
    let config = GateConfig {
        capability_min_trust: vec![(res("tools/github/*"), Score::saturating(800))],
        ..GateConfig::new([did(&w.owner)])
    };
    let mut gate = Gate::new(config);
    let chain = chain3(&w);
    let carol = did(&w.carol);
    let repo = res("tools/github/repo");
    let none = RevocationSet::default();
    assert!(matches!(
        deny(gate.decide(use_as(&carol, &repo, "read", &chain), &w.peers, &none, NOW)),
        Denial::TrustBelowCapabilityMinimum { min, .. } if min == Score::saturating(800)
    ));
    w.set_trust(&w.carol.clone(), 850);
    assert!(
        gate.decide(use_as(&carol, &repo, "read", &chain), &w.peers, &none, NOW)
            .is_allow()
    );
}

#[test]
fn delegation_is_gated_at_each_hop() {
    let mut w = World::new();
    let mut gate = w.gate();
    let none = RevocationSet::default();
    let g0 = grant(
        w.owner.identity(),
        &did(&w.alice),
        None,
        GrantSpec::default(),
    );
    let to_bob = grant(
        w.alice.identity(),
        &did(&w.bob),
        Some(&g0),
        GrantSpec {
            depth: 2,
            min_trust: 700,
            ..GrantSpec::default()
        },
    );
    let chain = vec![g0.clone(), to_bob.clone()];
    assert_eq!(
        gate.decide(Request::Delegate { chain: &chain }, &w.peers, &none, NOW),
        Decision::Allow
    );
    w.set_trust(&w.bob.clone(), 650);
    assert!(matches!(
        deny(gate.decide(Request::Delegate { chain: &chain }, &w.peers, &none, NOW)),
        Denial::TrustBelowLinkMinimum { link, .. } if link.index == 1
    ));
    let widened = grant(
        w.alice.identity(),
        &did(&w.bob),
        Some(&g0),
        GrantSpec {
            depth: 2,
            caps: caps(&["*:*"]),
            ..GrantSpec::default()
        },
    );
    assert!(matches!(
        deny(gate.decide(
            Request::Delegate {
                chain: &[g0, widened]
            },
            &w.peers,
            &none,
            NOW
        )),
        Denial::InvalidChain(mesh_delegation::ChainError::CapabilityWidened { .. })
    ));
}

#[test]
fn cross_org_grants_carry_only_what_the_bundle_allows() {
    let w = World::new();
    let mut gate = w.gate();
    let none = RevocationSet::default();
    let gina = did(&w.gina);
    // globex agents may be given `search` only.
    let search = grant(
        w.owner.identity(),
        &gina,
        None,
        GrantSpec {
            caps: caps(&["search:query"]),
            ..GrantSpec::default()
        },
    );
    let q = res("search");
    assert!(
        gate.decide(use_as(&gina, &q, "query", &[search]), &w.peers, &none, NOW)
            .is_allow()
    );
    let tools = grant(
        w.owner.identity(),
        &gina,
        None,
        GrantSpec {
            caps: caps(&["tools/github/*:read"]),
            ..GrantSpec::default()
        },
    );
    let repo = res("tools/github/repo");
    assert!(matches!(
        deny(gate.decide(use_as(&gina, &repo, "read", &[tools]), &w.peers, &none, NOW)),
        Denial::CrossOrgCapability { org, capability, .. } if org == "globex" && capability == "tools/github/*:read"
    ));
    // An agent of an org the node does not know cannot be granted anything.
    let stranger = w.fed.agent(&w.fed.rogue, "stranger", &[]);
    let sd = did(&stranger);
    let g = grant(
        w.owner.identity(),
        &sd,
        None,
        GrantSpec {
            caps: caps(&["search:query"]),
            ..GrantSpec::default()
        },
    );
    assert_eq!(
        deny(gate.decide(use_as(&sd, &q, "query", &[g]), &w.peers, &none, NOW)),
        Denial::UnknownOrg { agent: sd.clone() }
    );
}

#[test]
fn revoking_a_link_denies_everything_below_it() {
    let w = World::new();
    let mut gate = w.gate();
    let chain = chain3(&w);
    let carol = did(&w.carol);
    let repo = res("tools/github/repo");
    let mut revoked = RevocationSet::default();
    // alice revokes the link she issued (alice → bob).
    assert!(
        revoked
            .add(&revoke(w.alice.identity(), &chain[..2]))
            .unwrap()
    );
    assert!(matches!(
        deny(gate.decide(use_as(&carol, &repo, "read", &chain), &w.peers, &revoked, NOW)),
        Denial::Revoked { link } if link.index == 1
    ));
    // …but alice's own authority (link 0) stands.
    let alice = did(&w.alice);
    assert!(
        gate.decide(
            use_as(&alice, &repo, "read", &chain[..1]),
            &w.peers,
            &revoked,
            NOW
        )
        .is_allow()
    );
}

#[test]
fn a_spawned_descendant_of_a_revoked_certificate_is_denied() {
    let mut w = World::new();
    let mut gate = w.gate();
    let repo = res("tools/github/repo");
    // carol was spawned by bob; her certificate is revoked.
    let cert = certificate(w.bob.identity(), &did(&w.carol), None, CertSpec::default());
    w.peers.lineages.insert(did(&w.carol), vec![cert.hash()]);
    let chain = chain3(&w);
    let carol = did(&w.carol);
    let none = RevocationSet::default();
    assert!(
        gate.decide(use_as(&carol, &repo, "read", &chain), &w.peers, &none, NOW)
            .is_allow()
    );
    let mut revoked = RevocationSet::default();
    let rev = Revocation {
        revoker: did(&w.bob),
        target: cert.hash(),
        kind: TargetKind::SpawnCertificate,
        chain: vec![serde_bytes::ByteBuf::from(cert.0.clone())],
        reason: "compromised".into(),
        issued: NOW,
    }
    .sign(w.bob.identity())
    .unwrap();
    revoked.add(&rev).unwrap();
    assert_eq!(
        deny(gate.decide(
            use_as(&carol, &repo, "read", &chain),
            &w.peers,
            &revoked,
            NOW
        )),
        Denial::RevokedAncestor {
            agent: carol.clone(),
            certificate: cert.hash()
        }
    );
}

/// Bob's link to carol in `chain3`, written again by carol's key while
/// claiming bob issued it (so its signature is bad), with another nonce.
fn forged_leaf(w: &World, chain: &[SignedGrant]) -> SignedGrant {
    let mut g2 = chain[2].claimed().unwrap();
    g2.nonce = [9; 16];
    SignedGrant(mesh_iatp::envelope::seal(&g2, w.carol.identity()).unwrap())
}

#[test]
fn links_known_from_a_verified_chain_do_not_vouch_for_a_new_leaf() {
    let w = World::new();
    let mut gate = w.gate();
    let chain = chain3(&w);
    let carol = did(&w.carol);
    let repo = res("tools/github/repo");
    let none = RevocationSet::default();
    assert!(
        gate.decide(use_as(&carol, &repo, "read", &chain), &w.peers, &none, NOW)
            .is_allow()
    );
    // Same two first links (their signatures now known), a forged leaf.
    let forged = vec![chain[0].clone(), chain[1].clone(), forged_leaf(&w, &chain)];
    for request in [
        use_as(&carol, &repo, "read", &forged),
        Request::Delegate { chain: &forged },
    ] {
        match deny(gate.decide(request, &w.peers, &none, NOW)) {
            Denial::InvalidChain(mesh_delegation::ChainError::Invalid { link, source }) => {
                assert_eq!(link.index, 2);
                assert!(
                    matches!(source, mesh_iatp::envelope::EnvelopeError::BadSignature { ref signer } if *signer == did(&w.bob)),
                    "{source:?}"
                );
            }
            other => panic!("expected a bad signature at link 2, got {other:?}"),
        }
    }
    // A known link changed by one byte is a different link, checked anew.
    let mut tampered = chain.clone();
    let last = tampered[1].0.len() - 1;
    tampered[1].0[last] ^= 1;
    assert!(matches!(
        deny(gate.decide(use_as(&carol, &repo, "read", &tampered), &w.peers, &none, NOW)),
        Denial::InvalidChain(mesh_delegation::ChainError::Invalid { link, .. }) if link.index == 1
    ));
}

#[test]
fn a_link_noted_as_signed_here_skips_only_its_own_signature_check() {
    let w = World::new();
    let mut gate = w.gate();
    let chain = chain3(&w);
    let carol = did(&w.carol);
    let repo = res("tools/github/repo");
    let none = RevocationSet::default();
    let forged = vec![chain[0].clone(), chain[1].clone(), forged_leaf(&w, &chain)];
    // What the owner vouches for is not checked again — which is why only
    // links the gate's owner signed itself may be noted.
    gate.signed_here(&forged[2]);
    assert!(
        gate.decide(use_as(&carol, &repo, "read", &forged), &w.peers, &none, NOW)
            .is_allow()
    );
    // Every other rule still holds for it: used past its window, denied.
    assert!(matches!(
        deny(gate.decide(
            use_as(&carol, &repo, "read", &forged),
            &w.peers,
            &none,
            NOW.plus_secs(2 * DAY)
        )),
        Denial::Expired { .. }
    ));
    // And the links before it are still verified: a forged parent fails.
    let mut g1 = chain[1].claimed().unwrap();
    g1.nonce = [7; 16];
    let bad_parent = SignedGrant(mesh_iatp::envelope::seal(&g1, w.carol.identity()).unwrap());
    let mut g2 = chain[2].claimed().unwrap();
    g2.parent = Some(bad_parent.hash());
    let leaf = g2.sign(w.bob.identity()).unwrap();
    gate.signed_here(&leaf);
    let chain = vec![chain[0].clone(), bad_parent, leaf];
    assert!(matches!(
        deny(gate.decide(use_as(&carol, &repo, "read", &chain), &w.peers, &none, NOW)),
        Denial::InvalidChain(mesh_delegation::ChainError::Invalid { link, .. }) if link.index == 1
    ));
}
