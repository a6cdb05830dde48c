//! What agents say to each other directly (PROTOCOL.md §8 and §10 give the
//! bytes; the libp2p shell carries each as one deterministic-CBOR frame).
//!
//! - IATP: the initiator (the dialer) sends `Hello(envelope)`, gets
//!   `Response(envelope)`, sends `Confirm(envelope)` and gets `Accepted`.
//!   Either side answers a message it refuses with `Refused { code, reason }`
//!   (PROTOCOL.md §5.1 codes) and closes the connection.
//! - Actions: everything after the handshake — asking the counterparty to
//!   countersign a ledger record (with what justifies it: a grant chain, a
//!   task, an outcome, a revocation), fetching proofs from a peer's log, and
//!   returning a witness cosignature. Served only to peers with a session;
//!   refused with a typed [`ActionRefusal`].

use mesh_delegation::SignedGrant;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

pub use crate::refusal::ActionRefusal;

/// Largest IATP request or response read from a peer.
pub const MAX_IATP_FRAME: u64 = 64 * 1024;

/// Largest action request or response read from a peer: a revocation (at
/// most 72 KiB) or a task with its chain, with room for the framing.
pub const MAX_ACTION_FRAME: u64 = 128 * 1024;

/// Largest task input or output, and largest plain payload.
pub const MAX_PAYLOAD: usize = 16 * 1024;

/// Most hashes in a proof a peer may send (a proof of a log of 2^64 leaves
/// has at most 2·64).
pub const MAX_PROOF_HASHES: usize = 128;

/// Initiator → responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IatpRequest {
    /// The signed Hello envelope.
    Hello(ByteBuf),
    /// The signed Confirm envelope.
    Confirm(ByteBuf),
}

/// Responder → initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IatpResponse {
    /// The signed Response envelope.
    Response(ByteBuf),
    /// The Confirm was accepted: the session is established on both sides.
    Accepted,
    /// Both agents sent a Hello at once (each dialled the other): the one
    /// with the lower DID keeps its own handshake and answers the other's
    /// Hello with this; the other drops its own and answers the first's.
    SimultaneousOpen,
    /// The message was refused (the connection is closed after this).
    Refused {
        /// Refusal code (PROTOCOL.md §5.1).
        code: u16,
        /// Refusal name, e.g. `org_not_in_bundle`.
        reason: String,
    },
}

/// A task handed to another agent: use `action` on `resource` with `input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// A concrete resource (a capability pattern without `*`).
    pub resource: String,
    /// The action, e.g. `read`.
    pub action: String,
    /// Opaque input for the delegatee (at most [`MAX_PAYLOAD`] bytes).
    pub input: ByteBuf,
}

/// What came of a task, as reported by the delegatee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskOutcome {
    /// Whether the task succeeded.
    pub success: bool,
    /// Opaque output (at most [`MAX_PAYLOAD`] bytes).
    pub output: ByteBuf,
    /// Why the task stopped before it ran to its end (then `success` is
    /// false and `output` empty); absent when it ran to its end, so an
    /// ordinary outcome's bytes are those of the earlier protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
}

impl TaskOutcome {
    /// A task that succeeded with `output`.
    pub fn succeeded(output: impl Into<Vec<u8>>) -> Self {
        TaskOutcome {
            success: true,
            output: ByteBuf::from(output.into()),
            stopped: None,
        }
    }

    /// A task that ran and failed, with `output` saying why.
    pub fn failed(output: impl Into<Vec<u8>>) -> Self {
        TaskOutcome {
            success: false,
            output: ByteBuf::from(output.into()),
            stopped: None,
        }
    }

    /// A task stopped before its end.
    pub fn stopped(why: Stopped) -> Self {
        TaskOutcome {
            success: false,
            output: ByteBuf::new(),
            stopped: Some(why),
        }
    }

    /// One word for it: `succeeded`, `failed`, `cancelled` or `expired`.
    pub fn status(&self) -> &'static str {
        match (self.success, self.stopped) {
            (_, Some(Stopped::Cancelled)) => "cancelled",
            (_, Some(Stopped::Expired)) => "expired",
            (true, None) => "succeeded",
            (false, None) => "failed",
        }
    }
}

