//! # mesh-node: the agent's node in the mesh
//!
//! The one crate that owns sockets: the I/O shell around the agent's
//! protocol brain (`mesh_agent`). A [`node::Node`] is a libp2p node (TCP,
//! QUIC or in-process memory transport) and a SQL log driving one agent,
//! which authenticates every peer with the IATP handshake before serving
//! it anything, keeps its trust engine, delegation gate and ledger,
//! co-signs a record of every cross-agent action into both agents' logs,
//! gossips trust reports, revocations, checkpoints and equivocation proofs
//! (each verified before it is forwarded), witnesses its peers' logs, and
//! rate-limits every peer.
//! Also here: key files ([`keyfile`]), the mesh identity → libp2p key bridge
//! ([`transport_key`]), `node.toml` ([`config`]), loading an agent from its
//! files ([`load`]), a credential's window in words ([`validity`]), and the
//! `mesh-node` CLI.
//!
//! Two agents over libp2p's memory transport, recording a co-signed action:
//!
//! ```
//! use mesh_iatp::testing::{Federation, FIXTURE_NOW};
//! use mesh_ledger::record::ActionKind;
//! use mesh_node::node::{FixedClock, Node};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = tokio::runtime::Runtime::new()?;
//! rt.block_on(async {
//!     let fed = Federation::new();
//!     let dir = tempfile::tempdir()?;
//!     let start = |name: &str, org| {
//!         Node::builder()
//!             .agent(fed.agent(org, name, &[]))
//!             .bundle(fed.bundle.clone())
//!             .data_dir(dir.path().join(name))
//!             .clock(FixedClock(FIXTURE_NOW))
//!             .build()
//!     };
//!     let alice = start("alice", &fed.acme).await?;
//!     let bob = start("bob", &fed.globex).await?;
//!     let at = bob.listen("/memory/0".parse()?).await?;
//!
//!     let bob_did = alice.connect(at).await?; // the IATP handshake
//!     assert_eq!(alice.peers().await?[0].org, "globex");
//!     let r = alice.record_action(&bob_did, ActionKind::Invoke, b"hello").await?;
//!     assert!(alice.prove(r.index).await?.verify());
//!     assert_eq!(bob.log_info().await?.size, 1); // in both logs
//!     alice.shutdown().await?;
//!     bob.shutdown().await?;
//!     Ok(())
//! })
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(unnameable_types)]

pub mod agent_api;
pub mod config;
pub mod keyfile;
pub mod load;
pub mod mcp;
pub mod node;
pub mod revoked;
pub mod transport_key;
pub mod validity;
