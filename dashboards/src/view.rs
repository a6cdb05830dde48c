//! What the dashboard reads from a node, and the one thing it may change.
//!
//! The dashboard never sees the node's networking: the node implements
//! [`MeshView`] (and [`MeshControl`] for the token-guarded writes) over its
//! own state, converting into the plain types here. Everything a view
//! returns is already public information about the node: no key material
//! passes through this trait.

use std::future::Future;

use mesh_iatp::{Did, Score};
use mesh_trust::{Explanation, Tier};
use serde::Serialize;
use tokio::sync::broadcast;

/// Why a view could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ViewError {
    /// The thing asked for does not exist (a record index past the end,
    /// a link this node did not issue).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request itself is wrong.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The node could not answer now (its ledger failed, it is stopping).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Who the node is.
#[derive(Debug, Clone, Serialize)]
pub struct NodeIdentity {
    /// Its agent's DID.
    pub did: String,
    /// Its libp2p PeerId (base58).
    pub peer_id: String,
    /// The name on its card.
    pub name: String,
    /// Its organisation's name, as its own bundle knows it.
    pub org: String,
    /// Addresses it listens on.
    pub listen: Vec<String>,
}

/// An authenticated peer as the node sees it now.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its agent.
    pub did: Did,
    /// The name on its card.
    pub name: String,
    /// Its organisation.
    pub org: String,
    /// Our score for it.
    pub score: Score,
    /// The score's tier.
    pub tier: Tier,
}

/// A grant or spawn certificate this node issued or holds.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// Its hash (hex): what revocation names.
    pub hash: String,
    /// `grant` or `spawn`.
    pub kind: &'static str,
    /// Who signed it (the parent, for a spawn certificate).
    pub issuer: String,
    /// Who received it (the child, for a spawn certificate).
    pub audience: String,
    /// What it allows (`resource:action`).
    pub capabilities: Vec<String>,
    /// Unix seconds it expires at.
    pub expires: u64,
    /// Whether this node knows it revoked (here or by gossip).
    pub revoked: bool,
    /// Whether this node issued it (and so may revoke it).
    pub issued_here: bool,
}

/// The node's own log and the logs it witnesses.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerStatus {
    /// The log's origin (the node's DID).
    pub origin: String,
    /// Records in it.
    pub size: u64,
    /// RFC 6962 root (hex).
    pub root: String,
    /// The latest signed checkpoint, with its cosignatures.
    pub checkpoint: Option<CheckpointStatus>,
    /// Other nodes' logs this node witnessed: the size and root it cosigned.
    pub witnessing: Vec<WitnessedLog>,
}

/// A signed checkpoint and who cosigned it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointStatus {
    /// The size it commits to.
    pub size: u64,
    /// The root (hex).
    pub root: String,
    /// The note as stored (text and signature lines; public).
    pub note: String,
    /// One entry per witness signature line.
    pub cosignatures: Vec<Cosignature>,
}

/// One witness cosignature on a checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Cosignature {
    /// The witness (its key name: a DID).
    pub witness: String,
    /// Unix seconds the witness signed at, when the signature verifies.
    pub time: Option<u64>,
    /// Whether the signature verifies under the witness's DID.
    pub valid: bool,
}

/// What this node cosigned of another log.
#[derive(Debug, Clone, Serialize)]
pub struct WitnessedLog {
    /// That log's origin.
    pub origin: String,
    /// The size cosigned.
    pub size: u64,
    /// The root cosigned (hex).
    pub root: String,
}

/// One co-signed record of the node's log.
#[derive(Debug, Clone, Serialize)]
pub struct RecordEntry {
    /// Its index.
    pub index: u64,
    /// `delegate`, `invoke`, `result`, `spawn` or `revoke`.
    pub kind: String,
    /// Who acted (signed first).
    pub actor: String,
    /// Who countersigned.
    pub counterparty: String,
    /// The grant it happened under (hex), if any.
    pub grant: Option<String>,
    /// SHA-256 of the payload (hex).
    pub payload_digest: String,
    /// Unix seconds.
    pub timestamp: u64,
    /// The RFC 6962 leaf hash (hex).
    pub leaf_hash: String,
}

/// A record's inclusion proof against the log's current size.
#[derive(Debug, Clone, Serialize)]
pub struct InclusionProof {
    /// The log.
    pub origin: String,
    /// The record.
    pub record: RecordEntry,
    /// The tree size proven against.
    pub size: u64,
    /// The root at that size (hex).
    pub root: String,
    /// The audit path (hex), leaf side first.
    pub path: Vec<String>,
    /// Whether the node checked the path leads from the leaf to the root.
    pub verified: bool,
}

