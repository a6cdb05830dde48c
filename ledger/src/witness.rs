//! A witness, as C2SP `tlog-witness` describes it: it cosigns a log's
//! checkpoint only after checking that the log grew consistently from the
//! last checkpoint it cosigned.
//!
//! For each `add-checkpoint(old_size, consistency proof, signed checkpoint)`:
//! the log must be known; its signature must verify; `old_size` must not
//! exceed the new size and must equal the size last cosigned (0 at first),
//! else the caller is told the size the witness holds; at equal sizes the
//! roots must be equal (else the log equivocated); the consistency proof
//! from the held state to the new one must verify. Only then is the new
//! state stored — through [`WitnessStore::compare_and_swap`], so two
//! concurrent requests cannot both advance from the same state — and a
//! timestamped `cosignature/v1` returned.

use std::collections::{BTreeMap, HashMap};

use mesh_iatp::{Identity, Timestamp};

use crate::checkpoint::{self, Checkpoint, CheckpointError, cosign};
use crate::merkle::{Hash, ProofError, empty_root, verify_consistency};
use crate::note::{NoteVerifier, SignatureLine};

/// Where a witness keeps the last cosigned `(size, root)` per log.
pub trait WitnessStore {
    /// Why the store failed.
    type Error: std::fmt::Display;
    /// The held state for `origin`, if any.
    fn get(&self, origin: &str) -> Result<Option<(u64, Hash)>, Self::Error>;
    /// Replace `expected` by `new` atomically; `Ok(false)` if the held state
    /// was no longer `expected`.
    fn compare_and_swap(
        &mut self,
        origin: &str,
        expected: Option<(u64, Hash)>,
        new: (u64, Hash),
    ) -> Result<bool, Self::Error>;
}

/// An in-memory store.
#[derive(Debug, Clone, Default)]
pub struct MemoryWitnessStore(BTreeMap<String, (u64, Hash)>);

impl MemoryWitnessStore {
    /// Start from held states (e.g. loaded from `Store::witnessed`).
    pub fn from_held(held: impl IntoIterator<Item = (String, u64, Hash)>) -> Self {
        MemoryWitnessStore(held.into_iter().map(|(o, s, r)| (o, (s, r))).collect())
    }
}

impl WitnessStore for MemoryWitnessStore {
    type Error = std::convert::Infallible;
    fn get(&self, origin: &str) -> Result<Option<(u64, Hash)>, Self::Error> {
        Ok(self.0.get(origin).copied())
    }
    fn compare_and_swap(
        &mut self,
        origin: &str,
        expected: Option<(u64, Hash)>,
        new: (u64, Hash),
    ) -> Result<bool, Self::Error> {
        if self.0.get(origin).copied() != expected {
            return Ok(false);
        }
        self.0.insert(origin.into(), new);
        Ok(true)
    }
}

/// Why a witness refuses to cosign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// The checkpoint does not parse.
    #[error("bad checkpoint: {0}")]
    Checkpoint(CheckpointError),
    /// The origin is not a log this witness follows.
    #[error("unknown log {0:?}")]
    UnknownLog(String),
    /// The log's signature does not verify.
    #[error("log signature does not verify: {0}")]
    BadLogSignature(CheckpointError),
    /// `old_size` is larger than the checkpoint's size.
    #[error("old size {old} is larger than the checkpoint size {new}")]
    OldSizeAfterNew {
        /// Claimed old size.
        old: u64,
        /// Checkpoint size.
        new: u64,
    },
    /// `old_size` is not the size this witness last cosigned.
    #[error("old size {claimed} is not the size last cosigned, {held}")]
    StateMismatch {
        /// What the caller claimed.
        claimed: u64,
        /// What the witness holds (send this back to the log).
        held: u64,
    },
    /// Same size, different root: the log equivocated.
    #[error("checkpoint at size {size} has a different root than the one cosigned")]
    RootMismatchAtSameSize {
        /// The size.
        size: u64,
    },
    /// The consistency proof does not verify.
    #[error("consistency proof from {old} to {new} does not verify: {reason}")]
    InconsistentProof {
        /// From.
        old: u64,
        /// To.
        new: u64,
        /// Why.
        reason: ProofError,
    },
    /// Another request advanced the state first; retry with the new size.
    #[error("state changed concurrently; retry")]
    Conflict,
    /// The store failed.
    #[error("witness store: {0}")]
    Store(String),
}

/// A witness with its key and the logs it follows.
pub struct Witness<S: WitnessStore> {
    name: String,
    key: Identity,
    logs: HashMap<String, NoteVerifier>,
    store: S,
}

impl<S: WitnessStore> Witness<S> {
    /// A witness named `name` (its cosignature key name).
    pub fn new(name: &str, key: Identity, store: S) -> Self {
        Witness {
            name: name.into(),
            key,
            logs: HashMap::new(),
            store,
        }
    }

    /// Follow a log.
    pub fn follow(&mut self, log: NoteVerifier) {
        self.logs.insert(log.name.clone(), log);
    }

    /// The verifier for this witness's cosignatures.
    pub fn verifier(&self) -> Result<NoteVerifier, CheckpointError> {
        checkpoint::witness_verifier(&self.name, self.key.did().clone())
    }

    /// The held `(size, root)` for a log.
    pub fn held(&self, origin: &str) -> Result<Option<(u64, Hash)>, WitnessError> {
        self.store
            .get(origin)
            .map_err(|e| WitnessError::Store(e.to_string()))
    }

    /// Check and cosign. Returns the cosignature line to append to the note.
    pub fn add_checkpoint(
        &mut self,
        old_size: u64,
        consistency: &[Hash],
        checkpoint_note: &[u8],
        now: Timestamp,
    ) -> Result<SignatureLine, WitnessError> {
        let note = crate::note::Note::parse(checkpoint_note)
            .map_err(|e| WitnessError::Checkpoint(CheckpointError::Note(e)))?;
        let claimed = Checkpoint::parse_body(&note.text).map_err(WitnessError::Checkpoint)?;
        let log = self
            .logs
            .get(&claimed.origin)
            .ok_or_else(|| WitnessError::UnknownLog(claimed.origin.clone()))?;
        let (cp, note) = checkpoint::open_checkpoint(checkpoint_note, log)
            .map_err(WitnessError::BadLogSignature)?;
        if old_size > cp.size {
            return Err(WitnessError::OldSizeAfterNew {
                old: old_size,
                new: cp.size,
            });
        }
        let held = self.held(&cp.origin)?;
        let (held_size, held_root) = held.unwrap_or((0, empty_root()));
        if old_size != held_size {
            return Err(WitnessError::StateMismatch {
                claimed: old_size,
                held: held_size,
            });
        }
        if old_size == cp.size {
            // (With nothing held, size 0 must carry the empty tree's root.)
            if cp.root != held_root {
                return Err(WitnessError::RootMismatchAtSameSize { size: cp.size });
            }
        } else {
            verify_consistency(old_size, cp.size, consistency, &held_root, &cp.root).map_err(
                |reason| WitnessError::InconsistentProof {
                    old: old_size,
                    new: cp.size,
                    reason,
                },
            )?;
        }
        let swapped = self
            .store
            .compare_and_swap(&cp.origin, held, (cp.size, cp.root))
            .map_err(|e| WitnessError::Store(e.to_string()))?;
        if !swapped {
            return Err(WitnessError::Conflict);
        }
        Ok(cosign(&note.text, &self.name, &self.key, now))
    }
}
