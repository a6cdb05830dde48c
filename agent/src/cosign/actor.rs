//! The actor's side of co-signing: sign a record, ask the counterparty,
//! check its answer, append, and go on to the next step of the command
//! (a task's `result` record, remembering an issued link); and what
//! becomes of requests that got no answer.

use mesh_delegation::{LinkHash, TargetKind};
use mesh_iatp::Did;
use mesh_ledger::record::{ActionKind, ActionRecord, ActorSigned, RecordError};
use mesh_trust::{Evidence, EvidenceKind, Proof};
use serde_bytes::ByteBuf;

use super::{digest_of, grant_bytes};
use crate::agent::Agent;
use crate::api::{Delegated, IssuedGrant, Outcome, Recorded, Revoked};
use crate::conversation::{Answer, Awaited, NO_OP, Pending, Phase, Step};
use crate::error::AgentError;
use crate::io::{Effect, Event, OpId, Request, RequestId, Response};
use crate::knowledge::Issued;
use crate::wire::{ActionContext, ActionRequest, ActionResponse, TaskOutcome};

/// Answers to tasks kept for delegators out of reach, at most.
const MAX_ANSWERS_DUE: usize = 4096;

impl Agent {
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
        let (half, bytes) = match record
            .sign(self.local.identity())
            .and_then(|half| half.to_bytes().map(|bytes| (half, bytes)))
        {
            Ok(signed) => signed,
            Err(e) => return self.cosign_failed(op, step, AgentError::Signing(e.to_string())),
        };
        let id = self.next_request_id();
        self.pending.insert(
            id,
            Pending::CoSign {
                to: to.clone(),
                op,
                record: Box::new(half),
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
            // Our answer to a task did not reach the delegator: it goes
            // again when the session is back (a refusal is final).
            Step::Answer(answer) => {
                if !matches!(error, AgentError::PeerRefused { .. }) {
                    if self.answers_due.len() >= MAX_ANSWERS_DUE {
                        self.answers_due.remove(0); // the oldest gives way
                    }
                    self.answers_due.push(*answer);
                }
            }
            Step::Task { hash, .. } => {
                self.early_answers.remove(&hash);
                self.done(op, Err(error))
            }
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
            Pending::Prefix(c) => self.on_prefix(*c, response),
            Pending::Anchor { cp, note, .. } => self.on_anchor(&from, *cp, note, response),
            Pending::Divergence { cp, note, .. } => self.on_divergence(&from, *cp, note, response),
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
            Pending::Consistency(_)
            | Pending::Cosignature { .. }
            | Pending::Sync { .. }
            | Pending::Prefix(_)
            | Pending::Anchor { .. }
            | Pending::Divergence { .. } => {}
        }
    }

    fn on_cosigned(&mut self, op: OpId, signed: ActorSigned, step: Step, response: ActionResponse) {
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
        let co = match signed.complete(&record) {
            Ok(co) => co,
            Err(RecordError::NotOurRecord) => {
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
        let counterparty = signed.record().counterparty.clone();
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
                if outcome.is_some() {
                    self.early_answers.remove(&hash);
                    return self.done(
                        op,
                        Err(AgentError::BadResponse(
                            "an outcome with the acceptance (the answer comes as a result record)"
                                .into(),
                        )),
                    );
                }
                // Accepted: the answer comes as the delegatee's `result`
                // record, within the task timeout.
                let until = self.now.mono.plus(self.settings.task_timeout);
                self.awaited.insert(
                    hash,
                    Awaited {
                        delegatee: counterparty,
                        op,
                        delegate: recorded,
                        until,
                    },
                );
                if let Some((outcome, result)) = self.early_answers.remove(&hash) {
                    self.answered(hash, outcome, result);
                }
            }
            Step::Answer(_) => {}
            Step::Revoke { revocation } => self.done(
                op,
                Ok(Outcome::Revoked(Revoked {
                    revocation,
                    record: Some(recorded),
                })),
            ),
        }
    }

    /// Send the delegator our `result` record of a task we ran.
    pub(crate) fn send_answer(&mut self, answer: Answer) {
        let digest = match digest_of(&answer.outcome) {
            Ok(d) => d,
            Err(_) => return, // an outcome always encodes
        };
        let record = self.new_record(
            ActionKind::Result,
            &answer.delegator,
            Some(answer.grant),
            digest,
        );
        let context = ActionContext::Outcome {
            outcome: answer.outcome.clone(),
        };
        self.send_cosign(NO_OP, record, context, Step::Answer(Box::new(answer)));
    }

    /// Send the answers that did not reach `delegator` again (its session
    /// is back).
    pub(crate) fn resend_answers(&mut self, delegator: &Did) {
        let (due, rest): (Vec<Answer>, Vec<Answer>) = std::mem::take(&mut self.answers_due)
            .into_iter()
            .partition(|a| &a.delegator == delegator);
        self.answers_due = rest;
        for answer in due {
            self.send_answer(answer);
        }
    }

    /// Whether our task under `grant` is on its way to `delegatee`, not
    /// yet accepted.
    pub(crate) fn delegating(&self, grant: &LinkHash, delegatee: &Did) -> bool {
        self.pending.values().any(|p| match p {
            Pending::CoSign { to, step, .. } => {
                to == delegatee && matches!(&**step, Step::Task { hash, .. } if hash == grant)
            }
            _ => false,
        })
    }

    /// The delegatee's answer to a task we delegated, co-signed into both
    /// logs: trust evidence, and the embedder's command answered (when the
    /// answer overtook the acceptance, once that arrives).
    pub(crate) fn answered(&mut self, grant: LinkHash, outcome: TaskOutcome, result: Recorded) {
        let Some(awaited) = self.awaited.remove(&grant) else {
            self.early_answers.insert(grant, (outcome, result));
            return;
        };
        let kind = if outcome.success {
            EvidenceKind::TaskSuccess
        } else {
            EvidenceKind::TaskFailure
        };
        self.record(
            Evidence::new(awaited.delegatee, kind, self.now.wall).with_proof(Proof {
                kind: "ledger/record".into(),
                bytes: result.record.bytes().to_vec(),
            }),
        );
        self.done(
            awaited.op,
            Ok(Outcome::Delegated(Box::new(Delegated {
                outcome,
                grant,
                delegate: awaited.delegate,
                result,
            }))),
        );
    }

    /// Give up on delegated tasks whose answer is overdue.
    pub(crate) fn expire_awaited(&mut self) {
        let now = self.now.mono;
        let mut overdue: Vec<LinkHash> = self
            .awaited
            .iter()
            .filter(|(_, a)| a.until <= now)
            .map(|(h, _)| *h)
            .collect();
        overdue.sort();
        for grant in overdue {
            if let Some(a) = self.awaited.remove(&grant) {
                self.done(a.op, Err(AgentError::TaskExpired(a.delegatee)));
            }
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
