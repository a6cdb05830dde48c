//! Co-signed records, both sides. The actor signs a record and asks the
//! counterparty to countersign it with what justifies it (a grant chain, a
//! task, an outcome, a revocation, a plain payload); the counterparty checks
//! the justification — through its own gate where authority is involved —
//! countersigns, appends, and answers; the actor checks the answer and
//! appends too. So every record stands in both parties' logs.

use mesh_delegation::{LinkHash, Request as GateAsk, SignedGrant, TargetKind, verify_revocation};
use mesh_iatp::{CapabilityPattern, Did};
use mesh_ledger::record::{ActionKind, ActionRecord, ActorSigned, CoSignedRecord};
use mesh_trust::{Evidence, EvidenceKind, Proof};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::agent::Agent;
use crate::api::{Delegated, IssuedGrant, Outcome, Recorded, Revoked};
use crate::conversation::{Pending, Phase, RunningTask, Step};
use crate::error::AgentError;
use crate::io::{
    Effect, Event, GateRequest, InboundId, OpId, ProofRequest, Request, RequestId, Response, TaskId,
};
use crate::knowledge::Issued;
use crate::wire::{
    ActionContext, ActionRefusal, ActionRequest, ActionResponse, MAX_PAYLOAD, Task, TaskOutcome,
};

/// SHA-256 of a value's canonical CBOR: a payload digest for records.
pub fn digest_of<T: serde::Serialize>(value: &T) -> Result<[u8; 32], String> {
    let bytes = mesh_iatp::cbor::to_canonical_vec(value).map_err(|e| e.to_string())?;
    Ok(Sha256::digest(bytes).into())
}

/// What accepting a context leaves to do after countersigning.
enum After {
    Nothing,
    HoldGrant(Vec<SignedGrant>),
    RunTask(Task),
}

/// The counterparty's checks on the leaf grant of a chain handed to it: it
/// names this record's grant, was issued by the actor, to us.
fn check_leaf(
    chain: &[SignedGrant],
    record: &ActionRecord,
    local: &Did,
) -> Result<[u8; 32], ActionRefusal> {
    let leaf = chain
        .last()
        .ok_or_else(|| ActionRefusal::BadChain("the grant chain is empty".into()))?;
    let hash = leaf.hash();
    if record.grant != Some(hash) {
        return Err(ActionRefusal::ContextMismatch(
            "the record does not name the chain's last grant".into(),
        ));
    }
    let grant = leaf
        .open()
        .map_err(|e| ActionRefusal::BadChain(format!("last grant: {e}")))?;
    if &grant.audience != local {
        return Err(ActionRefusal::BadChain(
            "the last grant is not to this agent".into(),
        ));
    }
    if grant.issuer != record.actor {
        return Err(ActionRefusal::BadChain(
            "the last grant was not issued by the actor".into(),
        ));
    }
    Ok(hash)
}

fn grant_bytes(chain: &[SignedGrant]) -> Vec<Vec<u8>> {
    chain.iter().map(|g| g.0.clone()).collect()
}

impl Agent {
    /// A peer's action request: session and rate first, then the request.
    pub(crate) fn on_action_request(&mut self, peer: Did, id: InboundId, request: ActionRequest) {
        let result = if !self.sessions.contains_key(&peer) {
            Err(ActionRefusal::NoSession)
        } else if !self.requests.allow(&peer, self.now.mono) {
            Err(ActionRefusal::RateLimited)
        } else {
            match request {
                ActionRequest::CoSign { record, context } => {
                    self.countersign(&peer, id, &record, context)
                }
                ActionRequest::Consistency { old, new } => {
                    let size = self.log.size();
                    if old > new || new > size {
                        Err(ActionRefusal::BadRange {
                            need: "old ≤ new ≤ size",
                            size,
                        })
                    } else {
                        self.emit(Effect::Prove {
                            to: peer.clone(),
                            id,
                            request: ProofRequest::Consistency { old, new },
                        });
                        Ok(())
                    }
                }
                ActionRequest::Inclusion { index, size: at } => {
                    let size = self.log.size();
                    if index >= at || at > size {
                        Err(ActionRefusal::BadRange {
                            need: "index < size ≤ the log's size",
                            size,
                        })
                    } else {
                        self.emit(Effect::Prove {
                            to: peer.clone(),
                            id,
                            request: ProofRequest::Inclusion { index, size: at },
                        });
                        Ok(())
                    }
                }
                ActionRequest::Sync(digest) => self.answer_sync(&peer, id, digest),
                ActionRequest::Cosignature { note } => {
                    self.accept_cosignature(&peer, &note).map(|()| {
                        self.emit(Effect::Respond {
                            to: peer.clone(),
                            id,
                            response: Response::Action(ActionResponse::Done),
                        });
                    })
                }
            }
        };
        if let Err(refusal) = result {
            self.emit(Effect::Respond {
                to: peer.clone(),
                id,
                response: Response::Action(ActionResponse::refused(&refusal)),
            });
            if refusal.is_strike() {
                self.strike(&peer, "action request", refusal.rule());
            }
            self.event(Event::ActionRefused { peer, refusal });
        }
    }

