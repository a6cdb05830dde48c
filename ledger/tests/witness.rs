//! Witnessing and equivocation: every refusal has its own test, and
//! equivocation proofs verify with only the log's key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_iatp::testing::{every_bit_flip, identity};
use mesh_iatp::{Identity, Timestamp};
use mesh_ledger::checkpoint::{Checkpoint, log_verifier, open_checkpoint, verify_cosignature};
use mesh_ledger::equivocation::{EquivocationError, EquivocationProof};
use mesh_ledger::merkle::{
    Hash, MemoryTree, ProofError, consistency_proof, inclusion_proof, infallible, leaf_hash,
};
use mesh_ledger::note::{Note, NoteVerifier};
use mesh_ledger::witness::{MemoryWitnessStore, Witness, WitnessError, WitnessStore};

const ORIGIN: &str = "mesh.example/log/alice";
const NOW: Timestamp = Timestamp(1_767_225_600);

/// A log over leaves `0..n` (or with leaf `fork_at` replaced), and its key.
struct Log {
    key: Identity,
    tree: MemoryTree,
}

impl Log {
    fn new(n: u64, fork_at: Option<u64>) -> Self {
        let mut tree = MemoryTree::new();
        for i in 0..n {
            let data = if Some(i) == fork_at {
                b"forked".to_vec()
            } else {
                i.to_be_bytes().to_vec()
            };
            tree.append(leaf_hash(&data));
        }
        Log {
            key: identity("log alice"),
            tree,
        }
    }
    fn verifier(&self) -> NoteVerifier {
        log_verifier(ORIGIN, self.key.did().clone()).unwrap()
    }
    fn checkpoint(&self, size: u64) -> Vec<u8> {
        let root = infallible(mesh_ledger::merkle::root(&self.tree, size));
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
        }
        .sign(&self.key)
        .unwrap()
        .to_bytes()
    }
    fn proof(&self, old: u64, new: u64) -> Vec<Hash> {
        infallible(consistency_proof(&self.tree, old, new))
    }
}

fn witness(log: &Log) -> Witness<MemoryWitnessStore> {
    let mut w = Witness::new(
        "witness.example/bob",
        identity("witness bob"),
        MemoryWitnessStore::default(),
    );
    w.follow(log.verifier());
    w
}

#[test]
fn a_consistent_log_is_cosigned_step_by_step() {
    let log = Log::new(10, None);
    let mut w = witness(&log);
    let line = w.add_checkpoint(0, &[], &log.checkpoint(3), NOW).unwrap();
    let mut note = Note::parse(&log.checkpoint(3)).unwrap();
    note.signatures.push(line);
    assert_eq!(
        verify_cosignature(&note, &w.verifier().unwrap()).unwrap(),
        NOW
    );
    w.add_checkpoint(3, &log.proof(3, 7), &log.checkpoint(7), NOW)
        .unwrap();
    // The same checkpoint again is fine (equal size, equal root).
    w.add_checkpoint(7, &[], &log.checkpoint(7), NOW).unwrap();
    assert_eq!(w.held(ORIGIN).unwrap().map(|(s, _)| s), Some(7));
}

#[test]
fn unknown_logs_and_forged_checkpoints_are_refused() {
    let log = Log::new(5, None);
    let mut w = Witness::new("w", identity("witness bob"), MemoryWitnessStore::default());
    assert_eq!(
        w.add_checkpoint(0, &[], &log.checkpoint(3), NOW),
        Err(WitnessError::UnknownLog(ORIGIN.into()))
    );
    let mut w = witness(&log);
    let forged = Checkpoint {
        origin: ORIGIN.into(),
        size: 3,
        root: [9; 32],
    }
    .sign(&identity("mallory"))
    .unwrap();
    assert!(matches!(
        w.add_checkpoint(0, &[], &forged.to_bytes(), NOW),
        Err(WitnessError::BadLogSignature(_))
    ));
    assert!(matches!(
        w.add_checkpoint(0, &[], b"not a note", NOW),
        Err(WitnessError::Checkpoint(_))
    ));
}

#[test]
fn size_rules_are_enforced() {
    let log = Log::new(10, None);
    let mut w = witness(&log);
    w.add_checkpoint(0, &[], &log.checkpoint(5), NOW).unwrap();
    assert_eq!(
        w.add_checkpoint(6, &[], &log.checkpoint(5), NOW),
        Err(WitnessError::OldSizeAfterNew { old: 6, new: 5 })
    );
    // A stale view of the witness: told the size it holds.
    assert_eq!(
        w.add_checkpoint(3, &log.proof(3, 8), &log.checkpoint(8), NOW),
        Err(WitnessError::StateMismatch {
            claimed: 3,
            held: 5
        })
    );
    // Rolling back to an older checkpoint.
    assert_eq!(
        w.add_checkpoint(3, &[], &log.checkpoint(3), NOW),
        Err(WitnessError::StateMismatch {
            claimed: 3,
            held: 5
        })
    );
}

#[test]
fn inconsistent_growth_is_refused() {
    let honest = Log::new(10, None);
    let forked = Log::new(10, Some(2));
    let mut w = witness(&honest);
    w.add_checkpoint(0, &[], &honest.checkpoint(4), NOW)
        .unwrap();
    // The fork's checkpoint at 8 with the fork's own proof from 4: inconsistent with what was cosigned.
    assert_eq!(
        w.add_checkpoint(4, &forked.proof(4, 8), &forked.checkpoint(8), NOW),
        Err(WitnessError::InconsistentProof {
            old: 4,
            new: 8,
            reason: ProofError::RootMismatch
        })
    );
    // A truncated honest proof also fails.
    let mut p = honest.proof(4, 8);
    p.pop();
    assert!(matches!(
        w.add_checkpoint(4, &p, &honest.checkpoint(8), NOW),
        Err(WitnessError::InconsistentProof { .. })
    ));
    assert_eq!(
        w.held(ORIGIN).unwrap().map(|(s, _)| s),
        Some(4),
        "state unchanged after refusals"
    );
}

