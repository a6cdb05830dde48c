//! Durable storage of logs with sqlx: a SQLite file by default, PostgreSQL
//! by `postgres://` URL, one schema and one set of migrations for both
//! (`ledger/migrations`, run on open).
//!
//! A batch of records is appended in one transaction — leaves, the new
//! complete-subtree nodes and the new size together — and acknowledged only
//! when the commit returns. SQLite runs in WAL mode with `synchronous=FULL`,
//! so a returned commit is on disk. A crash at any point leaves either the
//! whole batch or none of it. Proofs read only the O(log n) nodes they need.

use std::collections::HashMap;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor, Row};

use mesh_iatp::{Did, DidError};

use crate::checkpoint::Checkpoint;
pub use crate::log_store::StoreError;
use crate::log_store::{
    LogStore, StoreFuture, consistency_within, inclusion_within, open_note, root_mismatch, within,
};
use crate::merkle::{self, CompactRange, Hash, MissingNode, NodeMap, NodeRecorder, infallible};
use crate::record::{CoSignedRecord, RecordError};
use crate::rows::{self, Placeholders};

fn is_postgres(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

fn is_url(location: &str) -> bool {
    is_postgres(location) || location.starts_with("sqlite:")
}

fn url_for(location: &str, read_only: bool) -> String {
    if is_url(location) {
        location.to_owned()
    } else if read_only {
        format!("sqlite://{location}?mode=ro")
    } else {
        format!("sqlite://{location}?mode=rwc")
    }
}

fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|_| StoreError::Corrupt(format!("{v} does not fit the database's BIGINT")))
}

fn u64_of(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative size or index {v}")))
}

fn hash_of(bytes: Vec<u8>, what: &str) -> Result<Hash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

/// How many unkeyed facts (evidence) a store keeps per owner; older ones
/// are dropped as new ones arrive.
pub const MAX_UNKEYED_FACTS: u64 = 100_000;

/// One fact for [`Store::save_facts`].
#[derive(Debug, Clone, Copy)]
pub struct StoredFact<'a> {
    /// Its kind (`evidence`, `report`, …).
    pub kind: &'a str,
    /// What it replaces (empty: nothing).
    pub key: &'a [u8],
    /// Its bytes; empty deletes the stored fact of this kind and key
    /// (and stores nothing).
    pub body: &'a [u8],
}

/// A database holding any number of logs.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// SQLite, not PostgreSQL: writes begin `IMMEDIATE` (see
    /// [`Store::write_transaction`]) and built statements use `?`.
    sqlite: bool,
}

