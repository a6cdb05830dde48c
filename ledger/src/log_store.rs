//! One log's storage, whatever holds it: the [`LogStore`] trait.
//!
//! Two implementations ship: [`crate::store::Log`] (sqlx: a SQLite file by
//! default, or PostgreSQL; durable) and [`crate::memory::MemoryLog`] (a
//! process's memory; for tests, simulations and reading an export). Both
//! keep the same promises: an append is all or nothing and acknowledged
//! only once stored; proofs are RFC 9162's; a checkpoint is kept only if
//! its log signature verifies and its root is the log's root at its size.
//!
//! The trait is object safe (`Box<dyn LogStore>`): its asynchronous methods
//! return boxed futures, whose allocation is nothing next to a commit.

use std::future::Future;
use std::pin::Pin;

use mesh_iatp::Did;

use crate::checkpoint::Checkpoint;
use crate::merkle::{CompactRange, Hash, MissingNode};
use crate::record::CoSignedRecord;

/// What a [`LogStore`]'s asynchronous methods return.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// One append-only log of co-signed records with its tree and checkpoints.
pub trait LogStore: Send + Sync {
    /// The log's origin (its checkpoint key name).
    fn origin(&self) -> &str;

    /// The log's public key.
    fn key(&self) -> &Did;

    /// The log's right edge: enough to append and compute roots (what an
    /// agent that owns this log starts from).
    fn range(&self) -> &CompactRange;

    /// Records durably appended.
    fn size(&self) -> u64 {
        self.range().size()
    }

    /// The current root.
    fn root(&self) -> Hash {
        self.range().root()
    }

    /// Append co-signed records as one unit; returns the new size once they
    /// are stored. On error nothing was appended.
    fn append<'a>(&'a mut self, records: &'a [CoSignedRecord]) -> StoreFuture<'a, u64>;

    /// The record at `index`, signatures verified.
    fn record(&self, index: u64) -> StoreFuture<'_, CoSignedRecord>;

    /// The leaf hashes of records `from..size`, in order.
    fn leaf_hashes(&self, from: u64) -> StoreFuture<'_, Vec<Hash>>;

    /// The root at an earlier size.
    fn root_at(&self, size: u64) -> StoreFuture<'_, Hash>;

    /// RFC 9162 inclusion proof for `index` in the tree of `size` leaves.
    fn inclusion_proof(&self, index: u64, size: u64) -> StoreFuture<'_, Vec<Hash>>;

    /// RFC 9162 consistency proof from `old` to `new`.
    fn consistency_proof(&self, old: u64, new: u64) -> StoreFuture<'_, Vec<Hash>>;

    /// Store a signed checkpoint (its log signature must verify and its root
    /// must be this log's root at its size). Cosignature lines may follow;
    /// a later note of the same size replaces the earlier one.
    fn add_checkpoint<'a>(&'a mut self, note: &'a [u8]) -> StoreFuture<'a, Checkpoint>;

    /// The stored checkpoint note of the largest size, if any.
    fn latest_checkpoint(&self) -> StoreFuture<'_, Option<Vec<u8>>>;
}

/// Refuse a `value` above `limit` (sizes and indices asked of a log).
pub(crate) fn within(what: &'static str, value: u64, limit: u64) -> Result<(), StoreError> {
    if value > limit {
        return Err(StoreError::OutOfRange {
            what,
            value,
            size: limit,
        });
    }
    Ok(())
}

/// Refuse an inclusion proof request outside the log of `size` records.
pub(crate) fn inclusion_within(index: u64, at: u64, size: u64) -> Result<(), StoreError> {
    within("size", at, size)?;
    if index >= at {
        return Err(StoreError::OutOfRange {
            what: "index",
            value: index,
            size: at,
        });
    }
    Ok(())
}

/// Refuse a consistency proof request outside the log of `size` records.
pub(crate) fn consistency_within(old: u64, new: u64, size: u64) -> Result<(), StoreError> {
    within("size", new, size)?;
    within("old size", old, new)
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (the cause follows in the error chain).
    #[cfg(feature = "store")]
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[cfg(feature = "store")]
    #[error("migrating the database")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Nothing at that path, or not a mesh ledger.
    #[error("{0}")]
    NotALedger(String),
    /// No such log.
    #[error("no log {0:?} in this store")]
    UnknownLog(String),
    /// A log with this origin already exists.
    #[error("a log {0:?} already exists")]
    LogExists(String),
    /// Stored data is corrupt (run `verify` for the full report).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// Index or size beyond the log.
    #[error("{what} {value} is beyond the log size {size}")]
    OutOfRange {
        /// What was asked for.
        what: &'static str,
        /// The value.
        value: u64,
        /// The log's size.
        size: u64,
    },
    /// A checkpoint that does not fit this log.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

impl From<MissingNode> for StoreError {
    fn from(e: MissingNode) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// Open `note` as a checkpoint of the log `origin` with key `key` (the
/// first half of [`LogStore::add_checkpoint`]; the root check follows).
pub(crate) fn open_note(origin: &str, key: &Did, note: &[u8]) -> Result<Checkpoint, StoreError> {
    let verifier = crate::checkpoint::log_verifier(origin, key.clone())
        .map_err(|e| StoreError::Checkpoint(e.to_string()))?;
    let (cp, _) = crate::checkpoint::open_checkpoint(note, &verifier)
        .map_err(|e| StoreError::Checkpoint(e.to_string()))?;
    Ok(cp)
}

/// The error for a checkpoint whose root is not the log's at its size.
pub(crate) fn root_mismatch(size: u64) -> StoreError {
    StoreError::Checkpoint(format!("root at size {size} does not match the log"))
}
