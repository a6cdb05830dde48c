//! The `LogStore` contract, run on every implementation: the in-memory log,
//! SQLite, and PostgreSQL when `MESH_TEST_POSTGRES_URL` names a server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_iatp::testing::identity;
use mesh_ledger::checkpoint::Checkpoint;
use mesh_ledger::merkle::{
    MemoryTree, consistency_proof, empty_root, inclusion_proof, infallible, root,
};
use mesh_ledger::note::Note;
use mesh_ledger::store::Store;
use mesh_ledger::testing::{agents, record};
use mesh_ledger::{LogStore, MemoryLog, StoreError};

mod common;

const ORIGIN: &str = "mesh.example/log/contract";

/// Everything a `LogStore` promises, checked on `log` (empty, of `ORIGIN`,
/// keyed by `identity("log contract")`).
async fn contract(log: &mut dyn LogStore) {
    let key = identity("log contract");
    assert_eq!((log.origin(), log.key()), (ORIGIN, key.did()));
    assert_eq!((log.size(), log.root()), (0, empty_root()));
    assert_eq!(log.append(&[]).await.unwrap(), 0);

    let people = agents(4);
    let records: Vec<_> = (0..45).map(|i| record(i, &people)).collect();
    let mut reference = MemoryTree::new();
    for chunk in records.chunks(7) {
        let size = log.append(chunk).await.unwrap();
        for r in chunk {
            reference.append(r.leaf_hash());
        }
        assert_eq!(size, reference.size());
        assert_eq!(log.root(), reference.root());
        assert_eq!(log.range().root(), reference.root());
    }

    assert_eq!(log.record(44).await.unwrap().bytes(), records[44].bytes());
    assert!(matches!(
        log.record(45).await,
        Err(StoreError::OutOfRange { .. })
    ));
    let tail = log.leaf_hashes(40).await.unwrap();
    assert_eq!(tail.len(), 5);
    assert_eq!(tail[0], records[40].leaf_hash());
    assert!(log.leaf_hashes(45).await.unwrap().is_empty());

    for size in [0, 1, 16, 31, 45] {
        assert_eq!(
            log.root_at(size).await.unwrap(),
            infallible(root(&reference, size))
        );
    }
    for (index, size) in [(0, 1), (3, 45), (44, 45), (20, 32)] {
        assert_eq!(
            log.inclusion_proof(index, size).await.unwrap(),
            infallible(inclusion_proof(&reference, index, size))
        );
    }
    assert_eq!(
        log.consistency_proof(13, 45).await.unwrap(),
        infallible(consistency_proof(&reference, 13, 45))
    );
    for refused in [
        log.root_at(46).await.err(),
        log.inclusion_proof(45, 45).await.err(),
        log.inclusion_proof(0, 46).await.err(),
        log.consistency_proof(20, 46).await.err(),
        log.consistency_proof(30, 20).await.err(),
    ] {
        assert!(
            matches!(refused, Some(StoreError::OutOfRange { .. })),
            "{refused:?}"
        );
    }

    // Checkpoints: only ones signed by the log key over the log's roots.
    assert_eq!(log.latest_checkpoint().await.unwrap(), None);
    let signed = |size: u64, root, by: &mesh_iatp::Identity| {
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
        }
        .sign(by)
        .unwrap()
        .to_bytes()
    };
    let at = |size| infallible(root(&reference, size));
    for (note, why) in [
        (signed(45, [7; 32], &key), "a root the log does not have"),
        (signed(46, at(45), &key), "a size beyond the log"),
        (signed(45, at(45), &identity("x")), "another key"),
        (b"not a note".to_vec(), "not a note"),
    ] {
        assert!(
            matches!(
                log.add_checkpoint(&note).await,
                Err(StoreError::Checkpoint(_) | StoreError::OutOfRange { .. })
            ),
            "accepted {why}"
        );
    }
    for size in [45, 20] {
        let cp = log.add_checkpoint(&signed(size, at(size), &key)).await;
        assert_eq!(cp.unwrap().size, size);
    }
    let latest = Note::parse(&log.latest_checkpoint().await.unwrap().unwrap()).unwrap();
    assert!(
        latest.text.starts_with(&format!("{ORIGIN}\n45\n")),
        "the latest is the largest size, not the last stored"
    );
}

#[tokio::test]
async fn the_memory_log_keeps_the_contract() {
    let mut log = MemoryLog::new(ORIGIN, identity("log contract").did().clone());
    contract(&mut log).await;
}

#[tokio::test]
async fn the_database_log_keeps_the_contract_on_every_backend() {
    for (_dir, path) in common::backends().await {
        let store = Store::open(&path).await.unwrap();
        let mut log = store
            .create_log(ORIGIN, identity("log contract").did())
            .await
            .unwrap();
        contract(&mut log).await;
        // And what it stored is what it serves after reopening.
        let reopened = store.log(ORIGIN).await.unwrap();
        assert_eq!((reopened.size(), reopened.root()), (log.size(), log.root()));
    }
}
