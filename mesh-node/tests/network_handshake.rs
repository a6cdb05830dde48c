//! Real libp2p nodes on loopback TCP run the IATP handshake as soon as they
//! connect; a peer from an org outside the bundle is refused and
//! disconnected. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mesh_iatp::handshake::{HandshakeConfig, LocalAgent};
use mesh_iatp::testing::{FIXTURE_NOW, Federation};
use mesh_node::node::{FixedClock, NodeConfig, NodeEvent, NodeHandle, start};
use mesh_trust::{Evidence, EvidenceKind, TrustConfig};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(15);

fn node(fed: &Federation, local: LocalAgent, seed: u64) -> (NodeHandle, Receiver<NodeEvent>) {
    start(NodeConfig {
        local,
        bundle: fed.bundle.clone(),
        handshake: HandshakeConfig::default(),
        clock: FixedClock(FIXTURE_NOW),
        rng: ChaCha20Rng::seed_from_u64(seed),
        trust: TrustConfig::default(),
    })
    .unwrap()
}

/// The first event matching `pick`, within the time bound.
async fn next<T>(
    what: &str,
    events: &mut Receiver<NodeEvent>,
    mut pick: impl FnMut(NodeEvent) -> Option<T>,
) -> T {
    timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("node running");
            let shown = format!("{event:?}");
            match pick(event) {
                Some(t) => return t,
                None => eprintln!("(skipped event: {shown})"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{what}` event within {WAIT:?}"))
}

async fn listening(handle: &NodeHandle, events: &mut Receiver<NodeEvent>) -> libp2p::Multiaddr {
    handle
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .await
        .unwrap();
    next("listening", events, |e| match e {
        NodeEvent::Listening(a) => Some(a),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_agents_authenticate_over_tcp_and_outsiders_are_refused() {
    let fed = Federation::new();
    let (alice, mut alice_ev) = node(&fed, fed.agent(&fed.acme, "alice", &["tools/github"]), 1);
    let (bob, mut bob_ev) = node(&fed, fed.agent(&fed.globex, "bob", &["search"]), 2);
    let (eve, mut eve_ev) = node(&fed, fed.agent(&fed.rogue, "eve", &[]), 3);
    let bob_addr = listening(&bob, &mut bob_ev).await;

    // alice dials bob: both sides end with an authenticated session.
    alice.dial(bob_addr.clone()).await.unwrap();
    let at_alice = next("alice: session", &mut alice_ev, |e| match e {
        NodeEvent::SessionEstablished(s) => Some(s),
        _ => None,
    })
    .await;
    let at_bob = next("bob: session", &mut bob_ev, |e| match e {
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
        alice.peer_id().to_bytes()
    );
    assert_eq!(bob.sessions().await.unwrap().len(), 1);

    // eve's org is not in bob's bundle: bob refuses and says why.
    eve.dial(bob_addr).await.unwrap();
    let refused = next("bob: refused eve", &mut bob_ev, |e| match e {
        NodeEvent::RefusedPeer { peer, refusal } => Some((peer, refusal)),
        _ => None,
    })
    .await;
    assert_eq!(refused.0, eve.peer_id());
    assert_eq!(refused.1.name(), "org_not_in_bundle");
    let told = next("eve: told why", &mut eve_ev, |e| match e {
        NodeEvent::RefusedByPeer { peer, code, reason } => Some((peer, code, reason)),
        _ => None,
    })
    .await;
    assert_eq!(
        (told.0, told.1, told.2.as_str()),
        (bob.peer_id(), 17, "org_not_in_bundle")
    );

    // …and eve is disconnected, while alice stays connected.
    timeout(WAIT, async {
        while bob
            .connected_peers()
            .await
            .unwrap()
            .contains(&eve.peer_id())
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("eve disconnected within the time bound");
    assert!(
        bob.connected_peers()
            .await
            .unwrap()
            .contains(&alice.peer_id())
    );

    // bob keeps exactly one session: alice's.
    let sessions = bob.sessions().await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].remote_card.name, "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_feed_trust_and_the_trust_floor_refuses_over_the_network() {
    let fed = Federation::new();
    let alice_agent = fed.agent(&fed.acme, "alice", &[]);
    let carol_agent = fed.agent(&fed.acme, "carol", &[]);
    let eve_agent = fed.agent(&fed.rogue, "eve", &[]);
    let (alice_did, carol_did, eve_did) = (
        alice_agent.identity().did().clone(),
        carol_agent.identity().did().clone(),
        eve_agent.identity().did().clone(),
    );
    let (bob, mut bob_ev) = node(&fed, fed.agent(&fed.globex, "bob", &[]), 12);
    let (alice, mut alice_ev) = node(&fed, alice_agent, 11);
    let (carol, mut carol_ev) = node(&fed, carol_agent, 13);
    let (eve, mut eve_ev) = node(&fed, eve_agent, 14);
    let bob_addr = listening(&bob, &mut bob_ev).await;

    // A completed handshake is a (small) good observation, under acme's policy.
    alice.dial(bob_addr.clone()).await.unwrap();
    next("bob: session", &mut bob_ev, |e| {
        matches!(e, NodeEvent::SessionEstablished(_)).then_some(())
    })
    .await;
    next("alice: session", &mut alice_ev, |e| {
        matches!(e, NodeEvent::SessionEstablished(_)).then_some(())
    })
    .await;
    let alice_score = bob.trust_score(&alice_did).await.unwrap().get();
    assert!(
        alice_score > 500 && alice_score < 600,
        "acme starts at 500: {alice_score}"
    );

    // eve's signature verified before her org was refused: accountable, so
    // bob records a handshake failure against her (unknown org: starts at 300).
    eve.dial(bob_addr.clone()).await.unwrap();
    next("eve: told why", &mut eve_ev, |e| {
        matches!(e, NodeEvent::RefusedByPeer { .. }).then_some(())
    })
    .await;
    let eve_score = bob.trust_score(&eve_did).await.unwrap().get();
    assert!(
        eve_score < 300,
        "a refused handshake lowers trust: {eve_score}"
    );

    // bob holds severe evidence against carol: she is refused at the floor.
    bob.record_evidence(Evidence::new(
        carol_did.clone(),
        EvidenceKind::InvalidSignature,
        FIXTURE_NOW,
    ))
    .await
    .unwrap();
    assert_eq!(bob.trust_score(&carol_did).await.unwrap().get(), 0);
    carol.dial(bob_addr).await.unwrap();
    let told = next("carol: told why", &mut carol_ev, |e| match e {
        NodeEvent::RefusedByPeer { code, reason, .. } => Some((code, reason)),
        _ => None,
    })
    .await;
    assert_eq!((told.0, told.1.as_str()), (19, "below_trust_floor"));
}
