//! A deterministic mesh harness: many [`Agent`]s in one thread, virtual
//! time, and a seeded network that loses, delays, reorders and duplicates
//! messages, partitions and heals, while agents crash and restart from
//! their stores. The same seed and the same calls give the same run, event
//! for event — which is how protocol behaviour is tested, and what
//! `mesh-sim`'s protocol mode runs on.
//!
//! Links the test asks for ([`Mesh::connect`]) are kept: one that closes
//! (a lost handshake, a restart, a healed partition) is dialled again on the
//! next tick, as a node redials its bootstrap peers.

mod drive;
mod members;
mod network;
mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use mesh_iatp::credential::{AgentCard, OrgCredential};
use mesh_iatp::envelope::PROTOCOL_VERSION;
use mesh_iatp::handshake::LocalAgent;
use mesh_iatp::{CapabilityPattern, Did, Identity, OrgPolicy, Score, TrustBundle};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

pub use network::NetConfig;
pub use store::MemoryStore;

use crate::agent::{Agent, AgentConfig};
use crate::api::Outcome;
use crate::error::AgentError;
use crate::io::{Command, Effect, Event, GossipId, InboundId, Input, OpId, RequestId};
use crate::time::{Millis, Now};
use crate::wire::{Task, TaskOutcome};
use network::{Message, Network};

/// 2026-01-01T00:00:00Z, where every mesh's virtual clock starts.
pub const EPOCH: Millis = Millis(1_767_225_600_000);

/// An organisation in the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrgId(pub usize);

/// How an org is admitted by the mesh's agents.
#[derive(Debug, Clone)]
pub struct OrgOptions {
    /// Its agents start here.
    pub initial_trust: u16,
    /// And never go above this.
    pub trust_ceiling: u16,
    /// What its agents may offer and be granted.
    pub capabilities: Vec<String>,
    /// Whether other agents' bundles list it (an unlisted org's agents are
    /// refused at the handshake).
    pub listed: bool,
}

impl Default for OrgOptions {
    fn default() -> Self {
        OrgOptions {
            initial_trust: 500,
            trust_ceiling: 900,
            capabilities: vec!["tools/*".into(), "search".into()],
            listed: true,
        }
    }
}

struct Org {
    identity: Identity,
    policy: OrgPolicy,
    listed: bool,
}

type Handler = Box<dyn FnMut(&Did, &Task) -> TaskOutcome>;

/// One simulated node: the agent (absent while crashed), its store, and
/// the bookkeeping a driver keeps.
struct Node {
    agent: Option<Agent>,
    did: Did,
    config: Box<dyn Fn(u64) -> AgentConfig>,
    starts: u64,
    store: MemoryStore,
    handler: Handler,
    task_delay: Duration,
    inbound: BTreeMap<InboundId, (usize, RequestId)>,
    next_inbound: u64,
    outbound: BTreeSet<RequestId>,
    gossip: BTreeMap<GossipId, (usize, Message)>,
    next_gossip: u64,
    /// Gossip message ids seen lately.
    seen: network::SeenCache,
    done: BTreeMap<OpId, Result<Outcome, AgentError>>,
}

/// The harness.
pub struct Mesh {
    seed: u64,
    now: Millis,
    next_tick: Millis,
    net: Network,
    orgs: Vec<Org>,
    nodes: Vec<Node>,
    by_did: HashMap<Did, usize>,
    wanted: BTreeSet<(usize, usize)>,
    next_op: u64,
    record_events: bool,
    events: Vec<(Millis, usize, Event)>,
    faults: Vec<String>,
}

fn derive(seed: u64, label: &str) -> [u8; 32] {
    Sha256::digest(format!("mesh-agent sim {seed}: {label}")).into()
}

impl Mesh {
    /// An empty mesh whose every random choice follows `seed`.
    pub fn new(seed: u64, net: NetConfig) -> Mesh {
        // Every agent here verifies the same gossiped signatures and
        // reports: verify each once and hold each report once
        // (mesh_iatp::memoize_verifications, mesh_trust::memoize_reports;
        // every answer is the one an agent alone would get).
        mesh_iatp::memoize_verifications(1 << 20);
        mesh_trust::memoize_reports(1 << 16);
        let rng = ChaCha20Rng::from_seed(derive(seed, "network"));
        Mesh {
            seed,
            now: EPOCH,
            next_tick: EPOCH.plus(net.tick),
            net: Network::new(net, rng),
            orgs: Vec::new(),
            nodes: Vec::new(),
            by_did: HashMap::new(),
            wanted: BTreeSet::new(),
            next_op: 0,
            record_events: true,
            events: Vec::new(),
            faults: Vec::new(),
        }
    }

