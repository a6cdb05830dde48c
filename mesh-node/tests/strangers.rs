//! Peers that never complete a handshake (PROTOCOL.md §8.1): no gossip
//! reaches them or is taken from them, the DHT keeps nothing of theirs,
//! they lose their connection at the handshake deadline, beyond a bound
//! they make way for newcomers, and a listener starts the handshake a
//! silent dialer does not. Each test failed before issue 14.

// Test code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use mesh_iatp::testing::Federation;
use mesh_node::node::gossip::TOPICS;
use mesh_node::node::protocol::FrameCodec;
use mesh_node::node::{
    IATP_PROTOCOL, IatpRequest, IatpResponse, Limits, MAX_IATP_FRAME, NodeEvent,
};
use tokio::time::timeout;

use common::WAIT;

/// A peer on all four gossip topics that takes IATP requests and never
/// answers them, nor starts a handshake of its own.
#[derive(libp2p::swarm::NetworkBehaviour)]
struct Silent {
    iatp: request_response::Behaviour<FrameCodec<IatpRequest, IatpResponse>>,
    gossip: gossipsub::Behaviour,
}

fn silent_peer() -> libp2p::Swarm<Silent> {
    common::raw::peer(|key| {
        let config = gossipsub::ConfigBuilder::default()
            .validation_mode(ValidationMode::Permissive)
            .build()
            .unwrap();
        let mut gossip =
            gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config).unwrap();
        for t in TOPICS {
            gossip.subscribe(&IdentTopic::new(t)).unwrap();
        }
        Silent {
            iatp: request_response::Behaviour::with_codec(
                FrameCodec::new(MAX_IATP_FRAME),
                [(IATP_PROTOCOL, ProtocolSupport::Inbound)],
                request_response::Config::default()
                    .with_request_timeout(std::time::Duration::from_secs(60)),
            ),
            gossip,
        }
    })
}

/// bob (globex) with `limits`, listening on loopback.
async fn bob(
    fed: &Federation,
    dir: &std::path::Path,
    seed: u8,
    limits: Limits,
) -> common::TestNode {
    let agent = fed.agent(&fed.globex, "bob", &[]);
    common::start(common::builder(fed, agent, &dir.join("b"), seed).limits(limits)).await
}

/// alice (acme), listening on loopback.
async fn alice(fed: &Federation, dir: &std::path::Path, seed: u8) -> common::TestNode {
    common::node(
        fed,
        fed.agent(&fed.acme, "alice", &[]),
        &dir.join("a"),
        seed,
    )
    .await
}

/// While bob's trust reports reach alice, who holds a session, a peer
/// connected to bob without one receives none of them (it used to be
/// GRAFTed on every topic and sent signed reports for as long as it liked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_a_session_gets_no_gossip() {
    use std::time::Duration;

    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let alice = alice(&fed, dir.path(), 31).await;
    let bob = bob(&fed, dir.path(), 32, Limits::default()).await;
    alice.node.connect(bob.addr.clone()).await.unwrap();
    let mut raw = silent_peer();
    raw.dial(bob.addr.clone()).unwrap();
    timeout(WAIT, async {
        loop {
            if let SwarmEvent::ConnectionEstablished { .. } = raw.select_next_some().await {
                return;
            }
        }
    })
    .await
    .expect("the raw peer connects");

    // Three seconds of bob's reports (every 400 ms here), watched from
    // both sides.
    let mut alice_events = alice.node.events();
    let bob_did = bob.node.did().clone();
    let mut received = 0;
    let mut held = Vec::new();
    let mut alice_heard = false;
    let watch = tokio::time::sleep(Duration::from_secs(3));
    tokio::pin!(watch);
    loop {
        tokio::select! {
            _ = &mut watch => break,
            event = raw.select_next_some() => match event {
                SwarmEvent::Behaviour(SilentEvent::Gossip(gossipsub::Event::Message { .. })) => {
                    received += 1;
                }
                // Bob's own Hello (after 2 s), held unanswered.
                SwarmEvent::Behaviour(SilentEvent::Iatp(request_response::Event::Message {
                    message: request_response::Message::Request { channel, .. },
                    ..
                })) => held.push(channel),
                _ => {}
            },
            event = alice_events.recv() => {
                if let Ok(NodeEvent::TrustReport { reporter, .. }) = event {
                    alice_heard |= reporter == bob_did;
                }
            }
        }
    }
    assert!(alice_heard, "bob's reports reach the peer with a session");
    assert_eq!(received, 0, "gossip reached a peer without a session");
}

