//! The export format: round trip, and every way a file can be damaged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_ledger::export::{ExportError, MAGIC, export, import};
use mesh_ledger::store::Store;
use mesh_ledger::verify::verify_log;

const ORIGIN: &str = mesh_ledger::populate::ORIGIN;

async fn exported(records: u64) -> (tempfile::TempDir, Vec<u8>, [u8; 32]) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db").to_string_lossy().into_owned();
    mesh_ledger::populate::populate(&db, records, 4, 50, &mut std::io::sink())
        .await
        .unwrap();
    let store = Store::open(&db).await.unwrap();
    let root = store.log(ORIGIN).await.unwrap().root();
    let mut bytes = Vec::new();
    assert_eq!(export(&store, &mut bytes).await.unwrap(), records);
    (dir, bytes, root)
}

async fn load(
    bytes: &[u8],
) -> Result<(tempfile::TempDir, Store, Vec<mesh_ledger::verify::Fault>), ExportError> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("i.db").to_string_lossy())
        .await
        .unwrap();
    let faults = import(&mut &bytes[..], &store).await?;
    Ok((dir, store, faults))
}

/// Offsets of the RECORD frames (type 0x02) in an export.
fn record_frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = MAGIC.len() + 4;
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        if bytes[at] == 0x02 {
            out.push((at, len));
        }
        at += 5 + len;
    }
    out
}

#[tokio::test]
async fn an_export_round_trips_and_verifies() {
    let (_d, bytes, root) = exported(120).await;
    assert!(bytes.starts_with(b"mesh-ledger export\n\x00\x00\x00\x01"));
    let (_i, store, faults) = load(&bytes).await.unwrap();
    assert!(faults.is_empty());
    let report = verify_log(
        &store,
        ORIGIN,
        &[mesh_ledger::populate::witness()],
        |_, _| {},
    )
    .await
    .unwrap();
    assert!(report.is_sound(), "{:?}", report.faults);
    assert_eq!(
        (
            report.records,
            report.root,
            report.checkpoints,
            report.cosignatures
        ),
        (120, root, 3, 3)
    );
}

#[tokio::test]
async fn a_damaged_record_in_an_export_is_named() {
    let (_d, mut bytes, _) = exported(60).await;
    let (at, len) = record_frames(&bytes)[17];
    bytes[at + 5 + len - 2] ^= 0x10;
    let (_i, store, _) = load(&bytes).await.unwrap();
    let report = verify_log(&store, ORIGIN, &[], |_, _| {}).await.unwrap();
    assert!(
        report.faults.iter().any(|f| f.location == "record 17"),
        "{:?}",
        report.faults
    );
}

#[tokio::test]
async fn a_dropped_record_is_named_by_size_and_checkpoints() {
    let (_d, bytes, _) = exported(60).await;
    let (at, len) = record_frames(&bytes)[59];
    let shorter = [&bytes[..at], &bytes[at + 5 + len..]].concat();
    let (_i, store, faults) = load(&shorter).await.unwrap();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].location, format!("export, log {ORIGIN}"));
    assert!(faults[0].what.contains("declares 60 records but holds 59"));
    let report = verify_log(&store, ORIGIN, &[], |_, _| {}).await.unwrap();
    assert!(
        report
            .faults
            .iter()
            .any(|f| f.location == "checkpoint at size 60"),
        "{:?}",
        report.faults
    );
}

#[tokio::test]
async fn malformed_files_are_refused_without_allocating() {
    let (_d, bytes, _) = exported(10).await;
    // Not an export, or another version.
    assert!(matches!(
        load(b"SQLite format 3\0 and more bytes").await,
        Err(ExportError::NotAnExport(_))
    ));
    let mut v2 = bytes.clone();
    v2[MAGIC.len() + 3] = 2;
    assert!(matches!(load(&v2).await, Err(ExportError::NotAnExport(2))));
    // Truncated anywhere before END.
    for cut in [
        bytes.len() - 1,
        bytes.len() - 5,
        bytes.len() / 2,
        MAGIC.len() + 6,
    ] {
        assert!(
            matches!(load(&bytes[..cut]).await, Err(ExportError::Frame { .. })),
            "cut at {cut}"
        );
    }
    // Bytes after END.
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(
        matches!(load(&trailing).await, Err(ExportError::Frame { what, .. }) if what.contains("after the END"))
    );
    // A frame claiming 4 GiB, and an unknown frame type.
    let (at, _) = record_frames(&bytes)[0];
    let mut huge = bytes.clone();
    huge[at + 1..at + 5].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(
        matches!(load(&huge).await, Err(ExportError::Frame { what, .. }) if what.contains("exceeds"))
    );
    let mut unknown = bytes.clone();
    unknown[at] = 0x7f;
    assert!(
        matches!(load(&unknown).await, Err(ExportError::Frame { what, .. }) if what.contains("unknown frame type"))
    );
}
