//! The node's own log: the co-signed records of every action it took part
//! in, in its data directory (SQLite by default), checkpointed and signed
//! with the agent's key. The log's origin is the agent's DID, so anyone can
//! find the key that must sign its checkpoints from its name.

use mesh_ledger::LogStore;
use std::path::Path;

use mesh_iatp::Did;
use mesh_ledger::merkle::Hash;
use mesh_ledger::record::CoSignedRecord;
use mesh_ledger::store::{Log, Store, StoreError};

/// The SQLite file inside a node's data directory.
pub const LEDGER_FILE: &str = "ledger.sqlite";

/// The node's store and log.
pub struct NodeLedger {
    store: Store,
    log: Log,
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
        Ok(NodeLedger { store, log })
    }

    /// The store (a cheap handle to the same database).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Append records in one transaction (group commit); durable when
    /// this returns.
    pub async fn append(&mut self, records: &[CoSignedRecord]) -> Result<u64, StoreError> {
        self.log.append(records).await
    }

    /// Store a checkpoint note of this log (signed by the agent, with the
    /// cosignatures gathered so far).
    pub async fn store_checkpoint(&mut self, note: &[u8]) -> Result<(), StoreError> {
        self.log.add_checkpoint(note).await.map(|_| ())
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

/// Make `data_dir` (mode 700) and the ledger file in it (600, created
/// empty if missing, which SQLite takes for a new database) its owner's
/// only: the ledger holds every action this agent took, with whom. SQLite
/// gives its `-wal` and `-shm` files the database file's permissions.
/// Wider permissions found are narrowed, and said so.
pub(crate) fn owner_only(data_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let narrow = |path: &Path, want: u32| -> std::io::Result<()> {
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & !want != 0 {
            tracing::warn!(path = %path.display(), "was mode {mode:03o}, now {want:03o}: owner only");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))?;
        }
        Ok(())
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)?;
    narrow(data_dir, 0o700)?;
    let ledger = data_dir.join(LEDGER_FILE);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&ledger)?;
    narrow(&ledger, 0o600)
}
