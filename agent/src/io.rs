//! What goes into the agent and what comes out: [`Input`]s (messages from
//! peers, gossip, task outcomes, the embedder's [`Command`]s, ticks) and
//! [`Effect`]s (requests and responses to send, gossip to publish, records
//! to append, state to persist, tasks to run, [`Event`]s to report). The
//! driver that owns the agent carries effects out in order; anything after
//! an [`Effect::Append`] must wait until that append is durable.

use std::time::Duration;

use mesh_delegation::{Decision, LinkHash};
use mesh_iatp::handshake::{Refusal, Session};
use mesh_iatp::{Did, RevokedCredentials};
use mesh_ledger::merkle::Hash;
use mesh_ledger::record::{ActionKind, CoSignedRecord};
use mesh_trust::Evidence;

use crate::api::{DelegateOptions, GrantOptions, Outcome, SpawnOptions};
use crate::error::AgentError;
use crate::time::Millis;
use crate::topic::Topic;
use crate::wire::{
    ActionRefusal, ActionRequest, ActionResponse, IatpRequest, IatpResponse, Task, TaskOutcome,
};

/// An embedder command, named by the embedder; its [`Effect::Done`] carries
/// the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

/// A request this agent sent, named by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A request a peer sent, named by the driver (which keeps its reply
/// channel until the agent answers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InboundId(pub u64);

/// A task this agent runs for a delegator, named by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u64);

/// A gossip message waiting for its verdict, named by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GossipId(pub u64);

/// A direct request to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A handshake message.
    Iatp(IatpRequest),
    /// An action.
    Action(ActionRequest),
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A handshake message.
    Iatp(IatpResponse),
    /// An action's answer.
    Action(ActionResponse),
}

/// What the agent is told.
#[derive(Debug, Clone)]
pub enum Input {
    /// A transport connection to `peer` (the agent its transport key names)
    /// opened; `dialer` if we opened it. The dialer starts IATP.
    Connected {
        /// The remote agent, by its transport-authenticated key.
        peer: Did,
        /// Whether we dialled.
        dialer: bool,
        /// The remote address's IP, when the transport has one: peers
        /// without a session are bounded per IP too.
        ip: Option<std::net::IpAddr>,
    },
    /// The last connection to `peer` closed.
    Disconnected {
        /// The remote agent.
        peer: Did,
    },
    /// A peer's request.
    Request {
        /// Who sent it.
        from: Did,
        /// Its id (for [`Effect::Respond`] or [`Effect::Prove`]).
        id: InboundId,
        /// The request.
        request: Request,
    },
    /// The answer to one of our requests.
    Response {
        /// Who answered.
        from: Did,
        /// Our request's id.
        id: RequestId,
        /// The answer.
        response: Response,
    },
    /// One of our requests got no answer (timeout, closed connection,
    /// undecodable answer).
    RequestFailed {
        /// Our request's id.
        id: RequestId,
        /// What went wrong.
        error: String,
    },
    /// A peer sent something the transport could not decode (a strike).
    Malformed {
        /// The peer.
        from: Did,
        /// What it was (`iatp request`, `action request`).
        what: &'static str,
        /// The decoder's complaint.
        error: String,
    },
    /// A gossip message, before it is delivered or forwarded.
    Gossip {
        /// The peer that forwarded it.
        from: Did,
        /// Its id (for [`Effect::Verdict`]).
        id: GossipId,
        /// Its topic.
        topic: Topic,
        /// Its signed author, if the transport names one.
        author: Option<Did>,
        /// The payload.
        data: Vec<u8>,
    },
    /// A task we ran ([`Effect::RunTask`]) finished.
    TaskDone {
        /// Its id.
        id: TaskId,
        /// What came of it.
        outcome: TaskOutcome,
    },
    /// The embedder asks something.
    Command {
        /// Its id.
        op: OpId,
        /// What.
        command: Command,
    },
    /// Time passed: periodic work (reports, checkpoints, ban expiry).
    Tick,
    /// A trust aggregation we handed out ([`Effect::Aggregate`]) finished.
    Aggregated(Box<mesh_trust::Aggregated>),
}