/// Why a task stopped before it ran to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// The delegator cancelled it ([`ActionRequest::Cancel`]).
    Cancelled,
    /// Its deadline passed first.
    Expired,
}

/// What a `delegate` record handing over a task signs: its
/// `payload_digest` is SHA-256 of this value's canonical CBOR, a map of two
/// entries, `deadline` and `task`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskOrder<'a> {
    /// The task.
    pub task: &'a Task,
    /// Its deadline (Unix seconds).
    pub deadline: mesh_iatp::Timestamp,
}

/// Why the actor asks for a countersignature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionContext {
    /// An `invoke` or `result` record about an off-ledger payload whose
    /// SHA-256 is the record's `payload_digest`.
    Plain {
        /// The payload.
        payload: ByteBuf,
    },
    /// A `delegate` record for a grant to the counterparty; `chain` ends
    /// with that grant, whose hash is the record's `grant` and
    /// `payload_digest`.
    Grant {
        /// Root first, the new grant last.
        chain: Vec<SignedGrant>,
    },
    /// A `delegate` record handing over a task under a grant to the
    /// counterparty; `payload_digest` is SHA-256 of the task's canonical CBOR.
    Task {
        /// Root first, the grant for this task last.
        chain: Vec<SignedGrant>,
        /// The task.
        task: Task,
        /// When the delegator stops waiting for the answer (Unix seconds;
        /// never past the grant's expiry). Signed with the task: the
        /// digest is of [`TaskOrder`].
        deadline: mesh_iatp::Timestamp,
    },
    /// A `result` record for the outcome the counterparty returned;
    /// `payload_digest` is SHA-256 of the outcome's canonical CBOR.
    Outcome {
        /// The outcome, exactly as the counterparty returned it.
        outcome: TaskOutcome,
    },
    /// A `revoke` record; `grant` is the revoked link and `payload_digest`
    /// SHA-256 of the signed revocation.
    Revoke {
        /// The signed revocation envelope.
        revocation: ByteBuf,
    },
}

/// Requests after the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionRequest {
    /// Countersign an actor-signed record (LEDGER.md §1) and append it.
    CoSign {
        /// The actor-signed record bytes.
        record: ByteBuf,
        /// Why.
        context: ActionContext,
    },
    /// A consistency proof between two sizes of the responder's log.
    Consistency {
        /// The older size.
        old: u64,
        /// The newer size (at most the log's size).
        new: u64,
    },
    /// A record of the responder's log with its inclusion proof.
    Inclusion {
        /// The record's index.
        index: u64,
        /// The tree size to prove against (at most the log's size).
        size: u64,
    },
    /// A witness returns the responder's checkpoint note with its
    /// cosignature line appended.
    Cosignature {
        /// The note.
        note: ByteBuf,
    },
    /// The delegator cancels the task it handed over under `grant`: the
    /// delegatee stops it and answers with a `cancelled` outcome as its
    /// `result` record (PROTOCOL.md §10.2).
    Cancel {
        /// The task's grant (32 bytes).
        grant: ByteBuf,
    },
    /// Anti-entropy, sent when a session is established: what the
    /// requester holds; the responder answers with what it lacks
    /// (PROTOCOL.md §12).
    Sync(SyncDigest),
}

/// What a requester of [`ActionRequest::Sync`] holds (each list bounded,
/// PROTOCOL.md §12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncDigest {
    /// Revoked links it knows (32-byte hashes), at most [`MAX_SYNC_DIGEST`].
    pub revocations: Vec<ByteBuf>,
    /// Agents it holds an equivocation proof against, at most
    /// [`MAX_SYNC_DIGEST`].
    pub offenders: Vec<mesh_iatp::Did>,
    /// Leaf hashes of the latest records it shares with the responder, at
    /// most [`MAX_SYNC_RECORDS`].
    pub records: Vec<ByteBuf>,
    /// Its latest checkpoint note, for the responder to witness.
    pub checkpoint: Option<ByteBuf>,
}

