//! Why an agent refuses an action request: one variant per thing a peer
//! can get wrong, each with a stable code and name that travel on the wire
//! (PROTOCOL.md §10.1), so the requester — and tests — can tell exactly
//! which rule it broke.

use mesh_delegation::Denial;

/// A refused action request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionRefusal {
    /// The requester has no IATP session with us.
    #[error("complete the IATP handshake first")]
    NoSession,
    /// The requester is over its request rate.
    #[error("too many requests")]
    RateLimited,
    /// The actor-signed record does not decode or its signature fails.
    #[error("the record does not decode: {0}")]
    MalformedRecord(String),
    /// The record's actor is not the requester.
    #[error("the record's actor is not the requesting agent")]
    WrongActor,
    /// The record's counterparty is not us.
    #[error("the record's counterparty is not this agent")]
    WrongCounterparty,
    /// The record's timestamp is outside the clock-skew window.
    #[error("timestamp {timestamp} is more than {skew} s from now")]
    StaleRecord {
        /// The record's timestamp (Unix seconds).
        timestamp: u64,
        /// The window.
        skew: u64,
    },
    /// The context does not justify this record.
    #[error("{0}")]
    ContextMismatch(String),
    /// The record's `payload_digest` is not the context's digest.
    #[error("payload_digest is not {0}")]
    DigestMismatch(&'static str),
    /// A payload, task input or output is over its bound.
    #[error("{what} over {limit} bytes")]
    TooLarge {
        /// What.
        what: &'static str,
        /// Its bound.
        limit: usize,
    },
    /// The grant chain handed over is not one we can accept.
    #[error("{0}")]
    BadChain(String),
    /// The revocation does not verify.
    #[error("{0}")]
    BadRevocation(String),
    /// A `result` record for an outcome we never returned to the actor.
    #[error("this agent returned no such outcome to the actor")]
    UnexpectedOutcome,
    /// Our delegation gate denied it.
    #[error("{rule}: {0}", rule = .0.rule())]
    GateDenied(Denial),
    /// We co-signed this record before.
    #[error("this record was already co-signed")]
    Replayed,
    /// Our ledger could not serve the request.
    #[error("ledger: {0}")]
    Ledger(String),
    /// A proof was asked for sizes or indices outside our log.
    #[error("need {need} (the log has {size} records)")]
    BadRange {
        /// The rule, e.g. `old ≤ new ≤ size`.
        need: &'static str,
        /// Our log's size.
        size: u64,
    },
    /// A checkpoint note does not parse.
    #[error("{0}")]
    MalformedNote(String),
    /// A witness cosignature does not verify.
    #[error("{0}")]
    BadCosignature(String),
    /// A cosigned note is not our stored checkpoint.
    #[error("{0}")]
    NotOurCheckpoint(String),
    /// Something in the request does not parse (a resource, an encoding).
    #[error("{0}")]
    Malformed(String),
    /// A task was delegated to an agent that runs none (no task handler):
    /// refused before anything is recorded, so nobody gains trust for work
    /// nobody did.
    #[error("this agent runs no delegated tasks (it has no task handler)")]
    NoHandler,
    /// A task's deadline is already past, or past its grant's expiry.
    #[error("the task's deadline {0}")]
    BadDeadline(String),
    /// A cancellation names no task this agent runs for the requester (it
    /// may have finished already; its answer is on its way).
    #[error("no task of yours runs here under that grant")]
    UnknownTask,
    /// This agent runs as many delegated tasks as it takes at once (in
    /// all, or for this delegator).
    #[error("this agent already runs {limit} delegated tasks (its limit)")]
    Busy {
        /// The most it runs at once.
        limit: usize,
    },
}

impl ActionRefusal {
    /// The stable code (PROTOCOL.md §10.1).
    pub fn code(&self) -> u16 {
        match self {
            ActionRefusal::NoSession => 1,
            ActionRefusal::RateLimited => 2,
            ActionRefusal::MalformedRecord(_) => 3,
            ActionRefusal::WrongActor => 4,
            ActionRefusal::WrongCounterparty => 5,
            ActionRefusal::StaleRecord { .. } => 6,
            ActionRefusal::ContextMismatch(_) => 7,
            ActionRefusal::DigestMismatch(_) => 8,
            ActionRefusal::TooLarge { .. } => 9,
            ActionRefusal::BadChain(_) => 10,
            ActionRefusal::BadRevocation(_) => 11,
            ActionRefusal::UnexpectedOutcome => 12,
            ActionRefusal::GateDenied(_) => 13,
            ActionRefusal::Replayed => 14,
            ActionRefusal::Ledger(_) => 15,
            ActionRefusal::BadRange { .. } => 16,
            ActionRefusal::MalformedNote(_) => 17,
            ActionRefusal::BadCosignature(_) => 18,
            ActionRefusal::NotOurCheckpoint(_) => 19,
            ActionRefusal::Malformed(_) => 20,
            ActionRefusal::NoHandler => 21,
            ActionRefusal::BadDeadline(_) => 22,
            ActionRefusal::UnknownTask => 23,
            ActionRefusal::Busy { .. } => 24,
        }
    }