/// What an embedder asks the agent to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Record an `invoke` or `result` action about `payload`, co-signed by
    /// `counterparty`.
    Record {
        /// The other party.
        counterparty: Did,
        /// `Invoke` or `Result`.
        kind: ActionKind,
        /// The off-ledger payload (its SHA-256 is signed).
        payload: Vec<u8>,
    },
    /// Issue a grant to `audience` through the gate.
    Grant {
        /// To whom.
        audience: Did,
        /// What.
        options: GrantOptions,
    },
    /// Delegate a task to `delegatee` under a fresh grant.
    Delegate {
        /// To whom.
        delegatee: Did,
        /// The task.
        task: Task,
        /// How.
        options: DelegateOptions,
    },
    /// Cancel a task this agent delegated (by its grant): the delegatee
    /// stops it and answers `cancelled`; the delegation command waiting
    /// for it gets that outcome.
    Cancel {
        /// The task's grant.
        grant: LinkHash,
    },
    /// Spawn a child agent.
    Spawn(SpawnOptions),
    /// Revoke a grant or certificate this agent issued.
    Revoke {
        /// The link's hash.
        target: LinkHash,
        /// Why (signed into the revocation).
        reason: String,
    },
    /// Fetch record `index` of `agent`'s log with its inclusion proof for
    /// the tree of `size` whose root the caller holds.
    FetchProof {
        /// Whose log.
        agent: Did,
        /// Which record.
        index: u64,
        /// The tree size.
        size: u64,
        /// The root at that size (from a checkpoint the caller trusts).
        root: Hash,
    },
    /// Sign and gossip a checkpoint of our log (if it grew, or `force`).
    Checkpoint {
        /// Sign even if the log did not grow.
        force: bool,
    },
    /// Re-aggregate trust and publish our report now.
    PublishReport,
    /// Evidence the embedding application observed.
    RecordEvidence(Evidence),
    /// Re-aggregate trust from the reports held.
    RefreshTrust,
    /// Refuse these org credentials from now on, in place of the list held
    /// (a revocation file re-read); agents holding a session under one of
    /// them are cut off at once, as a handshake would refuse them.
    SetRevokedCredentials(RevokedCredentials),
    /// Publish raw bytes on a topic, bypassing every check (simulations and
    /// tests playing an attacker).
    PublishRaw {
        /// The topic.
        topic: Topic,
        /// The bytes.
        data: Vec<u8>,
    },
}

/// What the gossip layer should do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver and forward.
    Accept,
    /// Drop quietly (duplicate, stale, not for us).
    Ignore,
    /// Drop and penalise the forwarder.
    Reject,
}

/// A proof the driver reads from its log store to answer `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofRequest {
    /// A consistency proof between two sizes (both within the log).
    Consistency {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// Record `index` with its audit path in the tree of `size`.
    Inclusion {
        /// The record.
        index: u64,
        /// The tree size.
        size: u64,
    },
}

/// What the agent asks its driver to do, in order.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send a request to a connected peer.
    Send {
        /// To whom.
        to: Did,
        /// Its id (the answer comes back as [`Input::Response`]).
        id: RequestId,
        /// The request.
        request: Request,
    },
    /// Answer a peer's request.
    Respond {
        /// To whom.
        to: Did,
        /// The request's id.
        id: InboundId,
        /// The answer.
        response: Response,
    },
    /// Answer a peer's proof request from the log store (the agent checked
    /// the session, the rate and the range).
    Prove {
        /// To whom.
        to: Did,
        /// The request's id.
        id: InboundId,
        /// Which proof.
        request: ProofRequest,
    },
    /// Publish on a gossip topic.
    Publish {
        /// The topic.
        topic: Topic,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The verdict on a gossip message.
    Verdict {
        /// Its id.
        id: GossipId,
        /// What to do with it.
        verdict: Verdict,
    },
    /// Append a co-signed record to our log at `index` (the log's size when
    /// it was emitted); later effects wait until it is durable.
    Append {
        /// Where it goes.
        index: u64,
        /// The record.
        record: CoSignedRecord,
    },
    /// Store a checkpoint note of our log (signed by us, with the
    /// cosignatures gathered so far), replacing the one of the same size.
    StoreCheckpoint {
        /// The note.
        note: Vec<u8>,
    },
    /// Persist that we cosigned `origin`'s log at `(size, root)` — before
    /// the cosignature leaves, so a restarted witness never cosigns a fork.
    SaveWitnessed {
        /// The log.
        origin: String,
        /// Its size.
        size: u64,
        /// Its root.
        root: Hash,
    },
    /// Store a durable fact (with the appends of the same batch, before
    /// anything emitted after it); a restarted agent replays them.
    Persist(crate::durable::Fact),
    /// Run a delegated task; answer with [`Input::TaskDone`].
    RunTask {
        /// Its id.
        id: TaskId,
        /// Who delegated it.
        delegator: Did,
        /// The task's grant: its name on both sides.
        grant: LinkHash,
        /// The task.
        task: Task,
        /// Its deadline: the agent stops waiting for the outcome then
        /// ([`Effect::StopTask`]) and answers `expired`.
        deadline: mesh_iatp::Timestamp,
    },
    /// Stop running a task ([`Effect::RunTask`]): it was cancelled or its
    /// deadline passed, and its answer is given. An outcome that still
    /// comes for it is ignored.
    StopTask {
        /// Its id.
        id: TaskId,
    },
    /// Delete the stored fact of `kind` and `key` (a task answered and
    /// co-signed needs no keeping).
    Forget {
        /// The fact's kind ([`Fact::kind`](crate::Fact::kind)).
        kind: &'static str,
        /// Its key ([`Fact::key`](crate::Fact::key)).
        key: Vec<u8>,
    },
    /// Run a trust aggregation ([`mesh_trust::Aggregation::run`]) away
    /// from the network path — on a worker thread — and answer with
    /// [`Input::Aggregated`]. At most one is out at a time.
    Aggregate(Box<mesh_trust::Aggregation>),
    /// Close every connection to `peer` after `after` (time for a refusal
    /// to be read).
    Disconnect {
        /// The peer.
        peer: Did,
        /// Grace period.
        after: Duration,
    },
    /// Refuse `peer`'s connections until `until` (gossip blacklists it too).
    Ban {
        /// The peer.
        peer: Did,
        /// Until when.
        until: Millis,
    },
    /// A ban ran out.
    Unban {
        /// The peer.
        peer: Did,
    },
    /// An embedder command finished.
    Done {
        /// Its id.
        op: OpId,
        /// Its result.
        result: Result<Outcome, AgentError>,
    },
    /// Something to report.
    Event(Event),
}