/// What the responder of a Sync holds and the requester lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncItems {
    /// Signed revocations.
    pub revocations: Vec<ByteBuf>,
    /// Equivocation proofs.
    pub proofs: Vec<ByteBuf>,
    /// Co-signed records the two share.
    pub records: Vec<ByteBuf>,
    /// More did not fit: ask again.
    pub more: bool,
}

/// Most revocation hashes or offenders in a [`SyncDigest`].
pub const MAX_SYNC_DIGEST: usize = 1024;
/// Most record hashes in a [`SyncDigest`] (and records kept per peer to
/// offer).
pub const MAX_SYNC_RECORDS: usize = 64;
/// The byte budget of the items in one [`SyncItems`] (the frame is 128 KiB).
pub const SYNC_ITEMS_BUDGET: usize = 96 * 1024;

/// Answers to [`ActionRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionResponse {
    /// The co-signed record, now in the responder's log; for a task, its
    /// outcome.
    CoSigned {
        /// The co-signed record bytes.
        record: ByteBuf,
        /// The task's outcome (only for [`ActionContext::Task`]).
        outcome: Option<TaskOutcome>,
    },
    /// Proof hashes (consistency), each 32 bytes.
    Proof {
        /// The hashes.
        hashes: Vec<ByteBuf>,
    },
    /// A record and its inclusion proof.
    Included {
        /// The co-signed record bytes.
        record: ByteBuf,
        /// The proof hashes, each 32 bytes.
        hashes: Vec<ByteBuf>,
    },
    /// Done (a cosignature was stored, a cancellation taken).
    Done,
    /// The answer to a Sync.
    Synced(SyncItems),
    /// Refused: `code` and `rule` are stable ([`ActionRefusal`]), `reason`
    /// a sentence for humans.
    Refused {
        /// The refusal's stable code ([`ActionRefusal::code`]).
        code: u16,
        /// Its stable name, e.g. `no_session`, `rate_limited`, `gate_denied`.
        rule: String,
        /// Details.
        reason: String,
    },
}

impl ActionResponse {
    /// The wire form of a refusal.
    pub fn refused(refusal: &ActionRefusal) -> Self {
        ActionResponse::Refused {
            code: refusal.code(),
            rule: refusal.rule().into(),
            reason: refusal.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The vectors of PROTOCOL.md §10.2: a task order and stopped outcomes,
    /// byte for byte; an ordinary outcome keeps the earlier encoding.
    #[test]
    fn task_orders_and_outcomes_encode_as_documented() {
        let task = Task {
            resource: "tools/search".into(),
            action: "read".into(),
            input: ByteBuf::from(b"hi".to_vec()),
        };
        let order = TaskOrder {
            task: &task,
            deadline: mesh_iatp::Timestamp(1_800_000_000),
        };
        let order = mesh_iatp::cbor::to_canonical_vec(&order).unwrap_or_default();
        let expired = mesh_iatp::cbor::to_canonical_vec(&TaskOutcome::stopped(Stopped::Expired))
            .unwrap_or_default();
        let plain = mesh_iatp::cbor::to_canonical_vec(&TaskOutcome::succeeded(b"ok".to_vec()))
            .unwrap_or_default();
        assert_eq!(
            hex(&order),
            "a2647461736ba365696e70757442686966616374696f6e6472656164687265736f757263\
             656c746f6f6c732f73656172636868646561646c696e651a6b49d200"
        );
        assert_eq!(
            hex(&expired),
            "a3666f7574707574406773746f7070656467657870697265646773756363657373f4"
        );
        assert_eq!(hex(&plain), "a2666f7574707574426f6b6773756363657373f5");
        // Stopped outcomes decode; an unknown reason does not.
        let back: TaskOutcome =
            mesh_iatp::cbor::from_canonical_slice(&expired, 1024).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.stopped, Some(Stopped::Expired));
        let bogus = hex(&expired).replace("6765787069726564", "6765787069726578");
        let bogus: Vec<u8> = (0..bogus.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&bogus[i..i + 2], 16).unwrap_or(0))
            .collect();
        assert!(mesh_iatp::cbor::from_canonical_slice::<TaskOutcome>(&bogus, 1024).is_err());
    }
}
