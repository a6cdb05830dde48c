//! Real libp2p nodes on loopback TCP run the IATP handshake as soon as they
//! connect; a peer from an org outside the bundle is refused and
//! disconnected; handshakes feed trust and the trust floor refuses over
//! the wire. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{WAIT, eventually, next, node};
use mesh_iatp::testing::{FIXTURE_NOW, Federation};
use mesh_node::node::protocol::FrameCodec;
use mesh_node::node::{ActionRequest, NodeError, NodeEvent};
use mesh_trust::{Evidence, EvidenceKind};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_agents_authenticate_over_tcp_and_outsiders_are_refused() {
    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let mut alice = node(
        &fed,
        fed.agent(&fed.acme, "alice", &["tools/github"]),
        &dir.path().join("a"),
        1,
    )
    .await;
    let mut bob = node(
        &fed,
        fed.agent(&fed.globex, "bob", &["search"]),
        &dir.path().join("b"),
        2,
    )
    .await;
    let mut eve = node(
        &fed,
        fed.agent(&fed.rogue, "eve", &[]),
        &dir.path().join("e"),
        3,
    )
    .await;

    // alice connects to bob: both sides end with an authenticated session.
    let bob_did = alice.node.connect(bob.addr.clone()).await.unwrap();
    assert_eq!(&bob_did, bob.node.did());
    let at_alice = next("alice: session", &mut alice.events, |e| match e {
        NodeEvent::SessionEstablished(s) => Some(s),
        _ => None,
    })
    .await;
    let at_bob = next("bob: session", &mut bob.events, |e| match e {
        NodeEvent::SessionEstablished(s) => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(at_alice.remote_card.name, "bob");
    assert_eq!(at_alice.policy.name, "globex");
    assert_eq!(at_bob.remote_card.name, "alice");
    assert_eq!(at_bob.policy.name, "acme");
    assert_eq!(at_alice.transcript_hash, at_bob.transcript_hash);
    assert_eq!(
        at_bob.remote_peer.as_bytes().to_vec(),
        alice.node.peer_id().to_bytes()
    );
    assert_eq!(bob.node.peers().await.unwrap().len(), 1);
    assert_eq!(bob.node.peers().await.unwrap()[0].org, "acme");

    // eve's org is not in bob's bundle: bob refuses and says why.
    let err = eve.node.connect(bob.addr.clone()).await.unwrap_err();
    assert!(
        matches!(&err, NodeError::HandshakeRefused(r) if r.contains("org_not_in_bundle")),
        "{err}"
    );
    let refused = next("bob: refused eve", &mut bob.events, |e| match e {
        NodeEvent::RefusedPeer { peer, refusal } => Some((peer, refusal)),
        _ => None,
    })
    .await;
    assert_eq!(&refused.0, eve.node.did());
    assert_eq!(refused.1.name(), "org_not_in_bundle");
    let told = next("eve: told why", &mut eve.events, |e| match e {
        NodeEvent::RefusedByPeer { peer, code, reason } => Some((peer, code, reason)),
        _ => None,
    })
    .await;
    assert_eq!(
        (&told.0, told.1, told.2.as_str()),
        (bob.node.did(), 17, "org_not_in_bundle")
    );

    // …and eve is disconnected, while alice stays connected.
    eventually("eve disconnected", || async {
        !bob.node
            .connected_peers()
            .await
            .unwrap()
            .contains(&eve.node.peer_id())
    })
    .await;
    assert!(
        bob.node
            .connected_peers()
            .await
            .unwrap()
            .contains(&alice.node.peer_id())
    );
    // bob keeps exactly one session: alice's.
    let peers = bob.node.peers().await.unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].name, "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_feed_trust_and_the_trust_floor_refuses_over_the_network() {
    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let alice_agent = fed.agent(&fed.acme, "alice", &[]);
    let carol_agent = fed.agent(&fed.acme, "carol", &[]);
    let eve_agent = fed.agent(&fed.rogue, "eve", &[]);
    let (alice_did, carol_did, eve_did) = (
        alice_agent.identity().did().clone(),
        carol_agent.identity().did().clone(),
        eve_agent.identity().did().clone(),
    );
    let bob = node(
        &fed,
        fed.agent(&fed.globex, "bob", &[]),
        &dir.path().join("b"),
        12,
    )
    .await;
    let alice = node(&fed, alice_agent, &dir.path().join("a"), 11).await;
    let carol = node(&fed, carol_agent, &dir.path().join("c"), 13).await;
    let eve = node(&fed, eve_agent, &dir.path().join("e"), 14).await;

    // A completed handshake is a (small) good observation, under acme's policy.
    alice.node.connect(bob.addr.clone()).await.unwrap();
    let alice_score = bob.node.trust_of(&alice_did).await.unwrap().get();
    assert!(
        alice_score > 500 && alice_score < 600,
        "acme starts at 500: {alice_score}"
    );

    // eve's org is refused before any signature is checked: nothing she
    // provably sent, so nothing recorded (an unknown org's agent: 300).
    assert!(eve.node.connect(bob.addr.clone()).await.is_err());
    let eve_score = bob.node.trust_of(&eve_did).await.unwrap().get();
    assert_eq!(eve_score, 300, "an unverified refusal is nobody's fault");

    // dave's Hello verifies, then his expired credential is refused:
    // accountable, so bob records a handshake failure against him.
    let dave = node(
        &fed,
        fed.agent_with_window(
            &fed.acme,
            "dave",
            &[],
            FIXTURE_NOW.minus_secs(10 * 86_400),
            FIXTURE_NOW.minus_secs(86_400),
        ),
        &dir.path().join("d"),
        15,
    )
    .await;
    assert!(dave.node.connect(bob.addr.clone()).await.is_err());
    let dave_score = bob.node.trust_of(dave.node.did()).await.unwrap().get();
    assert!(
        dave_score < 500,
        "a refused handshake lowers trust: {dave_score}"
    );

    // bob holds severe evidence against carol: she is refused at the floor.
    bob.node
        .record_evidence(Evidence::new(
            carol_did.clone(),
            EvidenceKind::InvalidSignature,
            FIXTURE_NOW,
        ))
        .await
        .unwrap();
    assert_eq!(bob.node.trust_of(&carol_did).await.unwrap().get(), 0);
    let err = carol.node.connect(bob.addr.clone()).await.unwrap_err();
    assert!(
        matches!(&err, NodeError::HandshakeRefused(r) if r.contains("below_trust_floor") && r.contains("code 19")),
        "{err}"
    );
}

/// Action requests are served only after the handshake: a raw libp2p
/// client that skips it is answered `no_session`, and one that keeps
/// asking is banned (disconnected, its reconnections refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_served_before_the_handshake_and_pests_are_banned() {
    use futures::StreamExt;
    use libp2p::request_response;
    use libp2p::swarm::SwarmEvent;
    use mesh_node::node::{ActionContext, ActionResponse};
    use serde_bytes::ByteBuf;

    let dir = tempfile::tempdir().unwrap();
    let bob = banning_bob(dir.path(), 21, 5).await;
    let mut bob_events = bob.node.events();

    let mut raw = raw_peer();
    raw.dial(bob.addr.clone()).unwrap();
    let bob_peer = bob.node.peer_id();
    let ask = ActionRequest::CoSign {
        record: ByteBuf::from(vec![0xa0]),
        context: ActionContext::Plain {
            payload: ByteBuf::new(),
        },
    };
    let mut answers = Vec::new();
    let mut disconnected = false;
    timeout(WAIT, async {
        loop {
            match raw.select_next_some().await {
                // Three polite requests first, to read bob's answers…
                SwarmEvent::ConnectionEstablished { .. } => {
                    for _ in 0..3 {
                        raw.behaviour_mut().send_request(&bob_peer, Ok(ask.clone()));
                    }
                }
                // …then a burst, which crosses the ban threshold.
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                }) => {
                    answers.push(response);
                    if answers.len() == 3 {
                        for _ in 0..10 {
                            raw.behaviour_mut().send_request(&bob_peer, Ok(ask.clone()));
                        }
                    }
                }
                SwarmEvent::ConnectionClosed {
                    num_established: 0, ..
                } => {
                    disconnected = true;
                    break;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("bob cut the pest off within the bound");
    assert!(disconnected);
    assert!(answers.len() >= 3, "the first requests were answered");
    for a in &answers {
        assert!(
            matches!(a, Ok(ActionResponse::Refused { rule, .. }) if rule == "no_session"),
            "{a:?}"
        );
    }
    next("bob: banned the pest", &mut bob_events, |e| match e {
        NodeEvent::Throttled { banned: true, .. } => Some(()),
        _ => None,
    })
    .await;
    // Reconnecting does not help while the ban lasts.
    raw.dial(bob.addr.clone()).unwrap();
    let closed_again = timeout(WAIT, async {
        loop {
            if let SwarmEvent::ConnectionClosed { .. }
            | SwarmEvent::OutgoingConnectionError { .. } = raw.select_next_some().await
            {
                return true;
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed_again, "a banned peer's new connection is closed");
    assert_eq!(bob.node.log_info().await.unwrap().size, 0);
}

/// Frames that are not messages — here, over the action protocol's
/// 131,072-byte bound — are strikes like any other bad request: a peer
/// sending them is banned (libp2p's CBOR codec read the first 131,072
/// bytes, failed, and only debug-logged it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_frames_are_strikes() {
    use futures::StreamExt;
    use libp2p::swarm::SwarmEvent;
    use mesh_node::node::{ActionContext, MAX_ACTION_FRAME};
    use serde_bytes::ByteBuf;

    let dir = tempfile::tempdir().unwrap();
    let bob = banning_bob(dir.path(), 22, 3).await;
    let mut bob_events = bob.node.events();
    let mut raw = raw_peer();
    raw.dial(bob.addr.clone()).unwrap();
    let bob_peer = bob.node.peer_id();
    let oversized = ActionRequest::CoSign {
        record: ByteBuf::from(vec![0xa0]),
        context: ActionContext::Plain {
            payload: ByteBuf::from(vec![0; MAX_ACTION_FRAME as usize]),
        },
    };
    let closed = timeout(WAIT, async {
        loop {
            match raw.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => {
                    for _ in 0..3 {
                        raw.behaviour_mut()
                            .send_request(&bob_peer, Ok(oversized.clone()));
                    }
                }
                SwarmEvent::ConnectionClosed {
                    num_established: 0, ..
                } => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "bob cut the peer off");
    next("bob: banned the sender", &mut bob_events, |e| match e {
        NodeEvent::Throttled { banned: true, .. } => Some(()),
        _ => None,
    })
    .await;
}

/// bob (globex), banning a peer at its `strikes`-th strike.
async fn banning_bob(dir: &std::path::Path, seed: u8, strikes: u32) -> common::TestNode {
    let fed = Federation::new();
    let limits = mesh_node::node::Limits {
        strikes_before_ban: strikes,
        ..mesh_node::node::Limits::default()
    };
    let agent = fed.agent(&fed.globex, "bob", &[]);
    common::start(common::builder(&fed, agent, &dir.join("b"), seed).limits(limits)).await
}

/// A libp2p peer that speaks the action protocol but never IATP.
fn raw_peer() -> libp2p::Swarm<
    libp2p::request_response::Behaviour<FrameCodec<ActionRequest, mesh_node::node::ActionResponse>>,
> {
    use libp2p::request_response::{self, ProtocolSupport};
    common::raw::peer(|_| {
        request_response::Behaviour::with_codec(
            FrameCodec::new(mesh_node::node::MAX_ACTION_FRAME),
            [(mesh_node::node::ACTION_PROTOCOL, ProtocolSupport::Outbound)],
            request_response::Config::default(),
        )
    })
}

/// The refusal classes a peer can trigger with a real node, each told to
/// the peer with its code over the wire: credential expired, revoked,
/// capability outside the org's policy, a replayed Hello nonce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_class_is_told_over_the_wire() {
    use mesh_iatp::RevokedCredentials;

    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let revoked_agent = fed.agent(&fed.acme, "revoked", &[]);
    let mut revoked = RevokedCredentials::default();
    revoked.revoke(revoked_agent.card().credential.digest());
    let bob = common::start(
        common::builder(
            &fed,
            fed.agent(&fed.globex, "bob", &[]),
            &dir.path().join("b"),
            31,
        )
        .revoked_credentials(revoked),
    )
    .await;
    let day = 86_400;
    let cases = [
        (
            fed.agent_with_window(
                &fed.acme,
                "expired",
                &[],
                FIXTURE_NOW.minus_secs(40 * day),
                FIXTURE_NOW.minus_secs(10 * day),
            ),
            "credential_expired (code 14)",
        ),
        (
            fed.agent_with_window(
                &fed.acme,
                "early",
                &[],
                FIXTURE_NOW.plus_secs(10 * day),
                FIXTURE_NOW.plus_secs(40 * day),
            ),
            "credential_not_yet_valid (code 15)",
        ),
        (revoked_agent, "credential_revoked (code 16)"),
        // globex may offer only `search`.
        (
            fed.agent(&fed.globex, "greedy", &["tools/github"]),
            "capability_not_allowed (code 18)",
        ),
    ];
    for (i, (agent, expected)) in cases.into_iter().enumerate() {
        let name = agent.card().name.clone();
        let peer = node(&fed, agent, &dir.path().join(&name), 40 + i as u8).await;
        let err = peer.node.connect(bob.addr.clone()).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{name}: {err}");
        peer.node.shutdown().await.unwrap();
    }
    assert!(bob.node.peers().await.unwrap().is_empty());

    // A node restarted with the same seed repeats its Hello nonce: refused
    // as a replay (a real node seeds from the OS).
    let first = node(
        &fed,
        fed.agent(&fed.acme, "twice", &[]),
        &dir.path().join("t1"),
        50,
    )
    .await;
    first.node.connect(bob.addr.clone()).await.unwrap();
    first.node.shutdown().await.unwrap();
    let again = node(
        &fed,
        fed.agent(&fed.acme, "twice", &[]),
        &dir.path().join("t2"),
        50,
    )
    .await;
    let err = again.node.connect(bob.addr.clone()).await.unwrap_err();
    assert!(err.to_string().contains("replayed_nonce (code 9)"), "{err}");
}

/// QUIC works as well as TCP, and the memory transport in-process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_authenticate_over_quic_and_the_memory_transport() {
    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let alice = node(
        &fed,
        fed.agent(&fed.acme, "alice", &[]),
        &dir.path().join("a"),
        61,
    )
    .await;
    let bob = node(
        &fed,
        fed.agent(&fed.globex, "bob", &[]),
        &dir.path().join("b"),
        62,
    )
    .await;
    let quic = bob
        .node
        .listen("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap())
        .await
        .unwrap();
    assert!(quic.to_string().contains("quic-v1"), "{quic}");
    assert_eq!(&alice.node.connect(quic).await.unwrap(), bob.node.did());
    alice
        .node
        .record_action(
            bob.node.did(),
            mesh_ledger::record::ActionKind::Invoke,
            b"over quic",
        )
        .await
        .unwrap();
    assert_eq!(bob.node.log_info().await.unwrap().size, 1);

    let carol = node(
        &fed,
        fed.agent(&fed.acme, "carol", &[]),
        &dir.path().join("c"),
        63,
    )
    .await;
    let mem = carol
        .node
        .listen("/memory/0".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(&alice.node.connect(mem).await.unwrap(), carol.node.did());
}

/// Peers find each other through the Kademlia DHT: two nodes that only
/// know a common bootstrap node end up authenticated to each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_are_discovered_through_the_dht() {
    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let hub = node(
        &fed,
        fed.agent(&fed.acme, "hub", &[]),
        &dir.path().join("h"),
        71,
    )
    .await;
    let b = common::start(
        common::builder(
            &fed,
            fed.agent(&fed.globex, "b", &[]),
            &dir.path().join("b"),
            72,
        )
        .bootstrap(hub.addr.clone()),
    )
    .await;
    let c = common::start(
        common::builder(
            &fed,
            fed.agent(&fed.acme, "c", &[]),
            &dir.path().join("c"),
            73,
        )
        .bootstrap(hub.addr.clone()),
    )
    .await;
    let c_did = c.node.did().clone();
    eventually("b and c find each other through the DHT", || {
        let (b, c) = (b.node.clone(), c.node.clone());
        let c_did = c_did.clone();
        async move {
            let (bp, cp) = (b.peers().await.unwrap(), c.peers().await.unwrap());
            bp.iter().any(|p| p.did == c_did) || cp.iter().any(|p| &p.did == b.did())
        }
    })
    .await;
}
