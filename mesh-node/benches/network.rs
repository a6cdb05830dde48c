//! Network benchmarks on loopback TCP:
//!
//! - `handshake_open_connection`: the three IATP messages over an open
//!   libp2p connection (request-response, CBOR codec, a Yamux stream per
//!   message), both ends in this process. Criterion's figure is the mean;
//!   separate passes print p50/p95/p99 for a peer seen before (its
//!   credential's verification remembered) and for a first contact, and
//!   for two bare request-response round trips over the same connection
//!   (what the handshake's messaging costs without its crypto).
//! - `report_to_100_nodes`: 100 real nodes, each connected to 4 earlier
//!   ones at random (Kademlia off, so no other links are made); one
//!   publishes a trust report; the time until all 99 others have verified
//!   and accepted it (target p95 < 1 s). Printed as percentiles over 30
//!   rounds, after the time to build and connect the nodes.
//!
//! Floors measured in the same run: one Ed25519 sign and one verify.
//! `cargo bench -p mesh-node --bench network`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use libp2p::Swarm;
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use mesh_iatp::RevokedCredentials;
use mesh_iatp::handshake::{
    Context, HandshakeConfig, InitialTrust, Initiator, LocalAgent, NoLineage, NonceCache, Responder,
};
use mesh_iatp::testing::{FIXTURE_NOW, Federation};
use mesh_node::node::{FixedClock, IatpRequest, IatpResponse, Node, NodeEvent};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_bytes::ByteBuf;

mod common;
use common::{Iatp, connect, swarm};

struct Pair {
    fed: Federation,
    a_agent: LocalAgent,
    b_agent: LocalAgent,
    a: Swarm<Iatp>,
    b: Swarm<Iatp>,
    nonces: NonceCache,
    rng: ChaCha20Rng,
    config: HandshakeConfig,
    revoked: RevokedCredentials,
}

impl Pair {
    async fn new() -> Pair {
        let fed = Federation::new();
        let a_agent = fed.agent(&fed.acme, "bench-a", &[]);
        let b_agent = fed.agent(&fed.globex, "bench-b", &[]);
        let mut a = swarm(&a_agent);
        let mut b = swarm(&b_agent);
        connect(&mut a, &mut b).await;
        Pair {
            fed,
            a_agent,
            b_agent,
            a,
            b,
            // One initiator handshaking thousands of times in the replay
            // window: the bench, not a flood.
            nonces: NonceCache::new(1 << 20, 60).with_per_initiator(1 << 20),
            rng: ChaCha20Rng::seed_from_u64(7),
            config: HandshakeConfig::default(),
            revoked: RevokedCredentials::default(),
        }
    }

    /// One handshake over the open connection: Hello, Response, Confirm,
    /// Accepted.
    async fn handshake(&mut self) -> Duration {
        let ctx = |agent| Context {
            local: agent,
            bundle: &self.fed.bundle,
            revoked: &self.revoked,
            trust: &InitialTrust,
            config: &self.config,
            lineage: &NoLineage,
        };
        let b_peer = *self.b.local_peer_id();
        let started = Instant::now();
        let (waiting, hello) = Initiator::start(
            ctx(&self.a_agent),
            self.b_agent.peer_id(),
            FIXTURE_NOW,
            &mut self.rng,
        )
        .unwrap();
        self.a
            .behaviour_mut()
            .send_request(&b_peer, Ok(IatpRequest::Hello(ByteBuf::from(hello))));
        let mut waiting = Some(waiting);
        let mut responding = None;
        loop {
            tokio::select! {
                e = self.a.select_next_some() => if let SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. }, ..
                }) = e {
                    match response.expect("a well-formed answer") {
                        IatpResponse::Response(bytes) => {
                            let (_, confirm) = waiting.take().unwrap().on_response(ctx(&self.a_agent), &bytes, FIXTURE_NOW).unwrap();
                            self.a.behaviour_mut().send_request(&b_peer, Ok(IatpRequest::Confirm(ByteBuf::from(confirm))));
                        }
                        IatpResponse::Accepted => return started.elapsed(),
                        IatpResponse::Refused { reason, .. } => panic!("refused: {reason}"),
                        IatpResponse::SimultaneousOpen => panic!("only one side dials here"),
                    }
                },
                e = self.b.select_next_some() => if let SwarmEvent::Behaviour(request_response::Event::Message {
                    peer, message: request_response::Message::Request { request, channel, .. }, ..
                }) = e {
                    let remote = mesh_iatp::PeerId::from_bytes(&peer.to_bytes()).unwrap();
                    let reply = match request.expect("a well-formed request") {
                        IatpRequest::Hello(bytes) => {
                            let (pending, response) = Responder::on_hello(ctx(&self.b_agent), remote, &bytes, FIXTURE_NOW, &mut self.nonces, &mut self.rng).unwrap();
                            responding = Some(pending);
                            IatpResponse::Response(ByteBuf::from(response))
                        }
                        IatpRequest::Confirm(bytes) => {
                            responding.take().unwrap().on_confirm(ctx(&self.b_agent), &bytes, FIXTURE_NOW).unwrap();
                            IatpResponse::Accepted
                        }
                    };
                    self.b.behaviour_mut().send_response(channel, Ok(reply)).unwrap();
                },
            }
        }
    }
}

