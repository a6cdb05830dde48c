//! The mesh's gossip topics.

/// Signed trust reports (`trust/report` envelopes, TRUST.md §4).
pub const TRUST_TOPIC: &str = "/mesh/trust/1";
/// Signed revocations (`delegation/revocation` envelopes).
pub const REVOCATION_TOPIC: &str = "/mesh/revocation/1";
/// Signed checkpoint notes of agents' logs (LEDGER.md §3).
pub const CHECKPOINT_TOPIC: &str = "/mesh/checkpoint/1";
/// Equivocation proofs (LEDGER.md §6).
pub const EQUIVOCATION_TOPIC: &str = "/mesh/equivocation/1";

/// Largest gossip message (a revocation carries up to 72 KiB).
pub const MAX_GOSSIP_BYTES: usize = 128 * 1024;

/// The mesh's gossip topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    /// [`TRUST_TOPIC`].
    Trust,
    /// [`REVOCATION_TOPIC`].
    Revocation,
    /// [`CHECKPOINT_TOPIC`].
    Checkpoint,
    /// [`EQUIVOCATION_TOPIC`].
    Equivocation,
}

impl Topic {
    /// Every topic an agent joins.
    pub const ALL: [Topic; 4] = [
        Topic::Trust,
        Topic::Revocation,
        Topic::Checkpoint,
        Topic::Equivocation,
    ];

    /// The topic's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Trust => TRUST_TOPIC,
            Topic::Revocation => REVOCATION_TOPIC,
            Topic::Checkpoint => CHECKPOINT_TOPIC,
            Topic::Equivocation => EQUIVOCATION_TOPIC,
        }
    }

    /// The topic named `name`, if it is one of ours.
    pub fn of_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }
}
