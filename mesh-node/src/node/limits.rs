//! Per-peer limits: the agent enforces its rate limits, strikes and bans
//! ([`mesh_agent::limits`]); the connection limits apply to the swarm.

pub use mesh_agent::limits::{Limits, RateLimiter};
