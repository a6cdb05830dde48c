//! The node's own log: the co-signed records of every action it took part
//! in, in its data directory (SQLite by default), checkpointed and signed
//! with the agent's key. The log's origin is the agent's DID, so anyone can
//! find the key that must sign its checkpoints from its name.

use std::path::Path;

use mesh_iatp::{Did, Identity};
use mesh_ledger::checkpoint::Checkpoint;
use mesh_ledger::merkle::Hash;
use mesh_ledger::note::Note;
use mesh_ledger::record::CoSignedRecord;
use mesh_ledger::store::{Log, Store, StoreError};

/// The SQLite file inside a node's data directory.
pub const LEDGER_FILE: &str = "ledger.sqlite";

/// The node's store and log.
pub struct NodeLedger {
    store: Store,
    log: Log,
    /// Size of the last signed checkpoint.
    checkpointed: u64,
}

impl NodeLedger {
    /// Open (or create) the log of `did` in `data_dir`.
    pub async fn open(data_dir: &Path, did: &Did) -> Result<NodeLedger, StoreError> {
        let path = data_dir.join(LEDGER_FILE);
        let store = Store::open(&path.to_string_lossy()).await?;
        Self::open_in(store, did).await
    }

    /// Use `store` (any location `Store::open` takes) for the log of `did`.
    pub async fn open_in(store: Store, did: &Did) -> Result<NodeLedger, StoreError> {
        let origin = did.as_str();
        let log = if store.origins().await?.iter().any(|o| o == origin) {
            store.log(origin).await?
        } else {
            store.create_log(origin, did).await?
        };
        let checkpointed = match log.latest_checkpoint().await? {
            Some(note) => Note::parse(&note)
                .ok()
                .and_then(|n| Checkpoint::parse_body(&n.text).ok())
                .map_or(0, |c| c.size),
            None => 0,
        };
        Ok(NodeLedger {
            store,
            log,
            checkpointed,
        })
    }

    /// The store (a cheap handle to the same database).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Append one record; its index.
    pub async fn append(&mut self, record: &CoSignedRecord) -> Result<u64, StoreError> {
        let index = self.log.size();
        self.log.append(std::slice::from_ref(record)).await?;
        Ok(index)
    }

    /// Sign and store a checkpoint of the current size if it grew since the
    /// last one (or `force`); the note.
    pub async fn checkpoint(
        &mut self,
        key: &Identity,
        force: bool,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let size = self.log.size();
        if size == self.checkpointed && !force {
            return Ok(None);
        }
        let note = Checkpoint {
            origin: self.log.origin().to_string(),
            size,
            root: self.log.root(),
        }
        .sign(key)
        .map_err(|e| StoreError::Checkpoint(e.to_string()))?
        .to_bytes();
        self.log.add_checkpoint(&note).await?;
        self.checkpointed = size;
        Ok(Some(note))
    }

    /// Add a witness's cosignature line to the stored checkpoint it signs:
    /// `cosigned` must carry the same text as a note this log stored.
    pub async fn add_cosignature(&mut self, cosigned: &Note) -> Result<(), StoreError> {
        let cp = Checkpoint::parse_body(&cosigned.text)
            .map_err(|e| StoreError::Checkpoint(e.to_string()))?;
        let current = self.stored_note(cp.size).await?.ok_or_else(|| {
            StoreError::Checkpoint(format!("no checkpoint of size {} is stored", cp.size))
        })?;
        let mut merged =
            Note::parse(&current).map_err(|e| StoreError::Checkpoint(e.to_string()))?;
        if merged.text != cosigned.text {
            return Err(StoreError::Checkpoint(
                "the cosigned note's text is not this log's checkpoint".into(),
            ));
        }
        for line in &cosigned.signatures {
            if !merged.signatures.contains(line) {
                merged.signatures.push(line.clone());
            }
        }
        self.log.add_checkpoint(&merged.to_bytes()).await?;
        Ok(())
    }

    async fn stored_note(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        // The latest is the usual case; older sizes are looked up by scan.
        if let Some(note) = self.log.latest_checkpoint().await?
            && Note::parse(&note)
                .ok()
                .and_then(|n| Checkpoint::parse_body(&n.text).ok())
                .is_some_and(|c| c.size == size)
        {
            return Ok(Some(note));
        }
        Ok(None)
    }

    /// Inclusion proof of record `index` in the tree of `size`.
    pub async fn prove(
        &self,
        index: u64,
        size: u64,
    ) -> Result<(CoSignedRecord, Vec<Hash>, Hash), StoreError> {
        let record = self.log.record(index).await?;
        let proof = self.log.inclusion_proof(index, size).await?;
        let root = self.log.root_at(size).await?;
        Ok((record, proof, root))
    }

    /// The witness state this node holds for the logs it follows.
    pub async fn witnessed(&self) -> Result<Vec<(String, u64, Hash)>, StoreError> {
        self.store.witnessed().await
    }

    /// Persist that this node cosigned `(size, root)` of `origin`.
    pub async fn save_witnessed(
        &self,
        origin: &str,
        size: u64,
        root: &Hash,
    ) -> Result<(), StoreError> {
        self.store.save_witnessed(origin, size, root).await
    }

    /// Close the store (everything appended is on disk).
    pub async fn close(&self) {
        self.store.close().await;
    }
}