    /// Add an org with default options (listed, initial 500, ceiling 900,
    /// `tools/*` and `search`). Add orgs before the agents that must list
    /// them.
    pub fn add_org(&mut self, name: &str) -> OrgId {
        self.add_org_with(name, OrgOptions::default())
    }

    /// Add an org.
    pub fn add_org_with(&mut self, name: &str, options: OrgOptions) -> OrgId {
        let identity = Identity::from_secret_bytes(&derive(self.seed, &format!("org {name}")));
        let policy = OrgPolicy {
            name: name.into(),
            root: identity.did().clone(),
            initial_trust: Score::saturating(options.initial_trust),
            trust_ceiling: Score::saturating(options.trust_ceiling),
            capabilities: options
                .capabilities
                .iter()
                .filter_map(|c| CapabilityPattern::parse(c).ok())
                .collect(),
        };
        self.orgs.push(Org {
            identity,
            policy,
            listed: options.listed,
        });
        OrgId(self.orgs.len() - 1)
    }

    /// The bundle of every listed org.
    pub fn bundle(&self) -> TrustBundle {
        let listed = self
            .orgs
            .iter()
            .filter(|o| o.listed)
            .map(|o| o.policy.clone())
            .collect();
        TrustBundle::new(listed).unwrap_or_default()
    }

    /// Add an agent of `org` named `name` with default settings; its index.
    pub fn add_agent(&mut self, org: OrgId, name: &str) -> usize {
        self.add_agent_with(org, name, |_| {})
    }

    /// Add an agent, adjusting its configuration with `tune` (applied at
    /// every start, restarts included).
    pub fn add_agent_with(
        &mut self,
        org: OrgId,
        name: &str,
        tune: impl Fn(&mut AgentConfig) + 'static,
    ) -> usize {
        let identity = Identity::from_secret_bytes(&derive(self.seed, &format!("agent {name}")));
        self.add_agent_as(org, name, identity, tune)
    }

    /// Add an agent with a given identity (e.g. a child another agent
    /// spawned), its org vouching for it.
    pub fn add_agent_as(
        &mut self,
        org: OrgId,
        name: &str,
        identity: Identity,
        tune: impl Fn(&mut AgentConfig) + 'static,
    ) -> usize {
        let local = self.local_agent(org, name, identity);
        self.add_local(local, name, tune)
    }

    /// Add an agent as `local` says (its key and card).
    fn add_local(
        &mut self,
        local: LocalAgent,
        name: &str,
        tune: impl Fn(&mut AgentConfig) + 'static,
    ) -> usize {
        let did = local.identity().did().clone();
        let bundle = self.bundle();
        let seed = self.seed;
        let name = name.to_string();
        let config = move |start: u64| {
            let mut config = AgentConfig::new(
                local.clone(),
                bundle.clone(),
                derive(seed, &format!("agent {name} start {start}")),
            );
            // Every harness agent has a task handler (succeeding unless
            // a test sets another).
            config.runs_tasks = true;
            tune(&mut config);
            config
        };
        let index = self.nodes.len();
        self.by_did.insert(did.clone(), index);
        let store = MemoryStore::new(&did);
        self.nodes.push(Node {
            agent: None,
            did,
            config: Box::new(config),
            starts: 0,
            store,
            handler: Box::new(|_: &Did, _: &Task| TaskOutcome::succeeded(Vec::new())),
            task_delay: Duration::ZERO,
            inbound: BTreeMap::new(),
            next_inbound: 0,
            outbound: BTreeSet::new(),
            gossip: BTreeMap::new(),
            next_gossip: 0,
            seen: network::SeenCache::default(),
            done: BTreeMap::new(),
        });
        self.start(index);
        index
    }

    fn local_agent(&self, org: OrgId, name: &str, identity: Identity) -> LocalAgent {
        let org = &self.orgs[org.0];
        let now = self.now.timestamp();
        let credential = OrgCredential {
            org: org.identity.did().clone(),
            agent: identity.did().clone(),
            roles: vec!["worker".into()],
            not_before: now.minus_secs(86_400),
            expires: now.plus_secs(365 * 86_400),
        };
        let card = |credential| AgentCard {
            did: identity.did().clone(),
            name: name.into(),
            credential,
            capabilities: org.policy.capabilities.clone(),
            versions: vec![PROTOCOL_VERSION],
            lineage: vec![],
        };
        match credential.sign(&org.identity) {
            Ok(signed) => match LocalAgent::new(identity.clone(), card(signed)) {
                Ok(local) => local,
                Err(e) => unreachable_fixture(&e),
            },
            Err(e) => unreachable_fixture(&e),
        }
    }