/// No single-bit change of a proof's bytes leaves a proof that verifies.
fn every_bit_is_covered(proof: &[u8], log: &NoteVerifier) {
    for (i, mask, changed) in every_bit_flip(proof) {
        let verifies = EquivocationProof::from_bytes(&changed).is_ok_and(|p| p.verify(log).is_ok());
        assert!(!verifies, "byte {i} ^ {mask:#04x}");
    }
}

#[test]
fn same_size_different_root_is_refused_and_becomes_a_proof() {
    let honest = Log::new(6, None);
    let forked = Log::new(6, Some(2));
    let mut w = witness(&honest);
    w.add_checkpoint(0, &[], &honest.checkpoint(6), NOW)
        .unwrap();
    assert_eq!(
        w.add_checkpoint(6, &[], &forked.checkpoint(6), NOW),
        Err(WitnessError::RootMismatchAtSameSize { size: 6 })
    );
    let proof = EquivocationProof::same_size(
        &honest.checkpoint(6),
        &forked.checkpoint(6),
        &honest.verifier(),
    )
    .unwrap();
    let bytes = proof.to_bytes().unwrap();
    let back = EquivocationProof::from_bytes(&bytes).unwrap();
    assert_eq!(back.verify(&honest.verifier()).unwrap(), ORIGIN);
    every_bit_is_covered(&bytes, &honest.verifier());
    // Not a proof: equal roots, different sizes, or another log's key.
    assert!(matches!(
        EquivocationProof::same_size(
            &honest.checkpoint(6),
            &honest.checkpoint(6),
            &honest.verifier()
        ),
        Err(EquivocationError::NoConflict(_))
    ));
    assert!(matches!(
        EquivocationProof::same_size(
            &honest.checkpoint(5),
            &forked.checkpoint(6),
            &honest.verifier()
        ),
        Err(EquivocationError::NoConflict(_))
    ));
    let other = log_verifier(ORIGIN, identity("someone").did().clone()).unwrap();
    assert!(matches!(
        back.verify(&other),
        Err(EquivocationError::Checkpoint { which: 1, .. })
    ));
}

#[test]
fn divergent_leaves_across_sizes_prove_equivocation() {
    let honest = Log::new(8, None);
    let forked = Log::new(5, Some(2));
    let arr = |v: Vec<Hash>| {
        v.into_iter()
            .map(serde_bytes::ByteArray::new)
            .collect::<Vec<_>>()
    };
    let proof = EquivocationProof::DivergentLeaf {
        first: honest.checkpoint(8),
        second: forked.checkpoint(5),
        index: 2,
        first_leaf: leaf_hash(&2u64.to_be_bytes()),
        first_proof: arr(infallible(inclusion_proof(&honest.tree, 2, 8))),
        second_leaf: leaf_hash(b"forked"),
        second_proof: arr(infallible(inclusion_proof(&forked.tree, 2, 5))),
    };
    assert_eq!(proof.verify(&honest.verifier()).unwrap(), ORIGIN);
    let bytes = proof.to_bytes().unwrap();
    assert_eq!(EquivocationProof::from_bytes(&bytes).unwrap(), proof);
    every_bit_is_covered(&bytes, &honest.verifier());
    // A made-up leaf does not verify.
    let EquivocationProof::DivergentLeaf {
        first,
        second,
        index,
        first_proof,
        second_leaf,
        second_proof,
        ..
    } = proof
    else {
        unreachable!()
    };
    let lie = EquivocationProof::DivergentLeaf {
        first,
        second,
        index,
        first_leaf: leaf_hash(b"made up"),
        first_proof,
        second_leaf,
        second_proof,
    };
    assert!(matches!(
        lie.verify(&honest.verifier()),
        Err(EquivocationError::Inclusion { which: 1, .. })
    ));
}

/// A store whose state moves under the witness (another request won).
struct RacingStore(MemoryWitnessStore);
impl WitnessStore for RacingStore {
    type Error = std::convert::Infallible;
    fn get(&self, origin: &str) -> Result<Option<(u64, Hash)>, Self::Error> {
        self.0.get(origin)
    }
    fn compare_and_swap(
        &mut self,
        _: &str,
        _: Option<(u64, Hash)>,
        _: (u64, Hash),
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }
}

#[test]
fn a_concurrent_update_is_a_conflict_not_a_cosignature() {
    let log = Log::new(4, None);
    let mut w = Witness::new(
        "w",
        identity("witness bob"),
        RacingStore(MemoryWitnessStore::default()),
    );
    w.follow(log.verifier());
    assert_eq!(
        w.add_checkpoint(0, &[], &log.checkpoint(4), NOW),
        Err(WitnessError::Conflict)
    );
}

#[test]
fn checkpoints_open_with_the_log_key() {
    let log = Log::new(3, None);
    let (cp, _) = open_checkpoint(&log.checkpoint(3), &log.verifier()).unwrap();
    assert_eq!(cp.size, 3);
    assert_eq!(cp.root, log.tree.root());
}
