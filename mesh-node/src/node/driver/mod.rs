//! The driver: the one task that owns the [`Agent`], the libp2p swarm and
//! the node's log. It turns swarm events into the agent's inputs and
//! carries out the agent's effects — sends, responses, proofs from the log,
//! gossip verdicts, bans, tasks on the blocking pool — in order. Appends
//! are group-committed in a pipeline ([`commit`]): a commit runs while the
//! driver goes on, records arriving meanwhile go into the next one, and
//! anything that followed a record (a response, an event) leaves only once
//! that record is on disk.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, Swarm};
use mesh_agent::{Agent, Command as AgentCommand, Effect, Input, Now, OpId, Outcome};
use mesh_iatp::Did;
use mesh_iatp::error_chain::one_line;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

mod bootstrap;
mod commit;
mod facts;
mod inbound;
mod outbound;
mod trim;

use super::ledger::NodeLedger;
use super::net::{MeshBehaviour, MeshBehaviourEvent};
use super::{Clock, NodeError, NodeEvent, Runner, did_of, peer_of};

/// What the handle asks of the driver.
pub enum Command {
    Listen(Multiaddr, oneshot::Sender<Result<Multiaddr, NodeError>>),
    Connect(Multiaddr, oneshot::Sender<Result<Did, NodeError>>),
    Agent(
        AgentCommand,
        oneshot::Sender<Result<Outcome, mesh_agent::AgentError>>,
    ),
    /// An agent command that delegates a task, told as soon as the task
    /// is accepted (its grant and deadline), then answered as `Agent`.
    Delegate(
        AgentCommand,
        oneshot::Sender<(mesh_delegation::LinkHash, mesh_iatp::Timestamp)>,
        oneshot::Sender<Result<Outcome, mesh_agent::AgentError>>,
    ),
    /// Read the agent (a snapshot taken on the driver).
    Query(Box<dyn FnOnce(&Agent) + Send>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    ConnectedPeers(oneshot::Sender<Vec<libp2p::PeerId>>),
    GossipScore(libp2p::PeerId, oneshot::Sender<Option<f64>>),
    Stop(Option<oneshot::Sender<()>>),
}

/// Something that arrived, for the agent.
enum Arrival {
    Command(Option<Command>),
    Swarm(Box<SwarmEvent<MeshBehaviourEvent>>),
    /// Work done off the driver's task (a delegated task, a trust
    /// aggregation), come back as the agent's input.
    Worker(Input),
    Tick,
    Committed(Result<commit::Committed, mesh_ledger::store::StoreError>),
    FactsSaved(facts::Saved),
}

/// The driver's state.
pub struct Driver {
    pub(super) agent: Agent,
    pub(super) swarm: Swarm<MeshBehaviour>,
    /// The log, with the records and effects waiting for a commit.
    commit: commit::GroupCommit,
    /// The agent's facts, saved off the driver.
    facts: facts::FactSaver,
    pub(super) clock: Arc<dyn Clock>,
    /// Runs delegated tasks; without one the agent refuses them.
    pub(super) runner: Runner,
    pub(super) events: broadcast::Sender<NodeEvent>,
    pub(super) metrics: Arc<super::metrics::NodeMetrics>,
    pub(super) discovery_target: u32,
    pub(super) trust_floor: mesh_iatp::Score,
    started: std::time::Instant,
    effects: Vec<Effect>,
    ops: HashMap<OpId, oneshot::Sender<Result<Outcome, mesh_agent::AgentError>>>,
    next_op: u64,
    /// Delegations whose embedder waits for the acceptance too.
    accepting: HashMap<OpId, oneshot::Sender<(mesh_delegation::LinkHash, mesh_iatp::Timestamp)>>,
    /// Where work done off the driver's task sends its result.
    workers_tx: mpsc::Sender<Input>,
    workers_rx: mpsc::Receiver<Input>,
    listening:
        HashMap<libp2p::core::transport::ListenerId, oneshot::Sender<Result<Multiaddr, NodeError>>>,
    dialing: HashMap<ConnectionId, oneshot::Sender<Result<Did, NodeError>>>,
    connecting: HashMap<Did, Vec<oneshot::Sender<Result<Did, NodeError>>>>,
    closing: Vec<(Instant, libp2p::PeerId)>,
    last_dht_walk: Option<Instant>,
    /// Connected peers' ages and which the embedder chose, for trimming.
    pub(super) links: trim::Links,
    /// The bootstrap peers, kept connected.
    bootstrap: bootstrap::BootstrapPeers,
    /// The addresses connected peers announced (identify), entered into
    /// the DHT once they hold a session; at most [`ANNOUNCED_ADDRS`] each,
    /// forgotten when they disconnect.
    announced: HashMap<libp2p::PeerId, Vec<Multiaddr>>,
    stopped: bool,
    /// Who asked the driver to stop, told once it has.
    stop_reply: Option<oneshot::Sender<()>>,
}

/// How often the agent ticks and peer scores are refreshed.
const TICK: Duration = Duration::from_millis(250);
/// Most ready inputs taken through the agent before its effects are
/// carried out (so a flood of one kind cannot starve the others).
const READY_PER_LOOP: usize = 256;
/// Addresses of one peer kept for the DHT.
const ANNOUNCED_ADDRS: usize = 8;
/// How often the node walks the DHT for new peers.
const DHT_WALK_INTERVAL: Duration = Duration::from_secs(30);

impl Driver {
    /// A driver for `agent` over `swarm`, appending to `ledger`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        agent: Agent,
        swarm: Swarm<MeshBehaviour>,
        ledger: NodeLedger,
        clock: Arc<dyn Clock>,
        runner: Runner,
        events: broadcast::Sender<NodeEvent>,
        metrics: Arc<super::metrics::NodeMetrics>,
        discovery_target: u32,
        commit_batch: usize,
    ) -> Driver {
        let (workers_tx, workers_rx) = mpsc::channel(1024);
        if let Runner::Inbox(inbox) = &runner {
            inbox.attach(workers_tx.clone());
        }
        let trust_floor = agent.handshake_config().trust_floor;
        let facts = facts::FactSaver::new(ledger.store().clone(), agent.did().to_string());
        Driver {
            agent,
            swarm,
            facts,
            commit: commit::GroupCommit::new(ledger, commit_batch),
            clock,
            runner,
            events,
            metrics,
            discovery_target,
            trust_floor,
            started: std::time::Instant::now(),
            effects: Vec::new(),
            ops: HashMap::new(),
            next_op: 0,
            accepting: HashMap::new(),
            workers_tx,
            workers_rx,
            listening: HashMap::new(),
            dialing: HashMap::new(),
            connecting: HashMap::new(),
            closing: Vec::new(),
            last_dht_walk: None,
            links: trim::Links::default(),
            bootstrap: bootstrap::BootstrapPeers::default(),
            announced: HashMap::new(),
            stopped: false,
            stop_reply: None,
        }
    }