    /// Agent `n`'s DID.
    pub fn did(&self, n: usize) -> &Did {
        &self.nodes[n].did
    }

    /// The index of the agent `did`.
    pub fn index_of(&self, did: &Did) -> Option<usize> {
        self.by_did.get(did).copied()
    }

    /// How many agents.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the mesh has no agents.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Agent `n` (running). A crashed agent has no state to show: this
    /// panics, as a test asking for it is wrong.
    pub fn agent(&self, n: usize) -> &Agent {
        match &self.nodes[n].agent {
            Some(a) => a,
            None => panic!("agent {n} is down"),
        }
    }

    /// Whether agent `n` is running.
    pub fn is_up(&self, n: usize) -> bool {
        self.nodes[n].agent.is_some()
    }

    /// Agent `n`'s store.
    pub fn store(&self, n: usize) -> &MemoryStore {
        &self.nodes[n].store
    }

    /// The virtual time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The time as agents see it.
    pub fn agent_now(&self) -> Now {
        Now::virtual_at(self.now)
    }

    /// Who runs agent `n`'s delegated tasks, and how long each takes.
    pub fn set_handler(
        &mut self,
        n: usize,
        delay: Duration,
        handler: impl FnMut(&Did, &Task) -> TaskOutcome + 'static,
    ) {
        self.nodes[n].handler = Box::new(handler);
        self.nodes[n].task_delay = delay;
    }

    /// Change how the network behaves from now on (e.g. heal a lossy one).
    pub fn set_net(&mut self, net: NetConfig) {
        self.net.config = net;
    }

    /// Keep (or stop keeping) every event (large runs turn it off).
    pub fn record_events(&mut self, on: bool) {
        self.record_events = on;
    }

    /// Events so far: (time, agent, event).
    pub fn events(&self) -> &[(Millis, usize, Event)] {
        &self.events
    }

    /// Harness faults: effects a correct agent never emits (e.g. an append
    /// out of order). Tests assert there are none.
    pub fn faults(&self) -> &[String] {
        &self.faults
    }

    /// Link `a` (dialling) and `b`, and keep them linked.
    pub fn connect(&mut self, a: usize, b: usize) {
        self.wanted.insert((a, b));
        self.dial(a, b);
    }

    /// Link `a` and `b` with both dialling at once (each side's first
    /// connection is its own dial, so both start IATP), and keep them
    /// linked.
    pub fn connect_simultaneously(&mut self, a: usize, b: usize) {
        self.wanted.insert((a, b));
        if a == b || !self.is_up(a) || !self.is_up(b) || !self.net.link(a, b) {
            return;
        }
        let (da, db) = (self.nodes[a].did.clone(), self.nodes[b].did.clone());
        self.feed(
            a,
            Input::Connected {
                peer: db,
                dialer: true,
                ip: None,
            },
        );
        self.feed(
            b,
            Input::Connected {
                peer: da,
                dialer: true,
                ip: None,
            },
        );
    }

