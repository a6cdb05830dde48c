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
//! 1 MiB). An export is verified where it lies ([`verify_export`]: two
//! sequential passes, memory flat in the number of records), or loaded into
//! [`MemoryLog`]s ([`read_export`], which refuses anything damaged) to answer
//! proofs from it. Nothing is ever "repaired".

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sqlx::Row;

use mesh_iatp::cbor;

use mesh_iatp::Did;

use crate::audit::{Audit, LogReport, fault};
use crate::log_store::LogStore;
use crate::memory::MemoryLog;
use crate::note::{MAX_NOTE_BYTES, NoteVerifier};
use crate::record::{CoSignedRecord, MAX_RECORD_BYTES};
use crate::store::{Store, StoreError};

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

/// One frame read from an export.
struct Frame {
    kind: u8,
    /// Empty for a RECORD read with `skip_records`.
    payload: Vec<u8>,
}

/// An export read frame by frame, every length bounded before allocating.
struct Frames<R> {
    input: R,
    /// The next frame's number (0 = first after the header).
    index: u64,
    done: bool,
}

impl<R: Read> Frames<R> {
    /// Check the magic and version.
    fn open(mut input: R) -> Result<Self, ExportError> {
        let mut head = [0u8; 23];
        input
            .read_exact(&mut head)
            .map_err(|_| ExportError::NotAnExport(0))?;
        let version = u32::from_be_bytes([head[19], head[20], head[21], head[22]]);
        if &head[..19] != MAGIC || version != VERSION {
            return Err(ExportError::NotAnExport(version));
        }
        Ok(Frames {
            input,
            index: 0,
            done: false,
        })
    }

    fn bad(&self, what: impl Into<String>) -> ExportError {
        ExportError::Frame {
            index: self.index,
            what: what.into(),
        }
    }

    /// The next frame, or `None` after END (checking nothing follows it).
    /// With `skip_records`, RECORD payloads are read past, not kept.
    fn next(&mut self, skip_records: bool) -> Result<Option<Frame>, ExportError> {
        if self.done {
            return Ok(None);
        }
        let mut fh = [0u8; 5];
        self.input
            .read_exact(&mut fh)
            .map_err(|_| self.bad("truncated: no END frame"))?;
        let len = u32::from_be_bytes([fh[1], fh[2], fh[3], fh[4]]) as usize;
        let max = match fh[0] {
            LOG | RECORD => MAX_RECORD_BYTES,
            CHECKPOINT => MAX_NOTE_BYTES,
            END => 0,
            other => return Err(self.bad(format!("unknown frame type 0x{other:02x}"))),
        };
        if len > max {
            return Err(self.bad(format!("{len}-byte payload exceeds the {max}-byte limit")));
        }
        let payload = if skip_records && fh[0] == RECORD {
            let skipped = std::io::copy(
                &mut (&mut self.input).take(len as u64),
                &mut std::io::sink(),
            )?;
            if skipped != len as u64 {
                return Err(self.bad("truncated payload"));
            }
            Vec::new()
        } else {
            let mut payload = vec![0u8; len];
            self.input
                .read_exact(&mut payload)
                .map_err(|_| self.bad("truncated payload"))?;
            payload
        };
        if fh[0] == END {
            let mut rest = [0u8; 1];
            if self.input.read(&mut rest)? != 0 {
                return Err(self.bad("bytes after the END frame"));
            }
            self.done = true;
            return Ok(None);
        }
        self.index += 1;
        Ok(Some(Frame {
            kind: fh[0],
            payload,
        }))
    }

    /// A second LOG frame for `origin`: two logs under one name cannot
    /// both be the log, so the file is refused rather than one chosen.
    fn duplicate(&self, origin: &str) -> ExportError {
        self.bad(format!(
            "a second LOG frame for {origin} (each log appears once)"
        ))
    }

    /// A LOG frame's header and key.
    fn header(&self, payload: &[u8]) -> Result<(LogHeader, Did), ExportError> {
        let h: LogHeader = cbor::from_canonical_slice(payload, MAX_RECORD_BYTES)
            .map_err(|e| self.bad(e.to_string()))?;
        let key = Did::from_public_key_bytes(&h.public_key)
            .map_err(|e| self.bad(format!("log key: {e}")))?;
        Ok((h, key))
    }
}

/// What the first pass learns of one log: its header and checkpoints.
struct Outline {
    header: LogHeader,
    key: Did,
    /// Checkpoint notes by the size their text gives, ascending.
    checkpoints: Vec<(u64, Vec<u8>)>,
    /// Notes whose size cannot be read, or that repeat a size.
    faults: Vec<crate::audit::Fault>,
}

