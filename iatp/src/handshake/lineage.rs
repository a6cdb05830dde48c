//! Spawned agents in the handshake. A spawned child has no credential of
//! its own from the org: its card carries the org credential of the agent
//! at the root of its lineage and the chain of spawn certificates from that
//! agent down to it (DELEGATION.md §3). IATP knows certificates only as
//! bytes; the embedder's [`LineageCheck`] verifies them (the delegation
//! layer does), so this crate does not depend on it.

use serde_bytes::ByteBuf;

use super::Refusal;
use crate::bundle::OrgPolicy;
use crate::capability::CapabilityPattern;
use crate::{Did, Score, Timestamp};

pub use crate::credential::{MAX_CERTIFICATE_BYTES, MAX_LINEAGE};

/// What a verified lineage admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawned {
    /// The certificates' hashes, first spawn first (what a revocation names).
    pub lineage: Vec<[u8; 32]>,
    /// The agent that spawned it (the last certificate's parent).
    pub parent: Did,
    /// The last certificate's trust ceiling: the child's score never
    /// exceeds it.
    pub trust_ceiling: Score,
    /// The resources of the last certificate's capabilities: the child may
    /// offer nothing outside them.
    pub capabilities: Vec<CapabilityPattern>,
}

/// Why a lineage was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineageRefusal {
    /// Not a valid chain from the credential's agent down to the card's.
    #[error("{0}")]
    Invalid(String),
    /// A certificate in it is revoked.
    #[error("spawn certificate {0} is revoked")]
    Revoked(String),
    /// This node does not accept spawned agents.
    #[error("spawned agents are not accepted here")]
    NotAccepted,
}

/// Verifies a card's lineage for the handshake.
pub trait LineageCheck {
    /// Check that `lineage` (first spawn first) runs from `root` — the
    /// agent the org credential names — down to `child`, within `policy`,
    /// valid at `now` and not revoked.
    fn check(
        &self,
        lineage: &[ByteBuf],
        root: &Did,
        child: &Did,
        policy: &OrgPolicy,
        now: Timestamp,
    ) -> Result<Spawned, LineageRefusal>;
}

/// Accepts no spawned agent (for embedders without the delegation layer).
pub struct NoLineage;

impl LineageCheck for NoLineage {
    fn check(
        &self,
        _: &[ByteBuf],
        _: &Did,
        _: &Did,
        _: &OrgPolicy,
        _: Timestamp,
    ) -> Result<Spawned, LineageRefusal> {
        Err(LineageRefusal::NotAccepted)
    }
}

impl From<LineageRefusal> for Refusal {
    fn from(e: LineageRefusal) -> Self {
        match e {
            LineageRefusal::Revoked(_) => Refusal::LineageRevoked(e.to_string()),
            other => Refusal::LineageInvalid(other.to_string()),
        }
    }
}
