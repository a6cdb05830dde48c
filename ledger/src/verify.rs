//! Offline verification of a stored log: every record's two signatures,
//! every stored tree node against the recomputed tree, every checkpoint's
//! signature and root, every cosignature from a known witness, and the
//! consistency of successive checkpoints. Each fault is named by where it
//! is; nothing stored is trusted.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::checkpoint::{log_verifier, open_checkpoint, verify_cosignature};
use crate::merkle::{CompactRange, Hash, leaf_hash, verify_consistency};
use crate::note::NoteVerifier;
use crate::record::{CoSignedRecord, RecordParts};
use crate::store::{Log, Store, StoreError};

/// Records read per query.
const PAGE: i64 = 10_000;

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Where: `record 17`, `node level 2 index 5`, `checkpoint at size 40`, …
    pub location: String,
    /// What failed.
    pub what: String,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.what)
    }
}

/// The outcome of verifying one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// The log.
    pub origin: String,
    /// Records read.
    pub records: u64,
    /// Recomputed root over them.
    pub root: Hash,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// Cosignatures verified against known witnesses.
    pub cosignatures: usize,
    /// Cosignature lines from witnesses not given to the verifier.
    pub unknown_cosigners: usize,
    /// Everything wrong, in the order found.
    pub faults: Vec<Fault>,
}

impl LogReport {
    /// No faults?
    pub fn is_sound(&self) -> bool {
        self.faults.is_empty()
    }
}

fn fault(location: impl Into<String>, what: impl Into<String>) -> Fault {
    Fault {
        location: location.into(),
        what: what.into(),
    }
}

/// Verify the log `origin` as stored: an audit of a ledger nothing is
/// writing to. `witnesses` are the cosigners whose keys the auditor trusts;
/// `progress(done, total)` is called after each page. A record stored
/// beyond the size the log claims is a fault.
pub async fn verify_log(
    store: &Store,
    origin: &str,
    witnesses: &[NoteVerifier],
    progress: impl FnMut(u64, u64),
) -> Result<LogReport, StoreError> {
    let log = store.log(origin).await?;
    let size = log.size();
    // Every stored row is read, so records past the claimed size show.
    verify_up_to(store, log, size, i64::MAX, witnesses, progress).await
}

/// Verify the first `size` records of `origin` and its checkpoints up to
/// that size: for a log that may grow while it is read (a running node's
/// own). Records and checkpoints added past `size` meanwhile are left for
/// the next verification instead of being mistaken for faults. A `size`
/// beyond the stored log is refused.
pub async fn verify_log_at(
    store: &Store,
    origin: &str,
    size: u64,
    witnesses: &[NoteVerifier],
    progress: impl FnMut(u64, u64),
) -> Result<LogReport, StoreError> {
    let log = store.log(origin).await?;
    if size > log.size() {
        return Err(StoreError::OutOfRange {
            what: "verification size",
            value: size,
            size: log.size(),
        });
    }
    let bound = i64::try_from(size).unwrap_or(i64::MAX);
    verify_up_to(store, log, size, bound, witnesses, progress).await
}

