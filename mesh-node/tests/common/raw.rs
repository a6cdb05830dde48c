//! A bare libp2p peer for attack tests: TCP, Noise, Yamux and whatever
//! behaviour the test gives it, no IATP; it keeps idle connections for a
//! minute, so only the node under test can close them sooner.

use std::time::Duration;

use libp2p::Swarm;
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;

/// A peer with a fresh Ed25519 key running `behaviour`.
pub fn peer<B: NetworkBehaviour>(behaviour: impl FnOnce(&Keypair) -> B) -> Swarm<B> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("TCP transport")
        .with_behaviour(behaviour)
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}
