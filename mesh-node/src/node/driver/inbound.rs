//! Swarm events become the agent's inputs: connections, requests and
//! responses on the IATP and action protocols, gossip awaiting a verdict,
//! and discovery (identify, mDNS, Kademlia).

use libp2p::gossipsub;
use libp2p::identify;
use libp2p::kad;
use libp2p::mdns;
use libp2p::request_response::{self, Message};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use mesh_agent::{GossipId, InboundId, Input, Request, Response};

use super::super::behaviour::MeshBehaviourEvent;
use super::super::protocol::{ActionRequest, ActionResponse, IatpRequest, IatpResponse};
use super::super::{NodeError, did_of};
use super::{Channel, Driver, error_chain};

impl Driver {
    pub(super) fn swarm_event(&mut self, event: SwarmEvent<MeshBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                if let Some(reply) = self.listening.remove(&listener_id) {
                    let _ = reply.send(Ok(address.clone()));
                }
                tracing::info!(%address, "listening");
            }
            SwarmEvent::ListenerError { listener_id, error }
            | SwarmEvent::ListenerClosed {
                listener_id,
                reason: Err(error),
                ..
            } => {
                if let Some(reply) = self.listening.remove(&listener_id) {
                    let _ = reply.send(Err(NodeError::Address(error.to_string())));
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                num_established,
                ..
            } => {
                if endpoint.is_dialer() {
                    self.note_dialled(endpoint.get_remote_address(), peer_id);
                }
                self.connected(
                    peer_id,
                    endpoint.is_dialer(),
                    connection_id,
                    num_established.get(),
                )
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                if let Some(reply) = self.dialing.remove(&connection_id) {
                    // A dial refused because we are already connected (the
                    // per-peer limit; the DHT may have dialled first) joins
                    // that connection's session instead of failing.
                    let did = peer_id.as_ref().and_then(did_of);
                    match did {
                        Some(did) if self.agent.session(&did).is_some() => {
                            let _ = reply.send(Ok(did));
                        }
                        Some(did) if peer_id.is_some_and(|p| self.swarm.is_connected(&p)) => {
                            self.connecting.entry(did).or_default().push(reply);
                        }
                        _ => {
                            let _ = reply.send(Err(NodeError::Dial(error_chain(&error))));
                        }
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                if let Some(peer) = did_of(&peer_id) {
                    for reply in self.connecting.remove(&peer).unwrap_or_default() {
                        let _ = reply.send(Err(NodeError::Dial(format!(
                            "{peer} closed the connection during the handshake"
                        ))));
                    }
                    self.input(Input::Disconnected { peer });
                }
            }
            SwarmEvent::Behaviour(event) => self.behaviour_event(event),
            _ => {}
        }
    }

    fn connected(
        &mut self,
        peer_id: libp2p::PeerId,
        dialer: bool,
        connection: ConnectionId,
        established: u32,
    ) {
        let Some(peer) = did_of(&peer_id) else {
            // Not an Ed25519 key: it cannot be an agent.
            let _ = self.swarm.disconnect_peer_id(peer_id);
            if let Some(reply) = self.dialing.remove(&connection) {
                let _ = reply.send(Err(NodeError::Dial(format!(
                    "{peer_id} is not an agent (its key is not Ed25519)"
                ))));
            }
            return;
        };
        if let Some(reply) = self.dialing.remove(&connection) {
            if self.agent.session(&peer).is_some() {
                let _ = reply.send(Ok(peer.clone()));
            } else {
                self.connecting.entry(peer.clone()).or_default().push(reply);
            }
        }
        if established == 1 {
            self.input(Input::Connected { peer, dialer });
        }
    }

    fn behaviour_event(&mut self, event: MeshBehaviourEvent) {
        match event {
            MeshBehaviourEvent::Iatp(event) => self.iatp_event(event),
            MeshBehaviourEvent::Action(event) => self.action_event(event),
            MeshBehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.gossip_message(propagation_source, message_id, message),
            MeshBehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for addr in info.listen_addrs {
                    if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                        kad.add_address(&peer_id, addr);
                    }
                }
            }
            MeshBehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    if self.wants_discovered(&peer) {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            // A peer found in the DHT is dialled while the node has fewer
            // peers than its discovery target.
            MeshBehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, addresses, ..
            }) if self.wants_discovered(&peer) => {
                let _ = self.swarm.dial(
                    DialOpts::peer_id(peer)
                        .addresses(addresses.into_vec())
                        .build(),
                );
            }
            _ => {}
        }
    }

    /// Whether to dial a peer discovery turned up.
    fn wants_discovered(&self, peer: &libp2p::PeerId) -> bool {
        !self.swarm.is_connected(peer)
            && !did_of(peer).is_some_and(|d| self.agent.is_banned(&d))
            && self.swarm.network_info().num_peers() < self.discovery_target as usize
    }

    fn next_inbound(&mut self, channel: Channel) -> InboundId {
        self.next_inbound += 1;
        let id = InboundId(self.next_inbound);
        self.inbound.insert(id, channel);
        id
    }

    fn iatp_event(&mut self, event: request_response::Event<IatpRequest, IatpResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => {
                let Some(from) = did_of(&peer) else {
                    let _ = self.swarm.disconnect_peer_id(peer);
                    return;
                };
                match message {
                    Message::Request {
                        request, channel, ..
                    } => {
                        let id = self.next_inbound(Channel::Iatp(channel));
                        let request = Request::Iatp(request);
                        self.input(Input::Request { from, id, request });
                    }
                    Message::Response {
                        request_id,
                        response,
                    } => {
                        if let Some(id) = self.iatp_out.remove(&request_id) {
                            let response = Response::Iatp(response);
                            self.input(Input::Response { from, id, response });
                        }
                    }
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(id) = self.iatp_out.remove(&request_id) {
                    let error = error.to_string();
                    self.input(Input::RequestFailed { id, error });
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                if let Some(from) = did_of(&peer) {
                    let error = error.to_string();
                    let what = "iatp request";
                    self.input(Input::Malformed { from, what, error });
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn action_event(&mut self, event: request_response::Event<ActionRequest, ActionResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => {
                let Some(from) = did_of(&peer) else {
                    let _ = self.swarm.disconnect_peer_id(peer);
                    return;
                };
                match message {
                    Message::Request {
                        request, channel, ..
                    } => {
                        let id = self.next_inbound(Channel::Action(channel));
                        let request = Request::Action(request);
                        self.input(Input::Request { from, id, request });
                    }
                    Message::Response {
                        request_id,
                        response,
                    } => {
                        if let Some(id) = self.action_out.remove(&request_id) {
                            // A consistency proof is for witnessing: time
                            // its verification for the metrics.
                            let proof = matches!(response, ActionResponse::Proof { .. });
                            let started = std::time::Instant::now();
                            let response = Response::Action(response);
                            self.input(Input::Response { from, id, response });
                            if proof {
                                self.metrics
                                    .verify_took("witness_checkpoint", started.elapsed());
                            }
                        }
                    }
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(id) = self.action_out.remove(&request_id) {
                    let error = error.to_string();
                    self.input(Input::RequestFailed { id, error });
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                if let Some(from) = did_of(&peer) {
                    let error = error.to_string();
                    let what = "action request";
                    self.input(Input::Malformed { from, what, error });
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn gossip_message(
        &mut self,
        source: libp2p::PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let topic = super::super::gossip::topic_of(&message.topic);
        let (Some(topic), Some(from)) = (topic, did_of(&source)) else {
            let _ = self
                .swarm
                .behaviour_mut()
                .gossip
                .report_message_validation_result(
                    &message_id,
                    &source,
                    gossipsub::MessageAcceptance::Ignore,
                );
            return;
        };
        self.next_gossip += 1;
        let id = GossipId(self.next_gossip);
        self.gossip_in.insert(id, (message_id, source));
        let author = message.source.as_ref().and_then(did_of);
        self.input(Input::Gossip {
            from,
            id,
            topic,
            author,
            data: message.data,
        });
    }
}
