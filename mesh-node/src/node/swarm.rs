//! The network task: owns the libp2p swarm, runs handshakes, routes action
//! requests and responses, validates gossip, enforces per-peer limits, and
//! does the periodic work (trust reports, checkpoints, peer scores).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::{Transport, upgrade};
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::kad::{self, store::MemoryStore};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, StreamProtocol, Swarm, connection_limits, identify, mdns, noise, ping, tcp, yamux,
};
use mesh_delegation::verify_revocation;
use mesh_iatp::handshake::{
    AwaitingConfirm, AwaitingResponse, Context, HandshakeConfig, Initiator, LocalAgent, NonceCache,
    Refusal, Refused, Responder, Session,
};
use mesh_iatp::{Did, RevokedCredentials, Timestamp, TrustBundle};
use mesh_ledger::checkpoint::{Checkpoint, log_verifier, open_checkpoint};
use mesh_ledger::equivocation::{self, EquivocationProof};
use mesh_ledger::note::Note;
use mesh_trust::{Evidence, EvidenceKind, Proof, ReportError, ReportOutcome};
use rand_chacha::ChaCha20Rng;
use serde_bytes::ByteBuf;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::gossip::{self, Topic};
use super::ledger::NodeLedger;
use super::limits::{Limits, RateLimiter};
use super::protocol::{
    ACTION_PROTOCOL, ActionRequest, ActionResponse, IATP_PROTOCOL, IatpRequest, IatpResponse,
    MAX_ACTION_FRAME, MAX_IATP_FRAME,
};
use super::state::State;
use super::{Clock, NodeError, NodeEvent, TaskHandler, did_of, serve};

/// How long a refused peer may keep its connection to read the refusal.
const REFUSED_GRACE: Duration = Duration::from_secs(1);
/// How often the node walks the DHT for new peers.
const DHT_WALK_INTERVAL: Duration = Duration::from_secs(30);
/// The Kademlia protocol id of the mesh.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/mesh/kad/1");
/// The identify protocol version string.
pub const IDENTIFY_VERSION: &str = "/mesh/1";

/// Timings and thresholds of the node's periodic work.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Publish a trust report this often (and on significant change).
    pub report_interval: Duration,
    /// Sign and gossip a checkpoint this often, if the log grew.
    pub checkpoint_interval: Duration,
    /// A score change of at least this many points triggers a report.
    pub significant_change: u16,
    /// How long a request waits for its answer.
    pub request_timeout: Duration,
    /// gossipsub's heartbeat.
    pub heartbeat: Duration,
    /// Per-peer limits.
    pub limits: Limits,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            report_interval: Duration::from_secs(10),
            checkpoint_interval: Duration::from_secs(5),
            significant_change: 50,
            request_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_millis(700),
            limits: Limits::default(),
        }
    }
}

/// What the handle and the serving tasks ask of the network task.
pub enum Command {
    Listen(Multiaddr, oneshot::Sender<Result<Multiaddr, NodeError>>),
    Connect(Multiaddr, oneshot::Sender<Result<Did, NodeError>>),
    Request(
        libp2p::PeerId,
        ActionRequest,
        oneshot::Sender<Result<ActionResponse, NodeError>>,
    ),
    Respond(ResponseChannel<ActionResponse>, ActionResponse),
    Publish(Topic, Vec<u8>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    ConnectedPeers(oneshot::Sender<Vec<libp2p::PeerId>>),
    GossipScore(libp2p::PeerId, oneshot::Sender<Option<f64>>),
    PublishReport,
    Stop(Option<oneshot::Sender<()>>),
}

/// Everything the network task, the handle and the serving tasks share.
pub struct Shared {
    pub local: LocalAgent,
    pub did: Did,
    /// The same key as a libp2p PeerId.
    pub peer_id: libp2p::PeerId,
    pub bundle: TrustBundle,
    pub revoked_credentials: RevokedCredentials,
    pub handshake: HandshakeConfig,
    pub clock: Arc<dyn Clock>,
    pub state: Mutex<State>,
    pub ledger: tokio::sync::Mutex<NodeLedger>,
    pub events: broadcast::Sender<NodeEvent>,
    pub commands: mpsc::Sender<Command>,
    pub handler: Arc<dyn TaskHandler>,
    pub settings: Settings,
    pub metrics: super::metrics::NodeMetrics,
}

impl Shared {
    /// The state (a panic elsewhere while holding it does not lose it).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Report an event (nobody listening is fine; a slow listener sees
    /// `Lagged`, never a silent gap).
    pub fn emit(&self, event: NodeEvent) {
        self.metrics.observe(&event);
        let _ = self.events.send(event);
    }