/// Which gate request an [`Event::GateDecision`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GateRequest {
    /// We issue a grant.
    Delegate,
    /// We spawn a child.
    Spawn,
    /// A peer hands us a grant.
    AcceptGrant,
    /// A peer delegates a task to us.
    RunTask,
}

impl GateRequest {
    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            GateRequest::Delegate => "delegate",
            GateRequest::Spawn => "spawn",
            GateRequest::AcceptGrant => "accept_grant",
            GateRequest::RunTask => "run_task",
        }
    }
}

/// What the agent reports (typed: the driver turns it into logs, metrics
/// and its embedder's events).
#[derive(Debug, Clone)]
pub enum Event {
    /// A peer completed the handshake; the session is usable.
    SessionEstablished(Box<Session>),
    /// A session ended (its last connection closed).
    SessionClosed {
        /// The peer.
        peer: Did,
    },
    /// We refused a peer's handshake.
    RefusedPeer {
        /// The peer.
        peer: Did,
        /// Why.
        refusal: Refusal,
    },
    /// A peer refused our handshake.
    RefusedByPeer {
        /// The peer.
        peer: Did,
        /// Its code.
        code: u16,
        /// Its reason.
        reason: String,
    },
    /// A record went to our log.
    Recorded {
        /// Its index.
        index: u64,
        /// Its kind.
        kind: ActionKind,
        /// The other party.
        with: Did,
    },
    /// A task delegated to us finished, was cancelled or expired.
    TaskDone {
        /// Who delegated it.
        delegator: Did,
        /// The task.
        task: Task,
        /// Whether it succeeded.
        success: bool,
        /// Why it stopped early, if it did.
        stopped: Option<crate::wire::Stopped>,
    },
    /// A task we delegated was accepted (the `delegate` record co-signed):
    /// its answer follows by `deadline`; `grant` names it (to cancel it).
    TaskAccepted {
        /// The delegation command.
        op: OpId,
        /// Who runs it.
        delegatee: Did,
        /// The task's grant.
        grant: LinkHash,
        /// Its deadline.
        deadline: mesh_iatp::Timestamp,
    },
    /// A task we delegated was answered and the `result` record co-signed
    /// (also when no command waits for it any more: after a restart, or
    /// once the command was told the task expired).
    TaskAnswered {
        /// Who ran it.
        delegatee: Did,
        /// The task's grant.
        grant: LinkHash,
        /// What came of it.
        outcome: crate::wire::TaskOutcome,
        /// Whether a command was still waiting for it.
        awaited: bool,
    },
    /// The gate decided (here, or on a peer's request).
    GateDecision {
        /// Which request.
        request: GateRequest,
        /// A description for people (`task to did:key:…`).
        what: String,
        /// Allow or deny, with the rule.
        decision: Decision,
    },
    /// We refused a peer's action request.
    ActionRefused {
        /// The peer.
        peer: Did,
        /// Why.
        refusal: ActionRefusal,
    },
    /// A trust report was accepted.
    TrustReport {
        /// Who signed it.
        reporter: Did,
        /// Its sequence number within the reporter's epoch.
        sequence: u64,
    },
    /// We published our trust report.
    ReportPublished {
        /// Its sequence number within our epoch (a receiver's
        /// [`Event::TrustReport`] names the same one).
        sequence: u64,
    },
    /// A revocation was learned or issued.
    Revocation {
        /// Who revoked.
        revoker: Did,
        /// The revoked link.
        target: LinkHash,
    },
    /// We witnessed and cosigned a peer's checkpoint.
    Witnessed {
        /// The log.
        origin: String,
        /// Its size.
        size: u64,
    },
    /// A witness's cosignature was added to our checkpoint.
    Cosigned {
        /// The witness.
        witness: Did,
        /// The checkpoint's size.
        size: u64,
    },
    /// We signed a checkpoint of our log.
    CheckpointSigned {
        /// Its size.
        size: u64,
    },
    /// An agent was proven to equivocate.
    Equivocation {
        /// The offender.
        offender: Did,
    },
    /// A gossip message or a peer's checkpoint failed verification.
    Rejected {
        /// The peer that sent it.
        peer: Did,
        /// What it was.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A peer broke a limit or sent garbage.
    Throttled {
        /// The peer.
        peer: Did,
        /// Strikes so far.
        strikes: u32,
        /// Whether it was just banned.
        banned: bool,
    },
}
