//! One simulated agent's durable storage: its log (a mesh-ledger
//! [`MemoryLog`], the same `LogStore` contract a node's database keeps),
//! its witness state and its durable facts. It survives the agent's
//! restarts, like a node's database survives its process.

use std::collections::{BTreeMap, HashMap};

use mesh_iatp::Did;
use mesh_ledger::merkle::{CompactRange, Hash};
use mesh_ledger::record::CoSignedRecord;
use mesh_ledger::{LogStore, MemoryLog};
use serde_bytes::ByteBuf;

use crate::durable::Fact;
use crate::io::ProofRequest;
use crate::wire::ActionResponse;

/// What a simulated agent keeps across restarts.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    log: MemoryLog,
    witnessed: BTreeMap<String, (u64, Hash)>,
    /// Facts with a key, each with when it was stored; a later one of
    /// the same kind and key replaces it (a thousand agents each replace
    /// one per report they accept, so this is one hash insert).
    keyed: HashMap<(&'static str, Vec<u8>), (u64, Fact)>,
    /// Facts without a key, in the order stored.
    unkeyed: Vec<(u64, Fact)>,
    next_fact: u64,
}

impl MemoryStore {
    /// The empty store of the agent `did` (its log's origin and key).
    pub fn new(did: &Did) -> Self {
        MemoryStore {
            log: MemoryLog::new(did.as_str(), did.clone()),
            witnessed: BTreeMap::new(),
            keyed: HashMap::new(),
            unkeyed: Vec::new(),
            next_fact: 0,
        }
    }

    /// Append `record` at `index` (the agent emits them in order).
    pub fn append(&mut self, index: u64, record: CoSignedRecord) -> Result<(), String> {
        if index != self.log.size() {
            return Err(format!(
                "append at {index}, but the log has {} records",
                self.log.size()
            ));
        }
        self.log.push([record]);
        Ok(())
    }

    /// The log.
    pub fn log(&self) -> &MemoryLog {
        &self.log
    }

    /// Records.
    pub fn records(&self) -> &[CoSignedRecord] {
        self.log.records()
    }

    /// The log's right edge (what an agent restarts from).
    pub fn range(&self) -> &CompactRange {
        self.log.range()
    }

    /// The latest checkpoint note.
    pub fn checkpoint(&self) -> Option<&[u8]> {
        self.log.latest_note()
    }

    /// Store a checkpoint note (checked like a database checks it).
    pub fn store_checkpoint(&mut self, note: &[u8]) -> Result<(), String> {
        self.log
            .put_checkpoint(note)
            .map(|_| ())
            .map_err(|e| e.to_string())
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
        if key.is_empty() {
            self.unkeyed.push((self.next_fact, fact));
        } else {
            self.keyed
                .insert((fact.kind(), key), (self.next_fact, fact));
        }
    }

    /// Delete the stored fact of `kind` and `key`.
    pub fn forget(&mut self, kind: &'static str, key: &[u8]) {
        self.keyed.remove(&(kind, key.to_vec()));
    }

    /// The durable facts, in the order stored.
    pub fn facts(&self) -> Vec<Fact> {
        let mut all: Vec<&(u64, Fact)> = self.keyed.values().chain(&self.unkeyed).collect();
        all.sort_unstable_by_key(|(at, _)| *at);
        all.into_iter().map(|(_, f)| f.clone()).collect()
    }

    /// Leaf hashes of the latest `n` records.
    pub fn recent_leaves(&self, n: usize) -> Vec<Hash> {
        let records = self.log.records();
        let from = records.len().saturating_sub(n);
        records[from..].iter().map(|r| r.leaf_hash()).collect()
    }

    /// Answer a proof request the agent accepted.
    pub fn prove(&self, request: ProofRequest) -> ActionResponse {
        let bytes = |hashes: Vec<Hash>| {
            hashes
                .into_iter()
                .map(|h| ByteBuf::from(h.to_vec()))
                .collect()
        };
        let answer = match request {
            ProofRequest::Consistency { old, new } => self
                .log
                .prove_consistency(old, new)
                .map(|p| ActionResponse::Proof { hashes: bytes(p) }),
            ProofRequest::Inclusion { index, size } => {
                self.log
                    .prove_inclusion(index, size)
                    .map(|(record, p)| ActionResponse::Included {
                        record: ByteBuf::from(record.bytes().to_vec()),
                        hashes: bytes(p),
                    })
            }
        };
        answer.unwrap_or_else(|_| {
            ActionResponse::refused(&crate::ActionRefusal::BadRange {
                need: "a range within the stored log",
                size: self.log.size(),
            })
        })
    }
}
