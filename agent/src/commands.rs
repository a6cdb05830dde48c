//! The embedder's commands that act on other agents: record, grant,
//! delegate a task, spawn, revoke, fetch a proof. Each goes through the
//! gate here first; what it asks of a peer continues in `cosign`.

use mesh_delegation::revocation::VerifiedRevocation;
use mesh_delegation::{
    Capability, Decision, Grant, LinkHash, Request as GateAsk, Revocation, SignedGrant,
    SignedSpawnCertificate, SpawnCertificate, TargetKind, verify_revocation,
};
use mesh_iatp::{Did, Identity, Score};
use mesh_ledger::merkle::Hash;
use mesh_ledger::record::{ActionKind, ActionRecord, CoSignedRecord};
use rand_core::Rng;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::agent::Agent;
use crate::api::{DelegateOptions, GrantOptions, InclusionProof, Outcome, SpawnOptions, Spawned};
use crate::conversation::{Pending, Step};
use crate::cosign::digest_of;
use crate::error::AgentError;
use crate::io::{Effect, Event, GateRequest, OpId, Request};
use crate::topic::Topic;
use crate::wire::{ActionContext, ActionRequest, ActionResponse, MAX_PROOF_HASHES, Task};

impl Agent {
    /// A fresh record with us as actor, now, with a random nonce.
    pub(crate) fn new_record(
        &mut self,
        kind: ActionKind,
        counterparty: &Did,
        grant: Option<LinkHash>,
        payload_digest: [u8; 32],
    ) -> ActionRecord {
        let mut nonce = [0u8; 16];
        self.rng.fill_bytes(&mut nonce);
        ActionRecord {
            kind,
            actor: self.did.clone(),
            counterparty: counterparty.clone(),
            grant,
            payload_digest,
            timestamp: self.now.wall,
            nonce,
        }
    }

    pub(crate) fn record_action(
        &mut self,
        op: OpId,
        counterparty: Did,
        kind: ActionKind,
        payload: Vec<u8>,
    ) {
        if !matches!(kind, ActionKind::Invoke | ActionKind::Result) {
            return self.done(
                op,
                Err(AgentError::Invalid(format!(
                    "record_action records invoke or result actions; {} has its own command",
                    kind_name(kind)
                ))),
            );
        }
        let digest: [u8; 32] = Sha256::digest(&payload).into();
        let record = self.new_record(kind, &counterparty, None, digest);
        self.send_cosign(
            op,
            record,
            ActionContext::Plain {
                payload: ByteBuf::from(payload),
            },
            Step::Plain,
        );
    }

    pub(crate) fn grant(&mut self, op: OpId, audience: Did, options: GrantOptions) {
        let issued = self.issue_grant(
            &audience,
            &options.capabilities,
            options.lifetime_secs,
            options.depth,
            options.min_trust,
            options.authority,
            "grant",
        );
        let (chain, hash) = match issued {
            Ok(v) => v,
            Err(e) => return self.done(op, Err(e)),
        };
        let record = self.new_record(ActionKind::Delegate, &audience, Some(hash), hash);
        self.send_cosign(
            op,
            record,
            ActionContext::Grant {
                chain: chain.clone(),
            },
            Step::Grant {
                chain,
                hash,
                lifetime_secs: options.lifetime_secs,
            },
        );
    }

