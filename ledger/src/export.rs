//! The export file: a ledger as one portable, versioned file (format v1).
//!
//! ```text
//! file    = magic version *frame end
//! magic   = "mesh-ledger export\n"                     (19 bytes)
//! version = u32 big-endian, 1
//! frame   = type (u8) ‖ length (u32 big-endian) ‖ payload
//!   0x01 LOG         deterministic CBOR {"origin": text, "public_key": bytes(32), "size": uint}
//!   0x02 RECORD      the exact co-signed record bytes, the LOG's records in index order from 0
//!   0x03 CHECKPOINT  a signed checkpoint note (with its cosignature lines) of the LOG
//! end     = 0xff ‖ u32 0                               (nothing may follow)
//! ```
//!
//! Records and checkpoints belong to the most recent LOG frame. Lengths are
//! bounded before anything is allocated (LOG 4 KiB, RECORD 4 KiB, CHECKPOINT
//! 1 MiB). Importing never "repairs": records are stored exactly as in the
//! file, so [`crate::verify::verify_log`] reports whatever is wrong with them.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sqlx::Row;

use mesh_iatp::cbor;

use crate::merkle::CompactRange;
use crate::merkle::leaf_hash;
use crate::note::MAX_NOTE_BYTES;
use crate::record::MAX_RECORD_BYTES;
use crate::store::{Store, StoreError};
use crate::verify::Fault;

/// The first bytes of every export.
pub const MAGIC: &[u8; 19] = b"mesh-ledger export\n";
/// The format version written and read.
pub const VERSION: u32 = 1;
const LOG: u8 = 0x01;
const RECORD: u8 = 0x02;
const CHECKPOINT: u8 = 0x03;
const END: u8 = 0xff;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogHeader {
    origin: String,
    #[serde(with = "serde_bytes")]
    public_key: [u8; 32],
    size: u64,
}

/// Why an export cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing the file failed.
    #[error("export file: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not an export, or a version this tool does not read.
    #[error("not a mesh-ledger export (bad magic or unsupported version {0})")]
    NotAnExport(u32),
    /// A frame is malformed.
    #[error("export frame {index}: {what}")]
    Frame {
        /// Frame number (0 = first after the header).
        index: u64,
        /// What is wrong.
        what: String,
    },
}

fn frame(out: &mut dyn Write, kind: u8, payload: &[u8]) -> Result<(), ExportError> {
    let len = u32::try_from(payload.len()).map_err(|_| ExportError::Frame {
        index: 0,
        what: "payload too large".into(),
    })?;
    out.write_all(&[kind])?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(payload)?;
    Ok(())
}

/// Write every log of `store` to `out`. Returns the number of records written.
pub async fn export(store: &Store, out: &mut dyn Write) -> Result<u64, ExportError> {
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_be_bytes())?;
    let mut written = 0u64;
    for origin in store.origins().await? {
        let log = store.log(&origin).await?;
        let header = LogHeader {
            origin: origin.clone(),
            public_key: *log.key().public_key_bytes(),
            size: log.size(),
        };
        let bytes = cbor::to_canonical_vec(&header).map_err(|e| ExportError::Frame {
            index: 0,
            what: e.to_string(),
        })?;
        frame(out, LOG, &bytes)?;
        let mut next = 0i64;
        loop {
            let rows = sqlx::query("SELECT idx, leaf FROM ledger_records WHERE origin = $1 AND idx >= $2 ORDER BY idx LIMIT 10000")
                .bind(&origin)
                .bind(next)
                .fetch_all(store.pool())
                .await
                .map_err(StoreError::from)?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let idx: i64 = r.try_get("idx").map_err(StoreError::from)?;
                let leaf: Vec<u8> = r.try_get("leaf").map_err(StoreError::from)?;
                frame(out, RECORD, &leaf)?;
                next = idx + 1;
                written += 1;
            }
        }
        let rows =
            sqlx::query("SELECT note FROM ledger_checkpoints WHERE origin = $1 ORDER BY size")
                .bind(&origin)
                .fetch_all(store.pool())
                .await
                .map_err(StoreError::from)?;
        for r in rows {
            let note: Vec<u8> = r.try_get("note").map_err(StoreError::from)?;
            frame(out, CHECKPOINT, &note)?;
        }
    }
    frame(out, END, &[])?;
    out.flush()?;
    Ok(written)
}

/// Does this file start like an export?
pub fn looks_like_export(path: &std::path::Path) -> bool {
    let mut head = [0u8; 19];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == MAGIC
}

struct Pending {
    origin: String,
    declared: u64,
    range: CompactRange,
}

