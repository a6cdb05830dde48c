//! Kademlia for discovery, served only to peers holding a session
//! (PROTOCOL.md §8.1): its own `NetworkBehaviour` around libp2p's, whose
//! connection handlers refuse inbound Kademlia streams until the driver
//! says the peer is admitted.
//!
//! The routing table holds only the peers the driver adds (agents with a
//! session, at the addresses they announced), never whoever connects;
//! records and provider records are not stored from anyone. Refusing the
//! stream, not answering it empty, keeps a stranger from learning even
//! that the node speaks Kademlia, and costs the node no work for it.
//! Outbound queries are unchanged: a DHT walk may ask a peer it has no
//! session with, which that peer refuses in turn until they shake hands.

use std::collections::{HashMap, HashSet, VecDeque};
use std::task::{Context, Poll};

use either::Either;
use libp2p::core::upgrade::DeniedUpgrade;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::handler::ConnectionEvent;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId,
    FromSwarm, NetworkBehaviour, NotifyHandler, SubstreamProtocol, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, StreamProtocol};

/// The Kademlia protocol id of the mesh.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/mesh/kad/1");

type Kad = kad::Behaviour<MemoryStore>;
type KadHandler = THandler<Kad>;

/// The DHT behaviour.
pub struct Dht {
    inner: Kad,
    /// Connected peers holding a session: their inbound Kademlia streams
    /// are taken. Bounded by the connection limits, like `connections`.
    admitted: HashSet<PeerId>,
    /// Every open connection of each connected peer, to open or close
    /// their gates.
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// Gate changes waiting to reach the connections.
    gates: VecDeque<(PeerId, ConnectionId, bool)>,
    /// The walk the driver asked for: the only bootstrap query let run.
    walking: Option<kad::QueryId>,
}

impl Dht {
    /// Kademlia for the node `local`, in server mode (a mesh on one host or
    /// a LAN never confirms an external address, yet must answer its
    /// members' queries).
    pub fn new(local: PeerId) -> Self {
        let mut config = kad::Config::new(KAD_PROTOCOL);
        config
            .set_kbucket_inserts(kad::BucketInserts::Manual)
            .set_record_filtering(kad::StoreInserts::FilterBoth)
            // The driver decides when to walk (below its discovery
            // target); see `poll` for the automatic walks this leaves.
            .set_periodic_bootstrap_interval(None);
        let mut inner = Kad::with_config(local, MemoryStore::new(local), config);
        inner.set_mode(Some(kad::Mode::Server));
        Dht {
            inner,
            admitted: HashSet::new(),
            connections: HashMap::new(),
            gates: VecDeque::new(),
            walking: None,
        }
    }

    /// `peer` holds a session now: serve its queries, route to it at
    /// `addrs`.
    pub fn admit(&mut self, peer: PeerId, addrs: impl IntoIterator<Item = Multiaddr>) {
        for addr in addrs {
            self.inner.add_address(&peer, addr);
        }
        if self.admitted.insert(peer) {
            self.set_gates(peer, true);
        }
    }

    /// `peer` lost its session but may still be connected: a stranger
    /// again, out of the routing table.
    pub fn exclude(&mut self, peer: &PeerId) {
        self.inner.remove_peer(peer);
        if self.admitted.remove(peer) {
            self.set_gates(*peer, false);
        }
    }

    /// Start a walk of the DHT (a query for the node's own key and random
    /// ones, through the peers with a session).
    pub fn walk(&mut self) {
        // With no peer in the table there is nothing to walk; not an error.
        self.walking = self.inner.bootstrap().ok();
    }

    /// Stop the walk under way, if any: the node has enough sessions, and
    /// every further peer a walk asks becomes one more.
    pub fn stop_walk(&mut self) {
        if let Some(mut q) = self.walking.take().and_then(|id| self.inner.query_mut(&id)) {
            q.finish();
        }
    }

    /// Stop every bootstrap query the driver did not ask for. libp2p-kad
    /// starts one by itself whenever a peer enters a routing table of
    /// fewer than 20 (and cannot be told not to): every such walk asks,
    /// and so connects to and handshakes with, most of a small mesh — each
    /// new session would undo the session limit's trimming.
    fn stop_unasked_walks(&mut self) {
        let walking = self.walking;
        for mut q in self.inner.iter_queries_mut() {
            if matches!(q.info(), kad::QueryInfo::Bootstrap { .. }) && Some(q.id()) != walking {
                q.finish();
            }
        }
    }

    fn set_gates(&mut self, peer: PeerId, open: bool) {
        for c in self.connections.get(&peer).into_iter().flatten() {
            self.gates.push_back((peer, *c, open));
        }
    }

    fn gated(&self, peer: PeerId, handler: KadHandler) -> Gate {
        Gate {
            inner: handler,
            open: self.admitted.contains(&peer),
        }
    }
}

