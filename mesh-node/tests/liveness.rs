//! A peer that vanishes without closing its connection (a hung process, a
//! silent partition) is noticed: its pings go unanswered, the connection is
//! closed and the session ends, so the bootstrap redial and anti-entropy can
//! take over. Bounded in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{builder, next, start};
use mesh_iatp::testing::Federation;
use mesh_node::node::NodeEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_answering_loses_its_session() {
    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let mut alice = start(
        builder(
            &fed,
            fed.agent(&fed.acme, "alice", &[]),
            &dir.path().join("a"),
            1,
        )
        .ping_interval(Duration::from_millis(300))
        .request_timeout(Duration::from_secs(1)),
    )
    .await;

    // Bob runs on a runtime of his own, on a thread of his own, so the
    // test can freeze him whole: his sockets stay open, nothing answers.
    let bob = builder(
        &fed,
        fed.agent(&fed.globex, "bob", &[]),
        &dir.path().join("b"),
        2,
    );
    let (ready_tx, ready_rx) = mpsc::channel();
    let (freeze_tx, freeze_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let bob = start(bob).await;
            ready_tx
                .send((bob.node.did().clone(), bob.addr.clone()))
                .unwrap();
            while freeze_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Frozen: the runtime is never driven again (the thread ends
            // with the test process).
            std::thread::sleep(Duration::from_secs(600));
            drop(bob);
        });
    });
    let (bob_did, bob_addr) = ready_rx.recv_timeout(Duration::from_secs(30)).unwrap();

    assert_eq!(alice.node.connect(bob_addr).await.unwrap(), bob_did);
    // Pings are answered while bob runs: the session stands.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(alice.node.peers().await.unwrap().len(), 1);

    freeze_tx.send(()).unwrap();
    let closed = next(
        "alice: bob's session closed",
        &mut alice.events,
        |e| match e {
            NodeEvent::SessionClosed { peer, .. } => Some(peer),
            _ => None,
        },
    )
    .await;
    // Within `next`'s bound (30 s); without the ping rule the connection
    // would stand until TCP gave up retransmitting (many minutes).
    assert_eq!(closed, bob_did);
    assert!(alice.node.peers().await.unwrap().is_empty());
}
