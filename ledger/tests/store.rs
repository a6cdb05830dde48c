//! The SQLite store: durability of appends, proofs from the store, and
//! verification that names every kind of tampering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_iatp::testing::identity;
use mesh_iatp::{Identity, Timestamp};
use mesh_ledger::LogStore;
use mesh_ledger::checkpoint::{Checkpoint, cosign, witness_verifier};
use mesh_ledger::merkle::{
    MemoryTree, consistency_proof, inclusion_proof, infallible, verify_inclusion,
};
use mesh_ledger::note::{Note, NoteVerifier};
use mesh_ledger::store::{Store, StoreError};
use mesh_ledger::testing::{agents, record};
use mesh_ledger::verify::{LogReport, verify_log, verify_log_at};

mod common;
use common::backends;
use sqlx::Connection;

const ORIGIN: &str = "mesh.example/log/alice";

#[test]
fn postgres_is_exercised_in_ci() {
    if std::env::var_os("CI").is_some() {
        assert!(
            std::env::var_os("MESH_TEST_POSTGRES_URL").is_some(),
            "CI must run the store tests against PostgreSQL: .ci/run sets MESH_TEST_POSTGRES_URL"
        );
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: String,
    store: Store,
    log_key: Identity,
    witness: Identity,
}

async fn fixture_at(dir: tempfile::TempDir, path: String, n: u64) -> Fixture {
    let store = Store::open(&path).await.unwrap();
    let log_key = identity("log alice");
    let mut log = store.create_log(ORIGIN, log_key.did()).await.unwrap();
    let people = agents(5);
    let records: Vec<_> = (0..n).map(|i| record(i, &people)).collect();
    for chunk in records.chunks(40) {
        log.append(chunk).await.unwrap();
    }
    let witness = identity("witness bob");
    for size in [n / 2, n] {
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: log.root_at(size).await.unwrap(),
        };
        let mut note = cp.sign(&log_key).unwrap();
        note.signatures.push(cosign(
            &note.text,
            "witness.example/bob",
            &witness,
            Timestamp(5),
        ));
        log.add_checkpoint(&note.to_bytes()).await.unwrap();
    }
    Fixture {
        _dir: dir,
        path,
        store,
        log_key,
        witness,
    }
}

/// One fixture of `n` records per backend.
async fn fixtures(n: u64) -> Vec<Fixture> {
    let mut out = Vec::new();
    for (dir, path) in backends().await {
        out.push(fixture_at(dir, path, n).await);
    }
    out
}

fn witnesses(f: &Fixture) -> Vec<NoteVerifier> {
    vec![witness_verifier("witness.example/bob", f.witness.did().clone()).unwrap()]
}

async fn report(f: &Fixture) -> LogReport {
    verify_log(&f.store, ORIGIN, &witnesses(f), |_, _| {})
        .await
        .unwrap()
}

async fn raw(f: &Fixture) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let url = if f.path.starts_with("postgres") {
        f.path.clone()
    } else {
        format!("sqlite://{}", f.path)
    };
    sqlx::AnyConnection::connect(&url).await.unwrap()
}