    /// Append a co-signed record to our log (the driver makes it durable
    /// before anything emitted after it).
    pub(crate) fn append(&mut self, record: CoSignedRecord) -> Recorded {
        self.k.remember_record(record.leaf_hash());
        let index = self.log.size();
        self.log.append(record.leaf_hash());
        let (kind, with) = if record.record().actor == self.did {
            (record.record().kind, record.record().counterparty.clone())
        } else {
            (record.record().kind, record.record().actor.clone())
        };
        self.k.share(&with, record.clone());
        self.emit(Effect::Append {
            index,
            record: record.clone(),
        });
        self.event(Event::Recorded { index, kind, with });
        Recorded { index, record }
    }

    fn gate_check(
        &mut self,
        request: GateRequest,
        what: &str,
        ask: GateAsk<'_>,
    ) -> Result<(), ActionRefusal> {
        let decision = self.k.decide(ask, self.now.wall);
        self.event(Event::GateDecision {
            request,
            what: what.into(),
            decision: decision.clone(),
        });
        match decision {
            mesh_delegation::Decision::Allow => Ok(()),
            mesh_delegation::Decision::Deny(denial) => Err(ActionRefusal::GateDenied(denial)),
        }
    }

    /// Check that `context` justifies `record`.
    fn check_context(
        &mut self,
        record: &ActionRecord,
        context: ActionContext,
    ) -> Result<After, ActionRefusal> {
        let now = self.now.wall;
        match (record.kind, context) {
            (ActionKind::Invoke | ActionKind::Result, ActionContext::Plain { payload }) => {
                if payload.len() > MAX_PAYLOAD {
                    return Err(ActionRefusal::TooLarge {
                        what: "payload",
                        limit: MAX_PAYLOAD,
                    });
                }
                if <[u8; 32]>::from(Sha256::digest(&payload)) != record.payload_digest {
                    return Err(ActionRefusal::DigestMismatch("SHA-256 of the payload"));
                }
                Ok(After::Nothing)
            }
            (ActionKind::Delegate, ActionContext::Grant { chain }) => {
                let hash = check_leaf(&chain, record, &self.did)?;
                if record.payload_digest != hash {
                    return Err(ActionRefusal::DigestMismatch("the grant's hash"));
                }
                self.gate_check(
                    GateRequest::AcceptGrant,
                    "accept a grant",
                    GateAsk::Delegate { chain: &chain },
                )?;
                Ok(After::HoldGrant(chain))
            }
            (ActionKind::Delegate, ActionContext::Task { chain, task }) => {
                check_leaf(&chain, record, &self.did)?;
                if task.input.len() > MAX_PAYLOAD {
                    return Err(ActionRefusal::TooLarge {
                        what: "task input",
                        limit: MAX_PAYLOAD,
                    });
                }
                let digest = digest_of(&task).map_err(ActionRefusal::Malformed)?;
                if digest != record.payload_digest {
                    return Err(ActionRefusal::DigestMismatch("the task's digest"));
                }
                let resource = CapabilityPattern::parse(&task.resource)
                    .map_err(|e| ActionRefusal::Malformed(format!("task resource: {e}")))?;
                let local = self.did.clone();
                self.gate_check(
                    GateRequest::RunTask,
                    "run a delegated task",
                    GateAsk::Use {
                        requester: &local,
                        resource: &resource,
                        action: &task.action,
                        chain: &chain,
                    },
                )?;
                Ok(After::RunTask(task))
            }
            (ActionKind::Result, ActionContext::Outcome { outcome }) => {
                let digest = digest_of(&outcome).map_err(ActionRefusal::Malformed)?;
                if digest != record.payload_digest {
                    return Err(ActionRefusal::DigestMismatch("the outcome's digest"));
                }
                if !self.k.take_outcome(&digest, &record.actor) {
                    return Err(ActionRefusal::UnexpectedOutcome);
                }
                Ok(After::Nothing)
            }
            (ActionKind::Revoke, ActionContext::Revoke { revocation }) => {
                let v = verify_revocation(&revocation)
                    .map_err(|e| ActionRefusal::BadRevocation(e.to_string()))?;
                if v.revoker != record.actor || record.grant != Some(v.target) {
                    return Err(ActionRefusal::ContextMismatch(
                        "the record does not match the revocation".into(),
                    ));
                }
                if <[u8; 32]>::from(Sha256::digest(&revocation)) != record.payload_digest {
                    return Err(ActionRefusal::DigestMismatch("SHA-256 of the revocation"));
                }
                self.learn_revocation(v);
                let _ = now;
                Ok(After::Nothing)
            }
            (kind, _) => Err(ActionRefusal::ContextMismatch(format!(
                "a {kind:?} record cannot be justified by this context"
            ))),
        }
    }