    /// Sign a grant extending `authority` (or a root grant) to `audience`
    /// and put it through the gate; the chain ending with it, and its hash.
    #[allow(clippy::too_many_arguments)]
    fn issue_grant(
        &mut self,
        audience: &Did,
        capabilities: &[Capability],
        lifetime_secs: u64,
        depth: u8,
        min_trust: Score,
        authority: Option<Vec<SignedGrant>>,
        what: &str,
    ) -> Result<(Vec<SignedGrant>, LinkHash), AgentError> {
        let now = self.now.wall;
        let mut chain = authority.unwrap_or_default();
        let mut nonce = [0u8; 16];
        self.rng.fill_bytes(&mut nonce);
        let grant = Grant {
            issuer: self.did.clone(),
            audience: audience.clone(),
            capabilities: capabilities.to_vec(),
            not_before: now,
            expires: now.plus_secs(lifetime_secs),
            depth,
            min_trust,
            nonce,
            parent: chain.last().map(SignedGrant::hash),
        }
        .sign(self.local.identity())
        .map_err(|e| AgentError::Signing(e.to_string()))?;
        let hash = grant.hash();
        // Our own signature, just made: the gate checks everything else.
        self.k.gate.signed_here(&grant);
        chain.push(grant);
        let decision = self.k.decide(GateAsk::Delegate { chain: &chain }, now);
        self.event(Event::GateDecision {
            request: GateRequest::Delegate,
            what: format!("{what} to {audience}"),
            decision: decision.clone(),
        });
        match decision {
            Decision::Allow => Ok((chain, hash)),
            Decision::Deny(denial) => Err(AgentError::Denied(denial)),
        }
    }

    pub(crate) fn delegate(
        &mut self,
        op: OpId,
        delegatee: Did,
        task: Task,
        options: DelegateOptions,
    ) {
        // The answer is due by the deadline, never past the grant's window.
        let deadline_secs = match options.deadline_secs {
            Some(secs) if secs > options.lifetime_secs => {
                return self.done(
                    op,
                    Err(AgentError::Invalid(format!(
                        "the task's deadline ({secs} s) is past its grant's lifetime ({} s)",
                        options.lifetime_secs
                    ))),
                );
            }
            Some(0) => {
                return self.done(op, Err(AgentError::Invalid("a deadline of 0 s".into())));
            }
            Some(secs) => secs,
            None => self
                .settings
                .task_deadline
                .as_secs()
                .min(options.lifetime_secs),
        };
        let capability = match Capability::parse(&format!("{}:{}", task.resource, task.action)) {
            Ok(c) => c,
            Err(e) => {
                return self.done(
                    op,
                    Err(AgentError::Invalid(format!("task capability: {e}"))),
                );
            }
        };
        let issued = self.issue_grant(
            &delegatee,
            &[capability],
            options.lifetime_secs,
            0,
            options.min_trust,
            options.authority,
            "task",
        );
        let (chain, hash) = match issued {
            Ok(v) => v,
            Err(e) => return self.done(op, Err(e)),
        };
        let deadline = self.now.wall.plus_secs(deadline_secs);
        let order = crate::wire::TaskOrder {
            task: &task,
            deadline,
        };
        let digest = match digest_of(&order) {
            Ok(d) => d,
            Err(e) => return self.done(op, Err(AgentError::Signing(e))),
        };
        let record = self.new_record(ActionKind::Delegate, &delegatee, Some(hash), digest);
        self.send_cosign(
            op,
            record,
            ActionContext::Task {
                chain: chain.clone(),
                task,
                deadline,
            },
            Step::Task {
                chain,
                hash,
                lifetime_secs: options.lifetime_secs,
                deadline,
            },
        );
    }

