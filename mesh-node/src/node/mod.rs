//! The running mesh node: the I/O shell around a [`mesh_agent::Agent`]. A
//! libp2p swarm (TCP, QUIC and memory transports; Noise; Yamux; identify,
//! ping, Kademlia, optional mDNS; gossipsub; the IATP and action
//! request-response protocols) and the node's SQL log, driven by one task
//! that owns the agent and carries out its effects, controlled through a
//! cloneable [`Node`].
//!
//! Every connection is authenticated with the IATP handshake before
//! anything else is served: action requests from a peer without a session
//! are refused, and its gossip is ignored. Cross-agent actions become
//! records co-signed by both agents and appended to both agents' logs;
//! trust reports, revocations, checkpoints and equivocation proofs travel
//! by gossip, each verified before it is forwarded. What is decided, and
//! how, is the agent's (see `mesh_agent`); this module moves bytes.
//!
//! Module map: [`protocol`] (protocol ids, the agent's wire messages),
//! `net` (one libp2p behaviour per protocol — `net::exchange` for
//! the handshake and actions, [`gossip`] with its topics and peer scoring
//! — composed, and the swarm), `driver` (the task owning agent, swarm and
//! log), `ledger` (the log), `handle` (the embedding API), `builder`,
//! `view` (the dashboard's view), [`metrics`].

mod builder;
mod driver;
mod handle;
pub mod inbox;
mod ledger;
pub mod limits;
pub mod metrics;
mod net;
pub mod protocol;
mod view;

pub use builder::{NodeBuilder, Settings};
pub use handle::{LogInfo, Node, PeerInfo, StartedTask};
pub use inbox::{Inbox, InboxError, InboxTask};
pub use ledger::LEDGER_FILE;
pub use limits::Limits;
pub use mesh_agent::{
    DelegateOptions, Delegated, GrantOptions, InclusionProof, IssuedGrant, Recorded, Revoked,
    SpawnOptions, Spawned, digest_of,
};
pub use net::gossip;
pub use net::{IDENTIFY_VERSION, KAD_PROTOCOL};
pub use protocol::{
    ACTION_PROTOCOL, ActionContext, ActionRequest, ActionResponse, IATP_PROTOCOL, IatpRequest,
    IatpResponse, MAX_ACTION_FRAME, MAX_IATP_FRAME, Stopped, Task, TaskOutcome,
};
pub use view::{NodeView, serve_dashboard};

use std::sync::Arc;

use mesh_delegation::Denial;
use mesh_iatp::{Did, Timestamp};

/// Where the node reads the time (injected so tests control it).
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
    }
}

/// A fixed time (tests, simulations).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// Who runs the tasks other agents delegate to this one.
#[derive(Clone, Default)]
pub enum Runner {
    /// Nobody: the agent refuses delegated tasks (`no_handler`).
    #[default]
    None,
    /// A handler in this process, run on the blocking pool.
    Handler(Arc<dyn TaskHandler>),
    /// An agent process outside the node, through the [`Inbox`] (the
    /// local agent API serves it).
    Inbox(Arc<Inbox>),
}

/// Runs the tasks other agents delegate to this one.
pub trait TaskHandler: Send + Sync + 'static {
    /// Do `task` for `delegator` (who holds a grant the gate accepted).
    fn handle(&self, delegator: &Did, task: &Task) -> TaskOutcome;
}

impl<F> TaskHandler for F
where
    F: Fn(&Did, &Task) -> TaskOutcome + Send + Sync + 'static,
{
    fn handle(&self, delegator: &Did, task: &Task) -> TaskOutcome {
        self(delegator, task)
    }
}

/// What the node tells its embedder: the agent's events, typed
/// ([`mesh_agent::Event`]).
pub type NodeEvent = mesh_agent::Event;

/// Why the node could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The identity could not become a libp2p key.
    #[error(transparent)]
    TransportKey(#[from] crate::transport_key::TransportKeyError),
    /// A builder setting is missing or wrong.
    #[error("node configuration: {0}")]
    Config(String),
    /// libp2p refused the configuration.
    #[error("network setup: {0}")]
    Setup(String),
    /// A listen or dial address was refused.
    #[error("{0}")]
    Address(String),
    /// The dial failed.
    #[error("could not connect: {0}")]
    Dial(String),
    /// A handshake was refused (by us or the peer).
    #[error("handshake refused: {0}")]
    HandshakeRefused(String),
    /// There is no authenticated session with this agent.
    #[error("no session with {0}")]
    NoSession(Did),
    /// The local gate denied the request.
    #[error("the gate denied it: {0}")]
    Denied(Denial),
    /// The peer refused the request.
    #[error("the peer refused ({rule}, code {code}): {reason}")]
    PeerRefused {
        /// The refusal's stable code (PROTOCOL.md §10.1).
        code: u16,
        /// The peer's rule.
        rule: String,
        /// The peer's reason.
        reason: String,
    },
    /// The peer answered something it should not have.
    #[error("bad answer from the peer: {0}")]
    BadResponse(String),
    /// The request reached no answer (timeout, closed connection).
    #[error("request failed: {0}")]
    RequestFailed(String),
    /// The ledger failed.
    #[error("ledger: {0}")]
    Ledger(#[from] mesh_ledger::store::StoreError),
    /// Signing or encoding failed.
    #[error("signing: {0}")]
    Signing(String),
    /// The link to revoke was not issued by this node.
    #[error("this node issued no grant or certificate {0}")]
    UnknownLink(String),
    /// Something was malformed (e.g. a capability string).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A delegated task was accepted but not answered by its deadline
    /// (a late answer is still co-signed into both logs).
    #[error("{0} accepted the task but did not answer it by its deadline")]
    TaskExpired(Did),
    /// No task this node delegated awaits an answer under this grant.
    #[error("no task delegated by this node awaits an answer under grant {0}")]
    UnknownTask(String),
    /// The node task has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// A bounded wait ran out.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

/// The agent of a libp2p PeerId, if it is an Ed25519 identity.
pub fn did_of(peer: &libp2p::PeerId) -> Option<Did> {
    mesh_iatp::PeerId::from_bytes(&peer.to_bytes())
        .ok()?
        .to_did()
        .ok()
}

/// The libp2p PeerId of an agent (the same Ed25519 key).
pub fn peer_of(did: &Did) -> Option<libp2p::PeerId> {
    libp2p::PeerId::from_bytes(mesh_iatp::PeerId::from_did(did).as_bytes()).ok()
}

impl From<mesh_agent::AgentError> for NodeError {
    fn from(e: mesh_agent::AgentError) -> Self {
        use mesh_agent::AgentError as A;
        match e {
            A::NoSession(did) => NodeError::NoSession(did),
            A::Denied(d) => NodeError::Denied(d),
            A::PeerRefused { code, rule, reason } => NodeError::PeerRefused { code, rule, reason },
            A::BadResponse(s) => NodeError::BadResponse(s),
            A::RequestFailed(s) => NodeError::RequestFailed(s),
            A::Signing(s) => NodeError::Signing(s),
            A::UnknownLink(s) => NodeError::UnknownLink(s),
            A::Invalid(s) => NodeError::Invalid(s),
            A::TaskExpired(who) => NodeError::TaskExpired(who),
            A::UnknownTask(s) => NodeError::UnknownTask(s),
        }
    }
}