    /// The counterparty's side of a CoSign request.
    fn countersign(
        &mut self,
        remote: &Did,
        id: InboundId,
        bytes: &[u8],
        context: ActionContext,
    ) -> Result<(), ActionRefusal> {
        let half = ActorSigned::from_bytes(bytes)
            .map_err(|e| ActionRefusal::MalformedRecord(e.to_string()))?;
        let record = half.record().clone();
        if &record.actor != remote {
            return Err(ActionRefusal::WrongActor);
        }
        if record.counterparty != self.did {
            return Err(ActionRefusal::WrongCounterparty);
        }
        let now = self.now.wall;
        let skew = self.handshake.max_skew_secs;
        if record.timestamp < now.minus_secs(skew) || record.timestamp > now.plus_secs(skew) {
            return Err(ActionRefusal::StaleRecord {
                timestamp: record.timestamp.0,
                skew,
            });
        }
        let after = self.check_context(&record, context)?;
        let co = half
            .countersign(self.local.identity())
            .map_err(|e| ActionRefusal::MalformedRecord(e.to_string()))?;
        if !self.k.remember_record(co.leaf_hash()) {
            return Err(ActionRefusal::Replayed);
        }
        let recorded = self.append(co);
        match after {
            After::Nothing => self.answer_cosigned(remote, id, &recorded.record, None),
            After::HoldGrant(chain) => {
                if let Some(leaf) = chain.last() {
                    let hash = leaf.hash();
                    self.emit(Effect::Persist(crate::Fact::Held {
                        hash: ByteBuf::from(hash.to_vec()),
                        chain: chain.iter().map(|g| ByteBuf::from(g.0.clone())).collect(),
                    }));
                    self.k.held.insert(hash, chain);
                }
                self.answer_cosigned(remote, id, &recorded.record, None);
            }
            After::RunTask(task) => {
                let task_id = self.next_task_id();
                self.tasks.insert(
                    task_id,
                    RunningTask {
                        delegator: remote.clone(),
                        inbound: id,
                        record: recorded.record,
                        task: task.clone(),
                    },
                );
                self.emit(Effect::RunTask {
                    id: task_id,
                    delegator: remote.clone(),
                    task,
                });
            }
        }
        Ok(())
    }

    fn answer_cosigned(
        &mut self,
        to: &Did,
        id: InboundId,
        record: &CoSignedRecord,
        outcome: Option<TaskOutcome>,
    ) {
        self.emit(Effect::Respond {
            to: to.clone(),
            id,
            response: Response::Action(ActionResponse::CoSigned {
                record: ByteBuf::from(record.bytes().to_vec()),
                outcome,
            }),
        });
    }

    /// A task we ran finished: its outcome goes back with the record.
    pub(crate) fn on_task_done(&mut self, id: TaskId, mut outcome: TaskOutcome) {
        let Some(running) = self.tasks.remove(&id) else {
            return;
        };
        if outcome.output.len() > MAX_PAYLOAD {
            outcome = TaskOutcome {
                success: false,
                output: ByteBuf::from(
                    format!("the task's output is over {MAX_PAYLOAD} bytes").into_bytes(),
                ),
            };
        }
        if let Ok(digest) = digest_of(&outcome) {
            self.k.expect_outcome(digest, running.delegator.clone());
        }
        self.event(Event::TaskDone {
            delegator: running.delegator.clone(),
            task: running.task,
            success: outcome.success,
        });
        self.answer_cosigned(
            &running.delegator,
            running.inbound,
            &running.record,
            Some(outcome),
        );
    }

