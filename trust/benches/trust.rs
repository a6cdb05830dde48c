//! Trust engine costs, next to the Ed25519 verify and SHA-256 floor of the
//! same run.
//!
//! Run: `cargo bench -p mesh-trust --bench trust`

// Benchmark code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mesh_iatp::testing::{FIXTURE_NOW, identity};
use mesh_iatp::{Did, Identity, Score};
use mesh_trust::report::seal_report;
use mesh_trust::{Evidence, EvidenceKind, ReportEntry, TrustConfig, TrustEngine, TrustReport};
use sha2::{Digest, Sha256};

const NOW: mesh_iatp::Timestamp = FIXTURE_NOW;

/// Reporter `i`'s report: 20 of the subjects, spread by a fixed stride.
fn sparse_report(from: &Identity, subjects: &[Did], i: usize, sequence: u64) -> Vec<u8> {
    let entries = (0..20)
        .map(|k| (i * 37 + k * 53 + sequence as usize) % subjects.len())
        .filter(|&j| subjects[j] != *from.did())
        .map(|j| ReportEntry {
            subject: subjects[j].to_string(),
            score: Score::saturating(300 + ((i * 13 + j * 7) % 700) as u16),
            evidence: 5 + (j as u32 % 20),
        })
        .collect();
    let report = TrustReport {
        reporter: from.did().clone(),
        epoch: 1,
        sequence,
        issued: NOW,
        entries,
    };
    seal_report(&report, from).expect("seals")
}

/// An engine holding reports from 1,000 reporters, each rating 20 of the
/// same 1,000 agents; 10 of them pre-trusted. Not yet aggregated.
fn population() -> (TrustEngine, Vec<Identity>, Vec<Did>) {
    let reporters: Vec<Identity> = (0..1000)
        .map(|i| identity(&format!("reporter {i}")))
        .collect();
    let subjects: Vec<Did> = reporters.iter().map(|r| r.did().clone()).collect();
    // Every reporter's report is taken before any aggregation has given
    // it credibility: lift the quota of unproven reporters.
    let mut config = TrustConfig::default();
    config.aggregation.max_unproven_reporters = reporters.len();
    let mut engine = TrustEngine::new(identity("me").did().clone(), config).expect("config");
    for r in &reporters[..10] {
        engine.add_pre_trusted(r.did().clone());
    }
    for (i, r) in reporters.iter().enumerate() {
        engine
            .receive_report(&sparse_report(r, &subjects, i, 1), NOW)
            .expect("accepted");
    }
    (engine, reporters, subjects)
}

fn floor(c: &mut Criterion) {
    let id = identity("floor");
    let msg = vec![7u8; 2048];
    let sig = id.sign(&msg);
    let mut g = c.benchmark_group("trust_floor");
    g.bench_function("ed25519_verify_strict_2KiB", |b| {
        b.iter(|| id.did().verify(black_box(&msg), &sig))
    });
    g.bench_function("sha256_2KiB", |b| {
        b.iter(|| Sha256::digest(black_box(&msg)))
    });
    g.finish();
}

fn engine(c: &mut Criterion) {
    let (unaggregated, reporters, subjects) = population();
    let mut aggregated = unaggregated.clone();
    let stats = aggregated.refresh(NOW);
    eprintln!("1000x1000 cold aggregation: {stats:?}");
    let mut g = c.benchmark_group("trust");

    let subject = subjects[500].clone();
    g.bench_function("score_lookup", |b| {
        b.iter(|| aggregated.score(black_box(&subject), NOW))
    });

    let mut recording = aggregated.clone();
    let mut tick = 0u64;
    g.bench_function("record_one_evidence", |b| {
        b.iter(|| {
            tick += 1;
            recording.record(Evidence::new(
                subject.clone(),
                EvidenceKind::TaskSuccess,
                NOW.plus_secs(tick),
            ));
        })
    });

    // A 20-entry report: decode, verify (one Ed25519 verify), parse 20 DIDs, store.
    let report = sparse_report(&reporters[3], &subjects, 3, 2);
    g.bench_function("receive_report_20_entries", |b| {
        b.iter_batched(
            || aggregated.clone(),
            // Return the engine so its drop is not timed.
            |mut e| {
                e.receive_report(black_box(&report), NOW).expect("accepted");
                e
            },
            BatchSize::LargeInput,
        )
    });

    // What stays on a node's network task when it aggregates: the snapshot
    // (the run goes to a worker thread).
    g.bench_function("aggregation_snapshot_1000_reporters", |b| {
        b.iter_with_large_drop(|| aggregated.aggregation(NOW))
    });

    g.sample_size(10);
    g.bench_function("aggregate_1000x1000_cold", |b| {
        b.iter_batched(
            || unaggregated.clone(),
            |mut e| {
                e.refresh(NOW);
                e
            },
            BatchSize::LargeInput,
        )
    });
    let mut changed = aggregated.clone();
    changed.receive_report(&report, NOW).expect("accepted");
    let warm_stats = changed.clone().refresh(NOW);
    eprintln!("after one changed report, warm: {warm_stats:?}");
    g.bench_function("aggregate_1000x1000_warm_after_one_report", |b| {
        b.iter_batched(
            || changed.clone(),
            |mut e| {
                e.refresh(NOW);
                e
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, floor, engine);
criterion_main!(benches);
