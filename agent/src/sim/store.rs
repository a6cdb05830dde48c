//! One simulated agent's durable storage: its log (records and tree), its
//! latest checkpoint note and its witness state. It survives the agent's
//! restarts, like a node's database survives its process.

use std::collections::BTreeMap;

use mesh_ledger::merkle::{self, CompactRange, Hash, MemoryTree, infallible};
use mesh_ledger::record::CoSignedRecord;
use serde_bytes::ByteBuf;

use crate::durable::Fact;
use crate::io::ProofRequest;
use crate::wire::ActionResponse;

/// What a simulated agent keeps across restarts.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    records: Vec<CoSignedRecord>,
    tree: MemoryTree,
    range: CompactRange,
    checkpoint: Option<Vec<u8>>,
    witnessed: BTreeMap<String, (u64, Hash)>,
    facts: BTreeMap<u64, Fact>,
    keyed: BTreeMap<(&'static str, Vec<u8>), u64>,
    next_fact: u64,
}

impl MemoryStore {
    /// Append `record` at `index` (the agent emits them in order).
    pub fn append(&mut self, index: u64, record: CoSignedRecord) -> Result<(), String> {
        if index != self.records.len() as u64 {
            return Err(format!(
                "append at {index}, but the log has {} records",
                self.records.len()
            ));
        }
        self.tree.append(record.leaf_hash());
        self.range.append(record.leaf_hash());
        self.records.push(record);
        Ok(())
    }

    /// Records.
    pub fn records(&self) -> &[CoSignedRecord] {
        &self.records
    }

    /// The log's right edge (what an agent restarts from).
    pub fn range(&self) -> &CompactRange {
        &self.range
    }

    /// The latest checkpoint note.
    pub fn checkpoint(&self) -> Option<&[u8]> {
        self.checkpoint.as_deref()
    }

    /// Store a checkpoint note.
    pub fn store_checkpoint(&mut self, note: Vec<u8>) {
        self.checkpoint = Some(note);
    }

    /// Persist witness state (sizes only grow).
    pub fn save_witnessed(&mut self, origin: String, size: u64, root: Hash) {
        let entry = self.witnessed.entry(origin).or_insert((size, root));
        if size >= entry.0 {
            *entry = (size, root);
        }
    }

    /// Witness state, for a restart.
    pub fn witnessed(&self) -> Vec<(String, u64, Hash)> {
        self.witnessed
            .iter()
            .map(|(o, (s, r))| (o.clone(), *s, *r))
            .collect()
    }

    /// Store a durable fact: it replaces the one of its kind and key.
    pub fn persist(&mut self, fact: Fact) {
        self.next_fact += 1;
        let key = fact.key();
        if !key.is_empty()
            && let Some(old) = self.keyed.insert((fact.kind(), key), self.next_fact)
        {
            self.facts.remove(&old);
        }
        self.facts.insert(self.next_fact, fact);
    }

    /// The durable facts, in the order stored.
    pub fn facts(&self) -> Vec<Fact> {
        self.facts.values().cloned().collect()
    }

    /// Leaf hashes of the latest `n` records.
    pub fn recent_leaves(&self, n: usize) -> Vec<Hash> {
        let from = self.records.len().saturating_sub(n);
        self.records[from..].iter().map(|r| r.leaf_hash()).collect()
    }

    /// Answer a proof request the agent accepted.
    pub fn prove(&self, request: ProofRequest) -> ActionResponse {
        let size = self.records.len() as u64;
        let bytes = |hashes: Vec<Hash>| {
            hashes
                .into_iter()
                .map(|h| ByteBuf::from(h.to_vec()))
                .collect()
        };
        match request {
            ProofRequest::Consistency { old, new } if old <= new && new <= size => {
                ActionResponse::Proof {
                    hashes: bytes(infallible(merkle::consistency_proof(&self.tree, old, new))),
                }
            }
            ProofRequest::Inclusion { index, size: at } if index < at && at <= size => {
                ActionResponse::Included {
                    record: ByteBuf::from(self.records[index as usize].bytes().to_vec()),
                    hashes: bytes(infallible(merkle::inclusion_proof(&self.tree, index, at))),
                }
            }
            _ => ActionResponse::refused(&crate::ActionRefusal::BadRange {
                need: "a range within the stored log",
                size,
            }),
        }
    }
}