    /// Start co-signing `record` with its counterparty (the actor's side).
    pub(crate) fn send_cosign(
        &mut self,
        op: OpId,
        record: ActionRecord,
        context: ActionContext,
        step: Step,
    ) {
        let to = record.counterparty.clone();
        if !self.usable(&to) {
            return self.cosign_failed(op, step, AgentError::NoSession(to));
        }
        let bytes = match record
            .clone()
            .sign(self.local.identity())
            .and_then(|half| half.to_bytes())
        {
            Ok(b) => b,
            Err(e) => return self.cosign_failed(op, step, AgentError::Signing(e.to_string())),
        };
        let id = self.next_request_id();
        self.pending.insert(
            id,
            Pending::CoSign {
                to: to.clone(),
                op,
                record: Box::new(record),
                step: Box::new(step),
            },
        );
        self.emit(Effect::Send {
            to,
            id,
            request: Request::Action(ActionRequest::CoSign {
                record: ByteBuf::from(bytes),
                context,
            }),
        });
    }

    /// A co-signing conversation failed; a revocation is in force anyway.
    fn cosign_failed(&mut self, op: OpId, step: Step, error: AgentError) {
        match step {
            Step::Revoke { revocation } => self.done(
                op,
                Ok(Outcome::Revoked(Revoked {
                    revocation,
                    record: None,
                })),
            ),
            _ => self.done(op, Err(error)),
        }
    }

    /// The answer to one of our requests.
    pub(crate) fn on_response(&mut self, from: Did, id: RequestId, response: Response) {
        let response = match response {
            Response::Iatp(r) => return self.on_iatp_response(from, id, r),
            Response::Action(r) => r,
        };
        let Some(pending) = self.pending.remove(&id) else {
            return; // answered after we gave up on it
        };
        if pending.peer() != &from {
            // Only the peer we asked may answer.
            self.pending.insert(id, pending);
            return self.strike(&from, "action response", "answer to another peer's request");
        }
        match pending {
            Pending::CoSign {
                op, record, step, ..
            } => self.on_cosigned(op, *record, *step, response),
            Pending::Consistency(w) => self.on_consistency(*w, response),
            Pending::Cosignature { origin, size, .. } => {
                if matches!(response, ActionResponse::Done) {
                    self.event(Event::Witnessed { origin, size });
                }
            }
            Pending::Inclusion {
                op,
                index,
                size,
                root,
                ..
            } => self.on_inclusion(op, &from, index, size, root, response),
            Pending::Sync { round, .. } => self.on_synced(from, round, response),
        }
    }

    /// One of our requests got no answer.
    pub(crate) fn on_request_failed(&mut self, id: RequestId, error: String) {
        if let Some(pending) = self.pending.remove(&id) {
            return self.abandon(pending, error);
        }
        // A handshake message that got no answer: the connection is of no
        // use without a session, so close it (a redial starts afresh).
        let stuck = self.peers.iter().find_map(|(peer, phase)| match phase {
            Phase::Initiating(sent, _) | Phase::Confirming(sent) if *sent == id => {
                Some(peer.clone())
            }
            _ => None,
        });
        if let Some(peer) = stuck {
            self.peers.insert(peer.clone(), Phase::Closed);
            if self.sessions.remove(&peer).is_some() {
                self.event(Event::SessionClosed { peer: peer.clone() });
            }
            self.emit(Effect::Disconnect {
                peer,
                after: std::time::Duration::ZERO,
            });
        }
    }

