//! What an agent learned that must survive a restart, as [`Fact`]s: the
//! agent emits [`Effect::Persist`](crate::Effect::Persist) when it learns
//! one, the driver stores it (after the appends of the same batch, before
//! anything that follows), and a restarted agent replays the stored facts
//! ([`AgentConfig::restored`](crate::AgentConfig)) to know again what it
//! knew: trust evidence (severe marks with their proofs among it), the
//! latest report of each reporter, revocations, links issued (spawn
//! budgets count them) and held, the org of every agent met, strikes and
//! bans, and the tasks in flight either way (run for a delegator until
//! the answer is co-signed; delegated until answered).
//!
//! A keyed fact replaces the stored one of the same kind and key; evidence
//! is kept in order. Bytes are canonical CBOR (PROTOCOL.md §2).

use mesh_delegation::TargetKind;
use mesh_iatp::{Did, Timestamp};
use mesh_trust::{Evidence, EvidenceKind, Proof};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::wire::{Task, TaskOutcome};

/// Largest stored fact read back (a revocation with its chain is the
/// largest, at most 72 KiB).
pub const MAX_FACT_BYTES: usize = 256 * 1024;

/// Evidence as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredEvidence {
    /// Whom it is about.
    pub subject: Did,
    /// What happened.
    pub kind: EvidenceKind,
    /// When.
    pub at: Timestamp,
    /// What backs it.
    pub proof: Option<Proof>,
}

impl From<&Evidence> for StoredEvidence {
    fn from(e: &Evidence) -> Self {
        StoredEvidence {
            subject: e.subject.clone(),
            kind: e.kind,
            at: e.at,
            proof: e.proof.clone(),
        }
    }
}

impl From<StoredEvidence> for Evidence {
    fn from(e: StoredEvidence) -> Self {
        Evidence {
            subject: e.subject,
            kind: e.kind,
            at: e.at,
            proof: e.proof,
        }
    }
}

/// One durable thing an agent learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fact {
    /// Trust evidence recorded (in order; never replaced).
    Evidence(StoredEvidence),
    /// The latest accepted trust report of `reporter`.
    Report {
        /// Who signed it.
        reporter: Did,
        /// The signed report.
        bytes: ByteBuf,
    },
    /// A verified revocation.
    Revocation {
        /// The revoked link.
        target: ByteBuf,
        /// The signed revocation.
        bytes: ByteBuf,
    },
    /// A grant or spawn certificate this agent issued.
    Issued {
        /// Its hash.
        hash: ByteBuf,
        /// Grant or certificate.
        kind: TargetKind,
        /// Root first, ending with the link.
        chain: Vec<ByteBuf>,
        /// To whom.
        audience: Did,
        /// Until when.
        expires: Timestamp,
    },
    /// A grant chain given to this agent.
    Held {
        /// The hash of its last link.
        hash: ByteBuf,
        /// The signed grants, root first.
        chain: Vec<ByteBuf>,
    },
    /// The org that vouched for an agent met by handshake.
    Met {
        /// The agent.
        agent: Did,
        /// Its org root.
        org: Did,
        /// For a spawned agent: its lineage's certificate hashes, first
        /// spawn first (absent otherwise), so the gate still knows them
        /// after a restart.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lineage: Vec<ByteBuf>,
        /// For a spawned agent: its certificate's trust ceiling.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ceiling: Option<mesh_iatp::Score>,
    },
    /// Strikes against a peer so far (replaced at each strike; zero once
    /// it is banned).
    Strikes {
        /// The peer.
        peer: Did,
        /// How many.
        count: u32,
    },
    /// A peer banned until `until` (wall clock).
    Ban {
        /// The peer.
        peer: Did,
        /// Until when.
        until: Timestamp,
    },
    /// A task we run for `delegator`, from its acceptance until our answer
    /// is co-signed (then forgotten).
    Running {
        /// The task's grant.
        grant: ByteBuf,
        /// Who delegated it.
        delegator: Did,
        /// The task.
        task: Task,
        /// Its deadline.
        deadline: Timestamp,
        /// Our answer, once there is one (a restart sends it again).
        outcome: Option<TaskOutcome>,
    },
    /// A task we delegated to `delegatee` that it accepted, until it is
    /// answered (then forgotten) or a day past its deadline.
    Awaited {
        /// The task's grant.
        grant: ByteBuf,
        /// Who runs it.
        delegatee: Did,
        /// Its deadline.
        deadline: Timestamp,
        /// We asked for it to be cancelled (a `cancelled` answer is then
        /// taken).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cancelled: bool,
    },
}

