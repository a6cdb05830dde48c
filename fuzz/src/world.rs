//! The fixed world every target runs in, built once per process: two
//! agents of two federated orgs, a log key and a witness, and the
//! handshake states a Response or a Confirm answers. Everything is
//! derived from fixed labels and a fixed seed, so a seed written by
//! `examples/seeds.rs` answers exactly the state a target builds.

use std::sync::OnceLock;

use mesh_iatp::credential::RevokedCredentials;
use mesh_iatp::handshake::{
    AwaitingConfirm, AwaitingResponse, Context, HandshakeConfig, InitialTrust, Initiator,
    LocalAgent, NoLineage, NonceCache, Responder,
};
use mesh_iatp::testing::{FIXTURE_NOW, Federation, identity};
use mesh_iatp::{Identity, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

/// The time every target runs at.
pub const NOW: Timestamp = FIXTURE_NOW;

/// The witness's key name in cosignature lines.
pub const WITNESS_NAME: &str = "fuzz-witness";

/// The fixed world.
pub struct World {
    /// acme (500/900) and globex (400/800).
    pub fed: Federation,
    /// An acme agent: the responder of the handshake targets.
    pub alice: LocalAgent,
    /// A globex agent: the initiator.
    pub bob: LocalAgent,
    /// No revoked credentials.
    pub revoked: RevokedCredentials,
    /// Default handshake tunables.
    pub config: HandshakeConfig,
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

impl World {
    /// The handshake context of `local`.
    pub fn ctx<'a>(&'a self, local: &'a LocalAgent) -> Context<'a> {
        Context {
            local,
            bundle: &self.fed.bundle,
            revoked: &self.revoked,
            trust: &InitialTrust,
            config: &self.config,
            lineage: &NoLineage,
        }
    }

    /// A fresh replay cache, as a node holds.
    pub fn nonces(&self) -> NonceCache {
        NonceCache::new(1024, self.config.max_skew_secs)
    }

    fn build() -> World {
        let fed = Federation::new();
        let alice = fed.agent(&fed.acme, "alice", &["tools/github"]);
        let bob = fed.agent(&fed.globex, "bob", &["search"]);
        let revoked = RevokedCredentials::default();
        let config = HandshakeConfig::default();
        let ctx = |local| Context {
            local,
            bundle: &fed.bundle,
            revoked: &revoked,
            trust: &InitialTrust,
            config: &config,
            lineage: &NoLineage,
        };
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        let (bob_awaiting, hello) = Initiator::start(ctx(&bob), alice.peer_id(), NOW, &mut rng)
            .unwrap_or_else(|e| panic!("fixture Hello: {e:?}"));
        let mut nonces = NonceCache::new(1024, config.max_skew_secs);
        let (alice_awaiting, response) = Responder::on_hello(
            ctx(&alice),
            bob.peer_id(),
            &hello,
            NOW,
            &mut nonces,
            &mut rng,
        )
        .unwrap_or_else(|e| panic!("fixture Response: {e:?}"));
        let (_, confirm) = bob_awaiting
            .clone()
            .on_response(ctx(&bob), &response, NOW)
            .unwrap_or_else(|e| panic!("fixture Confirm: {e:?}"));
        World {
            log: identity("fuzz log"),
            witness: identity("fuzz witness"),
            hello,
            bob_awaiting,
            response,
            alice_awaiting,
            confirm,
            fed,
            alice,
            bob,
            revoked,
            config,
        }
    }
}

/// The world, built on first use.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::build)
}