    /// Every request to `peer` fails (it disconnected).
    pub(crate) fn fail_requests_to(&mut self, peer: &Did) {
        let mut ids: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.peer() == peer)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        for id in ids {
            if let Some(pending) = self.pending.remove(&id) {
                self.abandon(pending, format!("{peer} disconnected"));
            }
        }
    }

    fn abandon(&mut self, pending: Pending, error: String) {
        match pending {
            Pending::CoSign { op, step, .. } => {
                self.cosign_failed(op, *step, AgentError::RequestFailed(error))
            }
            Pending::Inclusion { op, .. } => self.done(op, Err(AgentError::RequestFailed(error))),
            Pending::Consistency(_) | Pending::Cosignature { .. } | Pending::Sync { .. } => {}
        }
    }

    fn on_cosigned(
        &mut self,
        op: OpId,
        signed: ActionRecord,
        step: Step,
        response: ActionResponse,
    ) {
        let (record, outcome) = match response {
            ActionResponse::CoSigned { record, outcome } => (record, outcome),
            ActionResponse::Refused { code, rule, reason } => {
                return self.cosign_failed(
                    op,
                    step,
                    AgentError::PeerRefused { code, rule, reason },
                );
            }
            other => {
                return self.cosign_failed(
                    op,
                    step,
                    AgentError::BadResponse(format!("unexpected answer {other:?}")),
                );
            }
        };
        let co = match CoSignedRecord::from_bytes(&record) {
            Ok(co) if co.record() == &signed => co,
            Ok(_) => {
                return self.cosign_failed(
                    op,
                    step,
                    AgentError::BadResponse("the peer co-signed a different record".into()),
                );
            }
            Err(e) => {
                return self.cosign_failed(
                    op,
                    step,
                    AgentError::BadResponse(format!("co-signed record: {e}")),
                );
            }
        };
        let recorded = self.append(co);
        let counterparty = signed.counterparty;
        match step {
            Step::Plain => self.done(op, Ok(Outcome::Recorded(recorded))),
            Step::Grant {
                chain,
                hash,
                lifetime_secs,
            } => {
                self.remember_issued(
                    hash,
                    TargetKind::Grant,
                    grant_bytes(&chain),
                    &counterparty,
                    lifetime_secs,
                );
                self.done(
                    op,
                    Ok(Outcome::Granted(IssuedGrant {
                        chain,
                        hash,
                        record: recorded,
                    })),
                );
            }
            Step::Task {
                chain,
                hash,
                lifetime_secs,
            } => {
                self.remember_issued(
                    hash,
                    TargetKind::Grant,
                    grant_bytes(&chain),
                    &counterparty,
                    lifetime_secs,
                );
                let Some(outcome) = outcome else {
                    return self.done(op, Err(AgentError::BadResponse("no task outcome".into())));
                };
                let digest = match digest_of(&outcome) {
                    Ok(d) => d,
                    Err(e) => return self.done(op, Err(AgentError::Signing(e))),
                };
                let record = self.new_record(ActionKind::Result, &counterparty, Some(hash), digest);
                self.send_cosign(
                    op,
                    record,
                    ActionContext::Outcome {
                        outcome: outcome.clone(),
                    },
                    Step::Result {
                        delegate: recorded,
                        outcome,
                        hash,
                    },
                );
            }
            Step::Result {
                delegate,
                outcome,
                hash,
            } => {
                let kind = if outcome.success {
                    EvidenceKind::TaskSuccess
                } else {
                    EvidenceKind::TaskFailure
                };
                self.record(
                    Evidence::new(counterparty, kind, self.now.wall).with_proof(Proof {
                        kind: "ledger/record".into(),
                        bytes: recorded.record.bytes().to_vec(),
                    }),
                );
                self.done(
                    op,
                    Ok(Outcome::Delegated(Box::new(Delegated {
                        outcome,
                        grant: hash,
                        delegate,
                        result: recorded,
                    }))),
                );
            }
            Step::Revoke { revocation } => self.done(
                op,
                Ok(Outcome::Revoked(Revoked {
                    revocation,
                    record: Some(recorded),
                })),
            ),
        }
    }

    pub(crate) fn remember_issued(
        &mut self,
        hash: LinkHash,
        kind: TargetKind,
        chain: Vec<Vec<u8>>,
        audience: &Did,
        lifetime_secs: u64,
    ) {
        let expires = self.now.wall.plus_secs(lifetime_secs);
        self.emit(Effect::Persist(crate::Fact::Issued {
            hash: ByteBuf::from(hash.to_vec()),
            kind,
            chain: chain.iter().cloned().map(ByteBuf::from).collect(),
            audience: audience.clone(),
            expires,
        }));
        self.k.issued.insert(
            hash,
            Issued {
                kind,
                chain,
                audience: audience.clone(),
                expires,
            },
        );
    }
}
