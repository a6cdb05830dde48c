//! The fixed world every target runs in, built once per process: two
//! agents of two federated orgs, a log key and a witness, and the
//! handshake states a Response or a Confirm answers. Everything is
//! derived from fixed labels and a fixed seed, so a seed written by
//! `examples/seeds.rs` answers exactly the state a target builds.

use std::sync::OnceLock;

use mesh_iatp::handshake::{AwaitingConfirm, AwaitingResponse, Initiator, NonceCache, Responder};
use mesh_iatp::testing::{FIXTURE_NOW, Handshakers, identity};
use mesh_iatp::{Identity, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

/// The time every target runs at.
pub const NOW: Timestamp = FIXTURE_NOW;

/// The witness's key name in cosignature lines.
pub const WITNESS_NAME: &str = "fuzz-witness";

/// The fixed world.
pub struct World {
    /// acme (500/900) and globex (400/800); alice, an acme agent, is the
    /// responder of the handshake targets, bob, a globex agent, the
    /// initiator; no revoked credentials, default handshake tunables.
    pub agents: Handshakers,
    /// A log's key (its origin is its DID).
    pub log: Identity,
    /// A witness's key.
    pub witness: Identity,
    /// Bob's Hello to alice.
    pub hello: Vec<u8>,
    /// Bob waiting for alice's Response to `hello`.
    pub bob_awaiting: AwaitingResponse,
    /// Alice's Response to `hello`.
    pub response: Vec<u8>,
    /// Alice waiting for bob's Confirm.
    pub alice_awaiting: AwaitingConfirm,
    /// Bob's Confirm of `response`.
    pub confirm: Vec<u8>,
}

/// `w.alice`, `w.fed`, `w.ctx(…)`: the handshake fixture's parts.
impl std::ops::Deref for World {
    type Target = Handshakers;
    fn deref(&self) -> &Handshakers {
        &self.agents
    }
}

impl World {
    /// A fresh replay cache, as a node holds.
    pub fn nonces(&self) -> NonceCache {
        NonceCache::new(1024, self.config.max_skew_secs)
    }

    fn build() -> World {
        let agents = Handshakers::new();
        let (alice, bob) = (&agents.alice, &agents.bob);
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        let (bob_awaiting, hello) =
            Initiator::start(agents.ctx(bob), alice.peer_id(), NOW, &mut rng)
                .unwrap_or_else(|e| panic!("fixture Hello: {e:?}"));
        let mut nonces = NonceCache::new(1024, agents.config.max_skew_secs);
        let (alice_awaiting, response) = Responder::on_hello(
            agents.ctx(alice),
            bob.peer_id(),
            &hello,
            NOW,
            &mut nonces,
            &mut rng,
        )
        .unwrap_or_else(|e| panic!("fixture Response: {e:?}"));
        let (_, confirm) = bob_awaiting
            .clone()
            .on_response(agents.ctx(bob), &response, NOW)
            .unwrap_or_else(|e| panic!("fixture Confirm: {e:?}"));
        World {
            log: identity("fuzz log"),
            witness: identity("fuzz witness"),
            hello,
            bob_awaiting,
            response,
            alice_awaiting,
            confirm,
            agents,
        }
    }
}

/// The world, built on first use.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::build)
}