    /// The stable name.
    pub fn rule(&self) -> &'static str {
        match self {
            ActionRefusal::NoSession => "no_session",
            ActionRefusal::RateLimited => "rate_limited",
            ActionRefusal::MalformedRecord(_) => "malformed_record",
            ActionRefusal::WrongActor => "wrong_actor",
            ActionRefusal::WrongCounterparty => "wrong_counterparty",
            ActionRefusal::StaleRecord { .. } => "stale_record",
            ActionRefusal::ContextMismatch(_) => "context_mismatch",
            ActionRefusal::DigestMismatch(_) => "digest_mismatch",
            ActionRefusal::TooLarge { .. } => "too_large",
            ActionRefusal::BadChain(_) => "bad_chain",
            ActionRefusal::BadRevocation(_) => "bad_revocation",
            ActionRefusal::UnexpectedOutcome => "unexpected_outcome",
            ActionRefusal::GateDenied(_) => "gate_denied",
            ActionRefusal::Replayed => "replayed",
            ActionRefusal::Ledger(_) => "ledger",
            ActionRefusal::BadRange { .. } => "bad_range",
            ActionRefusal::MalformedNote(_) => "malformed_note",
            ActionRefusal::BadCosignature(_) => "bad_cosignature",
            ActionRefusal::NotOurCheckpoint(_) => "not_our_checkpoint",
            ActionRefusal::Malformed(_) => "malformed",
            ActionRefusal::NoHandler => "no_handler",
            ActionRefusal::BadDeadline(_) => "bad_deadline",
            ActionRefusal::UnknownTask => "unknown_task",
            ActionRefusal::Busy { .. } => "busy",
        }
    }

    /// Whether it counts as a strike against the requester (it sent
    /// something no honest peer sends).
    pub fn is_strike(&self) -> bool {
        matches!(self, ActionRefusal::NoSession | ActionRefusal::RateLimited)
    }
}

/// A refusal (by its rule) that is about the asker — no session, over its
/// rate — not about what was asked: a witness holds it against nobody.
pub(crate) fn about_the_asker(rule: &str) -> bool {
    matches!(rule, "no_session" | "rate_limited")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_distinct() {
        let all = [
            ActionRefusal::NoSession,
            ActionRefusal::RateLimited,
            ActionRefusal::MalformedRecord(String::new()),
            ActionRefusal::WrongActor,
            ActionRefusal::WrongCounterparty,
            ActionRefusal::StaleRecord {
                timestamp: 0,
                skew: 0,
            },
            ActionRefusal::ContextMismatch(String::new()),
            ActionRefusal::DigestMismatch(""),
            ActionRefusal::TooLarge { what: "", limit: 0 },
            ActionRefusal::BadChain(String::new()),
            ActionRefusal::BadRevocation(String::new()),
            ActionRefusal::UnexpectedOutcome,
            ActionRefusal::GateDenied(Denial::NotConcrete(String::new())),
            ActionRefusal::Replayed,
            ActionRefusal::Ledger(String::new()),
            ActionRefusal::BadRange { need: "", size: 0 },
            ActionRefusal::MalformedNote(String::new()),
            ActionRefusal::BadCosignature(String::new()),
            ActionRefusal::NotOurCheckpoint(String::new()),
            ActionRefusal::Malformed(String::new()),
            ActionRefusal::NoHandler,
            ActionRefusal::BadDeadline(String::new()),
            ActionRefusal::UnknownTask,
            ActionRefusal::Busy { limit: 0 },
        ];
        let codes: std::collections::BTreeSet<u16> = all.iter().map(|r| r.code()).collect();
        let names: std::collections::BTreeSet<&str> = all.iter().map(|r| r.rule()).collect();
        assert_eq!(codes.len(), all.len());
        assert_eq!(names.len(), all.len());
        assert_eq!(codes, (1..=24).collect());
    }
}
