//! Deterministic identities, credentials and bundles for tests, examples,
//! benchmarks and simulations: one place for fixtures instead of copies.
//!
//! Keys are derived from names (SHA-256 of a label), so the same name always
//! gives the same DID. Never use these keys for anything real.

use sha2::{Digest, Sha256};

use crate::bundle::{OrgPolicy, TrustBundle};
use crate::capability::CapabilityPattern;
use crate::credential::{AgentCard, OrgCredential, RevokedCredentials};
use crate::envelope::PROTOCOL_VERSION;
use crate::handshake::{Context, HandshakeConfig, InitialTrust, LocalAgent, NoLineage};
use crate::{Identity, Score, Timestamp};

/// A fixed "now" for fixtures: 2026-01-01T00:00:00Z.
pub const FIXTURE_NOW: Timestamp = Timestamp(1_767_225_600);
const DAY: u64 = 86_400;

/// The Ed25519 seed (RFC 8032 private key) of the identity named `label`:
/// SHA-256 of `"mesh-iatp testing key: " ‖ label`.
pub fn seed(label: &str) -> [u8; 32] {
    Sha256::digest(format!("mesh-iatp testing key: {label}")).into()
}

/// The identity deterministically named `label`.
pub fn identity(label: &str) -> Identity {
    Identity::from_secret_bytes(&seed(label))
}

fn caps(list: &[&str]) -> Vec<CapabilityPattern> {
    list.iter()
        .filter_map(|c| CapabilityPattern::parse(c).ok())
        .collect()
}

/// Two federated organisations, `acme` and `globex`, plus `rogue`, an org
/// that no bundle lists.
#[derive(Debug, Clone)]
pub struct Federation {
    /// Org root of acme (initial 500, ceiling 900, may offer `tools/*`, `search`).
    pub acme: Identity,
    /// Org root of globex (initial 400, ceiling 800, may offer `search`).
    pub globex: Identity,
    /// An org root outside the bundle.
    pub rogue: Identity,
    /// The bundle accepting acme and globex.
    pub bundle: TrustBundle,
}

impl Default for Federation {
    fn default() -> Self {
        Self::new()
    }
}

impl Federation {
    /// Build the fixture.
    pub fn new() -> Self {
        let acme = identity("org acme");
        let globex = identity("org globex");
        let rogue = identity("org rogue");
        let policy = |name: &str, id: &Identity, initial, ceiling, allowed: &[&str]| OrgPolicy {
            name: name.into(),
            root: id.did().clone(),
            initial_trust: Score::saturating(initial),
            trust_ceiling: Score::saturating(ceiling),
            capabilities: caps(allowed),
        };
        let bundle = TrustBundle::new(vec![
            policy("acme", &acme, 500, 900, &["tools/*", "search"]),
            policy("globex", &globex, 400, 800, &["search"]),
        ])
        .unwrap_or_default();
        Federation {
            acme,
            globex,
            rogue,
            bundle,
        }
    }

    /// An agent named `name` of `org`, credential valid from a day before
    /// [`FIXTURE_NOW`] for 30 days, offering `offers`.
    pub fn agent(&self, org: &Identity, name: &str, offers: &[&str]) -> LocalAgent {
        self.agent_with_window(
            org,
            name,
            offers,
            FIXTURE_NOW.minus_secs(DAY),
            FIXTURE_NOW.plus_secs(30 * DAY),
        )
    }

    /// Like [`Federation::agent`] with an explicit credential window.
    pub fn agent_with_window(
        &self,
        org: &Identity,
        name: &str,
        offers: &[&str],
        not_before: Timestamp,
        expires: Timestamp,
    ) -> LocalAgent {
        let id = identity(&format!("agent {name}"));
        let credential = OrgCredential {
            org: org.did().clone(),
            agent: id.did().clone(),
            roles: vec!["worker".into()],
            not_before,
            expires,
        };
        let signed = credential
            .sign(org)
            .unwrap_or_else(|e| panic!("fixture credential signs: {e}"));
        let card = AgentCard {
            did: id.did().clone(),
            name: name.into(),
            credential: signed,
            capabilities: caps(offers),
            versions: vec![PROTOCOL_VERSION],
            lineage: vec![],
        };
        LocalAgent::new(id, card).unwrap_or_else(|e| panic!("fixture card is valid: {e}"))
    }
}

/// alice (acme, offering `tools/github`) and bob (globex, offering
/// `search`), with what a handshaking node holds besides its agent: the
/// world of handshake benches, comparisons and test vectors.
#[derive(Debug, Clone)]
pub struct Handshakers {
    /// The federation both belong to (its bundle is every node's).
    pub fed: Federation,
    /// An acme agent.
    pub alice: LocalAgent,
    /// A globex agent.
    pub bob: LocalAgent,
    /// Revoked credentials (none to start with).
    pub revoked: RevokedCredentials,
    /// The handshake's settings (defaults to start with).
    pub config: HandshakeConfig,
}

impl Default for Handshakers {
    fn default() -> Self {
        Self::new()
    }
}

impl Handshakers {
    /// Build the fixture.
    pub fn new() -> Self {
        let fed = Federation::new();
        Handshakers {
            alice: fed.agent(&fed.acme, "alice", &["tools/github"]),
            bob: fed.agent(&fed.globex, "bob", &["search"]),
            fed,
            revoked: RevokedCredentials::default(),
            config: HandshakeConfig::default(),
        }
    }

    /// The handshake context of `local`: everyone at initial trust, no
    /// spawned agents accepted.
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
}

/// Every single-bit change of `bytes`: `(byte index, bit mask, changed
/// bytes)`, 8 per byte. A signed object must refuse each one, whether its
/// decoder, its canonical-encoding check or its signature catches it.
pub fn every_bit_flip(bytes: &[u8]) -> impl Iterator<Item = (usize, u8, Vec<u8>)> + '_ {
    (0..bytes.len()).flat_map(move |i| {
        (0..8).map(move |bit| {
            let mask = 1u8 << bit;
            let mut changed = bytes.to_vec();
            changed[i] ^= mask;
            (i, mask, changed)
        })
    })
}