impl Pair {
    /// Two request-response exchanges over the same connection, codec and
    /// kind of stream as the handshake's, with nothing to check: an empty
    /// Confirm answered `Accepted` unread. What the handshake's two round
    /// trips cost without its crypto.
    async fn bare_round_trips(&mut self) -> Duration {
        let b_peer = *self.b.local_peer_id();
        let started = Instant::now();
        for _ in 0..2 {
            self.a
                .behaviour_mut()
                .send_request(&b_peer, Ok(IatpRequest::Confirm(ByteBuf::new())));
            loop {
                tokio::select! {
                    e = self.a.select_next_some() => if let SwarmEvent::Behaviour(request_response::Event::Message {
                        message: request_response::Message::Response { .. }, ..
                    }) = e {
                        break;
                    },
                    e = self.b.select_next_some() => if let SwarmEvent::Behaviour(request_response::Event::Message {
                        message: request_response::Message::Request { channel, .. }, ..
                    }) = e {
                        self.b.behaviour_mut().send_response(channel, Ok(IatpResponse::Accepted)).unwrap();
                    },
                }
            }
        }
        started.elapsed()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn floors(c: &mut Criterion) {
    let id = mesh_iatp::testing::identity("bench floor");
    let msg = [7u8; 200];
    let sig = id.sign(&msg);
    c.bench_function("floor/ed25519_sign", |b| {
        b.iter(|| id.sign(std::hint::black_box(&msg)))
    });
    c.bench_function("floor/ed25519_verify", |b| {
        b.iter(|| id.did().verify(std::hint::black_box(&msg), &sig))
    });
}

fn handshake_open_connection(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut pair = rt.block_on(Pair::new());
    c.bench_function("network/handshake_open_connection", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += pair.handshake().await;
                }
                total
            })
        })
    });
    let mut samples: Vec<Duration> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..2000 {
            v.push(pair.handshake().await);
        }
        v
    });
    samples.sort();
    println!(
        "network/handshake_open_connection over 2000 (peer seen before: its DID and \
         credential remembered, 3 signs + 3 verifies): p50 {:?}  p95 {:?}  p99 {:?}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99)
    );
    // The same two round trips with no crypto at all.
    let mut bare: Vec<Duration> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..2000 {
            v.push(pair.bare_round_trips().await);
        }
        v
    });
    bare.sort();
    println!(
        "network/two_bare_round_trips over 2000 (same connection, codec and streams, \
         nothing checked): p50 {:?}  p95 {:?}  p99 {:?}",
        percentile(&bare, 0.50),
        percentile(&bare, 0.95),
        percentile(&bare, 0.99)
    );
    // First contact: nothing remembered (3 signs + 5 verifies).
    let mut cold: Vec<Duration> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..2000 {
            mesh_iatp::clear_parse_cache();
            v.push(pair.handshake().await);
        }
        v
    });
    cold.sort();
    println!(
        "network/handshake_open_connection over 2000 (first contact, 3 signs + 5 verifies): \
         p50 {:?}  p95 {:?}  p99 {:?}",
        percentile(&cold, 0.50),
        percentile(&cold, 0.95),
        percentile(&cold, 0.99)
    );
}

