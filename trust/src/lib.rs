//! # mesh-trust: how much each agent trusts each other agent
//!
//! Scores are integers 0–1000 ([`Score`], shared with mesh-iatp), grouped in
//! [`Tier`]s. A node builds *direct* trust from evidence it observed
//! ([`Evidence`]: co-signed task outcomes, delegations honoured or abused,
//! handshakes, protocol violations, proven equivocation), decaying with a
//! half-life. Nodes gossip signed [`TrustReport`]s of their direct opinions;
//! each node weighs the reports by the reporters' EigenTrust credibility,
//! seeded from its own pre-trusted set, so liars, colluding cliques and
//! sybils without a trusted path carry no weight. The final score blends
//! direct and global by how much direct evidence exists, under the
//! subject's org ceiling. Pure: time is passed in, nothing does I/O, and the
//! same inputs always give the same scores.
//!
//! ```
//! use mesh_trust::{Evidence, EvidenceKind, Tier, TrustConfig, TrustEngine};
//! use mesh_iatp::testing::{identity, FIXTURE_NOW};
//! use mesh_iatp::Score;
//!
//! let me = identity("agent me");
//! let peer = identity("agent peer").did().clone();
//! let mut engine = TrustEngine::new(me.did().clone(), TrustConfig::default()).unwrap();
//! engine.register_agent(peer.clone(), Score::new(500).unwrap(), Score::new(850).unwrap());
//! assert_eq!(engine.score(&peer, FIXTURE_NOW).get(), 500);
//!
//! for i in 0..50 {
//!     engine.record(Evidence::new(peer.clone(), EvidenceKind::TaskSuccess, FIXTURE_NOW.plus_secs(i)));
//!     engine.record(Evidence::new(peer.clone(), EvidenceKind::HandshakeCompleted, FIXTURE_NOW.plus_secs(i)));
//!     engine.record(Evidence::new(peer.clone(), EvidenceKind::DelegationHonoured, FIXTURE_NOW.plus_secs(i)));
//! }
//! let later = FIXTURE_NOW.plus_secs(60);
//! engine.refresh(later);
//! assert_eq!(engine.tier(&peer, later), Tier::Trusted);
//! assert_eq!(engine.score(&peer, later).get(), 850); // held at its org's ceiling
//! assert!(engine.explain(&peer, later).capped_by_ceiling);
//!
//! engine.record(Evidence::new(peer.clone(), EvidenceKind::LedgerEquivocation, later));
//! assert_eq!(engine.score(&peer, later).get(), 0);
//! let why = engine.explain(&peer, later);
//! assert!(why.severe.is_some());
//! ```
#![forbid(unsafe_code)]
#![warn(unnameable_types)]

mod aggregation;
mod claims;
pub mod config;
pub mod direct;
pub mod eigentrust;
mod engine;
pub mod evidence;
mod policy;
pub mod report;
pub mod scoring;
pub mod select;
mod tier;

pub use aggregation::{Aggregated, Aggregation, AggregationStats, GlobalScore};
pub use config::{ConfigError, TrustConfig};
pub use engine::{DimensionBreakdown, Explanation, ReportOutcome, TrustEngine, TrustView};
pub use evidence::{Dimension, Evidence, EvidenceKind, Proof};
pub use mesh_iatp::Score;
pub use policy::AgentPolicy;
pub use report::{ReportEntry, ReportError, TrustReport, memoize_reports};
pub use tier::{Tier, Tiers};
