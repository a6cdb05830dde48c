//! The node's libp2p behaviour: connection limits, identify, ping, the
//! IATP and action request-response protocols (CBOR, bounded frames),
//! gossipsub, and optional Kademlia and mDNS, composed with the derive;
//! and the swarm over TCP, QUIC and memory transports.

use std::time::Duration;

use libp2p::core::transport::MemoryTransport;
use libp2p::core::{Transport, upgrade};
use libp2p::gossipsub;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, Swarm, connection_limits, identify, mdns, noise, ping, tcp, yamux};

use super::NodeError;
use super::gossip;
use super::protocol::{
    ACTION_PROTOCOL, ActionRequest, ActionResponse, IATP_PROTOCOL, IatpRequest, IatpResponse,
    MAX_ACTION_FRAME, MAX_IATP_FRAME,
};

/// The Kademlia protocol id of the mesh.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/mesh/kad/1");
/// The identify protocol version string.
pub const IDENTIFY_VERSION: &str = "/mesh/1";

/// Every protocol the node speaks, composed.
#[derive(NetworkBehaviour)]
pub struct MeshBehaviour {
    pub(super) limits: connection_limits::Behaviour,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: ping::Behaviour,
    pub(super) iatp: request_response::cbor::Behaviour<IatpRequest, IatpResponse>,
    pub(super) action: request_response::cbor::Behaviour<ActionRequest, ActionResponse>,
    pub(super) gossip: gossipsub::Behaviour,
    pub(super) kad: Toggle<kad::Behaviour<MemoryStore>>,
    pub(super) mdns: Toggle<mdns::tokio::Behaviour>,
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
            let gossip = gossip::behaviour(key.clone(), heartbeat)?;
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
            Ok(MeshBehaviour {
                limits: connection_limits::Behaviour::new(conn_limits),
                identify: identify::Behaviour::new(identify::Config::new(
                    IDENTIFY_VERSION.into(),
                    key.public(),
                )),
                ping: ping::Behaviour::new(ping::Config::new()),
                // IATP messages are at most 16 KiB and actions 72 KiB: refuse
                // anything larger before buffering it (the codec's defaults
                // are 1 and 10 MiB).
                iatp: request_response::Behaviour::with_codec(
                    request_response::cbor::codec::Codec::default()
                        .set_request_size_maximum(MAX_IATP_FRAME)
                        .set_response_size_maximum(MAX_IATP_FRAME),
                    [(IATP_PROTOCOL, ProtocolSupport::Full)],
                    rr_config.clone(),
                ),
                action: request_response::Behaviour::with_codec(
                    request_response::cbor::codec::Codec::default()
                        .set_request_size_maximum(MAX_ACTION_FRAME)
                        .set_response_size_maximum(MAX_ACTION_FRAME),
                    [(ACTION_PROTOCOL, ProtocolSupport::Full)],
                    rr_config,
                ),
                gossip,
                kad: Toggle::from(kad_on.then(|| {
                    kad::Behaviour::with_config(
                        peer_id,
                        MemoryStore::new(peer_id),
                        kad::Config::new(KAD_PROTOCOL),
                    )
                })),
                mdns: Toggle::from(mdns),
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let mut swarm = swarm;
    // Answer DHT queries even without a confirmed external address (a
    // mesh on one host or a LAN never gets one).
    if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
        kad.set_mode(Some(kad::Mode::Server));
    }
    Ok(swarm)
}
