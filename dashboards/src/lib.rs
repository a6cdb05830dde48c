//! A node's web dashboard: pages for the mesh, trust, the delegation graph,
//! the ledger and refusals; the `/api/v1` JSON API behind them (docs/API.md,
//! docs/openapi.json); live updates by server-sent events; `/metrics` in
//! Prometheus text format; `/healthz`.
//!
//! The dashboard is built on a read-only [`MeshView`] of a node (plus
//! [`MeshControl`] for the one write, revocation, which needs the bearer
//! token). `mesh-node` implements both; this crate never sees libp2p.
//! It binds loopback by default, refuses other `Host` names there (DNS
//! rebinding) and cross-origin requests, and sends no CORS headers.
//!
//! The front end (`assets/`) is embedded in the binary: no CDN, works
//! offline.
//!
//! ```
//! use std::sync::Arc;
//! use mesh_dashboards::{serve, DashboardConfig, view::*};
//! use mesh_iatp::Did;
//! use mesh_trust::Explanation;
//! # use mesh_iatp::Identity;
//!
//! /// A node with nobody around (a real one is `mesh_node::dashboard::NodeView`).
//! struct Lonely { me: Identity, activity: tokio::sync::broadcast::Sender<Activity> }
//!
//! impl MeshView for Lonely {
//!     fn identity(&self) -> NodeIdentity {
//!         NodeIdentity { did: self.me.did().to_string(), peer_id: String::new(),
//!             name: "lonely".into(), org: "acme".into(), listen: vec![] }
//!     }
//!     async fn peers(&self) -> Vec<Peer> { vec![] }
//!     async fn explain(&self, agent: &Did) -> Result<Explanation, ViewError> {
//!         let engine = mesh_trust::TrustEngine::new(self.me.did().clone(), Default::default()).unwrap();
//!         Ok(engine.explain(agent, mesh_iatp::Timestamp(0)))
//!     }
//!     async fn links(&self) -> Vec<Link> { vec![] }
//!     async fn ledger(&self) -> Result<LedgerStatus, ViewError> {
//!         Ok(LedgerStatus { origin: self.me.did().to_string(), size: 0,
//!             root: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
//!             checkpoint: None, witnessing: vec![] })
//!     }
//!     async fn records(&self, _: u64, _: u64) -> Result<Vec<RecordEntry>, ViewError> { Ok(vec![]) }
//!     async fn prove(&self, i: u64) -> Result<InclusionProof, ViewError> {
//!         Err(ViewError::NotFound(format!("record {i}")))
//!     }
//!     async fn verify(&self) -> Result<Verification, ViewError> {
//!         Err(ViewError::Unavailable("nothing to verify".into()))
//!     }
//!     async fn metrics(&self) -> String { "# EOF\n".into() }
//!     fn activity(&self) -> tokio::sync::broadcast::Receiver<Activity> { self.activity.subscribe() }
//! }
//!
//! impl MeshControl for Lonely {
//!     async fn revoke(&self, link: [u8; 32], _: &str) -> Result<RevokeOutcome, ViewError> {
//!         Err(ViewError::NotFound(hex::encode(link)))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let view = Lonely { me: Identity::from_secret_bytes(&[7; 32]),
//!                     activity: tokio::sync::broadcast::channel(8).0 };
//! let config = DashboardConfig { addr: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
//! let dashboard = serve(Arc::new(view), config).await.unwrap();
//! let url = format!("{}api/v1/node", dashboard.url());
//! let body = tokio::task::spawn_blocking(move || {
//!     ureq::get(&url).call().unwrap().body_mut().read_to_string().unwrap()
//! }).await.unwrap();
//! assert!(body.contains("\"name\":\"lonely\""));
//! dashboard.shutdown().await;
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(unnameable_types)]

pub mod api;
pub mod listener;
pub mod memory;
pub mod server;
pub mod view;

pub use listener::ConnLimits;
pub use server::{
    BearerError, Dashboard, DashboardConfig, DashboardError, check_bearer, secure, serve,
};
pub use view::{MeshControl, MeshView};
