//! Gossip, as the agent sees it: four topics, and the verdict on each
//! message before it is delivered or forwarded. A message that fails
//! verification is rejected (its forwarder is penalised by the gossip layer)
//! and counts as a protocol violation by its signed author.

use mesh_delegation::verify_revocation;
use mesh_iatp::Did;
use mesh_trust::{EvidenceKind, ReportError, ReportOutcome};

use crate::agent::Agent;
use crate::io::{Effect, Event, GossipId, Verdict};

pub use crate::topic::{
    CHECKPOINT_TOPIC, EQUIVOCATION_TOPIC, MAX_GOSSIP_BYTES, REVOCATION_TOPIC, TRUST_TOPIC, Topic,
};

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
            Topic::Trust => match self.k.trust.receive_report_from(data, self.now.wall) {
                Ok((ReportOutcome::Accepted, reporter)) => {
                    let (_, sequence) = self
                        .k
                        .trust
                        .held_report_position(&reporter)
                        .unwrap_or_default();
                    self.emit(Effect::Persist(crate::Fact::Report {
                        reporter: reporter.clone(),
                        bytes: serde_bytes::ByteBuf::from(data.to_vec()),
                    }));
                    self.reports.report_accepted();
                    // The signer, which a re-publisher cannot change.
                    self.event(Event::TrustReport { reporter, sequence });
                    Verdict::Accept
                }
                // A valid report we hold no room for is not the sender's
                // fault.
                Ok((ReportOutcome::Duplicate, _))
                | Err(ReportError::Stale { .. } | ReportError::Crowded { .. }) => Verdict::Ignore,
                Err(e) => self.reject(from, author, "trust report", e.to_string()),
            },
            Topic::Revocation => match verify_revocation(data) {
                Ok(v) => match self.learn_heard_revocation(v) {
                    Ok(true) => Verdict::Accept,
                    // Known already, or valid but not kept (expired target,
                    // a bound): not the sender's fault, and not forwarded.
                    Ok(false) | Err(_) => Verdict::Ignore,
                },
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