/// A peer that connects and never says Hello loses its connection at the
/// handshake deadline (issue 14: it used to keep it, and its slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_a_handshake_is_closed_at_the_deadline() {
    use std::time::{Duration, Instant};

    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    // Past the 2 s after which bob sends its own Hello, which this peer
    // takes and never answers.
    let deadline = Duration::from_secs(4);
    let limits = Limits {
        handshake_deadline: deadline,
        ..Limits::default()
    };
    let bob = bob(&fed, dir.path(), 22, limits).await;
    let mut raw = silent_peer();
    raw.dial(bob.addr.clone()).unwrap();
    let mut connected = None;
    let mut held = Vec::new();
    let closed = timeout(WAIT, async {
        loop {
            match raw.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => connected = Some(Instant::now()),
                SwarmEvent::ConnectionClosed { .. } => return Instant::now(),
                // Bob's own Hello (after 2 s), held unanswered.
                SwarmEvent::Behaviour(SilentEvent::Iatp(request_response::Event::Message {
                    message: request_response::Message::Request { channel, .. },
                    ..
                })) => held.push(channel),
                _ => {}
            }
        }
    })
    .await
    .expect("the node closed the silent connection");
    let kept = closed - connected.expect("it connected first");
    // The driver ticks every 250 ms; allow for a loaded machine.
    assert!(
        kept >= deadline - Duration::from_millis(300),
        "closed after {kept:?}"
    );
    assert!(bob.node.connected_peers().await.unwrap().is_empty());
}

/// Strangers beyond the bound make way, oldest first, and a member still
/// gets in while they hold what they can (it used to be that 512 silent
/// peers held every slot and an honest agent could not connect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_cannot_keep_a_member_out() {
    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_strangers: 3,
        max_connections: 6,
        ..Limits::default()
    };
    let bob = bob(&fed, dir.path(), 23, limits).await;
    let mut raws: Vec<_> = (0..5).map(|_| silent_peer()).collect();
    for raw in &mut raws {
        raw.dial(bob.addr.clone()).unwrap();
    }
    // Drive every raw peer until each has connected and the ones over the
    // bound have been closed again.
    let mut open = 0;
    let mut closed = 0;
    timeout(WAIT, async {
        let mut events = futures::stream::select_all(raws.iter_mut().map(|r| r.by_ref()));
        while open < 5 || closed < 2 {
            match events.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => open += 1,
                SwarmEvent::ConnectionClosed { .. } => closed += 1,
                _ => {}
            }
        }
    })
    .await
    .expect("two of five strangers were closed");
    assert_eq!(closed, 2, "only the ones over the bound");
    let alice = alice(&fed, dir.path(), 33).await;
    let bob_did = alice.node.connect(bob.addr.clone()).await.unwrap();
    assert_eq!(&bob_did, bob.node.did());
}

/// A Kademlia peer that never says Hello.
fn kad_peer() -> libp2p::Swarm<libp2p::kad::Behaviour<libp2p::kad::store::MemoryStore>> {
    use libp2p::kad;
    let mut swarm = common::raw::peer(|key| {
        let id = key.public().to_peer_id();
        kad::Behaviour::with_config(
            id,
            kad::store::MemoryStore::new(id),
            kad::Config::new(mesh_node::node::KAD_PROTOCOL),
        )
    });
    swarm.behaviour_mut().set_mode(Some(kad::Mode::Client));
    swarm
}

/// Every step of the first Kademlia query `swarm` runs, to its last.
async fn query_results(
    swarm: &mut libp2p::Swarm<libp2p::kad::Behaviour<libp2p::kad::store::MemoryStore>>,
) -> Vec<libp2p::kad::QueryResult> {
    use libp2p::kad;
    let mut results = Vec::new();
    timeout(WAIT, async {
        loop {
            if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                result, step, ..
            }) = swarm.select_next_some().await
            {
                results.push(result);
                if step.last {
                    return;
                }
            }
        }
    })
    .await
    .expect("the query ends");
    results
}

/// A peer without a session cannot make the node keep DHT records (it used
/// to store 1,024 records of 12 KiB from one such peer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dht_keeps_nothing_for_a_stranger() {
    use libp2p::kad::{self, Quorum, Record, RecordKey};

    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let bob = bob(&fed, dir.path(), 24, Limits::default()).await;
    let bob_peer = bob.node.peer_id();
    let key = RecordKey::new(&b"stranger's record");
    let mut writer = kad_peer();
    writer
        .behaviour_mut()
        .add_address(&bob_peer, bob.addr.clone());
    let record = Record::new(key.clone(), vec![7; 12 * 1024]);
    writer
        .behaviour_mut()
        .put_record_to(record, std::iter::once(bob_peer), Quorum::One);
    let put = query_results(&mut writer).await;
    assert!(
        matches!(put.as_slice(), [kad::QueryResult::PutRecord(_)]),
        "{put:?}"
    );

    let mut reader = kad_peer();
    reader
        .behaviour_mut()
        .add_address(&bob_peer, bob.addr.clone());
    reader.behaviour_mut().get_record(key);
    let found = query_results(&mut reader).await.iter().any(|r| {
        matches!(
            r,
            kad::QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(_)))
        )
    });
    assert!(!found, "bob kept a stranger's record");
}