/// Load an export into `store` (normally a fresh temporary database) exactly
/// as written. Returns faults the file itself shows (declared sizes that do
/// not match the records present); everything else is for `verify_log`.
pub async fn import(input: &mut dyn Read, store: &Store) -> Result<Vec<Fault>, ExportError> {
    let mut head = [0u8; 23];
    input
        .read_exact(&mut head)
        .map_err(|_| ExportError::NotAnExport(0))?;
    let version = u32::from_be_bytes([head[19], head[20], head[21], head[22]]);
    if &head[..19] != MAGIC || version != VERSION {
        return Err(ExportError::NotAnExport(version));
    }
    let mut faults = Vec::new();
    let mut current: Option<Pending> = None;
    let pool = store.pool();
    let mut index = 0u64;
    loop {
        let bad = |what: &str| ExportError::Frame {
            index,
            what: what.into(),
        };
        let mut fh = [0u8; 5];
        input
            .read_exact(&mut fh)
            .map_err(|_| bad("truncated: no END frame"))?;
        let len = u32::from_be_bytes([fh[1], fh[2], fh[3], fh[4]]) as usize;
        let max = match fh[0] {
            LOG | RECORD => MAX_RECORD_BYTES,
            CHECKPOINT => MAX_NOTE_BYTES,
            END => 0,
            _ => return Err(bad(&format!("unknown frame type 0x{:02x}", fh[0]))),
        };
        if len > max {
            return Err(bad(&format!(
                "{len}-byte payload exceeds the {max}-byte limit"
            )));
        }
        let mut payload = vec![0u8; len];
        input
            .read_exact(&mut payload)
            .map_err(|_| bad("truncated payload"))?;
        match fh[0] {
            LOG => {
                if let Some(p) = current.take() {
                    finish(store, p, &mut faults).await?;
                }
                let h: LogHeader = cbor::from_canonical_slice(&payload, MAX_RECORD_BYTES)
                    .map_err(|e| bad(&e.to_string()))?;
                sqlx::query(
                    "INSERT INTO ledger_logs (origin, public_key, size) VALUES ($1, $2, $3)",
                )
                .bind(&h.origin)
                .bind(h.public_key.to_vec())
                .bind(0i64)
                .execute(pool)
                .await
                .map_err(StoreError::from)?;
                current = Some(Pending {
                    origin: h.origin,
                    declared: h.size,
                    range: CompactRange::new(),
                });
            }
            RECORD | CHECKPOINT => {
                let p = current
                    .as_mut()
                    .ok_or_else(|| bad("record or checkpoint before any LOG frame"))?;
                if fh[0] == RECORD {
                    let idx = p.range.size() as i64;
                    sqlx::query(
                        "INSERT INTO ledger_records (origin, idx, leaf) VALUES ($1, $2, $3)",
                    )
                    .bind(&p.origin)
                    .bind(idx)
                    .bind(payload.clone())
                    .execute(pool)
                    .await
                    .map_err(StoreError::from)?;
                    for (level, i, hash) in p.range.append(leaf_hash(&payload)) {
                        sqlx::query("INSERT INTO ledger_nodes (origin, level, idx, hash) VALUES ($1, $2, $3, $4)")
                            .bind(&p.origin)
                            .bind(level as i32)
                            .bind(i as i64)
                            .bind(hash.to_vec())
                            .execute(pool)
                            .await
                            .map_err(StoreError::from)?;
                    }
                } else {
                    // The size is read from the note later by verify; store
                    // under a unique key even if the note does not parse.
                    let key = next_checkpoint_key(store, &p.origin, &payload).await?;
                    sqlx::query(
                        "INSERT INTO ledger_checkpoints (origin, size, note) VALUES ($1, $2, $3)",
                    )
                    .bind(&p.origin)
                    .bind(key)
                    .bind(payload)
                    .execute(pool)
                    .await
                    .map_err(StoreError::from)?;
                }
            }
            _ => {
                if let Some(p) = current.take() {
                    finish(store, p, &mut faults).await?;
                }
                let mut rest = [0u8; 1];
                if input.read(&mut rest)? != 0 {
                    return Err(bad("bytes after the END frame"));
                }
                return Ok(faults);
            }
        }
        index += 1;
    }
}

async fn next_checkpoint_key(store: &Store, origin: &str, note: &[u8]) -> Result<i64, StoreError> {
    let parsed = crate::note::Note::parse(note)
        .ok()
        .and_then(|n| crate::checkpoint::Checkpoint::parse_body(&n.text).ok())
        .and_then(|c| i64::try_from(c.size).ok());
    if let Some(size) = parsed {
        let taken = sqlx::query("SELECT 1 FROM ledger_checkpoints WHERE origin = $1 AND size = $2")
            .bind(origin)
            .bind(size)
            .fetch_optional(store.pool())
            .await?;
        if taken.is_none() {
            return Ok(size);
        }
    }
    // Unparseable or duplicate: a negative key keeps it for verify to report.
    let row =
        sqlx::query("SELECT COALESCE(MIN(size), 0) AS m FROM ledger_checkpoints WHERE origin = $1")
            .bind(origin)
            .fetch_one(store.pool())
            .await?;
    let min: i64 = row.try_get("m")?;
    Ok(min.min(0) - 1)
}

async fn finish(store: &Store, p: Pending, faults: &mut Vec<Fault>) -> Result<(), StoreError> {
    let present = p.range.size();
    if present != p.declared {
        faults.push(Fault {
            location: format!("export, log {}", p.origin),
            what: format!("declares {} records but holds {present}", p.declared),
        });
    }
    sqlx::query("UPDATE ledger_logs SET size = $1 WHERE origin = $2")
        .bind(present as i64)
        .bind(&p.origin)
        .execute(store.pool())
        .await?;
    Ok(())
}