    /// Spawn a child: a fresh identity and a certificate through the gate's
    /// spawn rules; the `spawn` record is co-signed with the child's key.
    pub(crate) fn spawn(&mut self, op: OpId, options: SpawnOptions) {
        let now = self.now.wall;
        let child = Identity::generate(&mut self.rng);
        let mut nonce = [0u8; 16];
        self.rng.fill_bytes(&mut nonce);
        // A spawned agent spawns under its own lineage.
        let lineage = crate::lineage::own_certificates(&self.local.card().lineage);
        let Ok(spawn_depth) = u8::try_from(lineage.len() + 1) else {
            return self.done(op, Err(AgentError::Signing("lineage too deep".into())));
        };
        let certificate = match (SpawnCertificate {
            parent: self.did.clone(),
            child: child.did().clone(),
            capabilities: options.capabilities.clone(),
            trust_ceiling: options.trust_ceiling,
            not_before: now,
            expires: now.plus_secs(options.lifetime_secs),
            spawn_depth,
            parent_certificate: lineage.last().map(SignedSpawnCertificate::hash),
            nonce,
        })
        .sign(self.local.identity())
        {
            Ok(c) => c,
            Err(e) => return self.done(op, Err(AgentError::Signing(e.to_string()))),
        };
        let alive = self.k.children_alive(now);
        let parent = self.did.clone();
        let decision = self.k.decide(
            GateAsk::Spawn {
                parent: &parent,
                certificate: &certificate,
                lineage: &lineage,
                children_alive: alive,
            },
            now,
        );
        self.event(Event::GateDecision {
            request: GateRequest::Spawn,
            what: "spawn".into(),
            decision: decision.clone(),
        });
        if let Decision::Deny(denial) = decision {
            return self.done(op, Err(AgentError::Denied(denial)));
        }
        let hash = certificate.hash();
        let record = self.new_record(ActionKind::Spawn, child.did(), Some(hash), hash);
        let co = match record
            .sign(self.local.identity())
            .and_then(|half| half.countersign(&child))
        {
            Ok(co) => co,
            Err(e) => return self.done(op, Err(AgentError::Signing(e.to_string()))),
        };
        let recorded = self.append(co);
        self.remember_issued(
            hash,
            TargetKind::SpawnCertificate,
            lineage
                .iter()
                .chain([&certificate])
                .map(|c| c.0.clone())
                .collect(),
            child.did(),
            options.lifetime_secs,
        );
        let mut full = lineage;
        full.push(certificate.clone());
        self.done(
            op,
            Ok(Outcome::Spawned(Box::new(Spawned {
                identity: child,
                certificate,
                lineage: full,
                credential: self.local.card().credential.clone(),
                record: recorded,
            }))),
        );
    }

    /// A verified revocation heard from the mesh: kept within the bounds
    /// of [`mesh_delegation::RevocationSet::insert_bounded`], then as
    /// [`Agent::learn_revocation`].
    pub(crate) fn learn_heard_revocation(
        &mut self,
        v: VerifiedRevocation,
    ) -> Result<bool, mesh_delegation::RevocationError> {
        let (revoker, target) = (v.revoker.clone(), v.target);
        let bytes = ByteBuf::from(v.bytes.clone());
        let skew = self.handshake.max_skew_secs;
        let new = self.k.revocations.insert_bounded(v, self.now.wall, skew)?;
        if new {
            self.revocation_learned(revoker, target, bytes);
        }
        Ok(new)
    }

    /// A verified revocation: in force here at once.
    pub(crate) fn learn_revocation(&mut self, v: VerifiedRevocation) -> bool {
        let (revoker, target) = (v.revoker.clone(), v.target);
        let bytes = ByteBuf::from(v.bytes.clone());
        let new = self.k.revocations.insert(v);
        if new {
            self.revocation_learned(revoker, target, bytes);
        }
        new
    }

    /// A new revocation: persisted and announced.
    fn revocation_learned(&mut self, revoker: Did, target: LinkHash, bytes: ByteBuf) {
        self.emit(Effect::Persist(crate::Fact::Revocation {
            target: ByteBuf::from(target.to_vec()),
            bytes,
        }));
        self.event(Event::Revocation { revoker, target });
        self.cut_off_lineage(&target);
    }

    /// A certificate was revoked: every session with an agent under it
    /// ends (after a grace for a `revoke` record to be co-signed); new
    /// handshakes are refused by `crate::lineage::LineageVerifier`.
    pub(crate) fn cut_off_lineage(&mut self, target: &LinkHash) {
        let mut under: Vec<Did> = self
            .k
            .lineages
            .iter()
            .filter(|(agent, lineage)| {
                lineage.contains(target) && self.sessions.contains_key(*agent)
            })
            .map(|(agent, _)| agent.clone())
            .collect();
        under.sort();
        for peer in under {
            self.emit(Effect::Disconnect {
                peer,
                after: crate::handshake::REFUSED_GRACE,
            });
        }
    }