/// Either side may start IATP: a listener whose dialer stays silent sends
/// its own Hello (it used to wait for the dialer forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_starts_the_handshake_when_the_dialer_does_not() {
    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let bob = bob(&fed, dir.path(), 25, Limits::default()).await;
    let mut raw = silent_peer();
    raw.dial(bob.addr.clone()).unwrap();
    let hello = timeout(WAIT, async {
        loop {
            if let SwarmEvent::Behaviour(SilentEvent::Iatp(request_response::Event::Message {
                message: request_response::Message::Request { request, .. },
                ..
            })) = raw.select_next_some().await
            {
                return request;
            }
        }
    })
    .await
    .expect("bob sent a request");
    assert!(matches!(hello, Ok(IatpRequest::Hello(_))), "{hello:?}");
}

/// Half-open requests held against the dashboard from one address cannot
/// take the node down: members still connect over libp2p, and the
/// dashboard still answers another client (issue 14: 1,100 of them did).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attack_on_the_dashboard_leaves_the_p2p_port_up() {
    use tokio::io::AsyncWriteExt;

    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let bob = bob(&fed, dir.path(), 51, Limits::default()).await;
    let dashboard = mesh_node::node::serve_dashboard(
        &bob.node,
        mesh_dashboards::DashboardConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let target = dashboard.local_addr();
    let mut held = Vec::new();
    for _ in 0..1_100 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        if let Ok(mut s) = socket.connect(target).await {
            let _ = s
                .write_all(b"GET /api/v1/trust HTTP/1.1\r\nHost: x\r\n")
                .await;
            held.push(s);
        }
    }
    let alice = alice(&fed, dir.path(), 52).await;
    // A dial whose local port (libp2p's TCP transport dials from its
    // listening port) collides with one of the 1,100 sockets just made
    // fails at the dialer with EADDRINUSE — a property of this test's
    // crowded port range, not of bob under attack (seen once in CI,
    // 2026-12-04): such a dial is tried again, at most twice.
    let mut connected = timeout(WAIT, alice.node.connect(bob.addr.clone())).await;
    for _ in 0..2 {
        match &connected {
            Ok(Err(mesh_node::node::NodeError::Dial(e)))
                if e.contains("Address already in use") =>
            {
                connected = timeout(WAIT, alice.node.connect(bob.addr.clone())).await;
            }
            _ => break,
        }
    }
    assert!(
        matches!(connected, Ok(Ok(_))),
        "a member connects during the attack: {connected:?}"
    );
    let url = format!("{}healthz", dashboard.url());
    let status =
        tokio::task::spawn_blocking(move || ureq::get(&url).call().map(|r| r.status().as_u16()))
            .await
            .unwrap();
    assert!(matches!(status, Ok(200)), "{status:?}");
    drop(held);
    dashboard.shutdown().await;
}

/// A peer without a session gets no Kademlia service: bob, who holds a
/// session with alice, does not even take its FIND_NODE stream, so it
/// learns no member's address from him (he used to answer with alice's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dht_answers_nothing_to_a_stranger() {
    use libp2p::kad;

    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let bob = bob(&fed, dir.path(), 26, Limits::default()).await;
    let alice = alice(&fed, dir.path(), 27).await;
    alice.node.connect(bob.addr.clone()).await.unwrap();
    let bob_peer = bob.node.peer_id();
    let mut stranger = kad_peer();
    stranger
        .behaviour_mut()
        .add_address(&bob_peer, bob.addr.clone());
    stranger
        .behaviour_mut()
        .get_closest_peers(alice.node.peer_id());
    let results = query_results(&mut stranger).await;
    let answered: Vec<_> = results
        .iter()
        .flat_map(|r| match r {
            kad::QueryResult::GetClosestPeers(Ok(ok)) => ok.peers.clone(),
            kad::QueryResult::GetClosestPeers(Err(kad::GetClosestPeersError::Timeout {
                peers,
                ..
            })) => peers.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert!(
        answered.is_empty(),
        "the stranger was answered: {answered:?}"
    );
}
