//! Equivocation proofs: two checkpoints signed by one log that cannot both
//! be honest, packaged so anyone can check them with only the log's key.
//!
//! - **Same size, different roots**: two signed checkpoints suffice.
//! - **Divergent leaves**: for two sizes, the log's own inclusion proofs
//!   show different leaves at the same index under its two signed roots.
//!
//! Encoded as deterministic CBOR so it can travel as trust evidence
//! (`Proof { kind: "ledger/equivocation", bytes }`).

use serde::{Deserialize, Serialize};

use mesh_iatp::cbor::{self, CborError};

use crate::checkpoint::{Checkpoint, CheckpointError, open_checkpoint};
use crate::merkle::{Hash, ProofError, verify_inclusion};
use crate::note::NoteVerifier;

/// The proof-kind name used when this travels as trust evidence.
pub const PROOF_KIND: &str = "ledger/equivocation";
/// Largest encoded proof.
pub const MAX_PROOF_BYTES: usize = 64 * 1024;

/// Why an equivocation proof is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EquivocationError {
    /// Not the encoded form.
    #[error("malformed equivocation proof: {0}")]
    Malformed(#[from] CborError),
    /// A checkpoint fails to open under the log's key.
    #[error("checkpoint {which}: {source}")]
    Checkpoint {
        /// 1 or 2.
        which: u8,
        /// Why.
        source: CheckpointError,
    },
    /// The two checkpoints do not conflict.
    #[error("the checkpoints do not conflict: {0}")]
    NoConflict(&'static str),
    /// An inclusion proof does not verify.
    #[error("inclusion proof {which} does not verify: {source}")]
    Inclusion {
        /// 1 or 2.
        which: u8,
        /// Why.
        source: ProofError,
    },
}

/// A self-contained proof that a log signed two incompatible histories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum EquivocationProof {
    /// Two signed checkpoints of one size with different roots.
    SameSize {
        /// First signed checkpoint note.
        #[serde(with = "serde_bytes")]
        first: Vec<u8>,
        /// Second signed checkpoint note.
        #[serde(with = "serde_bytes")]
        second: Vec<u8>,
    },
    /// Different leaves at one index under two signed roots.
    DivergentLeaf {
        /// First signed checkpoint note.
        #[serde(with = "serde_bytes")]
        first: Vec<u8>,
        /// Second signed checkpoint note.
        #[serde(with = "serde_bytes")]
        second: Vec<u8>,
        /// The leaf index.
        index: u64,
        /// Leaf hash under the first checkpoint.
        #[serde(with = "serde_bytes")]
        first_leaf: Hash,
        /// Its inclusion proof.
        first_proof: Vec<serde_bytes::ByteArray<32>>,
        /// Leaf hash under the second checkpoint.
        #[serde(with = "serde_bytes")]
        second_leaf: Hash,
        /// Its inclusion proof.
        second_proof: Vec<serde_bytes::ByteArray<32>>,
    },
}

fn open(which: u8, note: &[u8], log: &NoteVerifier) -> Result<Checkpoint, EquivocationError> {
    open_checkpoint(note, log)
        .map(|(cp, _)| cp)
        .map_err(|source| EquivocationError::Checkpoint { which, source })
}

fn hashes(v: &[serde_bytes::ByteArray<32>]) -> Vec<Hash> {
    v.iter().map(|b| b.into_array()).collect()
}

impl EquivocationProof {
    /// Build a same-size proof, checking it holds.
    pub fn same_size(
        first: &[u8],
        second: &[u8],
        log: &NoteVerifier,
    ) -> Result<Self, EquivocationError> {
        let p = EquivocationProof::SameSize {
            first: first.to_vec(),
            second: second.to_vec(),
        };
        p.verify(log)?;
        Ok(p)
    }

    /// Check the proof under the log's key; returns the log's origin.
    pub fn verify(&self, log: &NoteVerifier) -> Result<String, EquivocationError> {
        match self {
            EquivocationProof::SameSize { first, second } => {
                let (a, b) = (open(1, first, log)?, open(2, second, log)?);
                if a.size != b.size {
                    return Err(EquivocationError::NoConflict("sizes differ"));
                }
                if a.root == b.root {
                    return Err(EquivocationError::NoConflict("roots are equal"));
                }
                Ok(a.origin)
            }
            EquivocationProof::DivergentLeaf {
                first,
                second,
                index,
                first_leaf,
                first_proof,
                second_leaf,
                second_proof,
            } => {
                let (a, b) = (open(1, first, log)?, open(2, second, log)?);
                if first_leaf == second_leaf {
                    return Err(EquivocationError::NoConflict("the leaves are equal"));
                }
                verify_inclusion(*index, a.size, first_leaf, &hashes(first_proof), &a.root)
                    .map_err(|source| EquivocationError::Inclusion { which: 1, source })?;
                verify_inclusion(*index, b.size, second_leaf, &hashes(second_proof), &b.root)
                    .map_err(|source| EquivocationError::Inclusion { which: 2, source })?;
                Ok(a.origin)
            }
        }
    }

    /// Deterministic CBOR.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EquivocationError> {
        Ok(cbor::to_canonical_vec(self)?)
    }

    /// Decode (then [`EquivocationProof::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EquivocationError> {
        Ok(cbor::from_canonical_slice(bytes, MAX_PROOF_BYTES)?)
    }
}
