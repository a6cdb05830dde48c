//! Evidence: the facts trust is computed from.
//!
//! Trust in this mesh is never an opinion typed in by hand: each change
//! comes from a fact the node observed or can verify — a co-signed ledger
//! record of a task's outcome, a delegation honoured or abused, a handshake,
//! a protocol violation, a proven equivocation. Each kind feeds one or more
//! dimensions with a configurable weight (see [`crate::TrustConfig`]).

use serde::{Deserialize, Serialize};

use mesh_iatp::{Did, Timestamp};

/// What a score is made of. Weights default to the reference toolkit's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Stays within grants and policy (25%).
    PolicyCompliance,
    /// Keys, credentials, signatures in order (25%).
    SecurityPosture,
    /// Tasks done right (20%).
    OutputQuality,
    /// Finishes work without flooding or waste (15%).
    ResourceEfficiency,
    /// Plays by the protocol with peers (15%).
    CollaborationHealth,
}

impl Dimension {
    /// All dimensions, in a fixed order (array index = `as usize`).
    pub const ALL: [Dimension; 5] = [
        Dimension::PolicyCompliance,
        Dimension::SecurityPosture,
        Dimension::OutputQuality,
        Dimension::ResourceEfficiency,
        Dimension::CollaborationHealth,
    ];

    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::PolicyCompliance => "policy_compliance",
            Dimension::SecurityPosture => "security_posture",
            Dimension::OutputQuality => "output_quality",
            Dimension::ResourceEfficiency => "resource_efficiency",
            Dimension::CollaborationHealth => "collaboration_health",
        }
    }
}

/// Kinds of evidence. See docs/TRUST.md for each one's weight and dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A co-signed `result` record says the task succeeded.
    TaskSuccess,
    /// A co-signed `result` record says the task failed.
    TaskFailure,
    /// A delegated capability was used within its grant.
    DelegationHonoured,
    /// A delegated capability was used outside its grant.
    DelegationAbused,
    /// An IATP handshake with the subject completed.
    HandshakeCompleted,
    /// The subject's handshake was refused for an accountable reason.
    HandshakeFailure,
    /// The subject sent, over an authenticated connection, a message whose
    /// signature does not verify. **Severe.**
    InvalidSignature,
    /// The subject broke the protocol (bad message order, limits).
    ProtocolViolation,
    /// The subject signed two different roots for one log size. **Severe.**
    LedgerEquivocation,
    /// A grant or certificate of the subject was revoked for cause.
    RevokedForCause,
    /// The subject exceeded a rate limit.
    RateLimitExceeded,
}

impl EvidenceKind {
    /// Every kind, in a fixed order.
    pub const ALL: [EvidenceKind; 11] = [
        EvidenceKind::TaskSuccess,
        EvidenceKind::TaskFailure,
        EvidenceKind::DelegationHonoured,
        EvidenceKind::DelegationAbused,
        EvidenceKind::HandshakeCompleted,
        EvidenceKind::HandshakeFailure,
        EvidenceKind::InvalidSignature,
        EvidenceKind::ProtocolViolation,
        EvidenceKind::LedgerEquivocation,
        EvidenceKind::RevokedForCause,
        EvidenceKind::RateLimitExceeded,
    ];

    /// Does this kind count in the subject's favour?
    pub fn is_positive(self) -> bool {
        matches!(
            self,
            EvidenceKind::TaskSuccess
                | EvidenceKind::DelegationHonoured
                | EvidenceKind::HandshakeCompleted
        )
    }

    /// Severe kinds drop the score to 0 at once, until explicitly cleared.
    pub fn is_severe(self) -> bool {
        matches!(
            self,
            EvidenceKind::InvalidSignature | EvidenceKind::LedgerEquivocation
        )
    }

    /// The dimensions this kind of evidence speaks to.
    pub fn dimensions(self) -> &'static [Dimension] {
        use Dimension::*;
        match self {
            EvidenceKind::TaskSuccess => &[OutputQuality, CollaborationHealth, ResourceEfficiency],
            EvidenceKind::TaskFailure => &[OutputQuality, CollaborationHealth, ResourceEfficiency],
            EvidenceKind::DelegationHonoured => &[PolicyCompliance],
            EvidenceKind::DelegationAbused => &[PolicyCompliance, SecurityPosture],
            EvidenceKind::HandshakeCompleted => &[SecurityPosture],
            EvidenceKind::HandshakeFailure => &[SecurityPosture],
            EvidenceKind::InvalidSignature => &[SecurityPosture],
            EvidenceKind::ProtocolViolation => &[CollaborationHealth, PolicyCompliance],
            EvidenceKind::LedgerEquivocation => &[PolicyCompliance],
            EvidenceKind::RevokedForCause => &[PolicyCompliance],
            EvidenceKind::RateLimitExceeded => &[ResourceEfficiency],
        }
    }

    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            EvidenceKind::TaskSuccess => "task_success",
            EvidenceKind::TaskFailure => "task_failure",
            EvidenceKind::DelegationHonoured => "delegation_honoured",
            EvidenceKind::DelegationAbused => "delegation_abused",
            EvidenceKind::HandshakeCompleted => "handshake_completed",
            EvidenceKind::HandshakeFailure => "handshake_failure",
            EvidenceKind::InvalidSignature => "invalid_signature",
            EvidenceKind::ProtocolViolation => "protocol_violation",
            EvidenceKind::LedgerEquivocation => "ledger_equivocation",
            EvidenceKind::RevokedForCause => "revoked_for_cause",
            EvidenceKind::RateLimitExceeded => "rate_limit_exceeded",
        }
    }
}

/// Material that backs a piece of evidence, for peers to check: the kind of
/// proof (e.g. `"ledger/equivocation"`, `"ledger/record"`) and its bytes.
/// Opaque here; the crate that defines the proof format verifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// Proof format name.
    pub kind: String,
    /// The proof itself.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// One observed fact about `subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Whom it is about.
    pub subject: Did,
    /// What happened.
    pub kind: EvidenceKind,
    /// When it happened (decay runs from here).
    pub at: Timestamp,
    /// What backs it, if anything can.
    pub proof: Option<Proof>,
}

impl Evidence {
    /// Evidence without a proof.
    pub fn new(subject: Did, kind: EvidenceKind, at: Timestamp) -> Self {
        Evidence {
            subject,
            kind,
            at,
            proof: None,
        }
    }

    /// Attach a proof.
    pub fn with_proof(mut self, proof: Proof) -> Self {
        self.proof = Some(proof);
        self
    }
}
