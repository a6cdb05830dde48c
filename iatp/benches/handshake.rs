//! Handshake CPU per side, next to the physical floor measured in the same
//! run: Ed25519 sign and verify (ed25519-dalek, strict verify as the
//! handshake uses) and SHA-256. docs/PERFORMANCE.md turns these into ratios.
//!
//! Run: `cargo bench -p mesh-iatp --bench handshake`

// Benchmark code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mesh_iatp::Signature;
use mesh_iatp::handshake::{Initiator, NonceCache, Responder};
use mesh_iatp::testing::{FIXTURE_NOW, Handshakers, identity};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sha2::{Digest, Sha256};

fn floor(c: &mut Criterion) {
    let id = identity("bench floor");
    let msg = vec![0x5au8; 700]; // about a Response envelope's signing input
    let sig: Signature = id.sign(&msg);
    let mut g = c.benchmark_group("floor");
    g.bench_function("ed25519_sign_700B", |b| b.iter(|| id.sign(black_box(&msg))));
    g.bench_function("ed25519_verify_strict_700B", |b| {
        b.iter(|| id.did().verify(black_box(&msg), black_box(&sig)))
    });
    let kib = vec![0xa5u8; 1024];
    g.bench_function("sha256_1KiB", |b| {
        b.iter(|| Sha256::digest(black_box(&kib)))
    });
    g.finish();
}

fn handshake(c: &mut Criterion) {
    let w = Handshakers::new();
    let now = FIXTURE_NOW;
    let mut g = c.benchmark_group("handshake");

    // Initiator: start (sign Hello) + on_response (verify Response and bob's
    // credential, sign Confirm) = 2 signs + 2 verifies.
    let seed_a = ChaCha20Rng::seed_from_u64(1);
    let mut seed_b = ChaCha20Rng::seed_from_u64(2);
    g.bench_function("initiator_side", |b| {
        b.iter_batched(
            || {
                let (_, hello) =
                    Initiator::start(w.ctx(&w.alice), w.bob.peer_id(), now, &mut seed_a.clone())
                        .expect("hello");
                let mut nonces = NonceCache::new(8, 60);
                let (_, response) = Responder::on_hello(
                    w.ctx(&w.bob),
                    w.alice.peer_id(),
                    &hello,
                    now,
                    &mut nonces,
                    &mut seed_b,
                )
                .expect("response");
                response
            },
            |response| {
                // Cold: a peer never seen before (no DID parsed yet on this thread).
                mesh_iatp::clear_parse_cache();
                let (waiting, _) =
                    Initiator::start(w.ctx(&w.alice), w.bob.peer_id(), now, &mut seed_a.clone())
                        .expect("hello");
                waiting
                    .on_response(w.ctx(&w.alice), &response, now)
                    .expect("session")
            },
            BatchSize::SmallInput,
        )
    });

    // Responder: on_hello (verify Hello and alice's credential, sign
    // Response) + on_confirm (verify Confirm) = 1 sign + 3 verifies.
    let mut seed_a = ChaCha20Rng::seed_from_u64(3);
    let seed_b = ChaCha20Rng::seed_from_u64(4);
    g.bench_function("responder_side", |b| {
        b.iter_batched(
            || {
                let (waiting, hello) =
                    Initiator::start(w.ctx(&w.alice), w.bob.peer_id(), now, &mut seed_a)
                        .expect("hello");
                let mut nonces = NonceCache::new(8, 60);
                let (_, response) = Responder::on_hello(
                    w.ctx(&w.bob),
                    w.alice.peer_id(),
                    &hello,
                    now,
                    &mut nonces,
                    &mut seed_b.clone(),
                )
                .expect("response");
                let (_, confirm) = waiting
                    .on_response(w.ctx(&w.alice), &response, now)
                    .expect("confirm");
                (hello, confirm)
            },
            |(hello, confirm)| {
                mesh_iatp::clear_parse_cache();
                let mut nonces = NonceCache::new(8, 60);
                let (pending, _) = Responder::on_hello(
                    w.ctx(&w.bob),
                    w.alice.peer_id(),
                    &hello,
                    now,
                    &mut nonces,
                    &mut seed_b.clone(),
                )
                .expect("response");
                pending
                    .on_confirm(w.ctx(&w.bob), &confirm, now)
                    .expect("session")
            },
            BatchSize::SmallInput,
        )
    });

    // Warm: the same peer again (its DIDs already parsed on this thread).
    let seed_a = ChaCha20Rng::seed_from_u64(1);
    let mut seed_b = ChaCha20Rng::seed_from_u64(2);
    g.bench_function("initiator_side_warm", |b| {
        b.iter_batched(
            || {
                let (_, hello) =
                    Initiator::start(w.ctx(&w.alice), w.bob.peer_id(), now, &mut seed_a.clone())
                        .expect("hello");
                let mut nonces = NonceCache::new(8, 60);
                Responder::on_hello(
                    w.ctx(&w.bob),
                    w.alice.peer_id(),
                    &hello,
                    now,
                    &mut nonces,
                    &mut seed_b,
                )
                .expect("response")
                .1
            },
            |response| {
                let (waiting, _) =
                    Initiator::start(w.ctx(&w.alice), w.bob.peer_id(), now, &mut seed_a.clone())
                        .expect("hello");
                waiting
                    .on_response(w.ctx(&w.alice), &response, now)
                    .expect("session")
            },
            BatchSize::SmallInput,
        )
    });

    // Both sides back to back: the CPU floor of one handshake's latency.
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    g.bench_function("both_sides_in_process", |b| {
        b.iter(|| {
            let mut nonces = NonceCache::new(8, 60);
            let (waiting, hello) =
                Initiator::start(w.ctx(&w.alice), w.bob.peer_id(), now, &mut rng).expect("hello");
            let (pending, response) = Responder::on_hello(
                w.ctx(&w.bob),
                w.alice.peer_id(),
                &hello,
                now,
                &mut nonces,
                &mut rng,
            )
            .expect("response");
            let (_, confirm) = waiting
                .on_response(w.ctx(&w.alice), &response, now)
                .expect("confirm");
            pending
                .on_confirm(w.ctx(&w.bob), &confirm, now)
                .expect("session")
        })
    });
    g.finish();
}