    /// Append a co-signed record to this node's log (timed for metrics).
    pub async fn append_record(
        &self,
        record: &mesh_ledger::record::CoSignedRecord,
    ) -> Result<u64, mesh_ledger::store::StoreError> {
        let mut ledger = self.ledger.lock().await;
        let started = std::time::Instant::now();
        let index = ledger.append(record).await?;
        self.metrics.append_took(started.elapsed());
        Ok(index)
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Record evidence; a significant score change schedules a report.
    pub fn record(&self, evidence: Evidence) {
        let now = self.now();
        let mut st = self.state();
        let subject = evidence.subject.clone();
        let before = st.trust.score(&subject, now).get();
        st.trust.record(evidence);
        let after = st.trust.score(&subject, now).get();
        if before.abs_diff(after) >= self.settings.significant_change {
            st.report_due = true;
        }
    }

    /// Ask the network task to publish.
    pub async fn publish(&self, topic: Topic, bytes: Vec<u8>) {
        let _ = self.commands.send(Command::Publish(topic, bytes)).await;
    }

    /// Send an action request to `peer` and wait for its answer.
    pub async fn request(
        &self,
        peer: libp2p::PeerId,
        request: ActionRequest,
    ) -> Result<ActionResponse, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request(peer, request, tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }
}

#[derive(NetworkBehaviour)]
pub struct MeshBehaviour {
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    iatp: request_response::cbor::Behaviour<IatpRequest, IatpResponse>,
    action: request_response::cbor::Behaviour<ActionRequest, ActionResponse>,
    gossip: gossipsub::Behaviour,
    kad: Toggle<kad::Behaviour<MemoryStore>>,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

/// Build the swarm: TCP, QUIC and memory transports, each authenticated
/// with Noise (QUIC with its own TLS) and multiplexed with Yamux.
pub fn build_swarm(
    keypair: libp2p::identity::Keypair,
    settings: &Settings,
    mdns_on: bool,
    kad_on: bool,
) -> Result<Swarm<MeshBehaviour>, NodeError> {
    let setup = |e: &dyn std::fmt::Display| NodeError::Setup(e.to_string());
    let limits = &settings.limits;
    let heartbeat = settings.heartbeat;
    let request_timeout = settings.request_timeout;
    let conn_limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(limits.max_connections))
        .with_max_established_per_peer(Some(limits.max_connections_per_peer))
        .with_max_pending_incoming(Some(limits.max_pending_incoming));
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(&e))?
        .with_quic()
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(MemoryTransport::default()
                .upgrade(upgrade::Version::V1)
                .authenticate(noise)
                .multiplex(yamux::Config::default()))
        })
        .map_err(|e| setup(&e))?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            let gossip = gossip::behaviour(key.clone(), heartbeat)?;
            let mdns = if mdns_on {
                Some(mdns::tokio::Behaviour::new(
                    mdns::Config::default(),
                    peer_id,
                )?)
            } else {
                None
            };
            let rr_config =
                request_response::Config::default().with_request_timeout(request_timeout);
            Ok(MeshBehaviour {
                limits: connection_limits::Behaviour::new(conn_limits),
                identify: identify::Behaviour::new(identify::Config::new(
                    IDENTIFY_VERSION.into(),
                    key.public(),
                )),
                ping: ping::Behaviour::new(ping::Config::new()),
                // IATP messages are at most 16 KiB and actions 72 KiB: refuse
                // anything larger before buffering it (the codec's defaults
                // are 1 and 10 MiB).
                iatp: request_response::Behaviour::with_codec(
                    request_response::cbor::codec::Codec::default()
                        .set_request_size_maximum(MAX_IATP_FRAME)
                        .set_response_size_maximum(MAX_IATP_FRAME),
                    [(IATP_PROTOCOL, ProtocolSupport::Full)],
                    rr_config.clone(),
                ),
                action: request_response::Behaviour::with_codec(
                    request_response::cbor::codec::Codec::default()
                        .set_request_size_maximum(MAX_ACTION_FRAME)
                        .set_response_size_maximum(MAX_ACTION_FRAME),
                    [(ACTION_PROTOCOL, ProtocolSupport::Full)],
                    rr_config,
                ),
                gossip,
                kad: Toggle::from(kad_on.then(|| {
                    kad::Behaviour::with_config(
                        peer_id,
                        MemoryStore::new(peer_id),
                        kad::Config::new(KAD_PROTOCOL),
                    )
                })),
                mdns: Toggle::from(mdns),
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let mut swarm = swarm;
    // Answer DHT queries even without a confirmed external address (a
    // mesh on one host or a LAN never gets one).
    if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
        kad.set_mode(Some(kad::Mode::Server));
    }
    Ok(swarm)
}

