//! The agent's effects, carried out: appends through the group commit,
//! everything else in the order the agent emitted it.

use mesh_ledger::LogStore;
use std::time::Duration;

use mesh_agent::{Effect, Event, Input, ProofRequest, Request, Response};
use mesh_ledger::store::StoreError;
use serde_bytes::ByteBuf;
use tokio::time::Instant;

use super::super::ledger::NodeLedger;
use super::super::protocol::{ActionResponse, TaskOutcome};
use super::super::{NodeError, Runner, peer_of};
use super::{Driver, commit};

impl Driver {
    /// Hand the agent's effects over in order: appends to the next commit,
    /// facts to the next save, and everything else carried out — now, if
    /// no record emitted before it is still waiting for the disk, or when
    /// it is ([`Driver::committed`]). Then start a commit if none runs.
    pub(super) async fn dispatch(&mut self) -> Result<(), StoreError> {
        for effect in std::mem::take(&mut self.effects) {
            if let Effect::Persist(fact) = &effect {
                // Our own facts always encode; one that does not is not
                // kept rather than stopping the node.
                if let Ok(body) = fact.to_bytes() {
                    self.facts.push(fact.kind(), fact.key(), body);
                }
                continue;
            }
            if let Effect::Forget { kind, key } = effect {
                // Saved like a fact: an empty body deletes.
                self.facts.push(kind, key, Vec::new());
                continue;
            }
            if let Some(effect) = self.commit.admit(effect) {
                self.effect(effect).await?;
            }
        }
        self.commit.start();
        self.facts.start_if_due();
        Ok(())
    }

    /// A commit finished: carry out what waited on its records and start
    /// the next commit.
    pub(super) async fn committed(
        &mut self,
        done: Result<commit::Committed, StoreError>,
    ) -> Result<(), StoreError> {
        let (records, took) = self.commit.settle(done?)?;
        self.metrics.append_took(took, records);
        while let Some(effect) = self.commit.released() {
            self.effect(effect).await?;
        }
        self.commit.start();
        Ok(())
    }

    async fn effect(&mut self, effect: Effect) -> Result<(), StoreError> {
        match effect {
            Effect::Append { .. } | Effect::Persist(_) | Effect::Forget { .. } => {} // see `dispatch`
            // A handler runs to its end on its own thread; its outcome is
            // ignored when it comes (the task was answered already). The
            // inbox drops the task, and the agent process's answer is
            // refused.
            Effect::StopTask { id } => {
                if let Runner::Inbox(inbox) = &self.runner {
                    inbox.stop(id);
                }
            }
            Effect::Send { to, id, request } => {
                let behaviour = self.swarm.behaviour_mut();
                let sent = match request {
                    request @ Request::Iatp(_) => behaviour.iatp.send(&to, id, request),
                    request @ Request::Action(_) => behaviour.action.send(&to, id, request),
                };
                if !sent {
                    // Every agent's key is an Ed25519 libp2p identity.
                    tracing::warn!(peer = %to, "a request to an agent with no libp2p identity");
                }
            }
            Effect::Respond { id, response, .. } => self.respond(id, response),
            Effect::Prove { id, request, .. } => {
                let response = prove(self.commit.ledger()?, request).await;
                self.respond(id, Response::Action(response));
            }
            Effect::Publish { topic, data } => {
                // No subscribed peer yet is not an error: the next report
                // or checkpoint supersedes this one.
                if let Err(e) = self.swarm.behaviour_mut().gossip.publish(topic, data) {
                    tracing::debug!(?topic, error = %e, "gossip publish");
                }
            }
            Effect::Verdict { id, verdict } => {
                self.swarm.behaviour_mut().gossip.verdict(id, verdict);
            }
            Effect::StoreCheckpoint { note } => {
                self.commit.ledger()?.store_checkpoint(&note).await?
            }
            Effect::SaveWitnessed { origin, size, root } => {
                self.commit
                    .ledger()?
                    .save_witnessed(&origin, size, &root)
                    .await?
            }
            Effect::RunTask {
                id,
                delegator,
                grant,
                task,
                deadline,
            } => self.run_task(id, delegator, grant, task, deadline),
            // The aggregation grows with the reports held: it runs on a
            // blocking thread, never on the network path. The agent keeps
            // at most one out.
            Effect::Aggregate(job) => {
                let tx = self.workers_tx.clone();
                let metrics = self.metrics.clone();
                tokio::spawn(async move {
                    let ran = tokio::task::spawn_blocking(move || {
                        let started = std::time::Instant::now();
                        let done = job.run();
                        metrics.aggregation_took(started.elapsed());
                        done
                    })
                    .await;
                    match ran {
                        Ok(done) => {
                            let _ = tx.send(Input::Aggregated(Box::new(done))).await;
                        }
                        // A bug, not an input: the agent then keeps the
                        // aggregation it has and never hands out another.
                        Err(e) => tracing::error!(error = %e, "trust aggregation panicked"),
                    }
                });
            }
            Effect::Disconnect { peer, after } => {
                if let Some(peer) = peer_of(&peer) {
                    if after == Duration::ZERO {
                        let _ = self.swarm.disconnect_peer_id(peer);
                    } else {
                        self.closing.push((Instant::now() + after, peer));
                    }
                }
            }
            Effect::Ban { peer, .. } => self.swarm.behaviour_mut().gossip.ban(&peer),
            Effect::Unban { peer } => self.swarm.behaviour_mut().gossip.unban(&peer),
            Effect::Done { op, result } => {
                self.accepting.remove(&op);
                if let Some(reply) = self.ops.remove(&op) {
                    let _ = reply.send(result);
                }
            }
            Effect::Event(event) => self.event(event),
        }
        Ok(())
    }

