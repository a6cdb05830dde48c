//! PROTOCOL.md §11.1 states each gossip payload's keys in encoded order:
//! these tests hold the document to the encoder (deterministic CBOR puts
//! shorter keys first, then bytewise), so another implementation can build
//! the bytes from the document alone.

// Test code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_delegation::{Capability, Revocation, SpawnCertificate, TargetKind};
use mesh_iatp::cbor::to_canonical_vec;
use mesh_iatp::testing::identity;
use mesh_iatp::{Score, Timestamp};
use mesh_ledger::equivocation::EquivocationProof;
use mesh_trust::{ReportEntry, TrustReport};
use serde_bytes::ByteBuf;

/// Where each key's encoding (a text head, then the key) first appears in
/// `bytes`; the keys must appear, in this order.
fn assert_keys_in_order(bytes: &[u8], keys: &[&str]) {
    let mut last = 0;
    for key in keys {
        let mut encoded = vec![0x60 + u8::try_from(key.len()).unwrap()];
        encoded.extend_from_slice(key.as_bytes());
        let at = bytes
            .windows(encoded.len())
            .position(|w| w == encoded.as_slice())
            .unwrap_or_else(|| panic!("no key {key:?}"));
        assert!(at >= last, "{key:?} is not where PROTOCOL.md §11.1 puts it");
        last = at;
    }
}

#[test]
fn a_trust_report_and_its_entries_encode_as_documented() {
    let report = TrustReport {
        reporter: identity("reporter").did().clone(),
        epoch: 1,
        sequence: 2,
        issued: Timestamp(1_700_000_000),
        entries: vec![ReportEntry {
            subject: identity("subject").did().to_string(),
            score: Score::saturating(700),
            evidence: 12,
        }],
    };
    let bytes = to_canonical_vec(&report).unwrap();
    assert_keys_in_order(
        &bytes,
        &["epoch", "issued", "entries", "score", "subject", "evidence"],
    );
    // The entries come before the last two top-level keys.
    assert_keys_in_order(&bytes, &["evidence", "reporter", "sequence"]);
}

#[test]
fn a_revocation_encodes_as_documented() {
    let revocation = Revocation {
        revoker: identity("revoker").did().clone(),
        target: [7; 32],
        kind: TargetKind::SpawnCertificate,
        chain: vec![ByteBuf::from(vec![1, 2, 3])],
        reason: "gone".into(),
        issued: Timestamp(1_700_000_000),
    };
    let bytes = to_canonical_vec(&revocation).unwrap();
    assert_keys_in_order(
        &bytes,
        &["kind", "chain", "issued", "reason", "target", "revoker"],
    );
    assert_keys_in_order(&bytes, &["kind", "spawn-certificate"]);
}

#[test]
fn a_spawn_certificate_and_its_capabilities_encode_as_documented() {
    let certificate = SpawnCertificate {
        parent: identity("parent").did().clone(),
        child: identity("child").did().clone(),
        capabilities: vec![Capability::parse("tools/github/*:read").unwrap()],
        trust_ceiling: Score::saturating(600),
        not_before: Timestamp(1_700_000_000),
        expires: Timestamp(1_700_003_600),
        spawn_depth: 1,
        parent_certificate: None,
        nonce: [9; 16],
    };
    let bytes = to_canonical_vec(&certificate).unwrap();
    assert_keys_in_order(
        &bytes,
        &[
            "child",
            "nonce",
            "parent",
            "expires",
            "not_before",
            "spawn_depth",
            "capabilities",
            "actions",
            "resource",
            "trust_ceiling",
            "parent_certificate",
        ],
    );
}

#[test]
fn equivocation_proofs_are_one_map_tagged_by_kind() {
    let same = EquivocationProof::SameSize {
        first: b"note one".to_vec(),
        second: b"note two".to_vec(),
    };
    let bytes = to_canonical_vec(&same).unwrap();
    assert_keys_in_order(&bytes, &["kind", "same_size", "first", "second"]);
    assert_eq!(bytes[0], 0xa3, "one map of three keys");

    let divergent = EquivocationProof::DivergentLeaf {
        first: b"note one".to_vec(),
        second: b"note two".to_vec(),
        index: 3,
        first_leaf: [1; 32],
        first_proof: vec![serde_bytes::ByteArray::new([2; 32])],
        second_leaf: [3; 32],
        second_proof: vec![serde_bytes::ByteArray::new([4; 32])],
    };
    let bytes = to_canonical_vec(&divergent).unwrap();
    assert_eq!(bytes[0], 0xa8, "one map of eight keys");
    assert_keys_in_order(
        &bytes,
        &[
            "kind",
            "divergent_leaf",
            "first",
            "index",
            "second",
            "first_leaf",
            "first_proof",
            "second_leaf",
            "second_proof",
        ],
    );
}
