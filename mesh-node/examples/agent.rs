//! An agent embedding a mesh node: start it, join a peer, watch events,
//! ask for trust, record a co-signed action, prove it, shut down.
//!
//! Run: `cargo run -p mesh-node --example agent`. It uses the test fixtures'
//! keys and their fixed clock so it needs no files; a real agent loads its
//! key and credential (see `mesh-node run`).

use std::time::Duration;

use mesh_iatp::testing::{FIXTURE_NOW, Federation};
use mesh_ledger::record::ActionKind;
use mesh_node::node::{FixedClock, Node, NodeEvent};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let fed = Federation::new();
    let data = tempfile::tempdir()?;

    // This agent's node, and a peer to talk to (here in the same process).
    let me = Node::builder()
        .agent(fed.agent(&fed.acme, "assistant", &["search"]))
        .bundle(fed.bundle.clone())
        .data_dir(data.path().join("assistant"))
        .clock(FixedClock(FIXTURE_NOW))
        .listen("/ip4/127.0.0.1/tcp/0".parse()?)
        .build()
        .await?;
    let peer = Node::builder()
        .agent(fed.agent(&fed.globex, "researcher", &["search"]))
        .bundle(fed.bundle.clone())
        .data_dir(data.path().join("researcher"))
        .clock(FixedClock(FIXTURE_NOW))
        .listen("/ip4/127.0.0.1/tcp/0".parse()?)
        .build()
        .await?;

    // Events arrive on a stream; print the interesting ones as they come.
    let mut events = me.events();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            match event {
                NodeEvent::SessionEstablished(s) => {
                    println!(
                        "event: session with {} ({})",
                        s.remote_card.name, s.policy.name
                    )
                }
                NodeEvent::Recorded { index, kind, .. } => {
                    println!(
                        "event: recorded {} at index {index}",
                        mesh_agent::kind_name(kind)
                    )
                }
                _ => {}
            }
        }
    });

    // Connect: the IATP handshake runs before anything else.
    let addr = peer.listen_addrs().await?.remove(0);
    let researcher = me.connect(addr).await?;
    println!("connected to {researcher}");
    println!(
        "trust in the researcher: {}",
        me.trust_of(&researcher).await?
    );

    // A co-signed record of an action, in both agents' logs.
    let recorded = me
        .record_action(
            &researcher,
            ActionKind::Invoke,
            b"asked for a literature search",
        )
        .await?;
    let proof = me.prove(recorded.index).await?;
    println!(
        "record {} is in my log of {} (proof verifies: {}) and in the researcher's log of {}",
        recorded.index,
        proof.size,
        proof.verify(),
        peer.log_info().await?.size
    );

    tokio::time::sleep(Duration::from_millis(100)).await;
    me.shutdown().await?;
    peer.shutdown().await?;
    Ok(())
}
