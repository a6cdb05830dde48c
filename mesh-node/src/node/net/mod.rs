//! The node's libp2p side: one `NetworkBehaviour` per protocol of the
//! agent's — [`exchange`] for the handshake and for actions, [`gossip`] —
//! beside libp2p's connection limits, identify, ping and optional
//! Kademlia and mDNS, composed with the derive; and the swarm over TCP,
//! QUIC and memory transports. The agent's behaviours speak its language
//! (peers by `Did`, requests by the agent's ids); libp2p's handles stay
//! inside them.

pub mod dht;
pub mod exchange;
pub(crate) mod frame;
pub mod gossip;
#[cfg(test)]
mod testing;

use std::time::Duration;

use libp2p::core::transport::MemoryTransport;
use libp2p::core::{Transport, upgrade};
use libp2p::request_response;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, ToSwarm};
use libp2p::{StreamProtocol, Swarm, connection_limits, identify, mdns, noise, ping, tcp, yamux};
use std::task::Poll;

use super::NodeError;
use super::protocol::{
    ACTION_PROTOCOL, ActionRequest, ActionResponse, IATP_PROTOCOL, IatpRequest, IatpResponse,
    MAX_ACTION_FRAME, MAX_IATP_FRAME,
};
use dht::Dht;
pub use dht::KAD_PROTOCOL;
use exchange::{Exchange, InboundIds, Wire};
use gossip::Gossip;
use mesh_agent::{Request, Response};

/// The identify protocol version string.
pub const IDENTIFY_VERSION: &str = "/mesh/1";
/// The agent version identify announces: this implementation and its
/// version, not libp2p's default (`rust-libp2p/…`).
pub const AGENT_VERSION: &str = concat!("mesh-node/", env!("CARGO_PKG_VERSION"));

/// Every protocol the node speaks, composed.
#[derive(NetworkBehaviour)]
pub struct MeshBehaviour {
    pub(super) limits: connection_limits::Behaviour,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: ping::Behaviour,
    pub(super) iatp: Exchange<IatpWire>,
    pub(super) action: Exchange<ActionWire>,
    pub(super) gossip: Gossip,
    pub(super) kad: Toggle<Dht>,
    pub(super) mdns: Toggle<mdns::tokio::Behaviour>,
}

/// The handshake protocol: IATP messages in frames of at most
/// [`MAX_IATP_FRAME`] bytes.
pub enum IatpWire {}

impl Wire for IatpWire {
    type Request = IatpRequest;
    type Response = IatpResponse;
    const PROTOCOL: StreamProtocol = IATP_PROTOCOL;
    const MAX_FRAME: u64 = MAX_IATP_FRAME;
    const WHAT: &'static str = "iatp request";

    fn request(request: IatpRequest) -> Request {
        Request::Iatp(request)
    }
    fn response(response: IatpResponse) -> Response {
        Response::Iatp(response)
    }
    fn outbound(request: Request) -> Option<IatpRequest> {
        match request {
            Request::Iatp(r) => Some(r),
            Request::Action(_) => None,
        }
    }
    fn answer(response: Response) -> Option<IatpResponse> {
        match response {
            Response::Iatp(r) => Some(r),
            Response::Action(_) => None,
        }
    }
}

/// The action protocol: everything after the handshake, in frames of at
/// most [`MAX_ACTION_FRAME`] bytes.
pub enum ActionWire {}

impl Wire for ActionWire {
    type Request = ActionRequest;
    type Response = ActionResponse;
    const PROTOCOL: StreamProtocol = ACTION_PROTOCOL;
    const MAX_FRAME: u64 = MAX_ACTION_FRAME;
    const WHAT: &'static str = "action request";

    fn request(request: ActionRequest) -> Request {
        Request::Action(request)
    }
    fn response(response: ActionResponse) -> Response {
        Response::Action(response)
    }
    fn outbound(request: Request) -> Option<ActionRequest> {
        match request {
            Request::Action(r) => Some(r),
            Request::Iatp(_) => None,
        }
    }
    fn answer(response: Response) -> Option<ActionResponse> {
        match response {
            Response::Action(r) => Some(r),
            Response::Iatp(_) => None,
        }
    }
}