    /// Stop keeping `a` and `b` linked, and close their link.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        self.wanted.remove(&(a, b));
        self.wanted.remove(&(b, a));
        self.close(a, b);
    }

    fn dial(&mut self, a: usize, b: usize) {
        if a == b
            || !self.is_up(a)
            || !self.is_up(b)
            || self.net.separated(a, b)
            || !self.net.link(a, b)
        {
            return;
        }
        let (da, db) = (self.nodes[a].did.clone(), self.nodes[b].did.clone());
        self.feed(
            b,
            Input::Connected {
                peer: da,
                dialer: false,
                ip: None,
            },
        );
        self.feed(
            a,
            Input::Connected {
                peer: db,
                dialer: true,
                ip: None,
            },
        );
    }

    fn close(&mut self, a: usize, b: usize) {
        if self.net.unlink(a, b) {
            let (da, db) = (self.nodes[a].did.clone(), self.nodes[b].did.clone());
            self.feed(a, Input::Disconnected { peer: db });
            self.feed(b, Input::Disconnected { peer: da });
        }
    }

    /// Split the mesh: agents with `side[i]` different cannot reach each
    /// other until [`Mesh::heal`]; links across are closed.
    pub fn partition(&mut self, side: Vec<u8>) {
        for (a, b) in self.net.partition(side) {
            let (da, db) = (self.nodes[a].did.clone(), self.nodes[b].did.clone());
            self.feed(a, Input::Disconnected { peer: db });
            self.feed(b, Input::Disconnected { peer: da });
        }
    }

    /// End the partition; cut links are dialled again on the next tick.
    pub fn heal(&mut self) {
        self.net.heal();
    }

    /// Crash agent `n`: its state is gone, its store stays, its links close.
    pub fn crash(&mut self, n: usize) {
        for m in self.net.neighbours(n).to_vec() {
            self.close(n, m);
        }
        let node = &mut self.nodes[n];
        node.agent = None;
        node.inbound.clear();
        node.outbound.clear();
        node.gossip.clear();
    }

    /// Start (or restart) agent `n` from its store.
    pub fn start(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        if node.agent.is_some() {
            return;
        }
        let mut config = (node.config)(node.starts);
        node.starts += 1;
        config.log = node.store.range().clone();
        config.latest_checkpoint = node.store.checkpoint().map(<[u8]>::to_vec);
        config.witnessed = node.store.witnessed();
        config.restored = node.store.facts();
        config.recent_records = node.store.recent_leaves(65_536);
        match Agent::new(config, Now::virtual_at(self.now)) {
            Ok(agent) => node.agent = Some(agent),
            Err(e) => self.faults.push(format!("agent {n} cannot start: {e}")),
        }
    }

    /// Give agent `n` a command; its id (see [`Mesh::result`]).
    pub fn command(&mut self, n: usize, command: Command) -> OpId {
        self.next_op += 1;
        let op = OpId(self.next_op);
        self.feed(n, Input::Command { op, command });
        op
    }

    /// The result of `op` on agent `n`, once done.
    pub fn result(&mut self, n: usize, op: OpId) -> Option<Result<Outcome, AgentError>> {
        self.nodes[n].done.remove(&op)
    }

    /// Whether `op` on agent `n` is done (its result not yet taken).
    pub fn is_done(&self, n: usize, op: OpId) -> bool {
        self.nodes[n].done.contains_key(&op)
    }

    /// Run until `op` on agent `n` is done (at most `limit` of virtual time).
    pub fn run_command(
        &mut self,
        n: usize,
        command: Command,
        limit: Duration,
    ) -> Option<Result<Outcome, AgentError>> {
        let op = self.command(n, command);
        let end = self.now.plus(limit);
        while !self.nodes[n].done.contains_key(&op) && self.step_until(end) {}
        self.result(n, op)
    }

    /// Advance virtual time by `d`, doing everything due.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now.plus(d);
        while self.step_until(end) {}
        self.now = self.now.max(end);
    }

    /// Run until `done(self)` holds (checked after every step), at most
    /// `limit`; whether it held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Mesh) -> bool) -> bool {
        let end = self.now.plus(limit);
        loop {
            if done(self) {
                return true;
            }
            if !self.step_until(end) {
                return done(self);
            }
        }
    }

    /// Do the next due thing if it is due by `end`; false when nothing is.
    fn step_until(&mut self, end: Millis) -> bool {
        let at = match self.net.next_at() {
            Some(t) => t.min(self.next_tick),
            None => self.next_tick,
        };
        if at > end {
            return false;
        }
        self.now = self.now.max(at);
        while let Some(due) = self.net.pop_due(self.now) {
            self.due(due);
        }
        if self.now >= self.next_tick {
            self.next_tick = self.next_tick.plus(self.net.config.tick);
            for n in 0..self.nodes.len() {
                self.feed(n, Input::Tick);
            }
            let wanted: Vec<(usize, usize)> = self.wanted.iter().copied().collect();
            for (a, b) in wanted {
                if !self.net.linked(a, b) {
                    self.dial(a, b);
                }
            }
        }
        true
    }

    /// Hand agent `n` an input directly — as an attacking peer would,
    /// bypassing the network — and return its effects without carrying
    /// them out.
    pub fn poke(&mut self, n: usize, input: Input) -> Vec<Effect> {
        let now = Now::virtual_at(self.now);
        match self.nodes[n].agent.as_mut() {
            Some(agent) => agent.handle(input, now),
            None => Vec::new(),
        }
    }

    /// How many things are in flight or scheduled.
    pub fn in_flight(&self) -> usize {
        self.net.pending()
    }

    /// A fresh seed from the mesh's seed (for tests that need more
    /// randomness of their own).
    pub fn fork_rng(&self, label: &str) -> ChaCha20Rng {
        let mut rng = ChaCha20Rng::from_seed(derive(self.seed, label));
        let _ = rng.next_u64();
        rng
    }
}

fn unreachable_fixture(e: &dyn std::fmt::Display) -> ! {
    // A fixture built from the mesh's own keys always signs and validates.
    panic!("sim fixture: {e}")
}
