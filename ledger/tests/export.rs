//! The export format: round trip, and every way a file can be damaged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_ledger::LogStore;
use mesh_ledger::MemoryLog;
use mesh_ledger::export::{ExportError, MAGIC, export, read_export, verify_export};
use mesh_ledger::store::Store;
use mesh_ledger::verify::LogReport;
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

/// Verify an export where it lies.
fn verify(bytes: &[u8]) -> Result<Vec<LogReport>, ExportError> {
    verify_export(
        std::io::Cursor::new(bytes),
        &[mesh_ledger::populate::witness()],
        |_, _, _| {},
    )
}

/// Both readers: verifying and loading.
fn load(
    bytes: &[u8],
) -> (
    Result<Vec<LogReport>, ExportError>,
    Result<Vec<MemoryLog>, ExportError>,
) {
    (verify(bytes), read_export(bytes))
}

fn faults(bytes: &[u8]) -> Vec<String> {
    let reports = verify(bytes).unwrap();
    assert_eq!(reports.len(), 1);
    reports[0].faults.iter().map(ToString::to_string).collect()
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

/// The same log twice in one file is refused by both readers, not one of
/// the two chosen.
#[tokio::test]
async fn a_second_log_frame_for_an_origin_is_refused() {
    let (_dir, bytes, _) = exported(2).await;
    let head = MAGIC.len() + 4;
    let body = &bytes[head..bytes.len() - 5];
    let mut twice = bytes[..head].to_vec();
    twice.extend_from_slice(body);
    twice.extend_from_slice(body);
    twice.extend_from_slice(&bytes[bytes.len() - 5..]);
    let (verified, read) = load(&twice);
    for e in [verified.unwrap_err(), read.unwrap_err()] {
        assert!(
            e.to_string()
                .contains(&format!("a second LOG frame for {ORIGIN}")),
            "{e}"
        );
    }
}

/// Every single-bit change of an export is seen: the file is refused, a
/// log has a fault, or fewer cosignatures verify (a changed cosignature
/// line names a witness the verifier was not given).
#[tokio::test]
async fn every_bit_of_an_export_is_covered() {
    let (_dir, bytes, _) = exported(2).await;
    let before = verify(&bytes).unwrap();
    assert!(before.iter().all(LogReport::is_sound));
    let cosignatures = before[0].cosignatures;
    assert!(cosignatures > 0);
    for (i, mask, changed) in mesh_iatp::testing::every_bit_flip(&bytes) {
        let unseen = verify(&changed)
            .is_ok_and(|r| r.len() == 1 && r[0].is_sound() && r[0].cosignatures == cosignatures);
        assert!(!unseen, "byte {i} ^ {mask:#04x}");
    }
}

#[tokio::test]
async fn an_export_verifies_where_it_lies_exactly_as_its_database_does() {
    let (dir, bytes, root) = exported(120).await;
    assert!(bytes.starts_with(b"mesh-ledger export\n\x00\x00\x00\x01"));
    let reports = verify(&bytes).unwrap();
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
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
    let store = Store::open_read_only(&dir.path().join("l.db").to_string_lossy())
        .await
        .unwrap();
    let from_db = verify_log(
        &store,
        ORIGIN,
        &[mesh_ledger::populate::witness()],
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(&from_db, report);
}

#[tokio::test]
async fn a_loaded_export_answers_proofs_like_its_database() {
    let (dir, bytes, root) = exported(75).await;
    let logs = read_export(&bytes[..]).unwrap();
    assert_eq!(logs.len(), 1);
    let log = &logs[0];
    let store = Store::open_read_only(&dir.path().join("l.db").to_string_lossy())
        .await
        .unwrap();
    let db = store.log(ORIGIN).await.unwrap();
    assert_eq!((log.origin(), log.size(), log.root()), (ORIGIN, 75, root));
    assert_eq!(
        log.latest_checkpoint().await.unwrap(),
        db.latest_checkpoint().await.unwrap()
    );
    for (index, size) in [(0, 1), (3, 50), (74, 75), (40, 64)] {
        assert_eq!(
            log.inclusion_proof(index, size).await.unwrap(),
            db.inclusion_proof(index, size).await.unwrap()
        );
        assert_eq!(
            log.record(index).await.unwrap().bytes(),
            db.record(index).await.unwrap().bytes()
        );
    }
    assert_eq!(
        log.consistency_proof(50, 75).await.unwrap(),
        db.consistency_proof(50, 75).await.unwrap()
    );
}

#[tokio::test]
async fn a_damaged_record_in_an_export_is_named() {
    let (_d, mut bytes, _) = exported(60).await;
    let (at, len) = record_frames(&bytes)[17];
    bytes[at + 5 + len - 2] ^= 0x10;
    let found = faults(&bytes);
    assert!(
        found.iter().any(|f| f.starts_with("record 17:")),
        "{found:?}"
    );
    let refused = read_export(&bytes[..]).unwrap_err().to_string();
    assert!(refused.contains("record 17"), "{refused}");
}

#[tokio::test]
async fn a_dropped_record_is_named_by_size_and_checkpoints() {
    let (_d, bytes, _) = exported(60).await;
    let (at, len) = record_frames(&bytes)[59];
    let shorter = [&bytes[..at], &bytes[at + 5 + len..]].concat();
    let found = faults(&shorter);
    assert!(
        found.contains(&"log size: the log claims 60 records but 59 were read".to_string()),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("checkpoint at size 60: beyond the records")),
        "{found:?}"
    );
    let refused = read_export(&shorter[..]).unwrap_err().to_string();
    // The size-60 checkpoint comes before the end of the log shows the count.
    assert!(
        refused.contains("size 60 is beyond the log size 59"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_forged_or_repeated_checkpoint_in_an_export_is_named() {
    let (_d, bytes, _) = exported(60).await;
    // The last frame before END is the latest checkpoint (size 60).
    let mut frames = Vec::new();
    let mut at = MAGIC.len() + 4;
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        frames.push((at, len));
        at += 5 + len;
    }
    let (cp_at, cp_len) = frames[frames.len() - 2];
    assert_eq!(bytes[cp_at], 0x03);
    let end = frames[frames.len() - 1].0;
    // Repeated: the same note twice.
    let twice = [&bytes[..end], &bytes[cp_at..end], &bytes[end..]].concat();
    let found = faults(&twice);
    assert!(
        found
            .iter()
            .any(|f| f.contains("checkpoint #3") && f.contains("a second note for size 60")),
        "{found:?}"
    );
    // Forged: its signed root changed (the log signature no longer verifies).
    let mut forged = bytes.clone();
    let note = String::from_utf8(bytes[cp_at + 5..cp_at + 5 + cp_len].to_vec()).unwrap();
    let root_line = note.lines().nth(2).unwrap();
    let other = if root_line.starts_with('A') { "B" } else { "A" };
    let changed = note.replacen(root_line, &format!("{other}{}", &root_line[1..]), 1);
    forged[cp_at + 5..cp_at + 5 + cp_len].copy_from_slice(changed.as_bytes());
    let found = faults(&forged);
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("checkpoint at size 60:")),
        "{found:?}"
    );
    assert!(read_export(&forged[..]).is_err());
}

#[tokio::test]
async fn malformed_files_are_refused_without_allocating() {
    let (_d, bytes, _) = exported(10).await;
    let refused = |bytes: &[u8], what: &dyn Fn(&ExportError) -> bool| {
        let (verified, read) = load(bytes);
        let (a, b) = (verified.unwrap_err(), read.unwrap_err());
        assert!(what(&a), "verify_export: {a}");
        assert!(what(&b), "read_export: {b}");
    };
    let frame = |needle: &'static str| move |e: &ExportError| matches!(e, ExportError::Frame { what, .. } if what.contains(needle));
    // Not an export, or another version.
    refused(b"SQLite format 3\0 and more bytes", &|e| {
        matches!(e, ExportError::NotAnExport(_))
    });
    let mut v2 = bytes.clone();
    v2[MAGIC.len() + 3] = 2;
    refused(&v2, &|e| matches!(e, ExportError::NotAnExport(2)));
    // Truncated anywhere before END.
    for cut in [
        bytes.len() - 1,
        bytes.len() - 5,
        bytes.len() / 2,
        MAGIC.len() + 6,
    ] {
        refused(&bytes[..cut], &|e| matches!(e, ExportError::Frame { .. }));
    }
    // Bytes after END.
    let mut trailing = bytes.clone();
    trailing.push(0);
    refused(&trailing, &frame("after the END"));
    // A frame claiming 4 GiB, and an unknown frame type.
    let (at, _) = record_frames(&bytes)[0];
    let mut huge = bytes.clone();
    huge[at + 1..at + 5].copy_from_slice(&u32::MAX.to_be_bytes());
    refused(&huge, &frame("exceeds"));
    let mut unknown = bytes.clone();
    unknown[at] = 0x7f;
    refused(&unknown, &frame("unknown frame type"));
}

mod damaged {
    use super::*;
    use proptest::prelude::*;

    /// A small valid export, made once.
    fn valid() -> &'static [u8] {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(exported(12))
                .1
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Any bytes flipped, any cut: both readers answer (a report, a
        /// refusal) and never panic; a damaged file never reads as sound
        /// and unchanged.
        #[test]
        fn both_readers_survive_any_damage(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..6),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut bytes = valid().to_vec();
            for (at, mask) in &flips {
                let i = at.index(bytes.len());
                bytes[i] ^= mask;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            let damaged = bytes != valid();
            let verified = verify_export(std::io::Cursor::new(&bytes), &[], |_, _, _| {});
            let read = read_export(&bytes[..]);
            if damaged {
                let sound = verified.as_ref().is_ok_and(|r| r.iter().all(LogReport::is_sound));
                // A flip inside a cosignature line of a witness we were not
                // given changes nothing that is checked; anything else shows.
                if sound {
                    prop_assert!(read.is_ok());
                }
            } else {
                prop_assert!(verified.unwrap().iter().all(LogReport::is_sound));
                prop_assert!(read.is_ok());
            }
        }
    }
}
