//! # mesh-sim: multi-agent simulations of the mesh
//!
//! A scenario (TOML, [`scenario`]) names the agents, their organisations and
//! policies, the workload, the trust and gate settings, and the adversaries.
//! It is validated before anything runs: unknown keys and impossible values
//! are refused with the field named.
//!
//! ```
//! use mesh_sim::scenario::Scenario;
//!
//! let text = r#"
//! name = "doc"
//! seed = 7
//! agents = 100
//! rounds = 10
//! [[org]]
//! name = "acme"
//! share = 1.0
//! initial_trust = 500
//! trust_ceiling = 900
//! [workload]
//! capabilities = ["search:query"]
//! [adversary]
//! strategy = "camouflaged"
//! fraction = 0.2
//! good_fraction = 0.8
//! "#;
//! let s = Scenario::from_toml_str(text).unwrap();
//! assert_eq!(s.malicious_count(), 20);
//!
//! // Sweeps override one parameter by its dotted path.
//! let s = Scenario::from_toml_str_with(text, &[("adversary.fraction", "0.4")]).unwrap();
//! assert_eq!(s.malicious_count(), 40);
//! let e = Scenario::from_toml_str_with(text, &[("adversary.fraction", "1.5")]).unwrap_err();
//! assert!(e.to_string().contains("adversary.fraction"));
//! ```
#![forbid(unsafe_code)]
#![warn(unnameable_types)]

pub mod class;
pub mod compare;
pub mod harness;
pub mod model;
pub mod output;
pub mod protocol;
pub mod results;
pub mod roles;
pub mod scenario;
