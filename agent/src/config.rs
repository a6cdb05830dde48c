//! What an agent starts from ([`AgentConfig`]) and the timings of its
//! periodic work ([`Settings`]).

use std::time::Duration;

use mesh_delegation::SpawnPolicy;
use mesh_iatp::handshake::{HandshakeConfig, LocalAgent};
use mesh_iatp::{RevokedCredentials, TrustBundle};
use mesh_ledger::merkle::{CompactRange, Hash};
use mesh_trust::TrustConfig;

use crate::durable::Fact;
use crate::limits::Limits;

/// Timings and thresholds of the agent's periodic work.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Publish a trust report at most this often when our opinions moved
    /// (evidence) or a new peer joined, and aggregate the reports held at
    /// most this often when they moved; a significant change publishes at
    /// once.
    pub report_interval: Duration,
    /// Publish and aggregate at least this often even when nothing moved,
    /// so a peer that missed a report hears the next (default 5 min).
    pub report_refresh: Duration,
    /// Sign and gossip a checkpoint this often, if the log grew.
    pub checkpoint_interval: Duration,
    /// A score change of at least this many points triggers a report.
    pub significant_change: u16,
    /// Per-peer limits.
    pub limits: Limits,
    /// A delegated task's deadline when its [`DelegateOptions`](crate::DelegateOptions)
    /// set none (never past the task's grant). Network requests have their
    /// own, short, timeout: a task's run is not one.
    pub task_deadline: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            report_interval: Duration::from_secs(10),
            report_refresh: Duration::from_secs(300),
            checkpoint_interval: Duration::from_secs(5),
            significant_change: 50,
            limits: Limits::default(),
            task_deadline: Duration::from_secs(600),
        }
    }
}

/// Everything an agent starts from.
pub struct AgentConfig {
    /// Who we are: identity and card.
    pub local: LocalAgent,
    /// The orgs we accept.
    pub bundle: TrustBundle,
    /// Org credentials we refuse.
    pub revoked_credentials: RevokedCredentials,
    /// Handshake tunables.
    pub handshake: HandshakeConfig,
    /// Trust engine parameters.
    pub trust: TrustConfig,
    /// Spawning rules.
    pub spawn: SpawnPolicy,
    /// Periodic work and limits.
    pub settings: Settings,
    /// Seeds every nonce and spawned key.
    pub seed: [u8; 32],
    /// Our log as stored (its right edge).
    pub log: CompactRange,
    /// Our latest stored checkpoint note.
    pub latest_checkpoint: Option<Vec<u8>>,
    /// What our witness cosigned before (origin, size, root).
    pub witnessed: Vec<(String, u64, Hash)>,
    /// What we learned before a restart, in the order stored.
    pub restored: Vec<Fact>,
    /// Leaf hashes of our latest records (the replay guard's memory).
    pub recent_records: Vec<Hash>,
    /// Whether the driver runs delegated tasks ([`Effect::RunTask`](crate::Effect::RunTask)); if
    /// not, they are refused `no_handler` before anything is recorded.
    /// Off by default: an agent never accepts work nobody will do.
    pub runs_tasks: bool,
}

impl AgentConfig {
    /// A fresh agent's configuration with default tunables and an empty
    /// log.
    pub fn new(local: LocalAgent, bundle: TrustBundle, seed: [u8; 32]) -> Self {
        AgentConfig {
            local,
            bundle,
            revoked_credentials: RevokedCredentials::default(),
            handshake: HandshakeConfig::default(),
            trust: TrustConfig::default(),
            spawn: SpawnPolicy::default(),
            settings: Settings::default(),
            seed,
            log: CompactRange::new(),
            latest_checkpoint: None,
            witnessed: Vec::new(),
            restored: Vec::new(),
            recent_records: Vec::new(),
            runs_tasks: false,
        }
    }
}