/// The network task.
pub struct SwarmTask {
    swarm: Swarm<MeshBehaviour>,
    shared: Arc<Shared>,
    nonces: NonceCache,
    rng: ChaCha20Rng,
    initiating: HashMap<libp2p::PeerId, AwaitingResponse>,
    responding: HashMap<libp2p::PeerId, AwaitingConfirm>,
    /// Refused peers whose refusal is being sent.
    refused: HashSet<libp2p::PeerId>,
    /// Refused peers to disconnect at the given instant.
    closing: HashMap<libp2p::PeerId, Instant>,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<ActionResponse, NodeError>>>,
    listening:
        HashMap<libp2p::core::transport::ListenerId, oneshot::Sender<Result<Multiaddr, NodeError>>>,
    dialing: HashMap<ConnectionId, oneshot::Sender<Result<Did, NodeError>>>,
    connecting: HashMap<libp2p::PeerId, Vec<oneshot::Sender<Result<Did, NodeError>>>>,
    requests: RateLimiter<libp2p::PeerId>,
    gossip_rate: RateLimiter<libp2p::PeerId>,
    strikes: HashMap<libp2p::PeerId, u32>,
    banned: HashMap<libp2p::PeerId, Instant>,
    last_report: Instant,
    last_checkpoint: Instant,
    last_dht_walk: Option<Instant>,
}

fn refused_error(what: &str, detail: impl std::fmt::Display) -> NodeError {
    NodeError::HandshakeRefused(format!("{what}: {detail}"))
}

