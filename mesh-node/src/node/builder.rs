//! [`NodeBuilder`]: everything a node needs, with defaults for all but the
//! agent, its trust bundle and where its ledger lives.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::Multiaddr;
use mesh_delegation::{Gate, GateConfig, SpawnPolicy};
use mesh_iatp::handshake::{HandshakeConfig, LocalAgent};
use mesh_iatp::{RevokedCredentials, TrustBundle};
use mesh_ledger::store::Store;
use mesh_ledger::witness::{MemoryWitnessStore, Witness};
use mesh_trust::{TrustConfig, TrustEngine};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::{broadcast, mpsc};

use super::ledger::NodeLedger;
use super::limits::Limits;
use super::protocol::{Task, TaskOutcome};
use super::state::State;
use super::swarm::{Settings, Shared, SwarmTask, build_swarm};
use super::{Clock, Node, NodeError, SystemClock, TaskHandler};
use crate::transport_key;

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
    handler: Arc<dyn TaskHandler>,
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
            handler: Arc::new(|_: &mesh_iatp::Did, _: &Task| TaskOutcome {
                success: true,
                output: serde_bytes::ByteBuf::new(),
            }),
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

    /// How often trust reports and checkpoints are published.
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

    /// How long a request waits for its answer (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// Who runs tasks delegated to this agent (default: succeed with no
    /// output).
    pub fn task_handler(mut self, handler: impl TaskHandler) -> Self {
        self.handler = Arc::new(handler);
        self
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
                std::fs::create_dir_all(&dir).map_err(|e| {
                    NodeError::Config(format!("data_dir: cannot create {}: {e}", dir.display()))
                })?;
                NodeLedger::open(&dir, &did).await?
            }
            LedgerAt::Url(url) => NodeLedger::open_in(Store::open(&url).await?, &did).await?,
        };

        let mut rng = match self.seed {
            Some(seed) => ChaCha20Rng::from_seed(seed),
            None => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed)
                    .map_err(|e| NodeError::Setup(format!("no system randomness: {e}")))?;
                ChaCha20Rng::from_seed(seed)
            }
        };
        let mut handshake_seed = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut rng, &mut handshake_seed);

        let now = self.clock.now();
        let mut trust = TrustEngine::new(did.clone(), self.trust)
            .map_err(|e| NodeError::Config(format!("trust: {e}")))?;
        let own_org = agent
            .card()
            .credential
            .verify_signature()
            .ok()
            .and_then(|c| bundle.policy_for(&c.org).cloned());
        let mut gate_config = GateConfig::new([did.clone()]);
        gate_config.spawn = self.spawn;
        gate_config.clock_skew_secs = self.handshake.max_skew_secs;
        let gate = Gate::new(gate_config);
        // The witness resumes from what it cosigned before a restart.
        let witness = Witness::new(
            did.as_str(),
            agent.identity().clone(),
            MemoryWitnessStore::from_held(ledger.witnessed().await?),
        );
        if let Some(policy) = &own_org {
            trust.register_from_policy(did.clone(), policy);
        }
        let mut state = State::new(trust, gate, witness, rng, now.0);
        if let Some(policy) = own_org {
            state.orgs.insert(did.clone(), policy);
        }

        let keypair = transport_key::to_libp2p(agent.identity())?;
        let swarm = build_swarm(keypair, &self.settings, self.mdns, self.kademlia)?;
        let peer_id = *swarm.local_peer_id();
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        let (ev_tx, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            local: agent,
            did,
            peer_id,
            bundle,
            revoked_credentials: self.revoked,
            handshake: self.handshake,
            clock: self.clock,
            state: Mutex::new(state),
            ledger: tokio::sync::Mutex::new(ledger),
            events: ev_tx,
            commands: cmd_tx,
            handler: self.handler,
            settings: self.settings,
            metrics: Default::default(),
        });
        let task = SwarmTask::new(
            swarm,
            shared.clone(),
            ChaCha20Rng::from_seed(handshake_seed),
        );
        tokio::spawn(task.run(cmd_rx));
        let node = Node::from_shared(shared);
        for addr in self.listen {
            node.listen(addr).await?;
        }
        for addr in self.bootstrap {
            // A bootstrap peer that is down is not fatal: others may be up.
            if let Err(e) = node.connect(addr.clone()).await {
                tracing::warn!(%addr, error = %e, "bootstrap peer unreachable");
            }
        }
        Ok(node)
    }
}