/// Verify `log` against `size` records, reading only records with an index
/// below `bound` and checkpoints of a size up to it.
async fn verify_up_to(
    store: &Store,
    log: Log,
    size: u64,
    bound: i64,
    witnesses: &[NoteVerifier],
    mut progress: impl FnMut(u64, u64),
) -> Result<LogReport, StoreError> {
    let origin = log.origin();
    let pool = store.pool();
    let mut faults = Vec::new();

    // Checkpoint sizes, so their roots can be captured during the pass.
    let rows = sqlx::query(
        "SELECT size, note FROM ledger_checkpoints WHERE origin = $1 AND size <= $2 ORDER BY size",
    )
    .bind(origin)
    .bind(bound)
    .fetch_all(pool)
    .await?;
    // A negative size key marks an imported note whose size could not be
    // read (see `export::import`): it is still checked, and named as such.
    let mut checkpoints: Vec<(u64, Vec<u8>)> = Vec::with_capacity(rows.len());
    let mut unreadable: Vec<Vec<u8>> = Vec::new();
    for r in rows {
        let s: i64 = r.try_get("size")?;
        match u64::try_from(s) {
            Ok(size) => checkpoints.push((size, r.try_get("note")?)),
            Err(_) => unreadable.push(r.try_get("note")?),
        }
    }
    let mut roots_at: BTreeMap<u64, Hash> = BTreeMap::new();
    let wanted: Vec<u64> = checkpoints.iter().map(|(s, _)| *s).collect();

    let mut range = CompactRange::new();
    if wanted.contains(&0) {
        roots_at.insert(0, range.root());
    }
    let mut next: i64 = 0;
    'pages: loop {
        let page = sqlx::query("SELECT idx, leaf FROM ledger_records WHERE origin = $1 AND idx >= $2 AND idx < $3 ORDER BY idx LIMIT $4")
            .bind(origin)
            .bind(next)
            .bind(bound)
            .bind(PAGE)
            .fetch_all(pool)
            .await?;
        if page.is_empty() {
            break;
        }
        let first = next;
        let mut created: Vec<(u32, u64, Hash)> = Vec::new();
        let mut batch = SignatureBatch::default();
        for row in page {
            let idx: i64 = row.try_get("idx")?;
            if idx != next {
                faults.push(fault(
                    format!("record {next}"),
                    "missing; later records cannot be placed in the tree",
                ));
                break 'pages;
            }
            // A value of the wrong SQL type is a fault to name, not a reason to stop.
            let leaf: Vec<u8> = match row.try_get("leaf") {
                Ok(bytes) => bytes,
                Err(e) => {
                    faults.push(fault(
                        format!("record {idx}"),
                        format!("stored value is not bytes ({e})"),
                    ));
                    Vec::new()
                }
            };
            match RecordParts::decode(&leaf) {
                Err(e) => faults.push(fault(format!("record {idx}"), e.to_string())),
                Ok(parts) => {
                    if let Err(why) = batch.add(&parts) {
                        faults.push(fault(format!("record {idx}"), why));
                    } else {
                        batch.records.push((idx, leaf.clone()));
                    }
                }
            }
            created.extend(range.append(leaf_hash(&leaf)));
            next += 1;
            let n = range.size();
            if wanted.binary_search(&n).is_ok() {
                roots_at.insert(n, range.root());
            }
        }
        // One batch verification for the page's signatures; if it fails, find
        // the faulty records one by one (strictly) so each is named.
        if !batch.verify() {
            for (idx, leaf) in &batch.records {
                if let Err(e) = CoSignedRecord::from_bytes(leaf) {
                    faults.push(fault(format!("record {idx}"), e.to_string()));
                }
            }
        }
        // Stored nodes for this page, compared with the recomputed ones.
        let mut stored: BTreeMap<(u32, u64), Vec<u8>> = BTreeMap::new();
        let max_level = created.iter().map(|c| c.0).max().unwrap_or(0);
        for level in 0..=max_level {
            let lo = (first as u64) >> level;
            let hi = (next as u64) >> level;
            let rows = sqlx::query("SELECT idx, hash FROM ledger_nodes WHERE origin = $1 AND level = $2 AND idx >= $3 AND idx <= $4")
                .bind(origin)
                .bind(level as i32)
                .bind(lo as i64)
                .bind(hi as i64)
                .fetch_all(pool)
                .await?;
            for r in rows {
                let i: i64 = r.try_get("idx")?;
                // Undecodable (wrong SQL type) counts as a differing hash.
                stored.insert((level, i as u64), r.try_get("hash").unwrap_or_default());
            }
        }
        for (level, idx, hash) in created {
            match stored.get(&(level, idx)) {
                Some(h) if h.as_slice() == hash => {}
                Some(_) => faults.push(fault(
                    format!("node level {level} index {idx}"),
                    "stored hash differs from the recomputed tree",
                )),
                None => faults.push(fault(format!("node level {level} index {idx}"), "missing")),
            }
        }
        progress(range.size(), size);
    }
    if range.size() != size {
        faults.push(fault(
            "log size",
            format!(
                "the log claims {size} records but {} were read",
                range.size()
            ),
        ));
    }

    for (i, note) in unreadable.iter().enumerate() {
        let why = match crate::note::Note::parse(note) {
            Err(e) => e.to_string(),
            Ok(_) => "size is duplicated or unreadable".into(),
        };
        faults.push(fault(format!("imported checkpoint #{}", i + 1), why));
    }

    // Checkpoints and cosignatures.
    let verifier =
        log_verifier(origin, log.key().clone()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (mut cosignatures, mut unknown) = (0usize, 0usize);
    let mut previous: Option<(u64, Hash)> = None;
    for (cp_size, note) in &checkpoints {
        let at = format!("checkpoint at size {cp_size}");
        let (cp, parsed) = match open_checkpoint(note, &verifier) {
            Ok(ok) => ok,
            Err(e) => {
                faults.push(fault(at, e.to_string()));
                continue;
            }
        };
        if cp.size != *cp_size {
            faults.push(fault(&at, format!("note says size {}", cp.size)));
            continue;
        }
        match roots_at.get(&cp.size) {
            Some(root) if *root == cp.root => {}
            Some(_) => faults.push(fault(&at, "signed root does not match the records")),
            None => faults.push(fault(&at, "beyond the records that could be read")),
        }
        for line in parsed.signatures.iter().filter(|l| l.name != origin) {
            match witnesses
                .iter()
                .find(|w| w.name == line.name && w.key_id() == line.key_id)
            {
                Some(w) => match verify_cosignature(&parsed, w) {
                    Ok(_) => cosignatures += 1,
                    Err(e) => faults.push(fault(
                        format!("{at}, cosignature by {}", w.name),
                        e.to_string(),
                    )),
                },
                None => unknown += 1,
            }
        }
        if let Some((old, old_root)) = previous {
            let ok = log
                .consistency_proof(old, cp.size)
                .await
                .map(|p| verify_consistency(old, cp.size, &p, &old_root, &cp.root).is_ok())
                .unwrap_or(false);
            if !ok {
                faults.push(fault(
                    &at,
                    format!("not consistent with the checkpoint at size {old}"),
                ));
            }
        }
        previous = Some((cp.size, cp.root));
    }
    Ok(LogReport {
        origin: origin.into(),
        records: range.size(),
        root: range.root(),
        checkpoints: checkpoints.len(),
        cosignatures,
        unknown_cosigners: unknown,
        faults,
    })
}

