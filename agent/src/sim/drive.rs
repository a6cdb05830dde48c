//! Carrying out what is due (deliveries, timeouts, inputs, closes) and
//! what agents emit: the harness's driver, like `mesh-node`'s over libp2p.

use sha2::{Digest, Sha256};

use super::Mesh;
use super::network::{Due, Message};
use crate::io::{Effect, GossipId, InboundId, Input, Verdict};
use crate::time::Now;
use mesh_iatp::Did;

impl Mesh {
    pub(super) fn due(&mut self, due: Due) {
        match due {
            Due::Deliver { from, to, message } => self.deliver(from, to, message),
            Due::Timeout { node, id } => {
                if self.nodes[node].outbound.remove(&id) {
                    let error = "timed out".to_string();
                    self.feed(node, Input::RequestFailed { id, error });
                }
            }
            Due::Input { node, input } => self.feed(node, *input),
            Due::Close { a, b } => self.close(a, b),
        }
    }

    fn deliver(&mut self, from: usize, to: usize, message: Message) {
        if !self.net.linked(from, to) || !self.is_up(to) {
            return; // the link closed meanwhile: lost (requests time out)
        }
        let from_did = self.nodes[from].did.clone();
        let node = &mut self.nodes[to];
        let input = match message {
            Message::Request { id, request } => {
                node.next_inbound += 1;
                let inbound = InboundId(node.next_inbound);
                node.inbound.insert(inbound, (from, id));
                Input::Request {
                    from: from_did,
                    id: inbound,
                    request: *request,
                }
            }
            Message::Response { id, response } => {
                if !node.outbound.remove(&id) {
                    return; // timed out already, or a duplicate
                }
                Input::Response {
                    from: from_did,
                    id,
                    response: *response,
                }
            }
            Message::Gossip {
                author,
                topic,
                id: message_id,
                ref data,
            } => {
                if !node.seen.insert(message_id, self.now) {
                    return; // seen: gossip dedupes by message id
                }
                node.next_gossip += 1;
                let id = GossipId(node.next_gossip);
                let data = data.to_vec();
                node.gossip.insert(id, (from, message));
                Input::Gossip {
                    from: from_did,
                    id,
                    topic,
                    author: Some(self.nodes[author].did.clone()),
                    data,
                }
            }
        };
        self.feed(to, input);
    }

    /// Send gossip message `id` from `n` to its neighbours but `from`.
    /// A neighbour that has seen it already gets no copy: it would drop it
    /// on arrival, and gossipsub v1.2 spares the copy the same way (a peer
    /// tells its mesh IDONTWANT on receipt; here the news is instant).
    /// Copies were most of a large mesh's work.
    fn spread(&mut self, n: usize, from: Option<usize>, id: [u8; 32], message: Message) {
        for k in 0..self.net.neighbours(n).len() {
            let m = self.net.neighbours(n)[k];
            if Some(m) != from && !self.nodes[m].seen.contains(&id) {
                self.net.send(self.now, n, m, message.clone());
            }
        }
    }

    /// Hand agent `n` an input and carry out its effects.
    pub(super) fn feed(&mut self, n: usize, input: Input) {
        let now = Now::virtual_at(self.now);
        let Some(agent) = self.nodes[n].agent.as_mut() else {
            return;
        };
        let effects = agent.handle(input, now);
        for effect in effects {
            self.effect(n, effect);
        }
    }

    fn peer(&mut self, n: usize, did: &Did) -> Option<usize> {
        let m = self.by_did.get(did).copied();
        if m.is_none() {
            self.faults
                .push(format!("agent {n} addressed an unknown agent {did}"));
        }
        m
    }

    fn effect(&mut self, n: usize, effect: Effect) {
        let now = self.now;
        match effect {
            Effect::Send { to, id, request } => {
                let Some(m) = self.peer(n, &to) else { return };
                self.nodes[n].outbound.insert(id);
                let timeout = now.plus(self.net.config.request_timeout);
                self.net.schedule(timeout, Due::Timeout { node: n, id });
                if self.net.linked(n, m) {
                    self.net.send(
                        now,
                        n,
                        m,
                        Message::Request {
                            id,
                            request: Box::new(request),
                        },
                    );
                }
            }
            Effect::Respond { id, response, .. } => self.respond(n, id, response),
            Effect::Prove { id, request, .. } => {
                let response = self.nodes[n].store.prove(request);
                self.respond(n, id, crate::io::Response::Action(response));
            }
            Effect::Publish { topic, data } => {
                let id: [u8; 32] = Sha256::digest(&data).into();
                self.nodes[n].seen.insert(id, now);
                let message = Message::Gossip {
                    author: n,
                    topic,
                    id,
                    data: data.into(),
                };
                self.spread(n, None, id, message);
            }
            Effect::Verdict { id, verdict } => {
                if let Some((from, message)) = self.nodes[n].gossip.remove(&id)
                    && verdict == Verdict::Accept
                    && let Message::Gossip { id, .. } = message
                {
                    self.spread(n, Some(from), id, message);
                }
            }
            Effect::Append { index, record } => {
                if let Err(e) = self.nodes[n].store.append(index, record) {
                    self.faults.push(format!("agent {n}: {e}"));
                }
            }
            Effect::StoreCheckpoint { note } => {
                if let Err(e) = self.nodes[n].store.store_checkpoint(&note) {
                    self.faults.push(format!("agent {n}: checkpoint: {e}"));
                }
            }
            Effect::Persist(fact) => self.nodes[n].store.persist(fact),
            Effect::Forget { kind, key } => self.nodes[n].store.forget(kind, &key),
            Effect::SaveWitnessed { origin, size, root } => {
                self.nodes[n].store.save_witnessed(origin, size, root)
            }
            Effect::RunTask {
                id,
                delegator,
                task,
                ..
            } => {
                let node = &mut self.nodes[n];
                let outcome = (node.handler)(&delegator, &task);
                let at = now.plus(node.task_delay);
                self.net.schedule(
                    at,
                    Due::Input {
                        node: n,
                        input: Box::new(Input::TaskDone { id, outcome }),
                    },
                );
            }
            Effect::Disconnect { peer, after } => {
                if let Some(m) = self.peer(n, &peer) {
                    self.net
                        .schedule(now.plus(after), Due::Close { a: n, b: m });
                }
            }
            // The harness has no network path to keep clear: it runs the
            // aggregation at once, so a run stays reproducible.
            Effect::Aggregate(job) => {
                let done = job.run();
                self.feed(n, Input::Aggregated(Box::new(done)));
            }
            // The outcome already scheduled for a stopped task is ignored
            // by the agent when it comes.
            Effect::Ban { .. } | Effect::Unban { .. } | Effect::StopTask { .. } => {}
            Effect::Done { op, result } => {
                self.nodes[n].done.insert(op, result);
            }
            Effect::Event(event) => {
                if self.record_events {
                    self.events.push((now, n, event));
                }
            }
        }
    }

    fn respond(&mut self, n: usize, id: InboundId, response: crate::io::Response) {
        let Some((m, rid)) = self.nodes[n].inbound.remove(&id) else {
            self.faults
                .push(format!("agent {n} answered an unknown request {id:?}"));
            return;
        };
        if self.net.linked(n, m) {
            let message = Message::Response {
                id: rid,
                response: Box::new(response),
            };
            self.net.send(self.now, n, m, message);
        }
    }
}
