//! [`MemoryLog`]: a log held in memory, behind the same [`LogStore`] trait
//! as the database. Nothing survives the process; everything else is the
//! same — verified checkpoints, RFC 9162 proofs, all-or-nothing appends.
//! The deterministic mesh harness keeps each simulated agent's log in one,
//! and `mesh-ledger` reads an export into them.

use std::collections::BTreeMap;
use std::future::ready;

use mesh_iatp::Did;

use crate::checkpoint::Checkpoint;
use crate::log_store::{
    LogStore, StoreError, StoreFuture, consistency_within, inclusion_within, open_note,
    root_mismatch, within,
};
use crate::merkle::{self, CompactRange, Hash, MemoryTree, infallible};
use crate::record::CoSignedRecord;

/// One log in memory.
#[derive(Debug, Clone)]
pub struct MemoryLog {
    origin: String,
    key: Did,
    records: Vec<CoSignedRecord>,
    tree: MemoryTree,
    range: CompactRange,
    /// Checkpoint notes by size.
    checkpoints: BTreeMap<u64, Vec<u8>>,
}

impl MemoryLog {
    /// An empty log named `origin` with log key `key`.
    pub fn new(origin: impl Into<String>, key: Did) -> Self {
        MemoryLog {
            origin: origin.into(),
            key,
            records: Vec::new(),
            tree: MemoryTree::new(),
            range: CompactRange::new(),
            checkpoints: BTreeMap::new(),
        }
    }

    /// Append records (in memory an append cannot fail); returns the size.
    pub fn push(&mut self, records: impl IntoIterator<Item = CoSignedRecord>) -> u64 {
        for record in records {
            let leaf = record.leaf_hash();
            self.tree.append(leaf);
            self.range.append(leaf);
            self.records.push(record);
        }
        self.range.size()
    }

    /// Every record, in order.
    pub fn records(&self) -> &[CoSignedRecord] {
        &self.records
    }

    /// Store a checkpoint note after checking it like
    /// [`LogStore::add_checkpoint`] does, without waiting.
    pub fn put_checkpoint(&mut self, note: &[u8]) -> Result<Checkpoint, StoreError> {
        let cp = open_note(&self.origin, &self.key, note)?;
        if self.root_of(cp.size)? != cp.root {
            return Err(root_mismatch(cp.size));
        }
        self.checkpoints.insert(cp.size, note.to_vec());
        Ok(cp)
    }

    /// The checkpoint note of the largest size, if any.
    pub fn latest_note(&self) -> Option<&[u8]> {
        self.checkpoints.values().next_back().map(Vec::as_slice)
    }

    /// Every checkpoint note, by size.
    pub fn checkpoint_notes(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.checkpoints.iter().map(|(s, n)| (*s, n.as_slice()))
    }

    /// The root at `size` (at most the log's size).
    pub fn root_of(&self, size: u64) -> Result<Hash, StoreError> {
        within("size", size, self.size())?;
        Ok(infallible(merkle::root(&self.tree, size)))
    }

    /// The record at `index` with its inclusion proof in the tree of `size`.
    pub fn prove_inclusion(
        &self,
        index: u64,
        size: u64,
    ) -> Result<(&CoSignedRecord, Vec<Hash>), StoreError> {
        inclusion_within(index, size, self.size())?;
        let proof = infallible(merkle::inclusion_proof(&self.tree, index, size));
        Ok((&self.records[index as usize], proof))
    }

    /// The consistency proof from `old` to `new`.
    pub fn prove_consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        consistency_within(old, new, self.size())?;
        Ok(infallible(merkle::consistency_proof(&self.tree, old, new)))
    }
}

impl LogStore for MemoryLog {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn key(&self) -> &Did {
        &self.key
    }

    fn range(&self) -> &CompactRange {
        &self.range
    }

    fn append<'a>(&'a mut self, records: &'a [CoSignedRecord]) -> StoreFuture<'a, u64> {
        Box::pin(ready(Ok(self.push(records.iter().cloned()))))
    }

    fn record(&self, index: u64) -> StoreFuture<'_, CoSignedRecord> {
        let found = within("index", index.saturating_add(1), self.size())
            .map(|()| self.records[index as usize].clone());
        Box::pin(ready(found))
    }

    fn leaf_hashes(&self, from: u64) -> StoreFuture<'_, Vec<Hash>> {
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        let hashes = self
            .records
            .get(from..)
            .unwrap_or_default()
            .iter()
            .map(CoSignedRecord::leaf_hash)
            .collect();
        Box::pin(ready(Ok(hashes)))
    }

    fn root_at(&self, size: u64) -> StoreFuture<'_, Hash> {
        Box::pin(ready(self.root_of(size)))
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> StoreFuture<'_, Vec<Hash>> {
        Box::pin(ready(self.prove_inclusion(index, size).map(|(_, p)| p)))
    }

    fn consistency_proof(&self, old: u64, new: u64) -> StoreFuture<'_, Vec<Hash>> {
        Box::pin(ready(self.prove_consistency(old, new)))
    }

    fn add_checkpoint<'a>(&'a mut self, note: &'a [u8]) -> StoreFuture<'a, Checkpoint> {
        Box::pin(ready(self.put_checkpoint(note)))
    }

    fn latest_checkpoint(&self) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(ready(Ok(self.latest_note().map(<[u8]>::to_vec))))
    }
}