/// The non-cryptographic costs inside a handshake step.
fn parts(c: &mut Criterion) {
    let w = Handshakers::new();
    let (_, hello) = Initiator::start(
        w.ctx(&w.alice),
        w.bob.peer_id(),
        FIXTURE_NOW,
        &mut ChaCha20Rng::seed_from_u64(9),
    )
    .expect("hello");
    let did_text = w.alice.identity().did().to_string();
    let mut g = c.benchmark_group("parts");
    // Warm: the Hello's one DID is cached after the first iteration.
    g.bench_function("envelope_open_hello_unverified", |b| {
        b.iter(|| {
            mesh_iatp::envelope::open::<mesh_iatp::handshake::Hello>(black_box(&hello))
                .expect("opens")
        })
    });
    g.bench_function("did_parse_cold", |b| {
        b.iter(|| {
            mesh_iatp::clear_parse_cache();
            mesh_iatp::Did::parse(black_box(&did_text)).expect("parses")
        })
    });
    g.bench_function("did_parse_warm", |b| {
        b.iter(|| mesh_iatp::Did::parse(black_box(&did_text)).expect("parses"))
    });
    g.bench_function("credential_verify_signature_cold", |b| {
        b.iter(|| {
            mesh_iatp::clear_parse_cache();
            w.alice.card().credential.verify_signature().expect("valid")
        })
    });
    // A peer reconnecting: its credential was verified before (by digest).
    g.bench_function("credential_verify_signature_warm", |b| {
        b.iter(|| w.alice.card().credential.verify_signature().expect("valid"))
    });
    g.finish();
}

criterion_group!(benches, floor, handshake, parts);
criterion_main!(benches);