/// A stored fact that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored fact: {0}")]
pub struct FactError(String);

impl Fact {
    /// Its kind, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Fact::Evidence(_) => "evidence",
            Fact::Report { .. } => "report",
            Fact::Revocation { .. } => "revocation",
            Fact::Issued { .. } => "issued",
            Fact::Held { .. } => "held",
            Fact::Met { .. } => "met",
            Fact::Strikes { .. } => "strikes",
            Fact::Ban { .. } => "ban",
            Fact::Running { .. } => "running",
            Fact::Awaited { .. } => "awaited",
        }
    }

    /// What it replaces: the stored fact of the same kind and key (empty
    /// for evidence, which is only ever added).
    pub fn key(&self) -> Vec<u8> {
        match self {
            Fact::Evidence(_) => Vec::new(),
            Fact::Report { reporter, .. } => reporter.as_str().as_bytes().to_vec(),
            Fact::Revocation { target, .. } => target.to_vec(),
            Fact::Issued { hash, .. } | Fact::Held { hash, .. } => hash.to_vec(),
            Fact::Running { grant, .. } | Fact::Awaited { grant, .. } => grant.to_vec(),
            Fact::Met { agent, .. } => agent.as_str().as_bytes().to_vec(),
            Fact::Ban { peer, .. } | Fact::Strikes { peer, .. } => {
                peer.as_str().as_bytes().to_vec()
            }
        }
    }

    /// Canonical CBOR.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FactError> {
        mesh_iatp::cbor::to_canonical_vec(self).map_err(|e| FactError(e.to_string()))
    }

    /// Read a stored fact back (bounded, canonical).
    pub fn from_bytes(bytes: &[u8]) -> Result<Fact, FactError> {
        mesh_iatp::cbor::from_canonical_slice(bytes, MAX_FACT_BYTES)
            .map_err(|e| FactError(e.to_string()))
    }
}

/// Bytes of a 32-byte hash from a stored fact.
pub(crate) fn hash32(b: &ByteBuf) -> Option<[u8; 32]> {
    <[u8; 32]>::try_from(b.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip_and_keys_tell_what_they_replace() {
        let did = mesh_iatp::testing::identity("x").did().clone();
        let facts = [
            Fact::Evidence(StoredEvidence {
                subject: did.clone(),
                kind: EvidenceKind::TaskSuccess,
                at: Timestamp(5),
                proof: Some(Proof {
                    kind: "ledger/record".into(),
                    bytes: vec![1, 2],
                }),
            }),
            Fact::Ban {
                peer: did.clone(),
                until: Timestamp(9),
            },
            Fact::Met {
                agent: did.clone(),
                org: did.clone(),
                lineage: vec![],
                ceiling: None,
            },
            Fact::Met {
                agent: did.clone(),
                org: did.clone(),
                lineage: vec![ByteBuf::from(vec![7; 32])],
                ceiling: Some(mesh_iatp::Score::saturating(600)),
            },
        ];
        for f in &facts {
            let bytes = f.to_bytes().unwrap_or_default();
            assert_eq!(Fact::from_bytes(&bytes).as_ref(), Ok(f));
        }
        assert!(facts[0].key().is_empty());
        assert_eq!(facts[1].key(), did.as_str().as_bytes());
        assert!(Fact::from_bytes(b"\xff").is_err());
    }
}