/// A page's signatures, verified together.
///
/// ed25519-dalek's batch equation is cofactorless, like single
/// verification, so with the two extra checks `verify_strict` makes — no
/// small-order public key, no small-order `R` — a batch accepts exactly what
/// strict one-by-one verification accepts (up to the negligible chance of
/// the random coefficients cancelling).
#[derive(Default)]
struct SignatureBatch {
    messages: Vec<Vec<u8>>,
    signatures: Vec<ed25519_dalek::Signature>,
    keys: Vec<ed25519_dalek::VerifyingKey>,
    records: Vec<(i64, Vec<u8>)>,
}

impl SignatureBatch {
    /// Queue a record's two signatures, after the strict pre-checks.
    fn add(&mut self, parts: &RecordParts<'_>) -> Result<(), String> {
        let (actor_msg, counter_msg) = parts.messages();
        for (who, key, sig) in [
            (
                "actor",
                parts.record.actor.verifying_key(),
                &parts.actor_sig,
            ),
            (
                "counterparty",
                parts.record.counterparty.verifying_key(),
                &parts.counterparty_sig,
            ),
        ] {
            if key.is_weak() {
                return Err(format!("{who} key is a small-order point"));
            }
            let r = curve25519_dalek::edwards::CompressedEdwardsY(sig.r_bytes().to_owned());
            match r.decompress() {
                None => return Err(format!("{who} signature's R is not a curve point")),
                Some(p) if p.is_small_order() => {
                    return Err(format!("{who} signature's R is a small-order point"));
                }
                Some(_) => {}
            }
        }
        self.messages.push(actor_msg);
        self.messages.push(counter_msg);
        self.signatures.push(parts.actor_sig);
        self.signatures.push(parts.counterparty_sig);
        self.keys.push(*parts.record.actor.verifying_key());
        self.keys.push(*parts.record.counterparty.verifying_key());
        Ok(())
    }

    fn verify(&self) -> bool {
        if self.signatures.is_empty() {
            return true;
        }
        let refs: Vec<&[u8]> = self.messages.iter().map(Vec::as_slice).collect();
        ed25519_dalek::verify_batch(&refs, &self.signatures, &self.keys).is_ok()
    }
}
