//! # mesh-agent: the agent's protocol brain, sans I/O
//!
//! One deterministic state machine per agent: [`Agent::handle`] takes an
//! [`Input`] (a peer's message, a gossip message, a task's outcome, a
//! [`Command`] from the embedder, a tick) and the time, and returns the
//! [`Effect`]s to carry out (send, respond, publish, append to the log,
//! persist, run a task, report an [`Event`]). No sockets, no async runtime,
//! no database: time and randomness are injected, so the same inputs give
//! the same effects, byte for byte.
//!
//! `mesh-node` drives an agent over libp2p and a SQL store; [`sim`] drives
//! many over a seeded in-memory network with virtual time, which is how
//! protocol behaviour is tested.
//!
//! ```
//! use mesh_agent::sim::{Mesh, NetConfig};
//!
//! // Two agents of one org, connected over a perfect network.
//! let mut mesh = Mesh::new(7, NetConfig::default());
//! let acme = mesh.add_org("acme");
//! let a = mesh.add_agent(acme, "a");
//! let b = mesh.add_agent(acme, "b");
//! mesh.connect(a, b);
//! mesh.run_for(std::time::Duration::from_secs(1));
//! assert!(mesh.agent(a).session(mesh.did(b)).is_some());
//! ```
#![forbid(unsafe_code)]
#![warn(unnameable_types)]

mod agent;
mod aggregate;
pub mod api;
mod commands;
mod config;
mod conversation;
mod cosign;
pub mod durable;
mod error;
pub mod fork;
pub mod gossip;
mod handshake;
pub mod io;
pub mod knowledge;
pub mod limits;
mod lineage;
mod refusal;
mod restore;
mod schedule;
pub mod sim;
mod sync;
pub mod tasks;
pub mod time;
mod topic;
pub mod wire;
mod witness;

pub use agent::{Agent, AgentConfig, Settings, SetupError};
pub use api::{
    DelegateOptions, Delegated, GrantOptions, InclusionProof, IssuedGrant, Outcome, Recorded,
    Revoked, SpawnOptions, Spawned,
};
pub use commands::kind_name;
pub use cosign::digest_of;
pub use durable::Fact;
pub use error::AgentError;
pub use handshake::REFUSED_GRACE;
pub use io::{
    Command, Effect, Event, GateRequest, GossipId, InboundId, Input, OpId, ProofRequest, Request,
    RequestId, Response, TaskId, Verdict,
};
pub use limits::Limits;
pub use lineage::LineageVerifier;
pub use refusal::ActionRefusal;
pub use restore::note_size;
pub use time::{Millis, Now};
pub use topic::Topic;
pub use witness::{open_log_checkpoint, verify_equivocation};