impl Store {
    /// Open (creating and migrating if needed) a SQLite file path, a
    /// `sqlite:` URL or a `postgres://` URL.
    pub async fn open(location: &str) -> Result<Store, StoreError> {
        let pool = Self::connect(location, false).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store {
            pool,
            sqlite: !is_postgres(location),
        })
    }

    /// Open an existing ledger without writing to it (for auditing): a
    /// missing file or a database without the ledger tables is an error,
    /// and nothing is created or migrated.
    pub async fn open_read_only(location: &str) -> Result<Store, StoreError> {
        if !is_url(location) && !std::path::Path::new(location).is_file() {
            return Err(StoreError::NotALedger(format!(
                "no ledger file at {location}"
            )));
        }
        let pool = Self::connect(location, true).await?;
        if sqlx::query("SELECT COUNT(*) FROM ledger_logs")
            .fetch_one(&pool)
            .await
            .is_err()
        {
            return Err(StoreError::NotALedger(format!(
                "{location} is not a mesh ledger (it has no ledger tables)"
            )));
        }
        Ok(Store {
            pool,
            sqlite: !is_postgres(location),
        })
    }

    async fn connect(location: &str, read_only: bool) -> Result<AnyPool, StoreError> {
        install_default_drivers();
        Ok(AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        let pragmas = if read_only {
                            "PRAGMA busy_timeout = 5000;"
                        } else {
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;"
                        };
                        conn.execute(pragmas).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url_for(location, read_only))
            .await?)
    }

    /// A transaction that will write. On SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`, waiting up to the busy timeout): a deferred
    /// one that reads first would fail outright (`SQLITE_BUSY_SNAPSHOT`) if
    /// another connection — the log's commit beside the facts' save —
    /// wrote in between.
    async fn write_transaction(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(if self.sqlite {
            self.pool.begin_with("BEGIN IMMEDIATE").await?
        } else {
            self.pool.begin().await?
        })
    }

    /// How this backend writes bound parameters in built statements.
    fn placeholders(&self) -> Placeholders {
        if self.sqlite {
            Placeholders::Anonymous
        } else {
            Placeholders::Numbered
        }
    }

    /// Close every connection, waiting for those in use to be returned:
    /// after this, everything appended is on disk (SQLite runs with
    /// `synchronous = FULL`) and the WAL is checkpointed by the last close.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The witness state held for every followed log: `(origin, size, root)`.
    pub async fn witnessed(&self) -> Result<Vec<(String, u64, Hash)>, StoreError> {
        let rows = sqlx::query("SELECT origin, size, root FROM witness_state ORDER BY origin")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let root = hash_of(r.try_get("root")?, "a witness_state root")?;
                Ok((r.try_get("origin")?, u64_of(r.try_get("size")?)?, root))
            })
            .collect()
    }

    /// Record that `(size, root)` of `origin` was cosigned. A size smaller
    /// than the one held is ignored: the state never moves backwards.
    pub async fn save_witnessed(
        &self,
        origin: &str,
        size: u64,
        root: &Hash,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO witness_state (origin, size, root) VALUES ($1, $2, $3) \
             ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root \
             WHERE excluded.size >= witness_state.size",
        )
        .bind(origin)
        .bind(i64_of(size)?)
        .bind(root.to_vec())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Store facts learned by `owner`, in order, in one transaction: a
    /// fact with a non-empty key replaces the stored one of its kind and
    /// key (one with an empty body only deletes it); unkeyed facts
    /// (`evidence`) are added, and only the newest [`MAX_UNKEYED_FACTS`] of
    /// them are kept.
    pub async fn save_facts(
        &self,
        owner: &str,
        facts: &[StoredFact<'_>],
    ) -> Result<(), StoreError> {
        if facts.is_empty() {
            return Ok(());
        }
        // One DELETE and one INSERT per chunk, not two statements a fact:
        // each statement is a round trip to the database's worker thread,
        // and a busy node saves hundreds of facts at a time. Within the
        // batch the last fact of each key wins, as it would one by one.
        let mut last: HashMap<(&str, &[u8]), usize> = HashMap::new();
        for (i, fact) in facts.iter().enumerate() {
            if !fact.key.is_empty() {
                last.insert((fact.kind, fact.key), i);
            }
        }
        let unkeyed = facts.iter().any(|f| f.key.is_empty());
        let mut replaced: Vec<(&str, &[u8])> = last.keys().copied().collect();
        replaced.sort_unstable();
        let kept: Vec<&StoredFact<'_>> = facts
            .iter()
            .enumerate()
            .filter(|(i, f)| {
                f.key.is_empty() || (last[&(f.kind, f.key)] == *i && !f.body.is_empty())
            })
            .map(|(_, f)| f)
            .collect();
        let mut tx = self.write_transaction().await?;
        let row =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS top FROM agent_facts WHERE owner = $1")
                .bind(owner)
                .fetch_one(&mut *tx)
                .await?;
        let mut seq: i64 = row.try_get("top")?;
        let marks = self.placeholders();
        for chunk in rows::chunks(&replaced) {
            let mut sql = String::from("DELETE FROM agent_facts WHERE (kind, fkey) IN (VALUES ");
            marks.push_rows(&mut sql, chunk.len(), 2);
            sql.push_str(") AND owner = ");
            marks.push(&mut sql, chunk.len() * 2 + 1);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (kind, key) in chunk {
                q = q.bind(*kind).bind(key.to_vec());
            }
            q.bind(owner).execute(&mut *tx).await?;
        }
        for chunk in rows::chunks(&kept) {
            let mut sql =
                String::from("INSERT INTO agent_facts (owner, seq, kind, fkey, body) VALUES ");
            marks.push_rows(&mut sql, chunk.len(), 5);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for fact in chunk {
                seq += 1;
                q = q
                    .bind(owner)
                    .bind(seq)
                    .bind(fact.kind)
                    .bind(fact.key.to_vec())
                    .bind(fact.body.to_vec());
            }
            q.execute(&mut *tx).await?;
        }
        if unkeyed {
            sqlx::query(
                "DELETE FROM agent_facts WHERE owner = $1 AND fkey = $2 AND seq <= \
                 (SELECT seq FROM agent_facts WHERE owner = $1 AND fkey = $2 \
                  ORDER BY seq DESC LIMIT 1 OFFSET $3)",
            )
            .bind(owner)
            .bind(Vec::<u8>::new())
            .bind(i64_of(MAX_UNKEYED_FACTS)?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The facts `owner` stored, in order.
    pub async fn facts(&self, owner: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = sqlx::query("SELECT body FROM agent_facts WHERE owner = $1 ORDER BY seq")
            .bind(owner)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<Vec<u8>, _>("body").map_err(StoreError::from))
            .collect()
    }

    /// Create a new, empty log named `origin` for the log key `key`.
    pub async fn create_log(&self, origin: &str, key: &Did) -> Result<Log, StoreError> {
        let exists = sqlx::query("SELECT 1 FROM ledger_logs WHERE origin = $1")
            .bind(origin)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_some() {
            return Err(StoreError::LogExists(origin.into()));
        }
        sqlx::query("INSERT INTO ledger_logs (origin, public_key, size) VALUES ($1, $2, $3)")
            .bind(origin)
            .bind(key.public_key_bytes().to_vec())
            .bind(0i64)
            .execute(&self.pool)
            .await?;
        self.log(origin).await
    }

    /// The origins of every log in the store.
    pub async fn origins(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT origin FROM ledger_logs ORDER BY origin")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("origin")?))
            .collect()
    }

    /// Open an existing log, loading its right edge (O(log n) nodes).
    pub async fn log(&self, origin: &str) -> Result<Log, StoreError> {
        let row = sqlx::query("SELECT public_key, size FROM ledger_logs WHERE origin = $1")
            .bind(origin)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::UnknownLog(origin.into()))?;
        let key_bytes: Vec<u8> = row.try_get("public_key")?;
        let key = <[u8; 32]>::try_from(key_bytes.as_slice())
            .map_err(|_| StoreError::Corrupt("log public key is not 32 bytes".into()))
            .and_then(|k| {
                Did::from_public_key_bytes(&k)
                    .map_err(|e: DidError| StoreError::Corrupt(e.to_string()))
            })?;
        let size = u64_of(row.try_get("size")?)?;
        let mut log = Log {
            pool: self.pool.clone(),
            placeholders: self.placeholders(),
            origin: origin.into(),
            key,
            range: CompactRange::new(),
        };
        let positions = CompactRange::positions(size);
        let nodes = log.fetch_nodes(&positions).await?;
        let hashes: Vec<Hash> = positions
            .iter()
            .map(|p| nodes.0.get(p).copied().ok_or(MissingNode(p.0, p.1)))
            .collect::<Result<_, _>>()?;
        log.range = CompactRange::from_hashes(size, &hashes)
            .ok_or_else(|| StoreError::Corrupt("right edge does not match the size".into()))?;
        Ok(log)
    }

    /// The pool, for the verifier and the export.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// One log in a store.
#[derive(Debug)]
pub struct Log {
    pool: AnyPool,
    placeholders: Placeholders,
    origin: String,
    key: Did,
    range: CompactRange,
}

impl Log {
    /// Append in one transaction (see [`LogStore::append`]).
    async fn append_now(&mut self, records: &[CoSignedRecord]) -> Result<u64, StoreError> {
        if records.is_empty() {
            return Ok(self.size());
        }
        let mut range = self.range.clone();
        let mut leaves: Vec<(u64, &[u8])> = Vec::with_capacity(records.len());
        let mut nodes: Vec<(u32, u64, Hash)> = Vec::with_capacity(records.len() * 2);
        for record in records {
            leaves.push((range.size(), record.bytes()));
            nodes.extend(range.append(record.leaf_hash()));
        }
        let mut tx = self.pool.begin().await?;
        // Multi-row INSERTs, in fixed shapes (see [`rows`]).
        for chunk in rows::chunks(&leaves) {
            let mut sql = String::from("INSERT INTO ledger_records (origin, idx, leaf) VALUES ");
            self.placeholders.push_rows(&mut sql, chunk.len(), 3);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (idx, leaf) in chunk {
                q = q.bind(&self.origin).bind(i64_of(*idx)?).bind(leaf.to_vec());
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in rows::chunks(&nodes) {
            let mut sql =
                String::from("INSERT INTO ledger_nodes (origin, level, idx, hash) VALUES ");
            self.placeholders.push_rows(&mut sql, chunk.len(), 4);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (level, idx, hash) in chunk {
                q = q
                    .bind(&self.origin)
                    .bind(*level as i32)
                    .bind(i64_of(*idx)?)
                    .bind(hash.to_vec());
            }
            q.execute(&mut *tx).await?;
        }
        let updated =
            sqlx::query("UPDATE ledger_logs SET size = $1 WHERE origin = $2 AND size = $3")
                .bind(i64_of(range.size())?)
                .bind(&self.origin)
                .bind(i64_of(self.size())?)
                .execute(&mut *tx)
                .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Corrupt(
                "the log grew under this handle (two writers?)".into(),
            ));
        }
        tx.commit().await?;
        self.range = range;
        Ok(self.size())
    }

    async fn fetch_nodes(&self, positions: &[(u32, u64)]) -> Result<NodeMap, StoreError> {
        let mut map = HashMap::with_capacity(positions.len());
        for &(level, idx) in positions {
            let row = sqlx::query(
                "SELECT hash FROM ledger_nodes WHERE origin = $1 AND level = $2 AND idx = $3",
            )
            .bind(&self.origin)
            .bind(level as i32)
            .bind(i64_of(idx)?)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                map.insert((level, idx), hash_of(row.try_get("hash")?, "node hash")?);
            }
        }
        Ok(NodeMap(map))
    }

    /// Fetch what `op` needs from the store, then run it.
    async fn with_nodes<T>(
        &self,
        op: impl Fn(&dyn NodeSourceDyn) -> Result<T, MissingNode> + Send + Sync,
    ) -> Result<T, StoreError> {
        let positions = {
            let rec = NodeRecorder::default();
            let _ = op(&rec);
            rec.positions()
        };
        let nodes = self.fetch_nodes(&positions).await?;
        Ok(op(&nodes)?)
    }

    async fn leaf_hashes_now(&self, from: u64) -> Result<Vec<Hash>, StoreError> {
        let rows = sqlx::query(
            "SELECT hash FROM ledger_nodes WHERE origin = $1 AND level = 0 AND idx >= $2 \
             ORDER BY idx",
        )
        .bind(&self.origin)
        .bind(i64_of(from)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| hash_of(r.try_get("hash")?, "a leaf hash"))
            .collect()
    }

    async fn record_now(&self, index: u64) -> Result<CoSignedRecord, StoreError> {
        within("index", index.saturating_add(1), self.size())?;
        let row = sqlx::query("SELECT leaf FROM ledger_records WHERE origin = $1 AND idx = $2")
            .bind(&self.origin)
            .bind(i64_of(index)?)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("record {index} is missing")))?;
        let bytes: Vec<u8> = row.try_get("leaf")?;
        CoSignedRecord::from_bytes(&bytes)
            .map_err(|e: RecordError| StoreError::Corrupt(format!("record {index}: {e}")))
    }

    async fn add_checkpoint_now(&self, note: &[u8]) -> Result<Checkpoint, StoreError> {
        let cp = open_note(&self.origin, &self.key, note)?;
        if self.root_at(cp.size).await? != cp.root {
            return Err(root_mismatch(cp.size));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM ledger_checkpoints WHERE origin = $1 AND size = $2")
            .bind(&self.origin)
            .bind(i64_of(cp.size)?)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO ledger_checkpoints (origin, size, note) VALUES ($1, $2, $3)")
            .bind(&self.origin)
            .bind(i64_of(cp.size)?)
            .bind(note.to_vec())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(cp)
    }

    async fn latest_checkpoint_now(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query(
            "SELECT note FROM ledger_checkpoints WHERE origin = $1 ORDER BY size DESC LIMIT 1",
        )
        .bind(&self.origin)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("note")).transpose()?)
    }
}