impl SwarmTask {
    pub fn new(swarm: Swarm<MeshBehaviour>, shared: Arc<Shared>, rng: ChaCha20Rng) -> SwarmTask {
        let limits = &shared.settings.limits;
        let requests = RateLimiter::new(limits.requests_per_sec, limits.request_burst);
        let gossip_rate = RateLimiter::new(limits.gossip_per_sec, limits.gossip_burst);
        let nonces = NonceCache::new(65_536, shared.handshake.max_skew_secs);
        let now = Instant::now();
        SwarmTask {
            swarm,
            shared,
            nonces,
            rng,
            initiating: HashMap::new(),
            responding: HashMap::new(),
            refused: HashSet::new(),
            closing: HashMap::new(),
            pending: HashMap::new(),
            listening: HashMap::new(),
            dialing: HashMap::new(),
            connecting: HashMap::new(),
            requests,
            gossip_rate,
            strikes: HashMap::new(),
            banned: HashMap::new(),
            last_report: now,
            last_checkpoint: now,
            last_dht_walk: None,
        }
    }

    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Stop(done)) => {
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                        return;
                    }
                    Some(cmd) => self.command(cmd),
                    None => return,
                },
                event = self.swarm.select_next_some() => self.swarm_event(event),
                _ = tick.tick() => self.periodic(),
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
                        let _ = reply.send(Err(NodeError::Dial(error_chain(&e))));
                    }
                }
            }
            Command::Request(peer, request, reply) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .action
                    .send_request(&peer, request);
                self.pending.insert(id, reply);
            }
            Command::Respond(channel, response) => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .action
                    .send_response(channel, response);
            }
            Command::Publish(topic, bytes) => {
                // No subscribed peer yet is not an error: the next report or
                // checkpoint supersedes this one.
                if let Err(e) = self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .publish(topic.ident(), bytes)
                {
                    tracing::debug!(?topic, error = %e, "gossip publish");
                }
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::GossipScore(peer, reply) => {
                let _ = reply.send(self.swarm.behaviour().gossip.peer_score(&peer));
            }
            Command::PublishReport => {
                self.last_report = Instant::now();
                self.publish_report();
            }
            Command::Stop(_) => {}
        }
    }

    fn swarm_event(&mut self, event: SwarmEvent<MeshBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                if let Some(reply) = self.listening.remove(&listener_id) {
                    let _ = reply.send(Ok(address.clone()));
                }
                self.shared.emit(NodeEvent::Listening(address));
            }
            SwarmEvent::ListenerError { listener_id, error }
            | SwarmEvent::ListenerClosed {
                listener_id,
                reason: Err(error),
                ..
            } => {
                if let Some(reply) = self.listening.remove(&listener_id) {
                    let _ = reply.send(Err(NodeError::Address(error.to_string())));
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => self.connected(peer_id, endpoint.is_dialer(), connection_id),
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                if let Some(reply) = self.dialing.remove(&connection_id) {
                    // A dial refused because we are already connected (the
                    // per-peer limit; the DHT may have dialled first) joins
                    // that connection's session instead of failing.
                    let session = peer_id.and_then(|p| {
                        self.shared
                            .state()
                            .sessions
                            .get(&p)
                            .map(|s| s.remote.clone())
                    });
                    match (session, peer_id) {
                        (Some(did), _) => {
                            let _ = reply.send(Ok(did));
                        }
                        (None, Some(p)) if self.swarm.is_connected(&p) => {
                            self.connecting.entry(p).or_default().push(reply);
                        }
                        _ => {
                            let _ = reply.send(Err(NodeError::Dial(error_chain(&error))));
                        }
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.disconnected(peer_id),
            SwarmEvent::Behaviour(event) => self.behaviour_event(event),
            _ => {}
        }
    }

    fn connected(&mut self, peer: libp2p::PeerId, dialer: bool, connection: ConnectionId) {
        if let Some(until) = self.banned.get(&peer) {
            if *until > Instant::now() {
                let _ = self.swarm.disconnect_peer_id(peer);
                if let Some(reply) = self.dialing.remove(&connection) {
                    let _ = reply.send(Err(NodeError::Dial(format!("{peer} is banned"))));
                }
                return;
            }
            self.banned.remove(&peer);
            self.swarm
                .behaviour_mut()
                .gossip
                .remove_blacklisted_peer(&peer);
        }
        let existing = self
            .shared
            .state()
            .sessions
            .get(&peer)
            .map(|s| s.remote.clone());
        if let Some(reply) = self.dialing.remove(&connection) {
            match &existing {
                Some(did) => {
                    let _ = reply.send(Ok(did.clone()));
                }
                None => self.connecting.entry(peer).or_default().push(reply),
            }
        }
        if dialer && existing.is_none() && !self.initiating.contains_key(&peer) {
            self.start_handshake(peer);
        }
    }

    fn disconnected(&mut self, peer: libp2p::PeerId) {
        self.closing.remove(&peer);
        self.refused.remove(&peer);
        self.initiating.remove(&peer);
        self.responding.remove(&peer);
        self.requests.forget(&peer);
        self.gossip_rate.forget(&peer);
        self.shared.state().sessions.remove(&peer);
        for reply in self.connecting.remove(&peer).unwrap_or_default() {
            let _ = reply.send(Err(NodeError::Dial(format!(
                "{peer} closed the connection during the handshake"
            ))));
        }
        self.shared.emit(NodeEvent::PeerDisconnected(peer));
    }

    fn behaviour_event(&mut self, event: MeshBehaviourEvent) {
        match event {
            MeshBehaviourEvent::Iatp(request_response::Event::Message {
                peer, message, ..
            }) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let reply = self.on_iatp_request(peer, request);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .iatp
                        .send_response(channel, reply.response);
                    if reply.close {
                        self.refused.insert(peer);
                    }
                    if let Some(event) = reply.event {
                        self.shared.emit(event);
                    }
                }
                request_response::Message::Response { response, .. } => {
                    self.on_iatp_response(peer, response)
                }
            },
            // A refused peer has been sent the reason: it closes the
            // connection itself when it reads it; if it has not within the
            // grace period, the timer closes it. (Closing at once can cut
            // the connection before the reply is delivered.)
            MeshBehaviourEvent::Iatp(request_response::Event::ResponseSent { peer, .. })
                if self.refused.contains(&peer) =>
            {
                self.refused.remove(&peer);
                self.closing.insert(peer, Instant::now() + REFUSED_GRACE);
            }
            MeshBehaviourEvent::Iatp(request_response::Event::InboundFailure {
                peer,
                error,
                ..
            }) => self.strike(peer, "iatp request", &error.to_string()),
            MeshBehaviourEvent::Action(event) => self.action_event(event),
            MeshBehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let acceptance = self.validate_gossip(propagation_source, &message);
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            MeshBehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for addr in info.listen_addrs {
                    if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                        kad.add_address(&peer_id, addr);
                    }
                }
            }
            MeshBehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    if self.wants_discovered(&peer) {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            // A peer found in the DHT is dialled while the node has fewer
            // peers than its discovery target.
            MeshBehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, addresses, ..
            }) if self.wants_discovered(&peer) => {
                let _ = self.swarm.dial(
                    DialOpts::peer_id(peer)
                        .addresses(addresses.into_vec())
                        .build(),
                );
            }
            _ => {}
        }
    }

    /// Whether to dial a peer discovery turned up.
    fn wants_discovered(&self, peer: &libp2p::PeerId) -> bool {
        !self.swarm.is_connected(peer)
            && !self.banned.contains_key(peer)
            && self.swarm.network_info().num_peers()
                < self.shared.settings.limits.discovery_target as usize
    }

    fn action_event(&mut self, event: request_response::Event<ActionRequest, ActionResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_action_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(NodeError::RequestFailed(error.to_string())));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                self.strike(peer, "action request", &error.to_string())
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_action_request(
        &mut self,
        peer: libp2p::PeerId,
        request: ActionRequest,
        channel: ResponseChannel<ActionResponse>,
    ) {
        let remote = self
            .shared
            .state()
            .sessions
            .get(&peer)
            .map(|s| s.remote.clone());
        let Some(remote) = remote else {
            let _ = self.swarm.behaviour_mut().action.send_response(
                channel,
                ActionResponse::refused("no_session", "complete the IATP handshake first"),
            );
            self.strike(peer, "action request", "no session");
            return;
        };
        if !self.requests.allow(&peer, std::time::Instant::now()) {
            let _ = self.swarm.behaviour_mut().action.send_response(
                channel,
                ActionResponse::refused("rate_limited", "too many requests"),
            );
            self.strike(peer, "action request", "over its rate limit");
            return;
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let response = serve::serve(&shared, remote, request).await;
            let _ = shared
                .commands
                .send(Command::Respond(channel, response))
                .await;
        });
    }

    /// A peer sent something refused: count it, record it, and past the
    /// limit disconnect and ban it.
    fn strike(&mut self, peer: libp2p::PeerId, what: &str, why: &str) {
        let strikes = {
            let s = self.strikes.entry(peer).or_insert(0);
            *s += 1;
            *s
        };
        let session = self
            .shared
            .state()
            .sessions
            .get(&peer)
            .map(|s| s.remote.clone());
        if let Some(did) = session {
            self.shared.record(Evidence::new(
                did,
                EvidenceKind::RateLimitExceeded,
                self.shared.now(),
            ));
        }
        let limit = self.shared.settings.limits.strikes_before_ban;
        let banned = strikes >= limit;
        if strikes == 1 || strikes % 10 == 0 || banned {
            tracing::info!(%peer, what, why, strikes, banned, "peer throttled");
            self.shared.emit(NodeEvent::Throttled {
                peer,
                strikes,
                banned,
            });
        }
        if banned {
            self.strikes.remove(&peer);
            self.banned
                .insert(peer, Instant::now() + self.shared.settings.limits.ban);
            self.swarm.behaviour_mut().gossip.blacklist_peer(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn reject(
        &mut self,
        peer: libp2p::PeerId,
        author: Option<Did>,
        what: &str,
        reason: String,
    ) -> MessageAcceptance {
        tracing::info!(%peer, what, %reason, "gossip rejected");
        if let Some(author) = author {
            self.shared.record(Evidence::new(
                author,
                EvidenceKind::ProtocolViolation,
                self.shared.now(),
            ));
        }
        self.shared.emit(NodeEvent::Rejected {
            peer,
            what: what.into(),
            reason,
        });
        MessageAcceptance::Reject
    }

    fn validate_gossip(
        &mut self,
        from: libp2p::PeerId,
        message: &gossipsub::Message,
    ) -> MessageAcceptance {
        // Gossip is served only to authenticated peers.
        if !self.shared.state().sessions.contains_key(&from) {
            return MessageAcceptance::Ignore;
        }
        if !self.gossip_rate.allow(&from, std::time::Instant::now()) {
            self.strike(from, "gossip", "over its rate limit");
            return MessageAcceptance::Ignore;
        }
        // Strict validation: the author signed the message, so it answers
        // for what it says.
        let author = message.source.as_ref().and_then(did_of);
        let now = self.shared.now();
        let data = &message.data;
        match Topic::of(&message.topic) {
            None => MessageAcceptance::Ignore,
            Some(Topic::Trust) => {
                let outcome = self.shared.state().trust.receive_report(data, now);
                match outcome {
                    Ok(ReportOutcome::Accepted) => {
                        if let Some(reporter) = author {
                            self.shared.emit(NodeEvent::TrustReport { reporter });
                        }
                        MessageAcceptance::Accept
                    }
                    Ok(ReportOutcome::Duplicate) | Err(ReportError::Stale { .. }) => {
                        MessageAcceptance::Ignore
                    }
                    Err(e) => self.reject(from, author, "trust report", e.to_string()),
                }
            }
            Some(Topic::Revocation) => match verify_revocation(data) {
                Ok(v) => {
                    let (revoker, target) = (v.revoker.clone(), v.target);
                    if self.shared.state().revocations.insert(v) {
                        self.shared.emit(NodeEvent::Revocation { revoker, target });
                        MessageAcceptance::Accept
                    } else {
                        MessageAcceptance::Ignore
                    }
                }
                Err(e) => self.reject(from, author, "revocation", e.to_string()),
            },
            Some(Topic::Checkpoint) => match open_log_checkpoint(data) {
                Ok((origin, cp)) => self.on_checkpoint(from, origin, cp, data),
                Err(e) => self.reject(from, author, "checkpoint", e),
            },
            Some(Topic::Equivocation) => match verify_equivocation(data) {
                Ok(offender) => {
                    self.punish_equivocation(&offender, data.to_vec(), false);
                    MessageAcceptance::Accept
                }
                Err(e) => self.reject(from, author, "equivocation proof", e),
            },
        }
    }

    fn on_checkpoint(
        &mut self,
        from: libp2p::PeerId,
        origin: Did,
        cp: Checkpoint,
        note: &[u8],
    ) -> MessageAcceptance {
        let earlier = self
            .shared
            .state()
            .see_note(&cp.origin, cp.size, cp.root, note);
        if let Some(earlier) = earlier {
            // Two signed checkpoints of one size, different roots.
            let proof = log_verifier(&cp.origin, origin.clone())
                .ok()
                .and_then(|v| EquivocationProof::same_size(&earlier, note, &v).ok())
                .and_then(|p| p.to_bytes().ok());
            if let Some(proof) = proof {
                self.punish_equivocation(&origin, proof, true);
                return MessageAcceptance::Accept;
            }
        }
        if origin == self.shared.did {
            return MessageAcceptance::Ignore;
        }
        // Witness the logs of agents we have a session with.
        let session = self.shared.state().session_of(&origin).map(|(p, _)| *p);
        if let Some(peer) = session {
            let shared = self.shared.clone();
            let note = note.to_vec();
            tokio::spawn(async move {
                serve::witness(&shared, peer, origin, cp, note).await;
            });
        }
        let _ = from;
        MessageAcceptance::Accept
    }

    /// A proven equivocation: the offender's trust goes to the floor here,
    /// and the proof is gossiped if this node found it.
    fn punish_equivocation(&mut self, offender: &Did, proof: Vec<u8>, found_here: bool) {
        let severe_already = self
            .shared
            .state()
            .trust
            .explain(offender, self.shared.now())
            .severe
            .is_some();
        if severe_already {
            return;
        }
        tracing::warn!(%offender, "ledger equivocation proven");
        self.shared.record(
            Evidence::new(
                offender.clone(),
                EvidenceKind::LedgerEquivocation,
                self.shared.now(),
            )
            .with_proof(Proof {
                kind: equivocation::PROOF_KIND.into(),
                bytes: proof.clone(),
            }),
        );
        self.shared.emit(NodeEvent::Equivocation {
            offender: offender.clone(),
        });
        if found_here {
            let _ = self
                .swarm
                .behaviour_mut()
                .gossip
                .publish(Topic::Equivocation.ident(), proof);
        }
    }

    fn periodic(&mut self) {
        let now = Instant::now();
        let due: Vec<libp2p::PeerId> = self
            .closing
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            self.closing.remove(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        self.banned.retain(|_, until| *until > now);

        let (report_interval, checkpoint_interval) = (
            self.shared.settings.report_interval,
            self.shared.settings.checkpoint_interval,
        );
        let report_due = self.shared.state().report_due;
        if now.duration_since(self.last_report) >= report_interval
            || (report_due && now.duration_since(self.last_report) >= Duration::from_millis(500))
        {
            self.last_report = now;
            self.publish_report();
        }
        if now.duration_since(self.last_checkpoint) >= checkpoint_interval {
            self.last_checkpoint = now;
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let _ = serve::checkpoint(&shared, false).await;
            });
        }
        self.update_peer_scores();
        // Walk the DHT (find peers near ourselves) after the first session
        // and every 30 s: peers it turns up are dialled and authenticated.
        let has_peers = !self.shared.state().sessions.is_empty();
        let walk_due = self
            .last_dht_walk
            .is_none_or(|at| now.duration_since(at) >= DHT_WALK_INTERVAL);
        if has_peers && walk_due {
            self.last_dht_walk = Some(now);
            if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                let _ = kad.bootstrap();
            }
        }
    }

    /// Refresh the aggregation and publish this node's signed report.
    fn publish_report(&mut self) {
        let now = self.shared.now();
        let report = {
            let mut st = self.shared.state();
            st.report_due = false;
            st.trust.refresh(now);
            st.report_sequence += 1;
            let (epoch, seq) = (st.report_epoch, st.report_sequence);
            st.trust
                .make_report(self.shared.local.identity(), epoch, seq, now)
        };
        match report {
            Ok(bytes) => {
                self.shared.metrics.report_published();
                if let Err(e) = self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .publish(Topic::Trust.ident(), bytes)
                {
                    tracing::debug!(error = %e, "trust report not published");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not sign a trust report"),
        }
    }

    /// Feed trust scores to gossipsub as the application-specific score.
    fn update_peer_scores(&mut self) {
        let now = self.shared.now();
        let floor = self.shared.handshake.trust_floor;
        let scores: Vec<(libp2p::PeerId, f64)> = {
            let st = self.shared.state();
            st.sessions
                .iter()
                .map(|(p, s)| {
                    (
                        *p,
                        gossip::application_score(st.trust.score(&s.remote, now), floor),
                    )
                })
                .collect()
        };
        let g = &mut self.swarm.behaviour_mut().gossip;
        for (peer, score) in scores {
            g.set_application_score(&peer, score);
        }
    }

    fn start_handshake(&mut self, peer: libp2p::PeerId) {
        let Some(remote) = mesh_iatp::PeerId::from_bytes(&peer.to_bytes()).ok() else {
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        };
        let now = self.shared.now();
        let shared = self.shared.clone();
        let started = {
            let st = shared.state();
            let view = st.trust.view(now);
            Initiator::start(context(&shared, &view), remote, now, &mut self.rng)
        };
        match started {
            Ok((waiting, hello)) => {
                self.initiating.insert(peer, waiting);
                self.swarm
                    .behaviour_mut()
                    .iatp
                    .send_request(&peer, IatpRequest::Hello(ByteBuf::from(hello)));
            }
            Err(refused) => {
                self.fail_connecting(peer, refused_error("we refused", refused.refusal.name()));
                self.shared.emit(NodeEvent::RefusedPeer {
                    peer,
                    refusal: refused.refusal,
                });
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
    }

    fn fail_connecting(&mut self, peer: libp2p::PeerId, error: NodeError) {
        let mut waiters = self.connecting.remove(&peer).unwrap_or_default();
        if let Some(first) = waiters.pop() {
            let text = error.to_string();
            let _ = first.send(Err(error));
            for w in waiters {
                let _ = w.send(Err(NodeError::HandshakeRefused(text.clone())));
            }
        }
    }

    /// A completed handshake: the peer's org, a root of authority for the
    /// gate, a good observation, and the session.
    fn learn_session(&mut self, peer: libp2p::PeerId, session: &Session) {
        let now = self.shared.now();
        {
            let mut st = self.shared.state();
            st.trust
                .register_from_policy(session.remote.clone(), &session.policy);
            st.orgs
                .insert(session.remote.clone(), session.policy.clone());
            st.gate.add_root(session.remote.clone());
            st.sessions.insert(peer, session.clone());
        }
        self.shared.record(Evidence::new(
            session.remote.clone(),
            EvidenceKind::HandshakeCompleted,
            now,
        ));
        tracing::info!(peer = %session.remote, org = %session.policy.name, "session established");
        self.shared
            .emit(NodeEvent::SessionEstablished(Box::new(session.clone())));
    }

    /// A refusal is evidence only against a peer whose signature verified.
    fn learn_refusal(&mut self, refused: &Refused) {
        if let Some(peer) = &refused.accountable {
            self.shared.record(Evidence::new(
                peer.clone(),
                EvidenceKind::HandshakeFailure,
                self.shared.now(),
            ));
        }
    }

    /// Answer an IATP request.
    fn on_iatp_request(&mut self, peer: libp2p::PeerId, request: IatpRequest) -> Reply {
        let now = self.shared.now();
        let Some(remote) = mesh_iatp::PeerId::from_bytes(&peer.to_bytes()).ok() else {
            return refusal_reply(
                peer,
                Refusal::InvalidCard("the connection's PeerId is not an Ed25519 key"),
            );
        };
        let shared = self.shared.clone();
        let outcome: Result<(IatpResponse, Option<Session>), Refused> = {
            let st = shared.state();
            let view = st.trust.view(now);
            let ctx = context(&shared, &view);
            match request {
                IatpRequest::Hello(bytes) => {
                    Responder::on_hello(ctx, remote, &bytes, now, &mut self.nonces, &mut self.rng)
                        .map(|(pending, response)| {
                            self.responding.insert(peer, pending);
                            (IatpResponse::Response(ByteBuf::from(response)), None)
                        })
                }
                IatpRequest::Confirm(bytes) => match self.responding.remove(&peer) {
                    None => Err(Refused {
                        refusal: Refusal::UnexpectedMessage {
                            expected: "iatp/hello",
                            found: "iatp/confirm".into(),
                        },
                        accountable: None,
                    }),
                    Some(pending) => pending
                        .on_confirm(ctx, &bytes, now)
                        .map(|session| (IatpResponse::Accepted, Some(session))),
                },
            }
        };
        match outcome {
            Ok((response, session)) => {
                if let Some(session) = session {
                    self.learn_session(peer, &session);
                }
                Reply {
                    response,
                    event: None,
                    close: false,
                }
            }
            Err(refused) => {
                self.learn_refusal(&refused);
                tracing::info!(%peer, reason = refused.refusal.name(), "handshake refused");
                refusal_reply(peer, refused.refusal)
            }
        }
    }

    fn on_iatp_response(&mut self, peer: libp2p::PeerId, response: IatpResponse) {
        match response {
            IatpResponse::Response(bytes) => {
                let Some(waiting) = self.initiating.remove(&peer) else {
                    let _ = self.swarm.disconnect_peer_id(peer);
                    return;
                };
                let now = self.shared.now();
                let outcome = {
                    let st = self.shared.state();
                    let view = st.trust.view(now);
                    waiting.on_response(context(&self.shared, &view), &bytes, now)
                };
                match outcome {
                    Ok((session, confirm)) => {
                        self.learn_session(peer, &session);
                        self.swarm
                            .behaviour_mut()
                            .iatp
                            .send_request(&peer, IatpRequest::Confirm(ByteBuf::from(confirm)));
                    }
                    Err(refused) => {
                        self.learn_refusal(&refused);
                        tracing::info!(%peer, reason = refused.refusal.name(), "handshake refused");
                        self.fail_connecting(
                            peer,
                            refused_error("we refused", refused.refusal.name()),
                        );
                        self.shared.emit(NodeEvent::RefusedPeer {
                            peer,
                            refusal: refused.refusal,
                        });
                        let _ = self.swarm.disconnect_peer_id(peer);
                    }
                }
            }
            IatpResponse::Accepted => {
                // The responder holds the session too: the peer is usable.
                let did = self
                    .shared
                    .state()
                    .sessions
                    .get(&peer)
                    .map(|s| s.remote.clone());
                if let Some(did) = did {
                    for reply in self.connecting.remove(&peer).unwrap_or_default() {
                        let _ = reply.send(Ok(did.clone()));
                    }
                }
            }
            IatpResponse::Refused { code, reason } => {
                self.initiating.remove(&peer);
                self.shared.state().sessions.remove(&peer);
                tracing::info!(%peer, code, %reason, "our handshake was refused");
                self.fail_connecting(
                    peer,
                    refused_error("the peer refused", format!("{reason} (code {code})")),
                );
                self.shared
                    .emit(NodeEvent::RefusedByPeer { peer, code, reason });
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
    }
}

/// What every handshake step reads: who we are, whom we accept, and
/// live trust.
fn context<'a>(shared: &'a Shared, trust: &'a dyn mesh_iatp::handshake::PeerTrust) -> Context<'a> {
    Context {
        local: &shared.local,
        bundle: &shared.bundle,
        revoked: &shared.revoked_credentials,
        trust,
        config: &shared.handshake,
    }
}

/// How the node answers one IATP request.
struct Reply {
    response: IatpResponse,
    event: Option<NodeEvent>,
    close: bool,
}

/// The reply and event for refusing a peer's message (then closing).
fn refusal_reply(peer: libp2p::PeerId, refusal: Refusal) -> Reply {
    Reply {
        response: IatpResponse::Refused {
            code: refusal.code(),
            reason: refusal.name().into(),
        },
        event: Some(NodeEvent::RefusedPeer { peer, refusal }),
        close: true,
    }
}

/// An error and its sources, "outer: inner: innermost" (libp2p's dial
/// errors say little at the top level).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Open a gossiped checkpoint: its origin is an agent's DID, whose key
/// must have signed it.
pub fn open_log_checkpoint(note: &[u8]) -> Result<(Did, Checkpoint), String> {
    let parsed = Note::parse(note).map_err(|e| e.to_string())?;
    let claimed = Checkpoint::parse_body(&parsed.text).map_err(|e| e.to_string())?;
    let origin =
        Did::parse(&claimed.origin).map_err(|e| format!("origin is not an agent's DID: {e}"))?;
    let verifier = log_verifier(&claimed.origin, origin.clone()).map_err(|e| e.to_string())?;
    let (cp, _) = open_checkpoint(note, &verifier).map_err(|e| e.to_string())?;
    Ok((origin, cp))
}

/// Verify a gossiped equivocation proof; the offender.
pub fn verify_equivocation(bytes: &[u8]) -> Result<Did, String> {
    let proof = EquivocationProof::from_bytes(bytes).map_err(|e| e.to_string())?;
    let first = match &proof {
        EquivocationProof::SameSize { first, .. }
        | EquivocationProof::DivergentLeaf { first, .. } => first,
    };
    let (offender, _) = open_log_checkpoint(first)?;
    let verifier = log_verifier(offender.as_str(), offender.clone()).map_err(|e| e.to_string())?;
    proof.verify(&verifier).map_err(|e| e.to_string())?;
    Ok(offender)
}