    /// The time for the agent: the injected wall clock, and a monotonic
    /// clock for its timers.
    fn now(&self) -> Now {
        let mono = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Now {
            wall: self.clock.now(),
            mono: mesh_agent::Millis(mono),
        }
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        let effects = self.agent.handle(input, now);
        self.effects.extend(effects);
    }

    /// Run until stopped.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.stopped {
            let arrival = tokio::select! {
                cmd = commands.recv() => Arrival::Command(cmd),
                event = self.swarm.select_next_some() => Arrival::Swarm(Box::new(event)),
                Some(input) = self.workers_rx.recv() => Arrival::Worker(input),
                done = self.commit.finished() => Arrival::Committed(done),
                saved = self.facts.finished() => Arrival::FactsSaved(saved),
                _ = tick.tick() => Arrival::Tick,
            };
            self.arrive(arrival).await;
            // Take whatever else is ready before carrying out the effects.
            for _ in 1..READY_PER_LOOP {
                if self.stopped {
                    break;
                }
                let ready = if let Ok(cmd) = commands.try_recv() {
                    Arrival::Command(Some(cmd))
                } else if let Some(Some(event)) = self.swarm.next().now_or_never() {
                    Arrival::Swarm(Box::new(event))
                } else if let Ok(input) = self.workers_rx.try_recv() {
                    Arrival::Worker(input)
                } else {
                    break;
                };
                self.arrive(ready).await;
            }
            if let Err(e) = self.dispatch().await {
                // The agent believes records are in the log that are not:
                // stop rather than answer anyone on their strength.
                tracing::error!(error = %e, "ledger append failed; the node stops");
                self.stopped = true;
            }
        }
        self.finish().await;
        if let Some(done) = self.stop_reply.take() {
            let _ = done.send(());
        }
    }

    /// Commit everything still pending, carry out what waited on it, save
    /// the facts and close the log.
    async fn finish(&mut self) {
        let mut result = self.dispatch().await;
        while result.is_ok() && self.commit.is_busy() {
            let done = self.commit.finished().await;
            result = self.committed(done).await;
        }
        if let Err(e) = result {
            tracing::error!(error = %e, "the last appends were not committed");
        }
        if let Err(e) = self.facts.flush().await {
            tracing::warn!(error = %e, "the agent's last facts were not saved");
        }
        if let Ok(ledger) = self.commit.ledger() {
            ledger.close().await;
        }
    }

    async fn arrive(&mut self, arrival: Arrival) {
        match arrival {
            Arrival::Command(None) => self.stopped = true,
            Arrival::Command(Some(Command::Stop(done))) => {
                self.stop_reply = done;
                self.stopped = true;
            }
            Arrival::Command(Some(cmd)) => self.command(cmd),
            Arrival::Swarm(event) => self.swarm_event(*event),
            Arrival::Worker(input) => self.input(input),
            Arrival::Tick => {
                self.tick();
                self.facts.tick();
            }
            Arrival::FactsSaved(saved) => {
                if let Err(e) = self.facts.settle(saved) {
                    tracing::warn!(error = %e, "the agent's facts were not saved; retried next tick");
                }
            }
            Arrival::Committed(done) => {
                if let Err(e) = self.committed(done).await {
                    tracing::error!(error = %e, "ledger append failed; the node stops");
                    self.stopped = true;
                }
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Listen(addr, reply) => match self.swarm.listen_on(addr) {
                Ok(id) => {
                    self.listening.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(NodeError::Address(e.to_string())));
                }
            },
            Command::Connect(addr, reply) => {
                let opts = DialOpts::unknown_peer_id().address(addr).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dialing.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::Dial(one_line(&e))));
                    }
                }
            }
            Command::Agent(command, reply) => {
                self.next_op += 1;
                let op = OpId(self.next_op);
                self.ops.insert(op, reply);
                self.input(Input::Command { op, command });
            }
            Command::Delegate(command, accepted, reply) => {
                self.next_op += 1;
                let op = OpId(self.next_op);
                self.ops.insert(op, reply);
                self.accepting.insert(op, accepted);
                self.input(Input::Command { op, command });
            }
            Command::Query(query) => query(&self.agent),
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::GossipScore(peer, reply) => {
                let _ = reply.send(self.swarm.behaviour().gossip.peer_score(&peer));
            }
            Command::Stop(_) => {}
        }
    }

    /// Keep `addrs` connected (see [`bootstrap`]).
    pub fn with_bootstrap(mut self, addrs: Vec<Multiaddr>) -> Self {
        self.bootstrap = bootstrap::BootstrapPeers::new(addrs, Instant::now());
        self
    }

    /// Note which peer a dialled address turned out to be.
    pub(super) fn note_dialled(&mut self, address: &Multiaddr, peer: libp2p::PeerId) {
        self.bootstrap.dialled(address, peer);
    }

    /// Whether the node holds so few sessions that it looks for more (DHT
    /// walks, prompt bootstrap redials): fewer than half its discovery
    /// target. Half, not all: trimming leaves a node at its low watermark,
    /// and one lost session must not start a walk that reconnects it to a
    /// dozen peers at once.
    fn needs_peers(&self) -> bool {
        self.agent.sessions().count() < (self.discovery_target as usize / 2).max(2)
    }

    fn redial_bootstrap(&mut self, now: Instant) {
        let swarm = &self.swarm;
        let agent = &self.agent;
        let enough = !self.needs_peers();
        let due = self.bootstrap.due(
            now,
            enough,
            |p| swarm.is_connected(p),
            |p| did_of(p).is_some_and(|d| agent.session(&d).is_some()),
        );
        for addr in due {
            // Failures come back as connection errors; the next try backs off.
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::debug!(%addr, error = %e, "redialling a bootstrap peer");
            }
        }
    }

    /// Close the least valuable sessions above `Limits::max_sessions`
    /// (see [`trim`]).
    fn trim_sessions(&mut self, now: Instant) {
        let limits = &self.agent.settings().limits;
        let high = limits.max_sessions as usize;
        // Every tick: count before weighing anyone.
        if self.agent.sessions().count() <= high {
            return;
        }
        let low = trim::low_watermark(limits.max_sessions, self.discovery_target);
        let wall = self.clock.now();
        let floor = self.trust_floor;
        let held: Vec<trim::Held> = self
            .agent
            .sessions()
            .filter_map(|s| {
                let peer = peer_of(&s.remote)?;
                Some(trim::Held {
                    peer,
                    untrusted: self.agent.trust_of(&s.remote, wall) < floor,
                    since: self.links.since(&peer, now),
                    protected: self.bootstrap.is_bootstrap(&peer)
                        || self.links.is_chosen(&peer)
                        || self.agent.busy_with(&s.remote),
                })
            })
            .collect();
        let victims = trim::victims(self.swarm.local_peer_id(), held, high, low, now);
        for peer in victims {
            tracing::debug!(%peer, high, low, "closing a session above max_sessions");
            self.metrics.session_trimmed();
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn tick(&mut self) {
        self.input(Input::Tick);
        // A lease that ran out: the agent process crashed or hung.
        if let Runner::Inbox(inbox) = &self.runner {
            for id in inbox.lapsed(tokio::time::Instant::now()) {
                let outcome = super::protocol::TaskOutcome::failed(
                    "the agent process's lease on the task ran out (it crashed or hung)",
                );
                self.input(Input::TaskDone { id, outcome });
            }
        }
        let now = Instant::now();
        self.redial_bootstrap(now);
        let due: Vec<libp2p::PeerId> = self
            .closing
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|(_, p)| *p)
            .collect();
        self.closing.retain(|(at, _)| *at > now);
        for peer in due {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        // Trust scores feed gossipsub's application-specific score.
        let wall = self.clock.now();
        let gossip = &mut self.swarm.behaviour_mut().gossip;
        for s in self.agent.sessions() {
            let trust = self.agent.trust_of(&s.remote, wall);
            gossip.set_trust(&s.remote, trust, self.trust_floor);
        }
        self.trim_sessions(now);
        // Walk the DHT after the first session and every 30 s while the
        // node has fewer than half its discovery target in sessions: peers
        // it turns up are dialled and authenticated. A walk connects to
        // every peer it asks (a dozen or more sessions at once), so walking
        // whenever a session or two is lost would add sessions faster than
        // trimming removes them.
        let walk_due = self
            .last_dht_walk
            .is_none_or(|at| now.duration_since(at) >= DHT_WALK_INTERVAL);
        let needs_peers = self.needs_peers();
        let has_session = self.agent.sessions().next().is_some();
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            if !needs_peers {
                kad.stop_walk();
            } else if walk_due && has_session {
                self.last_dht_walk = Some(now);
                kad.walk();
            }
        }
    }
}
