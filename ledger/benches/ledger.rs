//! Ledger costs next to the Ed25519 floor of the same run.
//!
//! Run: `cargo bench -p mesh-ledger --bench ledger`

// Benchmark code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_ledger::LogStore;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use mesh_ledger::export::{export, verify_export};
use mesh_ledger::merkle::{
    MemoryTree, consistency_proof, inclusion_proof, infallible, leaf_hash, verify_consistency,
    verify_inclusion,
};
use mesh_ledger::store::Store;
use mesh_ledger::testing::{agents, record};
use mesh_ledger::verify::verify_log;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Ed25519 strict verify and batch verify of 64 signatures over ~400-byte messages.
fn floor(c: &mut Criterion) {
    let keys: Vec<SigningKey> = (0..64u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 400]).collect();
    let sigs: Vec<_> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let vks: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
    let mut g = c.benchmark_group("ledger_floor");
    g.throughput(Throughput::Elements(64));
    g.bench_function("ed25519_verify_strict_x64", |b| {
        b.iter(|| {
            for ((m, s), k) in msgs.iter().zip(&sigs).zip(&vks) {
                k.verify_strict(black_box(m), s).unwrap();
            }
        })
    });
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    g.bench_function("ed25519_verify_batch_x64", |b| {
        b.iter(|| ed25519_dalek::verify_batch(black_box(&refs), &sigs, &vks).unwrap())
    });
    // The same on every core at once: what a verifier using all of them
    // can reach (issue 17's target is 80% of it).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    g.throughput(Throughput::Elements(64 * cores as u64));
    g.bench_function("ed25519_verify_batch_x64_all_cores", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..cores {
                    s.spawn(|| {
                        for _ in 0..iters {
                            ed25519_dalek::verify_batch(black_box(&refs), &sigs, &vks).unwrap();
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let rt = runtime();
    let people = agents(16);
    let records: Vec<_> = (0..20_000).map(|i| record(i, &people)).collect();
    let mut g = c.benchmark_group("ledger");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("append_20000_sqlite_batches_of_1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("b.db").to_string_lossy().into_owned();
                rt.block_on(async {
                    let store = Store::open(&path).await.unwrap();
                    let mut log = store.create_log("bench", people[0].did()).await.unwrap();
                    let start = Instant::now();
                    for chunk in records.chunks(1000) {
                        log.append(chunk).await.unwrap();
                    }
                    total += start.elapsed();
                });
            }
            total
        })
    });

    // Verify a 20,000-record ledger (40,000 signatures).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db").to_string_lossy().into_owned();
    let store = rt.block_on(async {
        let store = Store::open(&path).await.unwrap();
        let mut log = store.create_log("bench", people[0].did()).await.unwrap();
        for chunk in records.chunks(1000) {
            log.append(chunk).await.unwrap();
        }
        store
    });
    g.bench_function("verify_20000_records", |b| {
        b.iter(|| {
            let r = rt
                .block_on(verify_log(&store, "bench", &[], |_, _| {}))
                .unwrap();
            assert!(r.is_sound());
        })
    });
    // The same ledger as an export file, verified where it lies (no SQL).
    let mut exported = Vec::new();
    rt.block_on(export(&store, &mut exported)).unwrap();
    g.bench_function("verify_20000_records_export", |b| {
        b.iter(|| {
            let r = verify_export(std::io::Cursor::new(&exported), &[], |_, _, _| {}).unwrap();
            assert!(r.iter().all(|r| r.is_sound()));
        })
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let mut tree = MemoryTree::new();
    for i in 0u64..1_000_000 {
        tree.append(leaf_hash(&i.to_be_bytes()));
    }
    let root = tree.root();
    let old_root = infallible(mesh_ledger::merkle::root(&tree, 400_000));
    let mut g = c.benchmark_group("merkle_1m");
    g.bench_function("inclusion_proof_generate", |b| {
        b.iter(|| infallible(inclusion_proof(&tree, black_box(777_777), 1_000_000)))
    });
    let p = infallible(inclusion_proof(&tree, 777_777, 1_000_000));
    let leaf = leaf_hash(&777_777u64.to_be_bytes());
    g.bench_function("inclusion_proof_verify", |b| {
        b.iter(|| verify_inclusion(777_777, 1_000_000, &leaf, black_box(&p), &root).unwrap())
    });
    g.bench_function("consistency_proof_generate", |b| {
        b.iter(|| infallible(consistency_proof(&tree, black_box(400_000), 1_000_000)))
    });
    let cp = infallible(consistency_proof(&tree, 400_000, 1_000_000));
    g.bench_function("consistency_proof_verify", |b| {
        b.iter(|| verify_consistency(400_000, 1_000_000, black_box(&cp), &old_root, &root).unwrap())
    });
    // The store's append path: the right edge only (O(log n) memory).
    let mut edge = mesh_ledger::merkle::CompactRange::new();
    for i in 0u64..1_000_000 {
        edge.append(leaf_hash(&i.to_be_bytes()));
    }
    assert_eq!(edge.root(), root);
    g.bench_function("compact_range_append_at_1m", |b| {
        b.iter_batched(
            || edge.clone(),
            |mut e| {
                e.append(leaf_hash(b"x"));
                e
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, floor, append, proofs);
criterion_main!(benches);
