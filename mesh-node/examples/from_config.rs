//! An agent embedding a node from its real files: the same `node.toml`,
//! key, credential and trust bundle `mesh-node run` reads, with the
//! agent's own task handler (here: it reverses the task's input).
//!
//! Run: `cargo run -p mesh-node --example from_config -- node.toml`
//! (make the files with the README's tour: `identity new`, `org new`,
//! `org issue`, a bundle, a `node.toml`). Ctrl-C stops it.

use mesh_node::node::{NodeBuilder, NodeEvent, Task, TaskOutcome};
use serde_bytes::ByteBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: from_config NODE_TOML"))?;
    let node = NodeBuilder::from_config(path.as_ref())?
        .task_handler(|_: &mesh_iatp::Did, task: &Task| TaskOutcome {
            success: true,
            output: ByteBuf::from(task.input.iter().rev().copied().collect::<Vec<u8>>()),
            stopped: None,
        })
        .build()
        .await?;
    println!("agent {}", node.did());
    for addr in node.listen_addrs().await? {
        println!("listening {addr}/p2p/{}", node.peer_id());
    }
    let mut events = node.events();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = events.recv() => match event {
                Ok(NodeEvent::SessionEstablished(s)) => println!("session with {} ({})", s.remote, s.policy.name),
                Ok(NodeEvent::TaskDone { success, .. }) => println!("ran a task: success {success}"),
                Ok(_) => {}
                Err(_) => break,
            },
        }
    }
    node.shutdown().await?;
    Ok(())
}
