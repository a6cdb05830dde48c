//! [`NodeBuilder`]: everything a node needs, with defaults for all but the
//! agent, its trust bundle and where its ledger lives.

use mesh_ledger::LogStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use libp2p::Multiaddr;
use mesh_agent::{Agent, AgentConfig, Fact};
use mesh_delegation::SpawnPolicy;
use mesh_iatp::handshake::{HandshakeConfig, LocalAgent};
use mesh_iatp::{RevokedCredentials, TrustBundle};
use mesh_ledger::store::Store;
use mesh_trust::TrustConfig;
use tokio::sync::{broadcast, mpsc};

use super::driver::Driver;
use super::ledger::NodeLedger;
use super::limits::Limits;
use super::net::build_swarm;
use super::{Clock, Node, NodeError, SystemClock, TaskHandler};
use crate::transport_key;

/// Timings and thresholds of the node's periodic work and its transport.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Publish a trust report at most this often when our opinions moved
    /// or a peer joined, and aggregate at most this often when the reports
    /// held moved; a significant change publishes at once.
    pub report_interval: Duration,
    /// Publish and aggregate at least this often even when nothing moved
    /// (never more often than `report_interval`; default 5 min).
    pub report_refresh: Duration,
    /// Sign and gossip a checkpoint this often, if the log grew.
    pub checkpoint_interval: Duration,
    /// A score change of at least this many points triggers a report.
    pub significant_change: u16,
    /// How long a request waits for its answer.
    pub request_timeout: Duration,
    /// A delegated task's deadline when its options set none (10 minutes).
    pub task_deadline: Duration,
    /// gossipsub's heartbeat.
    pub heartbeat: Duration,
    /// How often each connection is pinged; a ping unanswered within
    /// `request_timeout` closes the connection (its peer is gone).
    pub ping_interval: Duration,
    /// Per-peer limits.
    pub limits: Limits,
    /// Most records appended in one transaction (group commit: records
    /// that arrive while a commit runs go into the next one; 1 commits
    /// every record on its own).
    pub commit_batch: usize,
}

impl Default for Settings {
    fn default() -> Self {
        let agent = mesh_agent::Settings::default();
        Settings {
            report_interval: agent.report_interval,
            report_refresh: agent.report_refresh,
            checkpoint_interval: agent.checkpoint_interval,
            significant_change: agent.significant_change,
            request_timeout: Duration::from_secs(10),
            task_deadline: agent.task_deadline,
            heartbeat: Duration::from_millis(700),
            ping_interval: Duration::from_secs(15),
            limits: agent.limits,
            commit_batch: 256,
        }
    }
}

impl Settings {
    /// What the agent takes of them.
    pub fn agent(&self) -> mesh_agent::Settings {
        mesh_agent::Settings {
            report_interval: self.report_interval,
            report_refresh: self.report_refresh,
            checkpoint_interval: self.checkpoint_interval,
            significant_change: self.significant_change,
            limits: self.limits.clone(),
            task_deadline: self.task_deadline,
        }
    }
}

/// Where the ledger lives.
#[derive(Debug, Clone)]
enum LedgerAt {
    Dir(PathBuf),
    Url(String),
}

/// Configures and starts a [`Node`].
pub struct NodeBuilder {
    agent: Option<LocalAgent>,
    bundle: Option<TrustBundle>,
    ledger: Option<LedgerAt>,
    handshake: HandshakeConfig,
    trust: TrustConfig,
    spawn: SpawnPolicy,
    clock: Arc<dyn Clock>,
    seed: Option<[u8; 32]>,
    listen: Vec<Multiaddr>,
    bootstrap: Vec<Multiaddr>,
    mdns: bool,
    kademlia: bool,
    settings: Settings,
    runner: super::Runner,
    revoked: RevokedCredentials,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        NodeBuilder {
            agent: None,
            bundle: None,
            ledger: None,
            handshake: HandshakeConfig::default(),
            trust: TrustConfig::default(),
            spawn: SpawnPolicy::default(),
            clock: Arc::new(SystemClock),
            seed: None,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            mdns: false,
            kademlia: true,
            settings: Settings::default(),
            runner: super::Runner::None,
            revoked: RevokedCredentials::default(),
        }
    }
}

impl NodeBuilder {
    /// This agent: its identity and card (required).
    pub fn agent(mut self, agent: LocalAgent) -> Self {
        self.agent = Some(agent);
        self
    }

    /// The organisations this node accepts, with their policies (required).
    pub fn bundle(mut self, bundle: TrustBundle) -> Self {
        self.bundle = Some(bundle);
        self
    }

