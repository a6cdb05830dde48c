//! Swarm events become the agent's inputs: connections, requests and
//! responses on the IATP and action protocols, gossip awaiting a verdict,
//! and discovery (identify, mDNS, Kademlia).

use libp2p::identify;
use libp2p::kad;
use libp2p::mdns;
use libp2p::ping;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use mesh_agent::{Input, Response};

use super::super::net::MeshBehaviourEvent;
use super::super::protocol::ActionResponse;
use super::super::{NodeError, did_of};
use mesh_iatp::error_chain::one_line;

use super::Driver;

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
                let ip = endpoint.get_remote_address().iter().find_map(|p| match p {
                    libp2p::multiaddr::Protocol::Ip4(ip) => Some(ip.into()),
                    libp2p::multiaddr::Protocol::Ip6(ip) => Some(ip.into()),
                    _ => None,
                });
                self.connected(
                    peer_id,
                    endpoint.is_dialer(),
                    ip,
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
                            if let Some(p) = peer_id {
                                self.links.chose(p);
                            }
                            let _ = reply.send(Ok(did));
                        }
                        Some(did) if peer_id.is_some_and(|p| self.swarm.is_connected(&p)) => {
                            if let Some(p) = peer_id {
                                self.links.chose(p);
                            }
                            self.connecting.entry(did).or_default().push(reply);
                        }
                        _ => {
                            let _ = reply.send(Err(NodeError::Dial(one_line(&error))));
                        }
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.announced.remove(&peer_id);
                self.links.closed(&peer_id);
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
        ip: Option<std::net::IpAddr>,
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
        if established == 1 {
            self.links.opened(peer_id, tokio::time::Instant::now());
        }
        if let Some(reply) = self.dialing.remove(&connection) {
            self.links.chose(peer_id);
            if self.agent.session(&peer).is_some() {
                let _ = reply.send(Ok(peer.clone()));
            } else {
                self.connecting.entry(peer.clone()).or_default().push(reply);
            }
        }
        if established == 1 {
            self.input(Input::Connected { peer, dialer, ip });
        }
    }

    fn behaviour_event(&mut self, event: MeshBehaviourEvent) {
        match event {
            MeshBehaviourEvent::Iatp(event) | MeshBehaviourEvent::Action(event) => {
                self.exchange_input(event)
            }
            MeshBehaviourEvent::Gossip(input) => self.input(input),
            // A connection whose ping goes unanswered is dead (a peer that
            // vanished without closing, a silent partition): close it, so
            // the agent learns the session is gone and a redial starts
            // afresh. A peer that does not speak ping is not dead.
            MeshBehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(failure),
            }) if !matches!(failure, ping::Failure::Unsupported) => {
                match did_of(&peer) {
                    Some(did) => {
                        tracing::info!(peer = %did, %failure, "closing a connection whose pings fail")
                    }
                    None => {
                        tracing::info!(%peer, %failure, "closing a connection whose pings fail")
                    }
                }
                self.swarm.close_connection(connection);
            }
            // Only agents holding a session enter the DHT (a stranger's
            // addresses would be served to everyone who asks).
            MeshBehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let mut addrs = info.listen_addrs;
                addrs.truncate(super::ANNOUNCED_ADDRS);
                self.announced.insert(peer_id, addrs);
                if did_of(&peer_id).is_some_and(|d| self.agent.session(&d).is_some()) {
                    self.route(&peer_id);
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

    /// Serve `peer` (which holds a session) the DHT, and enter the
    /// addresses it announced into the routing table.
    pub(super) fn route(&mut self, peer: &libp2p::PeerId) {
        let addrs = self.announced.get(peer).cloned().unwrap_or_default();
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            kad.admit(*peer, addrs);
        }
    }

    /// Whether to dial a peer discovery turned up.
    fn wants_discovered(&self, peer: &libp2p::PeerId) -> bool {
        !self.swarm.is_connected(peer)
            && !did_of(peer).is_some_and(|d| self.agent.is_banned(&d))
            && self.swarm.network_info().num_peers() < self.discovery_target as usize
    }

    /// An input from the handshake or action protocol. A consistency
    /// proof is for witnessing: its verification is timed for the metrics.
    fn exchange_input(&mut self, input: Input) {
        let proof = matches!(
            input,
            Input::Response {
                response: Response::Action(ActionResponse::Proof { .. }),
                ..
            }
        );
        let started = std::time::Instant::now();
        self.input(input);
        if proof {
            self.metrics
                .verify_took("witness_checkpoint", started.elapsed());
        }
    }
}
