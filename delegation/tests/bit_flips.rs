//! Every signed object of delegation refuses every single-bit change of
//! its bytes, whether its decoder, the canonical-encoding check or the
//! signature catches it (issue 14).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use mesh_delegation::{
    Revocation, SignedGrant, SignedSpawnCertificate, TargetKind, verify_revocation,
};
use mesh_iatp::testing::every_bit_flip;
use serde_bytes::ByteBuf;

#[test]
fn every_bit_of_a_grant_is_covered() {
    let w = World::new();
    let grant = &chain3(&w)[1];
    assert!(grant.open().is_ok());
    for (i, mask, bytes) in every_bit_flip(&grant.0) {
        assert!(SignedGrant(bytes).open().is_err(), "byte {i} ^ {mask:#04x}");
    }
}

#[test]
fn every_bit_of_a_spawn_certificate_is_covered() {
    let w = World::new();
    let cert = certificate(w.alice.identity(), &did(&w.bob), None, CertSpec::default());
    assert!(cert.open().is_ok());
    for (i, mask, bytes) in every_bit_flip(&cert.0) {
        assert!(
            SignedSpawnCertificate(bytes).open().is_err(),
            "byte {i} ^ {mask:#04x}"
        );
    }
}

#[test]
fn every_bit_of_a_revocation_is_covered() {
    let w = World::new();
    let chain = chain3(&w);
    let bob = w.bob.identity();
    let signed = Revocation {
        revoker: bob.did().clone(),
        target: chain[2].hash(),
        kind: TargetKind::Grant,
        chain: chain.iter().map(|g| ByteBuf::from(g.0.clone())).collect(),
        reason: "test".into(),
        issued: NOW,
    }
    .sign(bob)
    .unwrap();
    assert!(verify_revocation(&signed).is_ok());
    for (i, mask, bytes) in every_bit_flip(&signed) {
        assert!(verify_revocation(&bytes).is_err(), "byte {i} ^ {mask:#04x}");
    }
}