impl LogStore for Log {
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
        Box::pin(self.append_now(records))
    }

    fn record(&self, index: u64) -> StoreFuture<'_, CoSignedRecord> {
        Box::pin(self.record_now(index))
    }

    fn leaf_hashes(&self, from: u64) -> StoreFuture<'_, Vec<Hash>> {
        Box::pin(self.leaf_hashes_now(from))
    }

    fn root_at(&self, size: u64) -> StoreFuture<'_, Hash> {
        Box::pin(async move {
            within("size", size, self.size())?;
            self.with_nodes(move |s| s.root_of(size)).await
        })
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> StoreFuture<'_, Vec<Hash>> {
        Box::pin(async move {
            inclusion_within(index, size, self.size())?;
            self.with_nodes(move |s| s.inclusion(index, size)).await
        })
    }

    fn consistency_proof(&self, old: u64, new: u64) -> StoreFuture<'_, Vec<Hash>> {
        Box::pin(async move {
            consistency_within(old, new, self.size())?;
            self.with_nodes(move |s| s.consistency(old, new)).await
        })
    }

    fn add_checkpoint<'a>(&'a mut self, note: &'a [u8]) -> StoreFuture<'a, Checkpoint> {
        Box::pin(self.add_checkpoint_now(note))
    }

    fn latest_checkpoint(&self) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(self.latest_checkpoint_now())
    }
}

/// Object-safe view of a node source with the proof operations the store
/// runs twice (once recording, once for real).
trait NodeSourceDyn {
    fn root_of(&self, size: u64) -> Result<Hash, MissingNode>;
    fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, MissingNode>;
    fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, MissingNode>;
}

impl NodeSourceDyn for NodeRecorder {
    fn root_of(&self, size: u64) -> Result<Hash, MissingNode> {
        Ok(infallible(merkle::root(self, size)))
    }
    fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, MissingNode> {
        Ok(infallible(merkle::inclusion_proof(self, index, size)))
    }
    fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, MissingNode> {
        Ok(infallible(merkle::consistency_proof(self, old, new)))
    }
}

impl NodeSourceDyn for NodeMap {
    fn root_of(&self, size: u64) -> Result<Hash, MissingNode> {
        merkle::root(self, size)
    }
    fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, MissingNode> {
        merkle::inclusion_proof(self, index, size)
    }
    fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, MissingNode> {
        merkle::consistency_proof(self, old, new)
    }
}