    /// Hand a task the agent accepted to whoever runs tasks here.
    fn run_task(
        &mut self,
        id: mesh_agent::TaskId,
        delegator: mesh_iatp::Did,
        grant: mesh_delegation::LinkHash,
        task: super::super::Task,
        deadline: mesh_iatp::Timestamp,
    ) {
        let handler = match &self.runner {
            Runner::Inbox(inbox) => return inbox.offer(id, grant, delegator, task, deadline),
            Runner::Handler(handler) => Some(handler.clone()),
            Runner::None => None,
        };
        let tx = self.workers_tx.clone();
        tokio::spawn(async move {
            // The agent runs no tasks without a handler; this is only a
            // guard.
            let Some(handler) = handler else {
                let outcome = TaskOutcome::failed("no task handler");
                let _ = tx.send(Input::TaskDone { id, outcome }).await;
                return;
            };
            let outcome = tokio::task::spawn_blocking(move || handler.handle(&delegator, &task))
                .await
                .unwrap_or_else(|_| TaskOutcome::failed("the task handler panicked"));
            let _ = tx.send(Input::TaskDone { id, outcome }).await;
        });
    }

    fn respond(&mut self, id: mesh_agent::InboundId, response: Response) {
        let behaviour = self.swarm.behaviour_mut();
        let answered = match response {
            response @ Response::Iatp(_) => behaviour.iatp.respond(id, response),
            response @ Response::Action(_) => behaviour.action.respond(id, response),
        };
        if !answered {
            // The agent answers each request once, on its own protocol.
            tracing::warn!(?id, "an answer with no matching request");
        }
    }

    /// Report an event: metrics, the log, the embedder; and settle the
    /// connects waiting on a handshake.
    fn event(&mut self, event: Event) {
        self.metrics.observe(&event);
        match &event {
            Event::SessionEstablished(s) => {
                tracing::info!(peer = %s.remote, org = %s.policy.name, "session established");
                let trust = self.agent.trust_of(&s.remote, self.clock.now());
                let floor = self.trust_floor;
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .admit(&s.remote, trust, floor);
                if let Some(peer) = peer_of(&s.remote) {
                    self.route(&peer);
                }
                for reply in self.connecting.remove(&s.remote).unwrap_or_default() {
                    let _ = reply.send(Ok(s.remote.clone()));
                }
            }
            Event::SessionClosed { peer } => {
                let behaviour = self.swarm.behaviour_mut();
                behaviour.gossip.exclude(peer);
                if let (Some(kad), Some(peer)) = (behaviour.kad.as_mut(), peer_of(peer)) {
                    kad.exclude(&peer);
                }
            }
            Event::RefusedPeer { peer, refusal } => {
                tracing::info!(%peer, reason = refusal.name(), "handshake refused");
                self.fail_connecting(
                    peer,
                    NodeError::HandshakeRefused(format!("we refused: {}", refusal.name())),
                );
            }
            Event::RefusedByPeer { peer, code, reason } => {
                tracing::info!(%peer, code, %reason, "our handshake was refused");
                self.fail_connecting(
                    peer,
                    NodeError::HandshakeRefused(format!(
                        "the peer refused: {reason} (code {code})"
                    )),
                );
            }
            Event::TaskAccepted {
                op,
                grant,
                deadline,
                ..
            } => {
                if let Some(tx) = self.accepting.remove(op) {
                    let _ = tx.send((*grant, *deadline));
                }
            }
            Event::ActionRefused { peer, refusal } => {
                tracing::info!(%peer, rule = refusal.rule(), %refusal, "action request refused");
            }
            Event::Rejected { peer, what, reason } => {
                tracing::info!(%peer, what, %reason, "rejected");
            }
            Event::Throttled {
                peer,
                strikes,
                banned,
            } => tracing::info!(%peer, strikes, banned, "peer throttled"),
            Event::Equivocation { offender } => {
                tracing::warn!(%offender, "ledger equivocation proven");
            }
            _ => {}
        }
        // Nobody listening is fine; a slow listener sees `Lagged`.
        let _ = self.events.send(event);
    }

    fn fail_connecting(&mut self, peer: &mesh_iatp::Did, error: NodeError) {
        let mut waiters = self.connecting.remove(peer).unwrap_or_default();
        if let Some(first) = waiters.pop() {
            let text = error.to_string();
            let _ = first.send(Err(error));
            for w in waiters {
                let _ = w.send(Err(NodeError::HandshakeRefused(text.clone())));
            }
        }
    }
}

/// A proof from the log (the agent checked the range).
async fn prove(ledger: &NodeLedger, request: ProofRequest) -> ActionResponse {
    let hashes = |list: Vec<[u8; 32]>| {
        list.into_iter()
            .map(|h| ByteBuf::from(h.to_vec()))
            .collect()
    };
    let result = match request {
        ProofRequest::Consistency { old, new } => ledger
            .log()
            .consistency_proof(old, new)
            .await
            .map(|p| ActionResponse::Proof { hashes: hashes(p) }),
        ProofRequest::Inclusion { index, size } => {
            ledger
                .prove(index, size)
                .await
                .map(|(record, proof, _)| ActionResponse::Included {
                    record: ByteBuf::from(record.bytes().to_vec()),
                    hashes: hashes(proof),
                })
        }
    };
    result.unwrap_or_else(|e| {
        ActionResponse::refused(&mesh_agent::ActionRefusal::Ledger(e.to_string()))
    })
}