fn report_to_100_nodes(_: &mut Criterion) {
    const N: usize = 100;
    const ROUNDS: usize = 30;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fed = Federation::new();
        let dir = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Node> = Vec::new();
        let mut rng = ChaCha20Rng::seed_from_u64(100);
        let setup = Instant::now();
        let (mut building, mut connecting) = (Duration::ZERO, Duration::ZERO);
        for i in 0..N {
            let started = Instant::now();
            let org = if i % 2 == 0 { &fed.acme } else { &fed.globex };
            let node = Node::builder()
                .agent(fed.agent(org, &format!("bench-{i}"), &[]))
                .bundle(fed.bundle.clone())
                .data_dir(dir.path().join(format!("n{i}")))
                .clock(FixedClock(FIXTURE_NOW))
                .seed([i as u8; 32])
                .intervals(Duration::from_secs(3600), Duration::from_secs(3600))
                .heartbeat(Duration::from_millis(300))
                // The topology is the one described above: with the DHT on,
                // every node also dials peers it discovers (up to its
                // discovery target), which is another measurement.
                .kademlia(false)
                .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
                .build()
                .await
                .unwrap();
            building += started.elapsed();
            let started = Instant::now();
            let mut picked = std::collections::BTreeSet::new();
            while i > 0 && picked.len() < 4.min(i) {
                picked.insert(rand_core::Rng::next_u32(&mut rng) as usize % i);
            }
            for j in picked {
                let addr = nodes[j].listen_addrs().await.unwrap().remove(0);
                node.connect(addr).await.unwrap();
            }
            connecting += started.elapsed();
            nodes.push(node);
        }
        // Let gossipsub build its meshes.
        tokio::time::sleep(Duration::from_secs(3)).await;
        println!(
            "network/report_to_100_nodes: {N} nodes up and connected in {:?} (building {building:?}, connecting {connecting:?}, then 3 s for gossipsub's meshes)",
            setup.elapsed()
        );

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, n) in nodes.iter().enumerate() {
            let mut events = n.events();
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Ok(e) = events.recv().await {
                    if let NodeEvent::TrustReport { reporter, .. } = e {
                        let _ = tx.send((i, reporter, Instant::now()));
                    }
                }
            });
        }
        let mut rounds = Vec::new();
        let mut deliveries = Vec::new();
        for r in 0..ROUNDS {
            let from = (r * 37) % N;
            let reporter = nodes[from].did().clone();
            while rx.try_recv().is_ok() {}
            let t0 = Instant::now();
            nodes[from].publish_trust_report().await.unwrap();
            let mut got = std::collections::HashSet::new();
            let deadline = t0 + Duration::from_secs(10);
            while got.len() < N - 1 {
                match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                    Ok(Some((i, who, at))) if who == reporter && got.insert(i) => {
                        deliveries.push(at - t0)
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            assert_eq!(got.len(), N - 1, "round {r}: only {} of {} nodes got the report", got.len(), N - 1);
            rounds.push(t0.elapsed());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        rounds.sort();
        deliveries.sort();
        println!(
            "network/report_to_100_nodes over {ROUNDS} rounds: all 99 reached in p50 {:?}  p95 {:?}  max {:?}; single deliveries p50 {:?}  p95 {:?}",
            percentile(&rounds, 0.5),
            percentile(&rounds, 0.95),
            rounds[rounds.len() - 1],
            percentile(&deliveries, 0.5),
            percentile(&deliveries, 0.95),
        );
        for n in nodes {
            n.shutdown().await.unwrap();
        }
    });
}

criterion_group!(
    benches,
    floors,
    handshake_open_connection,
    report_to_100_nodes
);
criterion_main!(benches);
