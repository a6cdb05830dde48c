//! Offline verification of a stored log: every record's two signatures,
//! every stored tree node against the recomputed tree, every checkpoint's
//! signature and root, every cosignature from a known witness, and the
//! consistency of successive checkpoints. Each fault is named by where it
//! is; nothing stored is trusted. The checks themselves are
//! [`crate::audit::Audit`]'s; this module walks a database for it.

use sqlx::Row;

use crate::audit::{Audit, fault};
pub use crate::audit::{Fault, LogReport};
use crate::log_store::LogStore;
use crate::note::NoteVerifier;
use crate::store::{Log, Store, StoreError};

/// Records read per query.
const PAGE: i64 = 10_000;

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
    let rows = sqlx::query(
        "SELECT size, note FROM ledger_checkpoints WHERE origin = $1 AND size <= $2 ORDER BY size",
    )
    .bind(origin)
    .bind(bound)
    .fetch_all(pool)
    .await?;
    let mut checkpoints: Vec<(u64, Vec<u8>)> = Vec::with_capacity(rows.len());
    let mut negative = Vec::new();
    for r in rows {
        let s: i64 = r.try_get("size")?;
        match u64::try_from(s) {
            Ok(size) => checkpoints.push((size, r.try_get("note")?)),
            Err(_) => negative.push(fault(
                format!("checkpoint at size {s}"),
                "stored under a negative size",
            )),
        }
    }
    let mut audit = Audit::new(origin, log.key(), checkpoints);
    loop {
        let first = audit.size();
        let page = sqlx::query("SELECT idx, leaf FROM ledger_records WHERE origin = $1 AND idx >= $2 AND idx < $3 ORDER BY idx LIMIT $4")
            .bind(origin)
            .bind(first as i64)
            .bind(bound)
            .bind(PAGE)
            .fetch_all(pool)
            .await?;
        if page.is_empty() {
            break;
        }
        let mut created: Vec<(u32, u64, crate::merkle::Hash)> = Vec::new();
        let mut stop = false;
        for row in page {
            let idx: i64 = row.try_get("idx")?;
            let next = audit.size();
            if u64::try_from(idx).ok() != Some(next) {
                audit.push_fault(fault(
                    format!("record {next}"),
                    "missing; later records cannot be placed in the tree",
                ));
                stop = true;
                break;
            }
            // A value of the wrong SQL type is a fault to name, not a reason to stop.
            let leaf: Vec<u8> = match row.try_get("leaf") {
                Ok(bytes) => bytes,
                Err(e) => {
                    audit.push_fault(fault(
                        format!("record {idx}"),
                        format!("stored value is not bytes ({e})"),
                    ));
                    Vec::new()
                }
            };
            created.extend(audit.record(&leaf));
        }
        audit.end_page();
        // Stored nodes for this page, compared with the recomputed ones.
        let next = audit.size();
        let mut stored: std::collections::BTreeMap<(u32, u64), Vec<u8>> = Default::default();
        let max_level = created.iter().map(|c| c.0).max().unwrap_or(0);
        for level in 0..=max_level {
            let lo = first >> level;
            let hi = next >> level;
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
                Some(_) => audit.push_fault(fault(
                    format!("node level {level} index {idx}"),
                    "stored hash differs from the recomputed tree",
                )),
                None => {
                    audit.push_fault(fault(format!("node level {level} index {idx}"), "missing"))
                }
            }
        }
        progress(next, size);
        if stop {
            break;
        }
    }
    for f in negative {
        audit.push_fault(f);
    }
    Ok(audit.finish(size, witnesses))
}

/// Rows of records, tree nodes and checkpoints whose origin is no log in
/// the ledger (one altered origin moves a checkpoint out of every log's
/// view): a report per such origin, each table's rows a fault. Empty for a
/// sound ledger.
pub async fn orphan_rows(store: &Store) -> Result<Vec<LogReport>, StoreError> {
    let mut by_origin: std::collections::BTreeMap<String, Vec<Fault>> = Default::default();
    const NOT_IN_LOGS: [(&str, &str); 3] = [
        (
            "ledger_records",
            "SELECT origin, COUNT(*) AS n FROM ledger_records WHERE origin NOT IN \
             (SELECT origin FROM ledger_logs) GROUP BY origin ORDER BY origin",
        ),
        (
            "ledger_nodes",
            "SELECT origin, COUNT(*) AS n FROM ledger_nodes WHERE origin NOT IN \
             (SELECT origin FROM ledger_logs) GROUP BY origin ORDER BY origin",
        ),
        (
            "ledger_checkpoints",
            "SELECT origin, COUNT(*) AS n FROM ledger_checkpoints WHERE origin NOT IN \
             (SELECT origin FROM ledger_logs) GROUP BY origin ORDER BY origin",
        ),
    ];
    for (table, query) in NOT_IN_LOGS {
        let rows = sqlx::query(query).fetch_all(store.pool()).await?;
        for r in rows {
            let origin: String = r.try_get("origin")?;
            let n: i64 = r.try_get("n")?;
            by_origin.entry(origin).or_default().push(fault(
                table,
                format!("{n} rows for a log the ledger does not have"),
            ));
        }
    }
    Ok(by_origin
        .into_iter()
        .map(|(origin, faults)| LogReport {
            origin,
            records: 0,
            root: crate::merkle::empty_root(),
            checkpoints: 0,
            cosignatures: 0,
            unknown_cosigners: 0,
            latest: None,
            faults,
        })
        .collect())
}
