//! # mesh-delegation: capability chains, spawning, revocation and the gate
//!
//! An agent hands a capability to another with a signed [`Grant`]; grants
//! chain (UCAN-like), and each link may only *attenuate* — narrower
//! capabilities, a window within its parent's, less remaining depth. An
//! agent spawns a child with a [`SpawnCertificate`]. Any issuer above a link
//! may revoke it, and revocation cascades to everything below, spawned
//! descendants included. The [`Gate`] turns all of that, plus trust scores
//! and the trust bundle's org policies, into allow or deny, with the rule
//! and the link that decided. Pure: time is passed in, no I/O.
//!
//! ```
//! use mesh_delegation::{Capability, Decision, Gate, GateConfig, Grant, Peers, Request, RevocationSet};
//! use mesh_iatp::testing::{Federation, FIXTURE_NOW};
//! use mesh_iatp::{CapabilityPattern, Did, OrgPolicy, Score};
//!
//! // The node's view of agents: everyone at 600, everyone in acme.
//! struct View(OrgPolicy);
//! impl Peers for View {
//!     fn trust(&self, _: &Did) -> Score { Score::new(600).unwrap() }
//!     fn org(&self, _: &Did) -> Option<&OrgPolicy> { Some(&self.0) }
//!     fn lineage(&self, _: &Did) -> &[[u8; 32]] { &[] }
//! }
//!
//! let fed = Federation::new();
//! let owner = fed.agent(&fed.acme, "owner", &[]);
//! let worker = fed.agent(&fed.acme, "worker", &[]);
//! let grant = Grant {
//!     issuer: owner.identity().did().clone(),
//!     audience: worker.identity().did().clone(),
//!     capabilities: vec![Capability::parse("tools/github/*:read").unwrap()],
//!     not_before: FIXTURE_NOW,
//!     expires: FIXTURE_NOW.plus_secs(3600),
//!     depth: 0,
//!     min_trust: Score::new(500).unwrap(),
//!     nonce: [1; 16],
//!     parent: None,
//! }
//! .sign(owner.identity())
//! .unwrap();
//!
//! let mut gate = Gate::new(GateConfig::new([owner.identity().did().clone()]));
//! let view = View(fed.bundle.orgs()[0].clone());
//! let repo = CapabilityPattern::parse("tools/github/repo").unwrap();
//! let ask = |action| Request::Use {
//!     requester: worker.identity().did(), resource: &repo, action, chain: std::slice::from_ref(&grant),
//! };
//! let none = RevocationSet::default();
//! assert_eq!(gate.decide(ask("read"), &view, &none, FIXTURE_NOW), Decision::Allow);
//! let Decision::Deny(why) = gate.decide(ask("write"), &view, &none, FIXTURE_NOW) else { panic!() };
//! assert_eq!(why.rule(), "not_granted");
//! ```
#![forbid(unsafe_code)]
#![warn(unnameable_types)]

pub mod capability;
pub mod chain;
mod gate;
pub mod grant;
pub mod revocation;
pub mod spawn;

pub use capability::{Actions, Capability, CapabilityError};
pub use chain::{ChainError, LinkRef, VerifiedChain, verify_chain};
pub use gate::{
    Decision, Denial, Gate, GateConfig, Peers, Request, SpawnPolicy, policy_capabilities,
};
pub use grant::{Grant, LinkHash, SignedGrant};
pub use revocation::{Revocation, RevocationError, RevocationSet, TargetKind, verify_revocation};
pub use spawn::{SignedSpawnCertificate, SpawnCertificate, child_initial_score, verify_lineage};
