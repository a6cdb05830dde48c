//! What is in flight between the agent and its peers: where each
//! connection's handshake stands, the requests waiting for answers, the
//! tasks running for delegators, the checkpoints being witnessed.

use mesh_delegation::{LinkHash, SignedGrant};
use mesh_iatp::handshake::{AwaitingConfirm, AwaitingResponse};
use mesh_iatp::{Did, Timestamp};
use mesh_ledger::checkpoint::Checkpoint;
use mesh_ledger::record::ActorSigned;

use crate::api::Recorded;
use crate::io::{OpId, RequestId};
use crate::wire::{Task, TaskOutcome};

/// Where a connection's handshake stands.
pub(crate) enum Phase {
    /// Connected; the dialer has not started yet (or we listen and wait).
    Connected,
    /// We sent Hello as request `id`.
    Initiating(RequestId, Box<AwaitingResponse>),
    /// We answered a Hello and wait for the Confirm.
    Responding(Box<AwaitingConfirm>),
    /// We sent Confirm as request `id`; the session is held.
    Confirming(RequestId),
    /// Both sides hold the session.
    Established,
    /// We refused, or were refused: nothing more on this connection.
    Closed,
}

/// A request of ours waiting for its answer.
pub(crate) enum Pending {
    /// A record we signed, waiting for the countersignature.
    CoSign {
        to: Did,
        op: OpId,
        record: Box<ActorSigned>,
        step: Box<Step>,
    },
    /// Witnessing `origin`: waiting for the consistency proof.
    Consistency(Box<Witnessing>),
    /// Our cosignature of `origin`'s checkpoint, waiting for acceptance.
    Cosignature { to: Did, origin: String, size: u64 },
    /// Our anti-entropy digest, round `round`.
    Sync { to: Did, round: u32 },
    /// Checking a checkpoint smaller than the one cosigned is its prefix.
    Prefix(Box<PrefixCheck>),
    /// The inclusion proof of a cosigned checkpoint's last leaf.
    Anchor {
        to: Did,
        cp: Box<Checkpoint>,
        note: Vec<u8>,
    },
    /// The anchor's leaf under a checkpoint that failed a check.
    Divergence {
        to: Did,
        cp: Box<Checkpoint>,
        note: Vec<u8>,
    },
    /// Our request to cancel the task under `grant`.
    Cancel { to: Did, op: OpId, grant: LinkHash },
    /// An inclusion proof the embedder asked for.
    Inclusion {
        to: Did,
        op: OpId,
        index: u64,
        size: u64,
        root: mesh_ledger::merkle::Hash,
    },
}

impl Pending {
    pub(crate) fn peer(&self) -> &Did {
        match self {
            Pending::CoSign { to, .. }
            | Pending::Cosignature { to, .. }
            | Pending::Sync { to, .. }
            | Pending::Inclusion { to, .. }
            | Pending::Cancel { to, .. }
            | Pending::Anchor { to, .. }
            | Pending::Divergence { to, .. } => to,
            Pending::Consistency(w) => &w.peer,
            Pending::Prefix(c) => &c.peer,
        }
    }
}

/// What a co-signing conversation is for, and what follows it.
pub(crate) enum Step {
    /// An `invoke` or `result` record about a payload.
    Plain,
    /// A grant handed to the audience.
    Grant {
        chain: Vec<SignedGrant>,
        hash: LinkHash,
        lifetime_secs: u64,
    },
    /// A task handed to the delegatee: once it accepted (co-signed the
    /// `delegate` record), its answer comes later, as a `result` record
    /// the delegatee signs.
    Task {
        chain: Vec<SignedGrant>,
        hash: LinkHash,
        lifetime_secs: u64,
        deadline: Timestamp,
    },
    /// Our `result` record of a task we ran, for the delegator to
    /// countersign (no embedder waits on it: `op` is [`NO_OP`]).
    Answer(Box<Answer>),
    /// The `revoke` record of a revocation already in force.
    Revoke { revocation: Vec<u8> },
}

/// The op of a co-signing conversation no embedder waits for.
pub(crate) const NO_OP: OpId = OpId(u64::MAX);

/// The answer to a task we ran, until the delegator countersigned it.
#[derive(Clone)]
pub(crate) struct Answer {
    pub(crate) delegator: Did,
    /// The task's grant (the `delegate` record's).
    pub(crate) grant: LinkHash,
    pub(crate) outcome: TaskOutcome,
}

/// A task we delegated and the delegatee accepted, awaiting its answer.
pub(crate) struct Awaited {
    pub(crate) delegatee: Did,
    /// The deadline signed into the task.
    pub(crate) deadline: Timestamp,
    /// The embedder's command waiting for the outcome; none once it was
    /// told the task expired, or after a restart. The answer is taken
    /// (co-signed, counted as evidence) either way.
    pub(crate) waiter: Option<Waiter>,
    /// The delegatee agreed to cancel it: a `cancelled` answer is expected.
    pub(crate) cancelled: bool,
}

/// The embedder's command waiting for a delegated task's outcome.
pub(crate) struct Waiter {
    pub(crate) op: OpId,
    /// The co-signed `delegate` record.
    pub(crate) delegate: Recorded,
}

/// A task we run for a delegator; its answer waits for the outcome.
pub(crate) struct RunningTask {
    pub(crate) delegator: Did,
    /// The task's grant (the `delegate` record's).
    pub(crate) grant: LinkHash,
    pub(crate) task: Task,
    /// Its deadline: the task is stopped and answered `expired` then.
    pub(crate) deadline: Timestamp,
}

/// A checkpoint being witnessed: waiting for the owner's consistency proof.
pub(crate) struct Witnessing {
    pub(crate) peer: Did,
    pub(crate) cp: Checkpoint,
    pub(crate) note: Vec<u8>,
    pub(crate) old: u64,
}

/// A check of a checkpoint smaller than the one cosigned.
pub(crate) struct PrefixCheck {
    pub(crate) peer: Did,
    pub(crate) cp: Checkpoint,
    pub(crate) note: Vec<u8>,
    /// The cosigned `(size, root)` it must be a prefix of.
    pub(crate) held: (u64, mesh_ledger::merkle::Hash),
}