/// Run raw SQL against the fixture's database, as an attacker with access would.
async fn tamper(f: &Fixture, sql: &str) {
    let mut conn = raw(f).await;
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Overwrite one blob.
async fn set_blob(f: &Fixture, table: &str, column: &str, filter: &str, bytes: Vec<u8>) {
    let mut conn = raw(f).await;
    let update = format!("UPDATE {table} SET {column} = $1 WHERE {filter}");
    let done = sqlx::query(sqlx::AssertSqlSafe(update))
        .bind(bytes)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

/// Flip the bits `mask` of byte `at` (negative: from the end) of one blob.
async fn flip(f: &Fixture, table: &str, column: &str, filter: &str, at: isize, mask: u8) {
    use sqlx::Row;
    let mut conn = raw(f).await;
    let select = format!("SELECT {column} FROM {table} WHERE {filter}");
    let row = sqlx::query(sqlx::AssertSqlSafe(select))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let mut bytes: Vec<u8> = row.try_get(0).unwrap();
    let i = if at < 0 {
        bytes.len() - at.unsigned_abs()
    } else {
        at as usize
    };
    bytes[i] ^= mask;
    drop(conn);
    set_blob(f, table, column, filter, bytes).await;
}

#[tokio::test]
async fn appended_records_survive_reopening_with_the_same_root() {
    for f in fixtures(100).await {
        let log = f.store.log(ORIGIN).await.unwrap();
        let mut reference = MemoryTree::new();
        for i in 0..100 {
            reference.append(record(i, &agents(5)).leaf_hash());
        }
        assert_eq!(log.size(), 100);
        assert_eq!(log.root(), reference.root());
        let reopened = Store::open(&f.path)
            .await
            .unwrap()
            .log(ORIGIN)
            .await
            .unwrap();
        assert_eq!(reopened.root(), reference.root());
        assert_eq!(reopened.record(42).await.unwrap(), record(42, &agents(5)));
    }
}

#[tokio::test]
async fn agent_facts_keep_order_replace_by_key_and_survive_reopening() {
    use mesh_ledger::store::StoredFact;
    for f in fixtures(3).await {
        let fact = |kind, key: &'static [u8], body: &'static [u8]| StoredFact { kind, key, body };
        f.store
            .save_facts(
                "owner",
                &[
                    fact("evidence", b"", b"e1"),
                    fact("report", b"alice", b"r1"),
                    fact("evidence", b"", b"e2"),
                ],
            )
            .await
            .unwrap();
        // A newer report from alice replaces hers; another owner is apart.
        f.store
            .save_facts("owner", &[fact("report", b"alice", b"r2")])
            .await
            .unwrap();
        f.store
            .save_facts("other", &[fact("ban", b"x", b"b1")])
            .await
            .unwrap();
        // An empty body deletes: a task stored, then forgotten.
        f.store
            .save_facts("owner", &[fact("running", b"t", b"t1")])
            .await
            .unwrap();
        f.store
            .save_facts("owner", &[fact("running", b"t", b"")])
            .await
            .unwrap();
        let reopened = Store::open(&f.path).await.unwrap();
        let facts = reopened.facts("owner").await.unwrap();
        assert_eq!(facts, vec![b"e1".to_vec(), b"e2".to_vec(), b"r2".to_vec()]);
        assert_eq!(reopened.facts("other").await.unwrap(), vec![b"b1".to_vec()]);
        // The leaf hashes of the log's tail, for the replay guard.
        let log = reopened.log(ORIGIN).await.unwrap();
        let tail = log.leaf_hashes(1).await.unwrap();
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[1], record(2, &agents(5)).leaf_hash());
    }
}

#[tokio::test]
async fn within_one_batch_the_last_fact_of_a_key_wins_as_one_by_one() {
    use mesh_ledger::store::StoredFact;
    for f in fixtures(1).await {
        let fact = |kind, key: &'static [u8], body: &'static [u8]| StoredFact { kind, key, body };
        f.store
            .save_facts(
                "batch",
                &[fact("report", b"bob", b"r0"), fact("held", b"g", b"h0")],
            )
            .await
            .unwrap();
        // Stored and forgotten, replaced twice, forgotten then stored again,
        // and evidence between them: all in one save.
        f.store
            .save_facts(
                "batch",
                &[
                    fact("running", b"t", b"t1"),
                    fact("report", b"bob", b"r1"),
                    fact("evidence", b"", b"e1"),
                    fact("running", b"t", b""),
                    fact("report", b"bob", b"r2"),
                    fact("held", b"g", b""),
                    fact("held", b"g", b"h1"),
                    // Same key bytes, another kind: a fact of its own.
                    fact("awaited", b"t", b"a1"),
                    fact("evidence", b"", b"e2"),
                ],
            )
            .await
            .unwrap();
        let facts = f.store.facts("batch").await.unwrap();
        let expected: Vec<Vec<u8>> = ["e1", "r2", "h1", "a1", "e2"]
            .iter()
            .map(|b| b.as_bytes().to_vec())
            .collect();
        assert_eq!(facts, expected);
    }
}

/// Batches are written as several statements of fixed shapes (128, 64,
/// …, 1 rows): every row must land once, in order, whatever the cut.
#[tokio::test]
async fn batches_longer_than_one_statement_land_whole_and_in_order() {
    use mesh_ledger::store::StoredFact;
    let people = agents(5);
    let origin = "mesh.example/log/batches";
    for f in fixtures(1).await {
        let mut log = f
            .store
            .create_log(origin, identity("log batches").did())
            .await
            .unwrap();
        let mut reference = MemoryTree::new();
        // 301 = 128 + 128 + 32 + 8 + 4 + 1 records in one append.
        let records: Vec<_> = (0..301).map(|i| record(i, &people)).collect();
        log.append(&records).await.unwrap();
        for r in &records {
            reference.append(r.leaf_hash());
        }
        let reopened = Store::open(&f.path)
            .await
            .unwrap()
            .log(origin)
            .await
            .unwrap();
        assert_eq!(reopened.size(), 301);
        assert_eq!(reopened.root(), reference.root());
        for i in [0, 127, 128, 255, 256, 300] {
            assert_eq!(reopened.record(i).await.unwrap(), records[i as usize]);
        }
        // 300 keyed facts, then 203 of them replaced and 50 forgotten
        // in one save (deletes and inserts both cut across statements).
        let keys: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let first: Vec<StoredFact<'_>> = keys
            .iter()
            .map(|k| StoredFact {
                kind: "held",
                key: k,
                body: b"v1",
            })
            .collect();
        f.store.save_facts("many", &first).await.unwrap();
        let second: Vec<StoredFact<'_>> = keys[..253]
            .iter()
            .enumerate()
            .map(|(i, k)| StoredFact {
                kind: "held",
                key: k,
                body: if i < 50 { b"" } else { b"v2" },
            })
            .collect();
        f.store.save_facts("many", &second).await.unwrap();
        let stored = f.store.facts("many").await.unwrap();
        // The untouched 47 first (saved earlier), then the 203 replaced.
        let expected: Vec<Vec<u8>> = std::iter::repeat_n(b"v1".to_vec(), 47)
            .chain(std::iter::repeat_n(b"v2".to_vec(), 203))
            .collect();
        assert_eq!(stored, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_saved_while_the_log_commits_beside_them_all_land() {
    use mesh_ledger::store::StoredFact;
    for f in fixtures(1).await {
        let mut log = f.store.log(ORIGIN).await.unwrap();
        let people = agents(5);
        // The log commits one record at a time on one connection while
        // facts are saved on another: each save reads before it writes,
        // and must wait for the lock rather than fail.
        let appends = tokio::spawn(async move {
            for i in 1..150 {
                log.append(&[record(i, &people)]).await.unwrap();
            }
        });
        for i in 0u32..60 {
            let key = i.to_be_bytes();
            let fact = [StoredFact {
                kind: "evidence",
                key: &key,
                body: b"e",
            }];
            f.store
                .save_facts("beside", &fact)
                .await
                .unwrap_or_else(|e| panic!("save {i} beside the log's commits: {e}"));
        }
        appends.await.unwrap();
        assert_eq!(f.store.facts("beside").await.unwrap().len(), 60);
    }
}

#[tokio::test]
async fn proofs_from_the_store_match_the_reference_and_verify() {
    for f in fixtures(77).await {
        let log = f.store.log(ORIGIN).await.unwrap();
        let mut reference = MemoryTree::new();
        for i in 0..77 {
            reference.append(record(i, &agents(5)).leaf_hash());
        }
        for (index, size) in [(0, 1), (5, 77), (76, 77), (40, 64), (13, 50)] {
            let p = log.inclusion_proof(index, size).await.unwrap();
            assert_eq!(p, infallible(inclusion_proof(&reference, index, size)));
            let root = log.root_at(size).await.unwrap();
            verify_inclusion(
                index,
                size,
                &record(index, &agents(5)).leaf_hash(),
                &p,
                &root,
            )
            .unwrap();
        }
        assert_eq!(
            log.consistency_proof(10, 77).await.unwrap(),
            infallible(consistency_proof(&reference, 10, 77))
        );
        assert!(matches!(
            log.inclusion_proof(77, 77).await,
            Err(StoreError::OutOfRange { .. })
        ));
        assert!(matches!(
            log.consistency_proof(10, 78).await,
            Err(StoreError::OutOfRange { .. })
        ));
    }
}

#[tokio::test]
async fn a_sound_log_verifies() {
    for f in fixtures(120).await {
        let r = report(&f).await;
        assert!(r.is_sound(), "{:?}", r.faults);
        assert_eq!(r.records, 120);
        assert_eq!(r.checkpoints, 2);
        assert_eq!(r.cosignatures, 2);
        // Without the witness key the cosignatures are counted as unknown, not trusted.
        let r = verify_log(&f.store, ORIGIN, &[], |_, _| {}).await.unwrap();
        assert_eq!((r.cosignatures, r.unknown_cosigners), (0, 2));
    }
}

#[tokio::test]
async fn a_flipped_byte_in_a_record_is_named() {
    for f in fixtures(30).await {
        // Flip one bit of record 7's countersignature (the leaf's last bytes).
        flip(&f, "ledger_records", "leaf", "idx = 7", -1, 0x01).await;
        let r = report(&f).await;
        assert!(
            r.faults.iter().any(|x| x.location == "record 7"),
            "{:?}",
            r.faults
        );
        // The recomputed tree no longer matches the stored leaf node either.
        assert!(
            r.faults
                .iter()
                .any(|x| x.location == "node level 0 index 7"),
            "{:?}",
            r.faults
        );
    }
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_named_not_fatal() {
    for f in fixtures(30).await {
        tamper(
            &f,
            "UPDATE ledger_records SET leaf = 'not bytes' WHERE idx = 4",
        )
        .await;
        let r = report(&f).await;
        assert!(
            r.faults.iter().any(|x| x.location == "record 4"),
            "{:?}",
            r.faults
        );
    }
}

#[tokio::test]
async fn a_flipped_node_hash_is_named() {
    for f in fixtures(30).await {
        flip(&f, "ledger_nodes", "hash", "level = 2 AND idx = 3", 0, 0x80).await;
        let r = report(&f).await;
        assert_eq!(r.faults.len(), 1, "{:?}", r.faults);
        assert_eq!(r.faults[0].location, "node level 2 index 3");
    }
}

#[tokio::test]
async fn a_tampered_checkpoint_or_cosignature_is_named() {
    for f in fixtures(30).await {
        // Re-sign size 30 with a different key: the log signature fails.
        let forged = Checkpoint {
            origin: ORIGIN.into(),
            size: 30,
            root: f.store.log(ORIGIN).await.unwrap().root(),
        }
        .sign(&identity("mallory"))
        .unwrap();
        set_blob(
            &f,
            "ledger_checkpoints",
            "note",
            "size = 30",
            forged.to_bytes(),
        )
        .await;
        let r = report(&f).await;
        assert!(
            r.faults
                .iter()
                .any(|x| x.location == "checkpoint at size 30"),
            "{:?}",
            r.faults
        );

        let g = &f;
        // A cosignature line for a different body.
        let log = g.store.log(ORIGIN).await.unwrap();
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size: 15,
            root: log.root_at(15).await.unwrap(),
        };
        let mut note = cp.sign(&g.log_key).unwrap();
        note.signatures.push(cosign(
            "other body\n",
            "witness.example/bob",
            &g.witness,
            Timestamp(5),
        ));
        set_blob(
            g,
            "ledger_checkpoints",
            "note",
            "size = 15",
            note.to_bytes(),
        )
        .await;
        let r = report(g).await;
        assert!(
            r.faults
                .iter()
                .any(|x| x.location == "checkpoint at size 15, cosignature by witness.example/bob"),
            "{:?}",
            r.faults
        );
    }
}

#[tokio::test]
async fn a_checkpoint_over_a_rewritten_history_is_named() {
    for f in fixtures(30).await {
        // The log signs a root for size 15 that is not the records' root.
        let bogus = Checkpoint {
            origin: ORIGIN.into(),
            size: 15,
            root: [7; 32],
        }
        .sign(&f.log_key)
        .unwrap();
        set_blob(
            &f,
            "ledger_checkpoints",
            "note",
            "size = 15",
            bogus.to_bytes(),
        )
        .await;
        let r = report(&f).await;
        let at15: Vec<_> = r
            .faults
            .iter()
            .filter(|x| x.location == "checkpoint at size 15")
            .collect();
        assert_eq!(at15.len(), 1, "{:?}", r.faults);
        assert!(at15[0].what.contains("does not match the records"));
        assert!(
            r.faults
                .iter()
                .any(|x| x.location == "checkpoint at size 30" && x.what.contains("not consistent"))
        );
    }
}

#[tokio::test]
async fn missing_records_and_a_wrong_size_are_named() {
    for f in fixtures(30).await {
        tamper(&f, "DELETE FROM ledger_records WHERE idx = 12").await;
        let r = report(&f).await;
        assert!(
            r.faults
                .iter()
                .any(|x| x.location == "record 12" && x.what.contains("missing")),
            "{:?}",
            r.faults
        );
        assert!(
            r.faults.iter().any(|x| x.location == "log size"),
            "{:?}",
            r.faults
        );
    }
}

#[tokio::test]
async fn a_growing_log_verifies_as_of_a_size_and_extra_records_are_named_offline() {
    for f in fixtures(60).await {
        // The log grows past the size a live verifier started from.
        let mut log = f.store.log(ORIGIN).await.unwrap();
        let people = agents(5);
        let more: Vec<_> = (60..80).map(|i| record(i, &people)).collect();
        log.append(&more).await.unwrap();
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size: 80,
            root: log.root(),
        };
        log.add_checkpoint(&cp.sign(&f.log_key).unwrap().to_bytes())
            .await
            .unwrap();

        let r = verify_log_at(&f.store, ORIGIN, 60, &witnesses(&f), |_, _| {})
            .await
            .unwrap();
        assert!(r.is_sound(), "{:?}", r.faults);
        assert_eq!((r.records, r.checkpoints), (60, 2));
        assert_eq!(r.root, log.root_at(60).await.unwrap());
        // Past the stored log: refused, not guessed.
        match verify_log_at(&f.store, ORIGIN, 81, &[], |_, _| {}).await {
            Err(StoreError::OutOfRange {
                value: 81,
                size: 80,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // A record altered past the verified size is not this run's concern…
        flip(&f, "ledger_records", "leaf", "idx = 70", 10, 0x01).await;
        let r = verify_log_at(&f.store, ORIGIN, 60, &witnesses(&f), |_, _| {})
            .await
            .unwrap();
        assert!(r.is_sound(), "{:?}", r.faults);
        // …but a whole-log audit names it, and records stored beyond the
        // size the log claims are a fault there.
        tamper(&f, "UPDATE ledger_logs SET size = 75").await;
        let r = report(&f).await;
        assert!(
            r.faults.iter().any(|x| x.location == "record 70"),
            "{:?}",
            r.faults
        );
        assert!(
            r.faults
                .iter()
                .any(|x| x.location == "log size" && x.what.contains("claims 75 records but 80")),
            "{:?}",
            r.faults
        );
    }
}

#[tokio::test]
async fn checkpoints_must_fit_the_log_and_logs_are_unique() {
    for f in fixtures(10).await {
        let mut log = f.store.log(ORIGIN).await.unwrap();
        let wrong_root = Checkpoint {
            origin: ORIGIN.into(),
            size: 10,
            root: [1; 32],
        }
        .sign(&f.log_key)
        .unwrap();
        assert!(matches!(
            log.add_checkpoint(&wrong_root.to_bytes()).await,
            Err(StoreError::Checkpoint(_))
        ));
        let too_big = Checkpoint {
            origin: ORIGIN.into(),
            size: 11,
            root: [1; 32],
        }
        .sign(&f.log_key)
        .unwrap();
        assert!(log.add_checkpoint(&too_big.to_bytes()).await.is_err());
        let other_key = Checkpoint {
            origin: ORIGIN.into(),
            size: 10,
            root: log.root(),
        }
        .sign(&identity("x"))
        .unwrap();
        assert!(matches!(
            log.add_checkpoint(&other_key.to_bytes()).await,
            Err(StoreError::Checkpoint(_))
        ));
        assert!(matches!(
            f.store.create_log(ORIGIN, f.log_key.did()).await,
            Err(StoreError::LogExists(_))
        ));
        assert!(matches!(
            f.store.log("nope").await,
            Err(StoreError::UnknownLog(_))
        ));
        let latest = Note::parse(&log.latest_checkpoint().await.unwrap().unwrap()).unwrap();
        assert!(latest.text.starts_with(&format!("{ORIGIN}\n10\n")));
    }
}

#[tokio::test]
async fn a_stale_writer_appends_nothing() {
    for f in fixtures(10).await {
        let mut a = f.store.log(ORIGIN).await.unwrap();
        let mut b = f.store.log(ORIGIN).await.unwrap();
        let people = agents(5);
        a.append(&[record(10, &people)]).await.unwrap();
        let err = b
            .append(&[record(100, &people), record(101, &people)])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Database(_) | StoreError::Corrupt(_)),
            "{err}"
        );
        let fresh = f.store.log(ORIGIN).await.unwrap();
        assert_eq!(fresh.size(), 11);
        assert!(report(&f).await.is_sound());
    }
}

/// A record "signed" under the identity point (a small-order key): with
/// A = 0, any R = [s]B verifies for any message under a plain batch or
/// cofactorless check. Strict verification refuses it, and so must `verify`.
#[tokio::test]
async fn a_record_under_a_small_order_key_is_refused_by_the_batch_verifier() {
    use ciborium::Value;
    use curve25519_dalek::{constants::ED25519_BASEPOINT_POINT, scalar::Scalar};
    use mesh_ledger::record::{ActionKind, ActionRecord, COUNTERPARTY_DOMAIN};

    let mut identity_point = [0u8; 32];
    identity_point[0] = 1; // y = 1: the neutral element, order 1
    let weak = mesh_iatp::Did::from_public_key_bytes(&identity_point).unwrap();
    let bob = identity("agent bob");
    let rec = ActionRecord {
        kind: ActionKind::Invoke,
        actor: weak,
        counterparty: bob.did().clone(),
        grant: None,
        payload_digest: [1; 32],
        timestamp: Timestamp(10),
        nonce: [2; 16],
    };
    let signed = rec.signing_bytes().unwrap();
    let s = Scalar::from(5u8);
    let r = (ED25519_BASEPOINT_POINT * s).compress();
    let forged_actor_sig = [r.to_bytes(), s.to_bytes()].concat();
    let counter_sig = bob
        .sign(&[COUNTERPARTY_DOMAIN, &signed].concat())
        .to_bytes()
        .to_vec();
    let leaf = mesh_iatp::cbor::value_to_canonical_vec(Value::Map(vec![
        (
            Value::Text("record".into()),
            Value::serialized(&rec).unwrap(),
        ),
        (
            Value::Text("actor_sig".into()),
            Value::Bytes(forged_actor_sig),
        ),
        (
            Value::Text("counterparty_sig".into()),
            Value::Bytes(counter_sig),
        ),
    ]))
    .unwrap();
    // The forged signature does satisfy the cofactorless equation.
    assert!(
        mesh_ledger::record::CoSignedRecord::from_bytes(&leaf).is_err(),
        "strict refuses it"
    );

    for f in fixtures(10).await {
        set_blob(&f, "ledger_records", "leaf", "idx = 3", leaf.clone()).await;
        let r = report(&f).await;
        assert!(
            r.faults
                .iter()
                .any(|x| x.location == "record 3" && x.what.contains("small-order")),
            "{:?}",
            r.faults
        );
    }
}

#[tokio::test]
async fn witness_state_persists_and_never_moves_backwards() {
    for (_dir, path) in backends().await {
        let store = Store::open(&path).await.unwrap();
        assert!(store.witnessed().await.unwrap().is_empty());
        store.save_witnessed("log-a", 5, &[5; 32]).await.unwrap();
        store.save_witnessed("log-b", 1, &[1; 32]).await.unwrap();
        store.save_witnessed("log-a", 9, &[9; 32]).await.unwrap();
        store.save_witnessed("log-a", 7, &[7; 32]).await.unwrap(); // older: ignored
        let reopened = Store::open(&path).await.unwrap();
        assert_eq!(
            reopened.witnessed().await.unwrap(),
            vec![
                ("log-a".to_string(), 9, [9; 32]),
                ("log-b".to_string(), 1, [1; 32])
            ]
        );
    }
}
