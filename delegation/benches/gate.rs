//! Gate and chain costs next to the Ed25519 verify floor of the same run.
//!
//! Run: `cargo bench -p mesh-delegation --bench gate`
//! Besides criterion's estimates it prints p50/p99 of 100,000 timed cached
//! decisions (criterion reports central estimates, the target is a p99).

// Benchmark code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use common::*;
use criterion::{Criterion, criterion_group, criterion_main};
use mesh_delegation::revocation::VerifiedRevocation;
use mesh_delegation::{Request, RevocationSet, verify_chain};
use mesh_iatp::CapabilityPattern;
use mesh_iatp::envelope;

fn floor(c: &mut Criterion) {
    let w = World::new();
    let chain = chain3(&w);
    // The exact signing inputs of the three links, verified raw.
    let raw: Vec<(Vec<u8>, mesh_iatp::Signature, mesh_iatp::Did)> = chain
        .iter()
        .map(|g| {
            let grant = g.open().unwrap();
            // Re-derive signing input and signature from the envelope bytes.
            let sig_at =
                g.0.windows(4)
                    .position(|x| x == [0x63, b's', b'i', b'g'])
                    .unwrap();
            let mut input = envelope::SIGNATURE_DOMAIN.to_vec();
            input.push(0xa3);
            input.extend_from_slice(&g.0[1..sig_at]);
            input.extend_from_slice(&g.0[sig_at + 70..]);
            let sig =
                mesh_iatp::Signature::from_bytes(g.0[sig_at + 6..sig_at + 70].try_into().unwrap());
            assert!(grant.issuer.verify(&input, &sig));
            (input, sig, grant.issuer)
        })
        .collect();
    c.bench_function("floor/ed25519_verify_strict_x3_chain_links", |b| {
        b.iter(|| {
            for (input, sig, issuer) in &raw {
                assert!(issuer.verify(black_box(input), sig));
            }
        })
    });
}

fn gate(c: &mut Criterion) {
    let w = World::new();
    let chain = chain3(&w);
    let carol = did(&w.carol);
    let owner = did(&w.owner);
    let repo = CapabilityPattern::parse("tools/github/repo").unwrap();
    let none = RevocationSet::default();

    // Cold: no DID parsed before (each of the 6 DIDs decompressed).
    c.bench_function("delegation/verify_chain_depth3_cold", |b| {
        b.iter(|| {
            mesh_iatp::clear_parse_cache();
            verify_chain(black_box(&chain), &carol, |d| *d == owner).unwrap()
        })
    });
    // Warm: the agents' DIDs were seen before (the usual case at a gate).
    c.bench_function("delegation/verify_chain_depth3_warm", |b| {
        b.iter(|| verify_chain(black_box(&chain), &carol, |d| *d == owner).unwrap())
    });

    let mut gate = w.gate();
    let request = Request::Use {
        requester: &carol,
        resource: &repo,
        action: "read",
        chain: &chain,
    };
    assert!(gate.decide(request, &w.peers, &none, NOW).is_allow());
    c.bench_function("delegation/gate_decide_cached_depth3", |b| {
        b.iter(|| gate.decide(black_box(request), &w.peers, &none, NOW))
    });

    // p50/p99 over individually timed decisions.
    let mut samples: Vec<u128> = Vec::with_capacity(100_000);
    for _ in 0..100_000 {
        let t = Instant::now();
        black_box(gate.decide(black_box(request), &w.peers, &none, NOW));
        samples.push(t.elapsed().as_nanos());
    }
    samples.sort_unstable();
    eprintln!(
        "gate_decide_cached_depth3 over 100000 timed calls: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        samples[50_000], samples[99_000], samples[99_900], samples[99_999]
    );

    // The same decision against a set of 100,000 revocations.
    let mut big = RevocationSet::default();
    for i in 0..100_000u32 {
        let mut target = [0u8; 32];
        target[..4].copy_from_slice(&i.to_be_bytes());
        big.insert(VerifiedRevocation {
            target,
            revoker: owner.clone(),
            target_expires: NOW.plus_secs(DAY),
            bytes: Vec::new(),
        });
    }
    let probe = chain[1].hash();
    c.bench_function("delegation/revocation_lookup_100k", |b| {
        b.iter(|| big.is_revoked(black_box(&probe)))
    });
    c.bench_function(
        "delegation/gate_decide_cached_depth3_100k_revocations",
        |b| b.iter(|| gate.decide(black_box(request), &w.peers, &big, NOW)),
    );
}

criterion_group!(benches, floor, gate);
criterion_main!(benches);
