//! Verification on every core: a log longer than one chunk of signatures is
//! checked by several workers, and the report (faults and their order) is
//! the same whichever finishes first — from the database and from an
//! export alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_iatp::testing::identity;
use mesh_ledger::export::{export, verify_export};
use mesh_ledger::store::Store;
use mesh_ledger::testing::{agents, record};
use mesh_ledger::verify::{LogReport, verify_log};
use mesh_ledger::{CoSignedRecord, LogStore};
use sqlx::Connection;

const ORIGIN: &str = "mesh.example/log/workers";
/// Spans three chunks of 2,000 records and ends in a partial one.
const RECORDS: u64 = 4_500;
/// Damaged records: in the first, second and last chunk.
const DAMAGED: [u64; 3] = [5, 2_345, 4_499];

/// A SQLite ledger in `dir` holding one log of [`RECORDS`] records among
/// `agents`: its path, the store, the log's root and the records.
async fn ledger(
    dir: &tempfile::TempDir,
    agents_in_it: usize,
) -> (
    String,
    Store,
    mesh_ledger::merkle::Hash,
    Vec<CoSignedRecord>,
) {
    let path = dir.path().join("w.db").to_string_lossy().into_owned();
    let store = Store::open(&path).await.unwrap();
    let mut log = store
        .create_log(ORIGIN, identity("log workers").did())
        .await
        .unwrap();
    let people = agents(agents_in_it);
    let records: Vec<_> = (0..RECORDS).map(|i| record(i, &people)).collect();
    for chunk in records.chunks(1_000) {
        log.append(chunk).await.unwrap();
    }
    (path, store, log.root(), records)
}

async fn damaged_store(dir: &tempfile::TempDir) -> Store {
    let (path, store, _, records) = ledger(dir, 6).await;
    // Flip a bit of each damaged record's countersignature, as an attacker
    // with the database would.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&format!("sqlite://{path}"))
        .await
        .unwrap();
    for idx in DAMAGED {
        let mut leaf = records[idx as usize].bytes().to_vec();
        let last = leaf.len() - 1;
        leaf[last] ^= 0x01;
        let done = sqlx::query("UPDATE ledger_records SET leaf = $1 WHERE idx = $2")
            .bind(leaf)
            .bind(idx as i64)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
    }
    store
}

fn locations(report: &LogReport) -> Vec<String> {
    report.faults.iter().map(|f| f.location.clone()).collect()
}

#[tokio::test]
async fn faults_found_by_several_workers_are_reported_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = damaged_store(&dir).await;

    let first = verify_log(&store, ORIGIN, &[], |_, _| {}).await.unwrap();
    assert_eq!(first.records, RECORDS);
    // Each damaged record's countersignature, in index order, then the
    // page's tree nodes the damaged leaves no longer match.
    let records: Vec<String> = DAMAGED.iter().map(|i| format!("record {i}")).collect();
    let nodes: Vec<String> = DAMAGED
        .iter()
        .map(|i| format!("node level 0 index {i}"))
        .collect();
    let found = locations(&first);
    assert_eq!(found[..3], records[..], "{:?}", first.faults);
    for (fault, idx) in first.faults.iter().zip(DAMAGED) {
        assert!(
            fault.what.contains("countersignature") || fault.what.contains("signature"),
            "record {idx}: {fault}"
        );
    }
    assert!(
        nodes.iter().all(|n| found.contains(n)),
        "{:?}",
        first.faults
    );

    // The same report every time, whichever worker finishes first.
    for _ in 0..3 {
        let again = verify_log(&store, ORIGIN, &[], |_, _| {}).await.unwrap();
        assert_eq!(again, first);
    }

    // An export of the same ledger (damaged records and all) verified where
    // it lies names the same records in the same order.
    let mut bytes = Vec::new();
    export(&store, &mut bytes).await.unwrap();
    let reports = verify_export(std::io::Cursor::new(bytes), &[], |_, _, _| {}).unwrap();
    assert_eq!(reports.len(), 1);
    let from_export: Vec<String> = locations(&reports[0])
        .into_iter()
        .filter(|l| l.starts_with("record "))
        .collect();
    assert_eq!(from_export, records);
}

#[tokio::test]
async fn a_sound_log_over_several_chunks_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (_, store, root, _) = ledger(&dir, 4).await;
    let report = verify_log(&store, ORIGIN, &[], |_, _| {}).await.unwrap();
    assert!(report.is_sound(), "{:?}", report.faults);
    assert_eq!(report.records, RECORDS);
    assert_eq!(report.root, root);
}