    /// Revoke a link we issued: in force here at once, gossiped, and
    /// co-signed as a `revoke` record with the audience if it is connected.
    pub(crate) fn revoke(&mut self, op: OpId, target: LinkHash, reason: &str) {
        let Some(issued) = self.k.issued.get(&target).cloned() else {
            return self.done(
                op,
                Err(AgentError::UnknownLink(mesh_delegation::grant::hex(
                    &target,
                ))),
            );
        };
        let signed = Revocation {
            revoker: self.did.clone(),
            target,
            kind: issued.kind,
            chain: issued.chain.iter().cloned().map(ByteBuf::from).collect(),
            reason: reason.into(),
            issued: self.now.wall,
        }
        .sign(self.local.identity());
        let bytes = match signed {
            Ok(b) => b,
            Err(e) => return self.done(op, Err(AgentError::Signing(e.to_string()))),
        };
        match verify_revocation(&bytes) {
            Ok(v) => {
                self.learn_revocation(v);
            }
            Err(e) => return self.done(op, Err(AgentError::Invalid(e.to_string()))),
        }
        self.emit(Effect::Publish {
            topic: Topic::Revocation,
            data: bytes.clone(),
        });
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let record = self.new_record(ActionKind::Revoke, &issued.audience, Some(target), digest);
        self.send_cosign(
            op,
            record,
            ActionContext::Revoke {
                revocation: ByteBuf::from(bytes.clone()),
            },
            Step::Revoke { revocation: bytes },
        );
    }

    pub(crate) fn fetch_proof(&mut self, op: OpId, agent: Did, index: u64, size: u64, root: Hash) {
        if !self.usable(&agent) {
            return self.done(op, Err(AgentError::NoSession(agent)));
        }
        let id = self.next_request_id();
        self.pending.insert(
            id,
            Pending::Inclusion {
                to: agent.clone(),
                op,
                index,
                size,
                root,
            },
        );
        self.emit(Effect::Send {
            to: agent,
            id,
            request: Request::Action(ActionRequest::Inclusion { index, size }),
        });
    }

    pub(crate) fn on_inclusion(
        &mut self,
        op: OpId,
        agent: &Did,
        index: u64,
        size: u64,
        root: Hash,
        response: ActionResponse,
    ) {
        let result = match response {
            ActionResponse::Included { record, hashes } => {
                included(agent, index, size, root, &record, &hashes)
            }
            ActionResponse::Refused { code, rule, reason } => {
                Err(AgentError::PeerRefused { code, rule, reason })
            }
            other => Err(AgentError::BadResponse(format!(
                "unexpected answer {other:?}"
            ))),
        };
        self.done(op, result.map(|p| Outcome::Proof(Box::new(p))));
    }
}

/// Check an `Included` answer against the root the caller holds.
pub(crate) fn included(
    agent: &Did,
    index: u64,
    size: u64,
    root: Hash,
    record: &[u8],
    hashes: &[ByteBuf],
) -> Result<InclusionProof, AgentError> {
    let record =
        CoSignedRecord::from_bytes(record).map_err(|e| AgentError::BadResponse(e.to_string()))?;
    let hashes = proof_hashes(hashes).map_err(AgentError::BadResponse)?;
    let proof = InclusionProof {
        origin: agent.as_str().to_string(),
        index,
        size,
        root,
        record,
        hashes,
    };
    if proof.verify() {
        Ok(proof)
    } else {
        Err(AgentError::BadResponse(
            "the inclusion proof does not verify against the given root".into(),
        ))
    }
}

/// Proof hashes from the wire: at most [`MAX_PROOF_HASHES`], each 32 bytes.
pub(crate) fn proof_hashes(list: &[ByteBuf]) -> Result<Vec<Hash>, String> {
    if list.len() > MAX_PROOF_HASHES {
        return Err(format!("more than {MAX_PROOF_HASHES} hashes"));
    }
    list.iter()
        .map(|h| <Hash>::try_from(h.as_slice()).map_err(|_| "a hash is not 32 bytes".to_string()))
        .collect()
}

/// The name of a record kind as LEDGER.md writes it.
pub fn kind_name(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Delegate => "delegate",
        ActionKind::Invoke => "invoke",
        ActionKind::Result => "result",
        ActionKind::Spawn => "spawn",
        ActionKind::Revoke => "revoke",
    }
}