impl NetworkBehaviour for Dht {
    type ConnectionHandler = Gate;
    type ToSwarm = kad::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<Gate, ConnectionDenied> {
        let handler = self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )?;
        Ok(self.gated(peer, handler))
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: libp2p::core::Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: libp2p::core::Endpoint,
        port_use: libp2p::core::transport::PortUse,
    ) -> Result<Gate, ConnectionDenied> {
        let handler = self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )?;
        Ok(self.gated(peer, handler))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match &event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            }) => self
                .connections
                .entry(*peer_id)
                .or_default()
                .push(*connection_id),
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                remaining_established,
                ..
            }) => {
                if let Some(open) = self.connections.get_mut(peer_id) {
                    open.retain(|c| c != connection_id);
                }
                if *remaining_established == 0 {
                    self.connections.remove(peer_id);
                    self.admitted.remove(peer_id);
                }
            }
            _ => {}
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer_id, connection_id, event);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<kad::Event, THandlerInEvent<Self>>> {
        if let Some((peer_id, connection, open)) = self.gates.pop_front() {
            return Poll::Ready(ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(connection),
                event: Either::Right(open),
            });
        }
        self.stop_unasked_walks();
        let polled = self.inner.poll(cx);
        // A walk started inside that poll has made at most its first
        // request (the event returned now); stop it before the next.
        self.stop_unasked_walks();
        polled.map(|e| e.map_in(Either::Left))
    }
}

/// Kademlia's connection handler behind a gate: while it is shut, inbound
/// Kademlia streams are refused at protocol negotiation and the protocol
/// is not advertised; outbound streams pass either way. The behaviour
/// sends `Right(open)` to move the gate, `Left(_)` for Kademlia itself.
pub struct Gate {
    inner: KadHandler,
    open: bool,
}

type KadIn = <KadHandler as ConnectionHandler>::InboundProtocol;

impl ConnectionHandler for Gate {
    type FromBehaviour = Either<<KadHandler as ConnectionHandler>::FromBehaviour, bool>;
    type ToBehaviour = <KadHandler as ConnectionHandler>::ToBehaviour;
    type InboundProtocol = KadIn;
    type OutboundProtocol = <KadHandler as ConnectionHandler>::OutboundProtocol;
    type InboundOpenInfo = <KadHandler as ConnectionHandler>::InboundOpenInfo;
    type OutboundOpenInfo = <KadHandler as ConnectionHandler>::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<KadIn, Self::InboundOpenInfo> {
        if self.open {
            self.inner.listen_protocol()
        } else {
            // Kademlia's own "client mode" refusal: no protocol offered.
            SubstreamProtocol::new(Either::Right(DeniedUpgrade), ())
        }
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        match event {
            Either::Left(event) => self.inner.on_behaviour_event(event),
            Either::Right(open) => self.open = open,
        }
    }

    fn connection_keep_alive(&self) -> bool {
        self.inner.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<
        ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>,
    > {
        self.inner.poll(cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.inner.poll_close(cx)
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            Self::InboundProtocol,
            Self::OutboundProtocol,
            Self::InboundOpenInfo,
            Self::OutboundOpenInfo,
        >,
    ) {
        // A stream negotiated while the gate was open is Kademlia's even
        // if it shut since: the peer was admitted when it asked.
        self.inner.on_connection_event(event);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use futures::StreamExt;
    use libp2p::Swarm;
    use libp2p::swarm::SwarmEvent;

    use super::super::testing::{memory_addr, memory_swarm};
    use super::*;

    fn peer() -> Swarm<Dht> {
        memory_swarm(|key| Dht::new(key.public().to_peer_id()))
    }

    /// `b` asks `a` for the peers closest to a random key, on their one
    /// connection; whether `a` answered.
    async fn answered(a: &mut Swarm<Dht>, b: &mut Swarm<Dht>) -> bool {
        let a_id = *a.local_peer_id();
        b.behaviour_mut().inner.get_closest_peers(PeerId::random());
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => panic!("the query ended within 10 s"),
                _ = a.select_next_some() => {}
                e = b.select_next_some() => if let SwarmEvent::Behaviour(
                    kad::Event::OutboundQueryProgressed { result, step, .. }) = e
                {
                    if !step.last {
                        continue;
                    }
                    let kad::QueryResult::GetClosestPeers(result) = result else {
                        panic!("{result:?}")
                    };
                    let peers = match result {
                        Ok(ok) => ok.peers,
                        Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                    };
                    return peers.iter().any(|p| p.peer_id == a_id);
                },
            }
        }
    }

    #[tokio::test]
    async fn the_gate_opens_with_the_session_and_shuts_when_it_ends() {
        let (mut a, mut b) = (peer(), peer());
        let addr = memory_addr();
        a.listen_on(addr.clone()).unwrap();
        let a_id = *a.local_peer_id();
        let b_id = *b.local_peer_id();
        // b routes to a as though it had a session; a has none with b.
        b.behaviour_mut().admit(a_id, [addr.clone()]);
        b.dial(addr.clone().with_p2p(a_id).unwrap()).unwrap();
        let started = Instant::now();
        while !b.is_connected(&a_id) {
            assert!(started.elapsed() < Duration::from_secs(10), "connected");
            tokio::select! {
                _ = a.select_next_some() => {}
                _ = b.select_next_some() => {}
            }
        }
        assert!(!answered(&mut a, &mut b).await, "a served a stranger");
        a.behaviour_mut().admit(b_id, []);
        assert!(answered(&mut a, &mut b).await, "a serves b once admitted");
        a.behaviour_mut().exclude(&b_id);
        assert!(
            !answered(&mut a, &mut b).await,
            "a stops when b's session ends"
        );
        assert!(b.is_connected(&a_id), "all on the one connection");
    }
}