/// The first pass: every log's header and checkpoints (records skipped).
fn outline(input: impl Read) -> Result<Vec<Outline>, ExportError> {
    let mut frames = Frames::open(input)?;
    let mut logs: Vec<Outline> = Vec::new();
    while let Some(frame) = frames.next(true)? {
        match frame.kind {
            LOG => {
                let (header, key) = frames.header(&frame.payload)?;
                if logs.iter().any(|l| l.header.origin == header.origin) {
                    return Err(frames.duplicate(&header.origin));
                }
                logs.push(Outline {
                    header,
                    key,
                    checkpoints: Vec::new(),
                    faults: Vec::new(),
                });
            }
            _ => {
                let Some(log) = logs.last_mut() else {
                    return Err(frames.bad("record or checkpoint before any LOG frame"));
                };
                if frame.kind == CHECKPOINT {
                    let n = log.checkpoints.len() + log.faults.len() + 1;
                    let at = format!("export, log {}, checkpoint #{n}", log.header.origin);
                    let size = crate::note::Note::parse(&frame.payload)
                        .map_err(|e| e.to_string())
                        .and_then(|note| {
                            crate::checkpoint::Checkpoint::parse_body(&note.text)
                                .map_err(|e| e.to_string())
                        });
                    match size {
                        Err(why) => log.faults.push(fault(at, why)),
                        Ok(cp) if log.checkpoints.iter().any(|(s, _)| *s == cp.size) => log
                            .faults
                            .push(fault(at, format!("a second note for size {}", cp.size))),
                        Ok(cp) => log.checkpoints.push((cp.size, frame.payload)),
                    }
                }
            }
        }
    }
    for log in &mut logs {
        log.checkpoints.sort_by_key(|(s, _)| *s);
    }
    Ok(logs)
}

/// Records verified per signature batch.
const PAGE: u64 = 10_000;

/// Verify every log of the export in `input` where it lies, like
/// [`crate::verify::verify_log`] verifies a database: two sequential passes
/// (checkpoints, then records), never holding more than a page of records.
/// `progress(origin, done, total)` is called after each page.
pub fn verify_export<R: Read + std::io::Seek>(
    mut input: R,
    witnesses: &[NoteVerifier],
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<Vec<LogReport>, ExportError> {
    let outlines = outline(&mut input)?;
    input.rewind()?;
    let mut frames = Frames::open(input)?;
    let mut reports = Vec::with_capacity(outlines.len());
    let mut current: Option<(Audit, Outline)> = None;
    let mut outlines = outlines.into_iter();
    let finish = |(audit, o): (Audit, Outline)| {
        let mut report = audit.finish(o.header.size, witnesses);
        report.faults.extend(o.faults);
        report
    };
    while let Some(frame) = frames.next(false)? {
        match frame.kind {
            LOG => {
                reports.extend(current.take().map(finish));
                let mut o = outlines
                    .next()
                    .ok_or_else(|| frames.bad("the file changed while it was read"))?;
                let checkpoints = std::mem::take(&mut o.checkpoints);
                current = Some((Audit::new(&o.header.origin, &o.key, checkpoints), o));
            }
            RECORD => {
                let Some((audit, o)) = current.as_mut() else {
                    return Err(frames.bad("record or checkpoint before any LOG frame"));
                };
                audit.record(&frame.payload);
                if audit.size().is_multiple_of(PAGE) {
                    audit.end_page();
                    progress(&o.header.origin, audit.size(), o.header.size);
                }
            }
            _ => {}
        }
    }
    reports.extend(current.take().map(finish));
    Ok(reports)
}

/// Load every log of an export into memory, to answer proofs and inspect
/// records from it. Anything damaged — a record or checkpoint that does
/// not verify, a size that does not match — is refused with where it is
/// (`verify_export` gives the full report).
pub fn read_export(input: impl Read) -> Result<Vec<MemoryLog>, ExportError> {
    let mut frames = Frames::open(input)?;
    let mut logs: Vec<(MemoryLog, u64)> = Vec::new();
    let check_size = |frames: &Frames<_>, log: Option<&(MemoryLog, u64)>| match log {
        Some((l, declared)) if l.size() != *declared => Err(frames.bad(format!(
            "log {} declares {declared} records but holds {}",
            l.origin(),
            l.size()
        ))),
        _ => Ok(()),
    };
    while let Some(frame) = frames.next(false)? {
        if frame.kind == LOG {
            check_size(&frames, logs.last())?;
            let (header, key) = frames.header(&frame.payload)?;
            if logs.iter().any(|(l, _)| l.origin() == header.origin) {
                return Err(frames.duplicate(&header.origin));
            }
            logs.push((MemoryLog::new(header.origin, key), header.size));
            continue;
        }
        let Some((log, _)) = logs.last_mut() else {
            return Err(frames.bad("record or checkpoint before any LOG frame"));
        };
        if frame.kind == RECORD {
            let record = CoSignedRecord::from_bytes(&frame.payload)
                .map_err(|e| frames.bad(format!("record {}: {e}", log.size())))?;
            log.push([record]);
        } else {
            log.put_checkpoint(&frame.payload)
                .map_err(|e| frames.bad(e.to_string()))?;
        }
    }
    check_size(&frames, logs.last())?;
    Ok(logs.into_iter().map(|(l, _)| l).collect())
}
