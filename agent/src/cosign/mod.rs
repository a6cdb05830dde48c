//! Co-signed records, both sides. The actor signs a record and asks the
//! counterparty to countersign it with what justifies it (a grant chain, a
//! task, an outcome, a revocation, a plain payload); the counterparty checks
//! the justification — through its own gate where authority is involved —
//! countersigns, appends, and answers; the actor checks the answer and
//! appends too. So every record stands in both parties' logs.

use mesh_delegation::{Request as GateAsk, SignedGrant, verify_revocation};
use mesh_iatp::{CapabilityPattern, Did};
use mesh_ledger::record::{ActionKind, ActionRecord, ActorSigned, CoSignedRecord};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

mod actor;

use crate::agent::Agent;
use crate::api::Recorded;
use crate::io::{Effect, Event, GateRequest, InboundId, ProofRequest, Response};
use crate::wire::{
    ActionContext, ActionRefusal, ActionRequest, ActionResponse, MAX_PAYLOAD, Task, TaskOrder,
    TaskOutcome,
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
    RunTask(Task, mesh_iatp::Timestamp),
    /// The delegatee's answer to a task we delegated under this grant.
    Answered(mesh_delegation::LinkHash, TaskOutcome),
}

/// The counterparty's checks on the leaf grant of a chain handed to it: it
/// names this record's grant, was issued by the actor, to us. Cheap, so
/// they run on what the grant claims; the gate verifies the whole chain,
/// signatures included, right after.
fn check_leaf(
    chain: &[SignedGrant],
    record: &ActionRecord,
    local: &Did,
) -> Result<([u8; 32], mesh_iatp::Timestamp), ActionRefusal> {
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
        .claimed()
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
    Ok((hash, grant.expires))
}

pub(crate) fn grant_bytes(chain: &[SignedGrant]) -> Vec<Vec<u8>> {
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
                ActionRequest::Cancel { grant } => self.on_cancel(&peer, &grant).map(|()| {
                    self.emit(Effect::Respond {
                        to: peer.clone(),
                        id,
                        response: Response::Action(ActionResponse::Done),
                    });
                }),
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
                let (hash, _) = check_leaf(&chain, record, &self.did)?;
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
            (
                ActionKind::Delegate,
                ActionContext::Task {
                    chain,
                    task,
                    deadline,
                },
            ) => {
                if !self.runs_tasks {
                    return Err(ActionRefusal::NoHandler);
                }
                let (_, expires) = check_leaf(&chain, record, &self.did)?;
                self.check_task(&record.actor, deadline, expires)?;
                if task.input.len() > MAX_PAYLOAD {
                    return Err(ActionRefusal::TooLarge {
                        what: "task input",
                        limit: MAX_PAYLOAD,
                    });
                }
                let order = TaskOrder {
                    task: &task,
                    deadline,
                };
                let digest = digest_of(&order).map_err(ActionRefusal::Malformed)?;
                if digest != record.payload_digest {
                    return Err(ActionRefusal::DigestMismatch("the task order's digest"));
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
                Ok(After::RunTask(task, deadline))
            }
            // The delegatee answers a task we delegated: only for a task
            // it accepted from us and has not answered yet.
            (ActionKind::Result, ActionContext::Outcome { outcome }) => {
                if outcome.output.len() > MAX_PAYLOAD {
                    return Err(ActionRefusal::TooLarge {
                        what: "task output",
                        limit: MAX_PAYLOAD,
                    });
                }
                let digest = digest_of(&outcome).map_err(ActionRefusal::Malformed)?;
                if digest != record.payload_digest {
                    return Err(ActionRefusal::DigestMismatch("the outcome's digest"));
                }
                let grant = self.check_answer(record, &outcome)?;
                Ok(After::Answered(grant, outcome))
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
            // Accepted at once: the delegator holds the `delegate` record
            // whatever the task takes; the answer follows as our own
            // `result` record (`on_task_done`).
            After::RunTask(task, deadline) => {
                self.answer_cosigned(remote, id, &recorded.record, None);
                let grant = recorded.record.record().grant.unwrap_or_default();
                self.run_task(remote, grant, task, deadline);
            }
            After::Answered(grant, outcome) => {
                self.answer_cosigned(remote, id, &recorded.record, None);
                self.answered(grant, outcome, recorded);
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
}
