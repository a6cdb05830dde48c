//! # mesh-iatp: identity and the Inter-Agent Trust Protocol handshake
//!
//! Every agent in the mesh is an Ed25519 key. This crate gives that key its
//! names ([`Did`] — `did:key:z6Mk…` — and the libp2p [`PeerId`]), lets an
//! organisation vouch for its agents ([`OrgCredential`]), lets a node say
//! which organisations it accepts ([`TrustBundle`]), defines the one signed
//! wire format all mesh messages use ([`envelope`], deterministic CBOR), and
//! runs the three-message IATP handshake ([`handshake`]) that turns a raw
//! connection into an authenticated [`Session`].
//!
//! The crate is pure: no sockets, no clock, no global RNG. Callers pass
//! bytes, `now` and a random source in and get bytes and decisions out, so
//! the same code runs in the libp2p node, in tests and in simulations.
//!
//! ```
//! use mesh_iatp::handshake::{Context, HandshakeConfig, InitialTrust, Initiator, NoLineage, NonceCache, Responder};
//! use mesh_iatp::testing::{Federation, FIXTURE_NOW};
//! use mesh_iatp::RevokedCredentials;
//! use rand_chacha::rand_core::SeedableRng;
//!
//! let fed = Federation::new();
//! let alice = fed.agent(&fed.acme, "alice", &["tools/github"]);
//! let bob = fed.agent(&fed.globex, "bob", &["search"]);
//! let (revoked, config) = (RevokedCredentials::default(), HandshakeConfig::default());
//! let ctx = |local| Context { local, bundle: &fed.bundle, revoked: &revoked, trust: &InitialTrust, config: &config, lineage: &NoLineage };
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let mut nonces = NonceCache::new(1024, config.max_skew_secs);
//! let now = FIXTURE_NOW;
//!
//! let (waiting, hello) = Initiator::start(ctx(&alice), bob.peer_id(), now, &mut rng).unwrap();
//! let (pending, response) =
//!     Responder::on_hello(ctx(&bob), alice.peer_id(), &hello, now, &mut nonces, &mut rng).unwrap();
//! let (alice_view, confirm) = waiting.on_response(ctx(&alice), &response, now).unwrap();
//! let bob_view = pending.on_confirm(ctx(&bob), &confirm, now).unwrap();
//!
//! assert_eq!(alice_view.remote, *bob.identity().did());
//! assert_eq!(bob_view.policy.name, "acme");
//! assert_eq!(alice_view.transcript_hash, bob_view.transcript_hash);
//! ```
#![forbid(unsafe_code)]
#![warn(unnameable_types)]

pub mod bundle;
pub mod capability;
pub mod cbor;
pub mod credential;
mod did;
pub mod envelope;
pub mod error_chain;
pub mod handshake;
mod identity;
mod peer_id;
mod score;
pub mod testing;
mod time;
pub mod toml_location;

pub use bundle::{BundleError, OrgPolicy, TrustBundle};
pub use capability::{CapabilityError, CapabilityPattern};
pub use credential::{
    AgentCard, CredentialError, OrgCredential, RevokedCredentials, SignedCredential, Validity,
};
pub use did::{Did, DidError, PARSE_CACHE_CAPACITY, clear_parse_cache, memoize_verifications};
pub use envelope::{Envelope, EnvelopeError, SignedMessage};
pub use handshake::{Refusal, Refused, Session};
pub use identity::{Identity, IdentityError};
pub use peer_id::{PeerId, PeerIdError};
pub use score::{Score, ScoreOutOfRange};
pub use time::Timestamp;

/// Re-exported so callers can name the signature type without a direct dependency.
pub use ed25519_dalek::Signature;
