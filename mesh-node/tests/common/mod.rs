//! Helpers for the multi-node tests: real nodes on loopback TCP, a fixed
//! clock, every wait bounded.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use libp2p::Multiaddr;
use mesh_iatp::handshake::LocalAgent;
use mesh_iatp::testing::{FIXTURE_NOW, Federation};
use mesh_node::node::{FixedClock, Node, NodeBuilder, NodeEvent};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::timeout;

pub mod daemon;
pub mod demo;
pub mod raw;

/// The bound on every wait.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running test node.
pub struct TestNode {
    pub node: Node,
    pub events: Receiver<NodeEvent>,
    pub addr: Multiaddr,
}

/// A builder for `agent` with the fixture bundle, the fixed clock, a data
/// dir, fast gossip, listening on loopback TCP, and a task handler that
/// succeeds with no output.
pub fn builder(fed: &Federation, agent: LocalAgent, dir: &Path, seed: u8) -> NodeBuilder {
    without_handler(fed, agent, dir, seed).task_handler(
        |_: &mesh_iatp::Did, _: &mesh_node::node::Task| mesh_node::node::TaskOutcome {
            success: true,
            output: serde_bytes::ByteBuf::new(),
            stopped: None,
        },
    )
}

/// [`builder`] without a task handler: the agent refuses tasks.
pub fn without_handler(fed: &Federation, agent: LocalAgent, dir: &Path, seed: u8) -> NodeBuilder {
    Node::builder()
        .agent(agent)
        .bundle(fed.bundle.clone())
        .data_dir(dir)
        .clock(FixedClock(FIXTURE_NOW))
        .seed([seed; 32])
        .intervals(Duration::from_millis(400), Duration::from_millis(400))
        .heartbeat(Duration::from_millis(150))
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
}

/// Start a node from a builder.
pub async fn start(builder: NodeBuilder) -> TestNode {
    let node = builder.build().await.expect("node starts");
    let events = node.events();
    let addr = node.listen_addrs().await.unwrap().remove(0);
    TestNode { node, events, addr }
}

/// Start `agent`'s node with the defaults of [`builder`].
pub async fn node(fed: &Federation, agent: LocalAgent, dir: &Path, seed: u8) -> TestNode {
    start(builder(fed, agent, dir, seed)).await
}

/// The first event matching `pick`, within [`WAIT`].
pub async fn next<T>(
    what: &str,
    events: &mut Receiver<NodeEvent>,
    mut pick: impl FnMut(NodeEvent) -> Option<T>,
) -> T {
    timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(t) = pick(event) {
                        return t;
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => panic!("node stopped while waiting for {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{what}` within {WAIT:?}"))
}

/// Wait until `check` holds, polling, within [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    timeout(WAIT, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("`{what}` did not happen within {WAIT:?}"));
}