/// Build the swarm: TCP, QUIC and memory transports, each authenticated
/// with Noise (QUIC with its own TLS) and multiplexed with Yamux.
pub fn build_swarm(
    keypair: libp2p::identity::Keypair,
    settings: &super::Settings,
    mdns_on: bool,
    kad_on: bool,
) -> Result<Swarm<MeshBehaviour>, NodeError> {
    let setup = |e: &dyn std::fmt::Display| NodeError::Setup(e.to_string());
    let limits = &settings.limits;
    let heartbeat = settings.heartbeat;
    let request_timeout = settings.request_timeout;
    let ping_interval = settings.ping_interval;
    let conn_limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(limits.max_connections))
        .with_max_established_per_peer(Some(limits.max_connections_per_peer))
        .with_max_pending_incoming(Some(limits.max_pending_incoming));
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(&e))?
        .with_quic()
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(MemoryTransport::default()
                .upgrade(upgrade::Version::V1)
                .authenticate(noise)
                .multiplex(yamux::Config::default()))
        })
        .map_err(|e| setup(&e))?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            let gossip = Gossip::new(key.clone(), heartbeat)?;
            let mdns = if mdns_on {
                Some(mdns::tokio::Behaviour::new(
                    mdns::Config::default(),
                    peer_id,
                )?)
            } else {
                None
            };
            let rr_config =
                request_response::Config::default().with_request_timeout(request_timeout);
            let ids = InboundIds::default();
            Ok(MeshBehaviour {
                limits: connection_limits::Behaviour::new(conn_limits),
                identify: identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_VERSION.into(), key.public())
                        .with_agent_version(AGENT_VERSION.into()),
                ),
                ping: ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(ping_interval)
                        .with_timeout(request_timeout),
                ),
                iatp: Exchange::new(rr_config.clone(), ids.clone()),
                action: Exchange::new(rr_config, ids),
                gossip,
                kad: Toggle::from(kad_on.then(|| Dht::new(peer_id))),
                mdns: Toggle::from(mdns),
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    Ok(swarm)
}

/// One poll of a wrapped behaviour: its event, for the wrapper to
/// translate, or what passes through unchanged (an instruction to the
/// swarm, or nothing yet).
// The pass-through is handed straight back from `poll`; boxing it would
// only add an allocation.
#[allow(clippy::result_large_err)]
fn polled<T, E, H>(poll: Poll<ToSwarm<T, H>>) -> Result<T, Poll<ToSwarm<E, H>>> {
    match poll {
        Poll::Ready(ToSwarm::GenerateEvent(event)) => Ok(event),
        Poll::Ready(other) => {
            Err(Poll::Ready(other.map_out(|_| {
                unreachable!("events are taken by the arm above")
            })))
        }
        Poll::Pending => Err(Poll::Pending),
    }
}

/// The connection callbacks of a behaviour that wraps another in its
/// field `inner`, passed through unchanged (the wrapper only translates
/// events and adds methods); `(except on_swarm_event)` leaves that one to
/// the wrapper.
macro_rules! delegate_to_inner {
    () => {
        super::delegate_to_inner!(except on_swarm_event);

        fn on_swarm_event(&mut self, event: ::libp2p::swarm::FromSwarm) {
            self.inner.on_swarm_event(event);
        }
    };
    (except on_swarm_event) => {
        fn handle_pending_inbound_connection(
            &mut self,
            connection_id: ::libp2p::swarm::ConnectionId,
            local_addr: &::libp2p::Multiaddr,
            remote_addr: &::libp2p::Multiaddr,
        ) -> Result<(), ::libp2p::swarm::ConnectionDenied> {
            self.inner
                .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
        }

        fn handle_established_inbound_connection(
            &mut self,
            connection_id: ::libp2p::swarm::ConnectionId,
            peer: ::libp2p::PeerId,
            local_addr: &::libp2p::Multiaddr,
            remote_addr: &::libp2p::Multiaddr,
        ) -> Result<::libp2p::swarm::THandler<Self>, ::libp2p::swarm::ConnectionDenied> {
            self.inner.handle_established_inbound_connection(
                connection_id,
                peer,
                local_addr,
                remote_addr,
            )
        }

        fn handle_pending_outbound_connection(
            &mut self,
            connection_id: ::libp2p::swarm::ConnectionId,
            maybe_peer: Option<::libp2p::PeerId>,
            addresses: &[::libp2p::Multiaddr],
            effective_role: ::libp2p::core::Endpoint,
        ) -> Result<Vec<::libp2p::Multiaddr>, ::libp2p::swarm::ConnectionDenied> {
            self.inner.handle_pending_outbound_connection(
                connection_id,
                maybe_peer,
                addresses,
                effective_role,
            )
        }

        fn handle_established_outbound_connection(
            &mut self,
            connection_id: ::libp2p::swarm::ConnectionId,
            peer: ::libp2p::PeerId,
            addr: &::libp2p::Multiaddr,
            role_override: ::libp2p::core::Endpoint,
            port_use: ::libp2p::core::transport::PortUse,
        ) -> Result<::libp2p::swarm::THandler<Self>, ::libp2p::swarm::ConnectionDenied> {
            self.inner.handle_established_outbound_connection(
                connection_id,
                peer,
                addr,
                role_override,
                port_use,
            )
        }

        fn on_connection_handler_event(
            &mut self,
            peer_id: ::libp2p::PeerId,
            connection_id: ::libp2p::swarm::ConnectionId,
            event: ::libp2p::swarm::THandlerOutEvent<Self>,
        ) {
            self.inner
                .on_connection_handler_event(peer_id, connection_id, event);
        }
    };
}
use delegate_to_inner;
