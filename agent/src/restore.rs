//! A restarted agent knows again what it knew: the stored facts
//! ([`crate::durable`]) replayed into its knowledge, and the size of its
//! latest checkpoint read from the stored note.

use mesh_ledger::checkpoint::Checkpoint;
use mesh_ledger::note::Note;

use crate::agent::Agent;
use crate::durable::{Fact, hash32};

/// The size a checkpoint note claims, if it parses.
pub fn note_size(note: &[u8]) -> Option<u64> {
    Note::parse(note)
        .ok()
        .and_then(|n| Checkpoint::parse_body(&n.text).ok())
        .map(|c| c.size)
}

impl Agent {
    /// Know again what the stored facts say (a restart). Nothing is
    /// emitted, the facts being stored already — except the answer decided
    /// now for a task that was running when the agent stopped
    /// ([`Agent::restore_running`]), handed out with the first input's
    /// effects.
    pub(crate) fn restore(&mut self, facts: Vec<Fact>) {
        self.checkpointed = self.own_note.as_deref().and_then(note_size).unwrap_or(0);
        let now = self.now;
        for fact in facts {
            match fact {
                Fact::Evidence(e) => {
                    if let Some(proof) = &e.proof
                        && proof.kind == mesh_ledger::equivocation::PROOF_KIND
                    {
                        self.k.keep_proof(e.subject.clone(), proof.bytes.clone());
                    }
                    self.k.trust.record(e.into());
                }
                Fact::Report { bytes, .. } => {
                    // A report past its time is refused as it would be
                    // from gossip; the reporter's next one replaces it.
                    let _ = self.k.trust.receive_report(&bytes, now.wall);
                }
                Fact::Revocation { bytes, .. } => {
                    if let Ok(v) = mesh_delegation::verify_revocation(&bytes) {
                        self.k.revocations.insert(v);
                    }
                }
                Fact::Issued {
                    hash,
                    kind,
                    chain,
                    audience,
                    expires,
                } => {
                    if let Some(hash) = hash32(&hash) {
                        let chain = chain.into_iter().map(|b| b.into_vec()).collect();
                        let issued = crate::knowledge::Issued {
                            kind,
                            chain,
                            audience,
                            expires,
                        };
                        self.k.issued.insert(hash, issued);
                    }
                }
                Fact::Held { hash, chain } => {
                    if let Some(hash) = hash32(&hash) {
                        let chain = chain
                            .into_iter()
                            .map(|b| mesh_delegation::SignedGrant(b.into_vec()))
                            .collect();
                        self.k.held.insert(hash, chain);
                    }
                }
                Fact::Met {
                    agent,
                    org,
                    lineage,
                    ceiling,
                } => {
                    if let Some(mut policy) = self.bundle.policy_for(&org).cloned() {
                        // A spawned agent: its lineage for the gate, its
                        // certificate's ceiling (its capabilities come
                        // back with its next handshake).
                        let hashes: Vec<[u8; 32]> = lineage.iter().filter_map(hash32).collect();
                        if !hashes.is_empty() {
                            self.k.lineages.insert(agent.clone(), hashes);
                        }
                        if let Some(ceiling) = ceiling {
                            policy.trust_ceiling = policy.trust_ceiling.min(ceiling);
                            policy.initial_trust = policy.initial_trust.min(policy.trust_ceiling);
                        }
                        self.k.trust.register_from_policy(agent.clone(), &policy);
                        self.k.orgs.insert(agent.clone(), policy);
                        self.k.gate.add_root(agent);
                    }
                }
                Fact::Strikes { peer, count } => self.restore_strikes(peer, count),
                Fact::Running {
                    grant,
                    delegator,
                    task,
                    deadline,
                    outcome,
                } => {
                    if let Some(grant) = hash32(&grant) {
                        self.restore_running(grant, delegator, task, deadline, outcome);
                    }
                }
                Fact::Awaited {
                    grant,
                    delegatee,
                    deadline,
                    cancelled,
                } => {
                    if let Some(grant) = hash32(&grant) {
                        self.restore_awaited(grant, delegatee, deadline, cancelled);
                    }
                }
                Fact::Ban { peer, until } => {
                    if until > now.wall {
                        let left = std::time::Duration::from_secs(until.0 - now.wall.0);
                        self.banned.insert(peer, now.mono.plus(left));
                    }
                }
            }
        }
        self.k.trust.refresh(now.wall);
    }
}
