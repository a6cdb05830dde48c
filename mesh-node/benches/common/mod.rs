//! What the network benches share: a bare libp2p swarm with the node's
//! transport (TCP without Nagle, Noise, Yamux) and the IATP
//! request-response protocol and codec, and a connected pair of them.

#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Swarm, noise, tcp, yamux};
use mesh_iatp::handshake::LocalAgent;
use mesh_node::node::protocol::FrameCodec;
use mesh_node::node::{IATP_PROTOCOL, IatpRequest, IatpResponse, MAX_IATP_FRAME};

pub type Iatp = request_response::Behaviour<FrameCodec<IatpRequest, IatpResponse>>;

/// A swarm speaking only IATP's request-response, as `agent`.
pub fn swarm(agent: &LocalAgent) -> Swarm<Iatp> {
    let key = mesh_node::transport_key::to_libp2p(agent.identity()).unwrap();
    libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            Iatp::with_codec(
                FrameCodec::new(MAX_IATP_FRAME),
                [(IATP_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build()
}

/// `a` dialled `b` on loopback, both told the connection is up.
pub async fn connect(a: &mut Swarm<Iatp>, b: &mut Swarm<Iatp>) {
    b.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = b.select_next_some().await {
            break address;
        }
    };
    a.dial(addr).unwrap();
    let (mut up_a, mut up_b) = (false, false);
    while !(up_a && up_b) {
        tokio::select! {
            e = a.select_next_some() => up_a |= matches!(e, SwarmEvent::ConnectionEstablished { .. }),
            e = b.select_next_some() => up_b |= matches!(e, SwarmEvent::ConnectionEstablished { .. }),
        }
    }
}
