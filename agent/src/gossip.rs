//! Gossip, as the agent sees it: four topics, and the verdict on each
//! message before it is delivered or forwarded. A message that fails
//! verification is rejected (its forwarder is penalised by the gossip layer)
//! and counts as a protocol violation by its signed author.

use mesh_delegation::verify_revocation;
use mesh_iatp::Did;
use mesh_trust::{EvidenceKind, ReportError, ReportOutcome};

use crate::agent::Agent;
use crate::io::{Effect, Event, GossipId, Verdict};

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

impl Agent {
    /// Judge a gossip message.
    pub(crate) fn on_gossip(
        &mut self,
        from: Did,
        id: GossipId,
        topic: Topic,
        author: Option<Did>,
        data: &[u8],
    ) {
        let verdict = self.judge(from, topic, author, data);
        self.emit(Effect::Verdict { id, verdict });
    }

    fn judge(&mut self, from: Did, topic: Topic, author: Option<Did>, data: &[u8]) -> Verdict {
        // Gossip is taken only from authenticated peers.
        if !self.sessions.contains_key(&from) {
            return Verdict::Ignore;
        }
        if !self.gossip_rate.allow(&from, self.now.mono) {
            self.strike(&from, "gossip", "over its rate limit");
            return Verdict::Ignore;
        }
        if data.len() > MAX_GOSSIP_BYTES {
            return self.reject(from, author, "gossip", "over the size limit".into());
        }
        match topic {
            Topic::Trust => match self.k.trust.receive_report(data, self.now.wall) {
                Ok(ReportOutcome::Accepted) => {
                    self.persist_report(data);
                    if let Some(reporter) = author {
                        self.event(Event::TrustReport { reporter });
                    }
                    Verdict::Accept
                }
                Ok(ReportOutcome::Duplicate) | Err(ReportError::Stale { .. }) => Verdict::Ignore,
                Err(e) => self.reject(from, author, "trust report", e.to_string()),
            },
            Topic::Revocation => match verify_revocation(data) {
                Ok(v) => {
                    if self.learn_revocation(v) {
                        Verdict::Accept
                    } else {
                        Verdict::Ignore
                    }
                }
                Err(e) => self.reject(from, author, "revocation", e.to_string()),
            },
            Topic::Checkpoint => match crate::witness::open_log_checkpoint(data) {
                Ok((origin, cp)) => self.on_checkpoint(origin, cp, data),
                Err(e) => self.reject(from, author, "checkpoint", e),
            },
            Topic::Equivocation => match crate::witness::verify_equivocation(data) {
                Ok(offender) => {
                    self.punish_equivocation(&offender, data.to_vec(), false);
                    Verdict::Accept
                }
                Err(e) => self.reject(from, author, "equivocation proof", e),
            },
        }
    }

    /// Keep an accepted report across restarts, as its reporter's latest.
    fn persist_report(&mut self, data: &[u8]) {
        let agg = &self.k.trust.config().aggregation;
        if let Ok(report) = mesh_trust::report::verify_report(
            data,
            agg.max_report_entries,
            self.now.wall,
            agg.max_clock_skew_secs,
        ) {
            self.emit(Effect::Persist(crate::Fact::Report {
                reporter: report.reporter,
                bytes: serde_bytes::ByteBuf::from(data.to_vec()),
            }));
        }
    }

    fn reject(
        &mut self,
        peer: Did,
        author: Option<Did>,
        what: &'static str,
        reason: String,
    ) -> Verdict {
        if let Some(author) = author {
            self.observe(author, EvidenceKind::ProtocolViolation);
        }
        self.event(Event::Rejected { peer, what, reason });
        Verdict::Reject
    }
}
