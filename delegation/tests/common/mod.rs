//! Shared fixtures for the delegation tests: a federation, agents, a
//! configurable view of peers, and builders for grants and certificates.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use mesh_delegation::{
    Capability, Gate, GateConfig, Grant, LinkHash, Peers, SignedGrant, SignedSpawnCertificate,
    SpawnCertificate,
};
use mesh_iatp::handshake::LocalAgent;
use mesh_iatp::testing::{FIXTURE_NOW, Federation};
use mesh_iatp::{Did, Identity, OrgPolicy, Score, Timestamp};

pub const NOW: Timestamp = FIXTURE_NOW;
pub const HOUR: u64 = 3600;
pub const DAY: u64 = 86_400;

/// What the gate is told about agents.
#[derive(Default)]
pub struct TestPeers {
    pub trust: HashMap<Did, Score>,
    pub orgs: HashMap<Did, OrgPolicy>,
    pub lineages: HashMap<Did, Vec<LinkHash>>,
    pub default_trust: u16,
}

impl Peers for TestPeers {
    fn trust(&self, agent: &Did) -> Score {
        self.trust
            .get(agent)
            .copied()
            .unwrap_or(Score::saturating(self.default_trust))
    }
    fn org(&self, agent: &Did) -> Option<&OrgPolicy> {
        self.orgs.get(agent)
    }
    fn lineage(&self, agent: &Did) -> &[LinkHash] {
        self.lineages.get(agent).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// acme: owner (the resource owner, root of grants), alice, bob, carol;
/// globex: gina (globex may only be given `search`).
pub struct World {
    pub fed: Federation,
    pub owner: LocalAgent,
    pub alice: LocalAgent,
    pub bob: LocalAgent,
    pub carol: LocalAgent,
    pub gina: LocalAgent,
    pub peers: TestPeers,
}

impl World {
    pub fn new() -> Self {
        let fed = Federation::new();
        let owner = fed.agent(&fed.acme, "owner", &[]);
        let alice = fed.agent(&fed.acme, "alice", &[]);
        let bob = fed.agent(&fed.acme, "bob", &[]);
        let carol = fed.agent(&fed.acme, "carol", &[]);
        let gina = fed.agent(&fed.globex, "gina", &[]);
        let acme = fed.bundle.orgs()[0].clone();
        let globex = fed.bundle.orgs()[1].clone();
        let mut peers = TestPeers {
            default_trust: 750,
            ..TestPeers::default()
        };
        for a in [&owner, &alice, &bob, &carol] {
            peers.orgs.insert(a.identity().did().clone(), acme.clone());
        }
        peers.orgs.insert(fed.acme.did().clone(), acme);
        peers
            .orgs
            .insert(gina.identity().did().clone(), globex.clone());
        peers.orgs.insert(fed.globex.did().clone(), globex);
        World {
            fed,
            owner,
            alice,
            bob,
            carol,
            gina,
            peers,
        }
    }

    pub fn gate(&self) -> Gate {
        Gate::new(GateConfig::new([self.owner.identity().did().clone()]))
    }

    pub fn set_trust(&mut self, who: &LocalAgent, score: u16) {
        self.peers
            .trust
            .insert(who.identity().did().clone(), Score::saturating(score));
    }
}

pub fn did(a: &LocalAgent) -> Did {
    a.identity().did().clone()
}

pub fn caps(list: &[&str]) -> Vec<Capability> {
    list.iter().map(|c| Capability::parse(c).unwrap()).collect()
}

/// A grant with sensible defaults, adjusted by the caller.
pub struct GrantSpec {
    pub caps: Vec<Capability>,
    pub not_before: Timestamp,
    pub expires: Timestamp,
    pub depth: u8,
    pub min_trust: u16,
    pub nonce: u8,
}

impl Default for GrantSpec {
    fn default() -> Self {
        GrantSpec {
            caps: caps(&["tools/*:read,write"]),
            not_before: NOW.minus_secs(HOUR),
            expires: NOW.plus_secs(DAY),
            depth: 3,
            min_trust: 0,
            nonce: 0,
        }
    }
}

pub fn grant(
    issuer: &Identity,
    audience: &Did,
    parent: Option<&SignedGrant>,
    spec: GrantSpec,
) -> SignedGrant {
    Grant {
        issuer: issuer.did().clone(),
        audience: audience.clone(),
        capabilities: spec.caps,
        not_before: spec.not_before,
        expires: spec.expires,
        depth: spec.depth,
        min_trust: Score::saturating(spec.min_trust),
        nonce: [spec.nonce; 16],
        parent: parent.map(SignedGrant::hash),
    }
    .sign(issuer)
    .unwrap()
}

/// owner → alice → bob → carol, each link one depth less.
pub fn chain3(w: &World) -> Vec<SignedGrant> {
    let g0 = grant(
        w.owner.identity(),
        &did(&w.alice),
        None,
        GrantSpec::default(),
    );
    let g1 = grant(
        w.alice.identity(),
        &did(&w.bob),
        Some(&g0),
        GrantSpec {
            depth: 2,
            ..GrantSpec::default()
        },
    );
    let g2 = grant(
        w.bob.identity(),
        &did(&w.carol),
        Some(&g1),
        GrantSpec {
            depth: 1,
            caps: caps(&["tools/github/*:read"]),
            ..GrantSpec::default()
        },
    );
    vec![g0, g1, g2]
}

/// A certificate with defaults: capabilities `tools/github/*:*`, ceiling
/// 600, valid for a day.
pub struct CertSpec {
    pub caps: Vec<Capability>,
    pub ceiling: u16,
    pub not_before: Timestamp,
    pub expires: Timestamp,
    pub depth: u8,
}

impl Default for CertSpec {
    fn default() -> Self {
        CertSpec {
            caps: caps(&["tools/github/*:*"]),
            ceiling: 600,
            not_before: NOW.minus_secs(HOUR),
            expires: NOW.plus_secs(DAY),
            depth: 1,
        }
    }
}

pub fn certificate(
    parent: &Identity,
    child: &Did,
    parent_certificate: Option<&SignedSpawnCertificate>,
    spec: CertSpec,
) -> SignedSpawnCertificate {
    SpawnCertificate {
        parent: parent.did().clone(),
        child: child.clone(),
        capabilities: spec.caps,
        trust_ceiling: Score::saturating(spec.ceiling),
        not_before: spec.not_before,
        expires: spec.expires,
        spawn_depth: spec.depth,
        parent_certificate: parent_certificate.map(SignedSpawnCertificate::hash),
        nonce: [7; 16],
    }
    .sign(parent)
    .unwrap()
}
