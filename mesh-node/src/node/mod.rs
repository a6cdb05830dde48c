//! The running mesh node: a libp2p swarm (TCP, QUIC and memory transports;
//! Noise; Yamux; identify, ping, Kademlia, optional mDNS; gossipsub; the
//! IATP and action request-response protocols), the agent's trust engine,
//! delegation gate and ledger, controlled through a cloneable [`Node`].
//!
//! Every connection is authenticated with the IATP handshake before
//! anything else is served: action requests from a peer without a session
//! are refused, and its gossip is ignored. Cross-agent actions become
//! records co-signed by both agents and appended to both agents' logs; trust
//! reports, revocations, checkpoints and equivocation proofs travel by
//! gossip, each verified before it is forwarded.
//!
//! Module map: [`protocol`] (wire messages), [`gossip`] (topics, peer
//! scoring), [`limits`] (rate limits), `state` (what the node knows),
//! `ledger` (its log), `swarm` (the network task), `serve` (answering
//! action requests), `handle` (the embedding API), `builder`.

mod builder;
pub mod gossip;
mod handle;
mod ledger;
pub mod limits;
pub mod metrics;
pub mod protocol;
mod serve;
mod state;
mod swarm;
mod view;

pub use builder::NodeBuilder;
pub use handle::{
    DelegateOptions, Delegated, GrantOptions, InclusionProof, IssuedGrant, LogInfo, Node, PeerInfo,
    Recorded, Revoked, SpawnOptions, Spawned,
};
pub use ledger::LEDGER_FILE;
pub use limits::Limits;
pub use protocol::{
    ACTION_PROTOCOL, ActionContext, ActionRequest, ActionResponse, IATP_PROTOCOL, IatpRequest,
    IatpResponse, MAX_ACTION_FRAME, MAX_IATP_FRAME, Task, TaskOutcome,
};
pub use view::{NodeView, serve_dashboard};

use libp2p::Multiaddr;
use mesh_delegation::Denial;
use mesh_iatp::handshake::{Refusal, Session};
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

/// What the node tells its embedder.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// The node listens on this address.
    Listening(Multiaddr),
    /// A peer completed the IATP handshake with us.
    SessionEstablished(Box<Session>),
    /// A peer's connection closed.
    PeerDisconnected(libp2p::PeerId),
    /// We refused a peer's handshake (and disconnected it).
    RefusedPeer {
        /// The peer.
        peer: libp2p::PeerId,
        /// Why.
        refusal: Refusal,
    },
    /// A peer refused our handshake.
    RefusedByPeer {
        /// The peer.
        peer: libp2p::PeerId,
        /// Its refusal code.
        code: u16,
        /// Its refusal name.
        reason: String,
    },
    /// A record was co-signed and appended to this node's log.
    Recorded {
        /// Its index in this node's log.
        index: u64,
        /// `delegate`, `invoke`, `result`, `spawn` or `revoke`.
        kind: String,
        /// The other party.
        with: Did,
    },
    /// A task another agent delegated was run.
    TaskDone {
        /// Who delegated it.
        delegator: Did,
        /// The task.
        task: Task,
        /// Whether it succeeded.
        success: bool,
    },
    /// The gate refused something (here, or a request from a peer).
    GateDenied {
        /// What was asked.
        what: String,
        /// The gate's rule (e.g. `trust_below_link_minimum`).
        rule: String,
        /// The full reason.
        reason: String,
    },
    /// A trust report from `reporter` was accepted.
    TrustReport {
        /// Who signed it.
        reporter: Did,
    },
    /// A revocation was learned (by gossip or issued here).
    Revocation {
        /// Who revoked.
        revoker: Did,
        /// The revoked link's hash.
        target: [u8; 32],
    },
    /// A peer's checkpoint was witnessed and cosigned.
    Witnessed {
        /// The log's origin.
        origin: String,
        /// Its size.
        size: u64,
    },
    /// A witness's cosignature was added to this node's checkpoint.
    Cosigned {
        /// The witness.
        witness: Did,
        /// The checkpoint size.
        size: u64,
    },
    /// An agent was proven to equivocate; its trust is at the floor.
    Equivocation {
        /// The offender.
        offender: Did,
    },
    /// A gossip message or request failed verification (and was
    /// penalised).
    Rejected {
        /// The peer that sent it.
        peer: libp2p::PeerId,
        /// What it was.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A peer exceeded its rate limit (its excess is refused; enough
    /// strikes and it is disconnected and banned).
    Throttled {
        /// The peer.
        peer: libp2p::PeerId,
        /// Strikes so far.
        strikes: u32,
        /// Whether it was just banned.
        banned: bool,
    },
}

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
    #[error("the peer refused ({rule}): {reason}")]
    PeerRefused {
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
    /// The node task has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// A bounded wait ran out.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

/// SHA-256 of a value's canonical CBOR: a payload digest for records.
pub fn digest_of<T: serde::Serialize>(value: &T) -> Result<[u8; 32], NodeError> {
    use sha2::{Digest, Sha256};
    let bytes =
        mesh_iatp::cbor::to_canonical_vec(value).map_err(|e| NodeError::Signing(e.to_string()))?;
    Ok(Sha256::digest(bytes).into())
}

/// The agent of a libp2p PeerId, if it is an Ed25519 identity.
pub fn did_of(peer: &libp2p::PeerId) -> Option<Did> {
    mesh_iatp::PeerId::from_bytes(&peer.to_bytes())
        .ok()?
        .to_did()
        .ok()
}