    /// Keep the ledger in `dir/ledger.sqlite` (this or [`Self::ledger_url`]
    /// is required). The directory is created if missing.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ledger = Some(LedgerAt::Dir(dir.into()));
        self
    }

    /// Keep the ledger at a `sqlite:` or `postgres://` URL instead.
    pub fn ledger_url(mut self, url: impl Into<String>) -> Self {
        self.ledger = Some(LedgerAt::Url(url.into()));
        self
    }

    /// Org credentials this node refuses (by digest), e.g. from an org's
    /// revocation list.
    pub fn revoked_credentials(mut self, revoked: RevokedCredentials) -> Self {
        self.revoked = revoked;
        self
    }

    /// Handshake tunables (clock skew, trust floor, confirm timeout).
    pub fn handshake(mut self, config: HandshakeConfig) -> Self {
        self.handshake = config;
        self
    }

    /// Trust engine parameters.
    pub fn trust(mut self, config: TrustConfig) -> Self {
        self.trust = config;
        self
    }

    /// Who may spawn how many children.
    pub fn spawn_policy(mut self, policy: SpawnPolicy) -> Self {
        self.spawn = policy;
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Seed the node's randomness (nonces, spawned keys) for reproducible
    /// runs; by default it comes from the operating system.
    pub fn seed(mut self, seed: [u8; 32]) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Listen on `addr` once started.
    pub fn listen(mut self, addr: Multiaddr) -> Self {
        self.listen.push(addr);
        self
    }

    /// Dial `addr` once started (and use it to join the Kademlia DHT).
    pub fn bootstrap(mut self, addr: Multiaddr) -> Self {
        self.bootstrap.push(addr);
        self
    }

    /// Discover peers on the LAN with mDNS (default off).
    pub fn mdns(mut self, on: bool) -> Self {
        self.mdns = on;
        self
    }

    /// Take part in the Kademlia DHT (default on). Off suits a mesh whose
    /// links are all configured (simulations, fixed deployments): no DHT
    /// queries, no discovery dials.
    pub fn kademlia(mut self, on: bool) -> Self {
        self.kademlia = on;
        self
    }

    /// Per-peer limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.settings.limits = limits;
        self
    }

    /// How often trust reports (at most, when something moved: see
    /// [`Settings::report_interval`]) and checkpoints (when the log grew)
    /// are published.
    pub fn intervals(mut self, report: Duration, checkpoint: Duration) -> Self {
        self.settings.report_interval = report;
        self.settings.checkpoint_interval = checkpoint;
        self
    }

    /// gossipsub's heartbeat (default 700 ms).
    pub fn heartbeat(mut self, heartbeat: Duration) -> Self {
        self.settings.heartbeat = heartbeat;
        self
    }

    /// Group commit: at most this many records are appended in one
    /// transaction (default 256; 1 commits every record on its own).
    pub fn commit_batch(mut self, records: usize) -> Self {
        self.settings.commit_batch = records.max(1);
        self
    }

    /// How long a request waits for its answer, and a ping for its pong
    /// (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// How often each connection is pinged (default 15 s). A connection
    /// whose ping goes unanswered for `request_timeout` is closed, so a
    /// peer that vanished without closing (a hung process, a silent
    /// partition) loses its session within one interval and one timeout —
    /// or 10 s, libp2p's bound on opening a stream, if the ping's stream
    /// was being opened.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.settings.ping_interval = interval;
        self
    }

    /// Who runs tasks delegated to this agent. Without one (the default)
    /// the agent refuses delegated tasks (`no_handler`, PROTOCOL.md §10.1)
    /// before anything is recorded: it never reports work nobody did.
    pub fn task_handler(mut self, handler: impl TaskHandler) -> Self {
        self.runner = super::Runner::Handler(Arc::new(handler));
        self
    }

    /// Hand delegated tasks to an agent process outside the node through
    /// `inbox` (served by the local agent API), in place of a handler.
    pub fn task_inbox(mut self, inbox: Arc<super::Inbox>) -> Self {
        self.runner = super::Runner::Inbox(inbox);
        self
    }

    /// A builder set up from the `node.toml` at `path`, as `mesh-node run`
    /// sets up its node: the agent from its key and credential (refused if
    /// the credential is not valid now; a warning if it expires within a
    /// day), the trust bundle, the data directory, listen and bootstrap
    /// addresses, mDNS and the revoked-credentials list. Set a task handler
    /// (and anything else) on the result.
    pub fn from_config(path: &std::path::Path) -> Result<Self, crate::load::LoadError> {
        Self::from_config_file(&crate::config::NodeConfigFile::load(path)?)
    }

    /// [`NodeBuilder::from_config`] from a `node.toml` already read.
    pub fn from_config_file(
        config: &crate::config::NodeConfigFile,
    ) -> Result<Self, crate::load::LoadError> {
        let now = SystemClock.now();
        let mut builder = NodeBuilder::default()
            .agent(crate::load::local_agent(config, now)?)
            .bundle(crate::load::bundle(&config.trust_bundle)?)
            .data_dir(&config.data_dir)
            .mdns(config.mdns);
        if let Some(max) = config.max_sessions {
            builder.settings.limits.max_sessions = max;
        }
        if let Some(file) = &config.revoked_credentials {
            builder = builder.revoked_credentials(crate::revoked::read(file)?);
        }
        for addr in &config.listen {
            builder = builder.listen(addr.clone());
        }
        for addr in &config.bootstrap {
            builder = builder.bootstrap(addr.clone());
        }
        Ok(builder)
    }

    /// Start the node on the current tokio runtime: open the ledger, build
    /// the swarm, listen and dial as configured.
    pub async fn build(self) -> Result<Node, NodeError> {
        let agent = self
            .agent
            .ok_or_else(|| NodeError::Config("agent: no agent identity and card given".into()))?;
        let bundle = self
            .bundle
            .ok_or_else(|| NodeError::Config("bundle: no trust bundle given".into()))?;
        let ledger_at = self.ledger.ok_or_else(|| {
            NodeError::Config("data_dir: no data directory (or ledger URL) given".into())
        })?;
        let did = agent.identity().did().clone();
        let ledger = match ledger_at {
            LedgerAt::Dir(dir) => {
                super::ledger::owner_only(&dir)
                    .map_err(|e| NodeError::Config(format!("data_dir: {}: {e}", dir.display())))?;
                NodeLedger::open(&dir, &did).await?
            }
            LedgerAt::Url(url) => NodeLedger::open_in(Store::open(&url).await?, &did).await?,
        };

        let seed = match self.seed {
            Some(seed) => seed,
            None => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed)
                    .map_err(|e| NodeError::Setup(format!("no system randomness: {e}")))?;
                seed
            }
        };
        let keypair = transport_key::to_libp2p(agent.identity())?;
        let config = AgentConfig {
            local: agent,
            bundle,
            revoked_credentials: self.revoked,
            handshake: self.handshake,
            trust: self.trust,
            spawn: self.spawn,
            settings: self.settings.agent(),
            seed,
            log: ledger.log().range().clone(),
            latest_checkpoint: ledger.log().latest_checkpoint().await?,
            // The witness resumes from what it cosigned before a restart.
            witnessed: ledger.witnessed().await?,
            // So does everything else the agent learned.
            restored: restored_facts(&ledger, &did).await?,
            recent_records: ledger
                .log()
                .leaf_hashes(ledger.log().size().saturating_sub(RECENT_RECORDS))
                .await?,
            runs_tasks: !matches!(self.runner, super::Runner::None),
        };
        let now = mesh_agent::Now {
            wall: self.clock.now(),
            mono: mesh_agent::Millis(0),
        };
        let agent = Agent::new(config, now).map_err(|e| NodeError::Config(e.to_string()))?;
        let local = agent.local().clone();
        let bundle = agent.bundle().clone();

        let swarm = build_swarm(keypair, &self.settings, self.mdns, self.kademlia)?;
        let peer_id = *swarm.local_peer_id();
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        let (ev_tx, _) = broadcast::channel(4096);
        let metrics = Arc::new(super::metrics::NodeMetrics::default());
        let store = ledger.store().clone();
        let driver = Driver::new(
            agent,
            swarm,
            ledger,
            self.clock.clone(),
            self.runner,
            ev_tx.clone(),
            metrics.clone(),
            self.settings.limits.discovery_target,
            self.settings.commit_batch,
        )
        .with_bootstrap(self.bootstrap.clone());
        tokio::spawn(driver.run(cmd_rx));
        let node = Node::from_parts(super::handle::Parts {
            did,
            peer_id,
            local,
            bundle,
            clock: self.clock,
            commands: cmd_tx,
            events: ev_tx,
            store,
            settings: self.settings,
            metrics,
        });
        for addr in self.listen {
            node.listen(addr).await?;
        }
        for addr in self.bootstrap {
            // A bootstrap peer that is down, or refuses us, is not fatal:
            // others may be up (and it is dialled again with back-off).
            match node.connect(addr.clone()).await {
                Ok(_) => {}
                Err(e @ NodeError::HandshakeRefused(_)) => {
                    tracing::warn!(%addr, error = %e, "bootstrap peer reached, handshake refused");
                }
                Err(e) => tracing::warn!(%addr, error = %e, "bootstrap peer unreachable"),
            }
        }
        Ok(node)
    }
}

/// How many of its latest records a restarted agent remembers as co-signed
/// (the replay guard's memory).
const RECENT_RECORDS: u64 = 65_536;

/// The facts the agent stored before, decoded; a fact that does not decode
/// means a damaged store, and the node does not start on it.
async fn restored_facts(ledger: &NodeLedger, did: &mesh_iatp::Did) -> Result<Vec<Fact>, NodeError> {
    let stored = ledger.store().facts(did.as_str()).await?;
    stored
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            Fact::from_bytes(bytes).map_err(|e| {
                NodeError::Ledger(mesh_ledger::store::StoreError::Corrupt(format!(
                    "agent fact {i}: {e}"
                )))
            })
        })
        .collect()
}