/// The result of verifying the node's whole log, as `mesh-ledger verify`
/// would.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Records read (and their two signatures checked).
    pub records: u64,
    /// Checkpoints checked against recomputed roots.
    pub checkpoints: usize,
    /// Witness cosignatures verified.
    pub cosignatures: usize,
    /// Cosignature lines from keys the node does not know.
    pub unknown_cosigners: usize,
    /// Everything wrong, in the order found (empty when sound).
    pub faults: Vec<String>,
    /// No faults.
    pub sound: bool,
    /// Wall time the verification took, in milliseconds.
    pub millis: u64,
    /// Unix seconds it finished at.
    pub at: u64,
}

/// What revoking did.
#[derive(Debug, Clone, Serialize)]
pub struct RevokeOutcome {
    /// The revoked link (hex).
    pub link: String,
    /// The index of the co-signed `revoke` record, when the audience was
    /// connected to countersign it.
    pub record: Option<u64>,
}

/// Something that happened on the node, as the dashboard shows it live.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Activity {
    /// A peer completed the handshake.
    PeerJoined {
        /// Its agent.
        did: String,
        /// Its card's name.
        name: String,
        /// Its organisation.
        org: String,
    },
    /// A peer's connection closed.
    PeerLeft {
        /// Its libp2p PeerId.
        peer_id: String,
    },
    /// Something was refused; kept in the refusals list.
    Refusal(Refusal),
    /// A record was co-signed and appended to the node's log.
    Recorded {
        /// Its index.
        index: u64,
        /// Its kind.
        kind: String,
        /// The other party.
        with: String,
    },
    /// A revocation was issued here or learned.
    Revocation {
        /// Who revoked.
        revoker: String,
        /// The link (hex).
        target: String,
    },
    /// The node cosigned another log's checkpoint.
    Witnessed {
        /// That log.
        origin: String,
        /// Its size.
        size: u64,
    },
    /// A witness cosigned this node's checkpoint.
    Cosigned {
        /// The witness.
        witness: String,
        /// The checkpoint's size.
        size: u64,
    },
    /// An agent was proven to sign two roots for one log size.
    Equivocation {
        /// The offender.
        offender: String,
    },
    /// A signed trust report was accepted.
    TrustReport {
        /// Who signed it.
        reporter: String,
        /// Its sequence number within the reporter's epoch.
        sequence: u64,
        /// When this node accepted it, Unix milliseconds.
        at_ms: u64,
    },
    /// This node published its signed trust report (to time its spread).
    ReportPublished {
        /// Its sequence number within this node's epoch.
        sequence: u64,
        /// When, Unix milliseconds.
        at_ms: u64,
    },
}

/// A refusal: a handshake refused either way, a gate denial, rejected
/// gossip, a rate limit.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// Unix seconds.
    pub at: u64,
    /// `handshake_refused`, `refused_by_peer`, `gate_denied`, `rejected`
    /// or `throttled`.
    pub kind: &'static str,
    /// Whom or what it concerned (a DID, a PeerId, a request).
    pub subject: String,
    /// The rule or refusal code name (e.g. `trust_below_link_minimum`).
    pub rule: String,
    /// The full reason.
    pub reason: String,
}

/// The read-only view of a node the dashboard is built on.
pub trait MeshView: Send + Sync + 'static {
    /// Who the node is.
    fn identity(&self) -> NodeIdentity;
    /// Its authenticated peers now.
    fn peers(&self) -> impl Future<Output = Vec<Peer>> + Send;
    /// Our score for `agent` and everything behind it.
    fn explain(&self, agent: &Did) -> impl Future<Output = Result<Explanation, ViewError>> + Send;
    /// Grants and spawn certificates the node issued or holds.
    fn links(&self) -> impl Future<Output = Vec<Link>> + Send;
    /// The node's log, latest checkpoint and witness state.
    fn ledger(&self) -> impl Future<Output = Result<LedgerStatus, ViewError>> + Send;
    /// Records `from..from + limit` of the node's log (fewer at the end).
    fn records(
        &self,
        from: u64,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<RecordEntry>, ViewError>> + Send;
    /// Record `index`'s inclusion proof against the current size.
    fn prove(&self, index: u64) -> impl Future<Output = Result<InclusionProof, ViewError>> + Send;
    /// Verify the whole log (signatures, roots, checkpoints, cosignatures).
    fn verify(&self) -> impl Future<Output = Result<Verification, ViewError>> + Send;
    /// The node's metrics in Prometheus text format.
    fn metrics(&self) -> impl Future<Output = String> + Send;
    /// A stream of what happens on the node. A slow reader loses the
    /// oldest items (`Lagged`), the node never waits for it.
    fn activity(&self) -> broadcast::Receiver<Activity>;
}

/// The writes the dashboard offers, behind the bearer token.
pub trait MeshControl: MeshView {
    /// Revoke a grant or spawn certificate this node issued.
    fn revoke(
        &self,
        link: [u8; 32],
        reason: &str,
    ) -> impl Future<Output = Result<RevokeOutcome, ViewError>> + Send;
}
