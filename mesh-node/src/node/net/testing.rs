//! Two behaviours talking over libp2p's memory transport, for the unit
//! tests of the wrappers in this module: real Noise and Yamux, no sockets.

use std::sync::atomic::{AtomicU64, Ordering};

use libp2p::core::transport::MemoryTransport;
use libp2p::core::{Transport, upgrade};
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{Multiaddr, Swarm, noise, yamux};

/// A swarm with a fresh Ed25519 identity running `behaviour`, on the
/// memory transport only.
pub fn memory_swarm<B: NetworkBehaviour>(behaviour: impl FnOnce(&Keypair) -> B) -> Swarm<B> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| {
            Ok(MemoryTransport::default()
                .upgrade(upgrade::Version::V1)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default()))
        })
        .expect("memory transport")
        .with_behaviour(behaviour)
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(std::time::Duration::from_secs(60)))
        .build()
}

/// A memory address no other test in this process uses.
pub fn memory_addr() -> Multiaddr {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let port = 0x6d65_7368_0000
        + u64::from(std::process::id()) * 1000
        + NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/memory/{port}").parse().expect("a memory address")
}
