//! The actor's side of co-signing: sign a record, ask the counterparty,
//! check its answer, append, and go on to the next step of the command
//! (a task's `result` record, remembering an issued link); and what
//! becomes of requests that got no answer.

use mesh_delegation::{LinkHash, TargetKind};
use mesh_iatp::Did;
use mesh_ledger::record::{ActionRecord, ActorSigned, RecordError};
use serde_bytes::ByteBuf;

use super::grant_bytes;
use crate::agent::Agent;
use crate::api::{IssuedGrant, Outcome, Revoked};
use crate::conversation::{Pending, Phase, Step};
use crate::error::AgentError;
use crate::io::{Effect, Event, OpId, Request, RequestId, Response};
use crate::knowledge::Issued;
use crate::wire::{ActionContext, ActionRequest, ActionResponse};

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
                let refused = matches!(error, AgentError::PeerRefused { .. });
                self.answer_undelivered(*answer, refused)
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
            Pending::Cancel { op, grant, .. } => self.on_cancel_answer(op, grant, response),
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
            Pending::Inclusion { op, .. } | Pending::Cancel { op, .. } => {
                self.done(op, Err(AgentError::RequestFailed(error)))
            }
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
                deadline,
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
                // record, by the deadline.
                self.await_answer(hash, counterparty, deadline, op, recorded);
            }
            Step::Answer(answer) => self.answer_delivered(&answer),
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
