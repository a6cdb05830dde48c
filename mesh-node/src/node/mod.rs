//! The running mesh node: a libp2p swarm composed of small behaviours
//! (identify, ping, IATP), driven by one tokio task, controlled through a
//! [`NodeHandle`].
//!
//! Today the node authenticates every connection with the IATP handshake
//! before anything else: the dialer starts it as soon as the connection is
//! up; a peer that fails it is told why and disconnected, and the refusal is
//! reported as an event. Trust gossip, delegation, ledgers and the daemon
//! build on this (issue 6).

mod protocol;

pub use protocol::{IATP_PROTOCOL, IatpRequest, IatpResponse};

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, Swarm, identify, noise, ping, tcp, yamux};
use mesh_iatp::handshake::{
    AwaitingConfirm, AwaitingResponse, Context, HandshakeConfig, Initiator, LocalAgent, NonceCache,
    Refusal, Refused, Responder, Session,
};
use mesh_iatp::{Did, PeerId, RevokedCredentials, Timestamp, TrustBundle};
use mesh_trust::{Evidence, EvidenceKind, TrustConfig, TrustEngine};
use rand_core::CryptoRng;
use serde_bytes::ByteBuf;
use tokio::sync::{mpsc, oneshot};

use crate::transport_key;

/// Where the node reads the time (injected so tests control it).
pub trait Clock: Send + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
    }
}

/// A fixed time (tests, simulations).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// What the node tells its embedder.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// The node listens on this address.
    Listening(Multiaddr),
    /// A peer completed the IATP handshake with us.
    SessionEstablished(Box<Session>),
    /// We refused a peer's handshake (and disconnected it).
    RefusedPeer {
        /// The peer.
        peer: libp2p::PeerId,
        /// Why.
        refusal: Refusal,
    },
    /// A peer refused our handshake.
    RefusedByPeer {
        /// The peer.
        peer: libp2p::PeerId,
        /// Its refusal code.
        code: u16,
        /// Its refusal name.
        reason: String,
    },
}

/// Why the node could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The identity could not become a libp2p key.
    #[error(transparent)]
    TransportKey(#[from] transport_key::TransportKeyError),
    /// libp2p refused the configuration.
    #[error("network setup: {0}")]
    Setup(String),
    /// A listen or dial address was refused.
    #[error("{0}")]
    Address(String),
    /// The node task has stopped.
    #[error("the node has stopped")]
    Stopped,
}

#[derive(NetworkBehaviour)]
struct MeshBehaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    iatp: request_response::cbor::Behaviour<IatpRequest, IatpResponse>,
}

enum Command {
    Listen(Multiaddr, oneshot::Sender<Result<(), NodeError>>),
    Dial(Multiaddr, oneshot::Sender<Result<(), NodeError>>),
    Sessions(oneshot::Sender<Vec<Session>>),
    ConnectedPeers(oneshot::Sender<Vec<libp2p::PeerId>>),
    Record(Box<Evidence>),
    Score(Did, oneshot::Sender<mesh_iatp::Score>),
}

/// Control of a running node.
#[derive(Clone)]
pub struct NodeHandle {
    peer_id: libp2p::PeerId,
    commands: mpsc::Sender<Command>,
}

impl NodeHandle {
    /// This node's libp2p PeerId (its DID key).
    pub fn peer_id(&self) -> libp2p::PeerId {
        self.peer_id
    }

    /// Listen on an address (e.g. `/ip4/127.0.0.1/tcp/0`).
    pub async fn listen(&self, addr: Multiaddr) -> Result<(), NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Listen(addr, tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    /// Dial a peer; the handshake starts once connected.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Dial(addr, tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    /// The peers with an open connection now (authenticated or not).
    pub async fn connected_peers(&self) -> Result<Vec<libp2p::PeerId>, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::ConnectedPeers(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Report evidence about an agent (e.g. a task outcome the embedding
    /// application observed); it feeds this node's trust engine.
    pub async fn record_evidence(&self, evidence: Evidence) -> Result<(), NodeError> {
        self.commands
            .send(Command::Record(Box::new(evidence)))
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// This node's current trust score for an agent.
    pub async fn trust_score(&self, agent: &Did) -> Result<mesh_iatp::Score, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Score(agent.clone(), tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// The authenticated sessions now.
    pub async fn sessions(&self) -> Result<Vec<Session>, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Sessions(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }
}

/// What a node needs to start.
pub struct NodeConfig<C: Clock, R: CryptoRng + Send + 'static> {
    /// This agent: identity and card.
    pub local: LocalAgent,
    /// The organisations accepted.
    pub bundle: TrustBundle,
    /// Handshake tunables.
    pub handshake: HandshakeConfig,
    /// The clock.
    pub clock: C,
    /// Randomness for nonces.
    pub rng: R,
    /// Trust parameters (the node keeps a `TrustEngine` seeded with them).
    pub trust: TrustConfig,
}

/// Start a node on the current tokio runtime. Returns its handle and the
/// stream of its events (bounded: a slow reader slows the node, never
/// loses events silently).
pub fn start<C: Clock, R: CryptoRng + Send + 'static>(
    config: NodeConfig<C, R>,
) -> Result<(NodeHandle, mpsc::Receiver<NodeEvent>), NodeError> {
    let keypair = transport_key::to_libp2p(config.local.identity())?;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NodeError::Setup(e.to_string()))?
        .with_behaviour(|key| MeshBehaviour {
            identify: identify::Behaviour::new(identify::Config::new(
                "/mesh/0.1.0".into(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new()),
            iatp: request_response::Behaviour::with_codec(
                // IATP messages are at most 16 KiB: refuse anything over 64 KiB
                // before buffering it (the codec's defaults are 1 and 10 MiB).
                request_response::cbor::codec::Codec::default()
                    .set_request_size_maximum(MAX_IATP_FRAME)
                    .set_response_size_maximum(MAX_IATP_FRAME),
                [(IATP_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            ),
        })
        .map_err(|e| NodeError::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let peer_id = *swarm.local_peer_id();
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::channel(256);
    let nonces = NonceCache::new(65_536, config.handshake.max_skew_secs);
    let trust = TrustEngine::new(config.local.identity().did().clone(), config.trust)
        .map_err(|e| NodeError::Setup(e.to_string()))?;
    let task = NodeTask {
        swarm,
        peering: Peering {
            local: config.local,
            bundle: config.bundle,
            revoked: RevokedCredentials::default(),
            handshake: config.handshake,
        },
        clock: config.clock,
        rng: config.rng,
        nonces,
        initiating: HashMap::new(),
        responding: HashMap::new(),
        sessions: HashMap::new(),
        trust,
        refused: HashSet::new(),
        closing: HashMap::new(),
        events: ev_tx,
    };
    tokio::spawn(task.run(cmd_rx));
    Ok((
        NodeHandle {
            peer_id,
            commands: cmd_tx,
        },
        ev_rx,
    ))
}

/// Largest IATP request or response read from a peer.
pub const MAX_IATP_FRAME: u64 = 64 * 1024;

/// How long a refused peer may keep its connection to read the refusal.
const REFUSED_GRACE: Duration = Duration::from_secs(1);

/// Report an event (awaits room in the bounded channel; never drops one).
async fn emit(events: &mpsc::Sender<NodeEvent>, event: NodeEvent) {
    let _ = events.send(event).await;
}

/// What every handshake step reads: who we are and whom we accept.
struct Peering {
    local: LocalAgent,
    bundle: TrustBundle,
    revoked: RevokedCredentials,
    handshake: HandshakeConfig,
}

impl Peering {
    fn context<'a>(&'a self, trust: &'a dyn mesh_iatp::handshake::PeerTrust) -> Context<'a> {
        Context {
            local: &self.local,
            bundle: &self.bundle,
            revoked: &self.revoked,
            trust,
            config: &self.handshake,
        }
    }
}

struct NodeTask<C: Clock, R: CryptoRng + Send + 'static> {
    swarm: Swarm<MeshBehaviour>,
    peering: Peering,
    clock: C,
    rng: R,
    nonces: NonceCache,
    initiating: HashMap<libp2p::PeerId, AwaitingResponse>,
    responding: HashMap<libp2p::PeerId, AwaitingConfirm>,
    sessions: HashMap<libp2p::PeerId, Session>,
    trust: TrustEngine,
    /// Refused peers whose refusal is being sent.
    refused: HashSet<libp2p::PeerId>,
    /// Refused peers to disconnect at the given instant.
    closing: HashMap<libp2p::PeerId, tokio::time::Instant>,
    events: mpsc::Sender<NodeEvent>,
}

/// How the node answers one IATP request.
struct Reply {
    response: IatpResponse,
    event: Option<NodeEvent>,
    close: bool,
}

impl<C: Clock, R: CryptoRng + Send + 'static> NodeTask<C, R> {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => return, // every handle dropped: stop
                },
                event = self.swarm.select_next_some() => self.swarm_event(event).await,
                _ = tick.tick() => self.close_overdue(),
            }
        }
    }

    fn close_overdue(&mut self) {
        let now = tokio::time::Instant::now();
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
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Listen(addr, reply) => {
                let r = self
                    .swarm
                    .listen_on(addr)
                    .map(|_| ())
                    .map_err(|e| NodeError::Address(e.to_string()));
                let _ = reply.send(r);
            }
            Command::Dial(addr, reply) => {
                let r = self
                    .swarm
                    .dial(addr)
                    .map_err(|e| NodeError::Address(e.to_string()));
                let _ = reply.send(r);
            }
            Command::Sessions(reply) => {
                let _ = reply.send(self.sessions.values().cloned().collect());
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Record(evidence) => self.trust.record(*evidence),
            Command::Score(did, reply) => {
                let _ = reply.send(self.trust.score(&did, self.clock.now()));
            }
        }
    }

    async fn swarm_event(&mut self, event: SwarmEvent<MeshBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                emit(&self.events, NodeEvent::Listening(address)).await
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } if endpoint.is_dialer() => {
                self.start_handshake(peer_id).await;
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.closing.remove(&peer_id);
                self.refused.remove(&peer_id);
                self.initiating.remove(&peer_id);
                self.responding.remove(&peer_id);
                self.sessions.remove(&peer_id);
            }
            SwarmEvent::Behaviour(MeshBehaviourEvent::Iatp(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let reply = self.on_request(peer, request);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .iatp
                        .send_response(channel, reply.response);
                    if reply.close {
                        self.refused.insert(peer);
                    }
                    if let Some(event) = reply.event {
                        emit(&self.events, event).await;
                    }
                }
                request_response::Message::Response { response, .. } => {
                    self.on_response(peer, response).await
                }
            },
            // A refused peer has been sent the reason: it closes the
            // connection itself when it reads it; if it has not within the
            // grace period, the timer in `run` closes it. (Closing at once
            // can cut the connection before the reply is delivered.)
            SwarmEvent::Behaviour(MeshBehaviourEvent::Iatp(
                request_response::Event::ResponseSent { peer, .. },
            )) if self.refused.contains(&peer) => {
                self.refused.remove(&peer);
                self.closing
                    .insert(peer, tokio::time::Instant::now() + REFUSED_GRACE);
            }
            _ => {}
        }
    }

    fn mesh_peer(peer: &libp2p::PeerId) -> Option<PeerId> {
        PeerId::from_bytes(&peer.to_bytes()).ok()
    }

    async fn start_handshake(&mut self, peer: libp2p::PeerId) {
        let Some(remote) = Self::mesh_peer(&peer) else {
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        };
        let now = self.clock.now();
        let started = {
            let view = self.trust.view(now);
            let ctx = self.peering.context(&view);
            Initiator::start(ctx, remote, now, &mut self.rng)
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
                emit(
                    &self.events,
                    NodeEvent::RefusedPeer {
                        peer,
                        refusal: refused.refusal,
                    },
                )
                .await;
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
    }

    /// A completed handshake: the peer's org policy and a good observation.
    fn learn_session(&mut self, session: &Session, now: Timestamp) {
        self.trust
            .register_from_policy(session.remote.clone(), &session.policy);
        self.trust.record(Evidence::new(
            session.remote.clone(),
            EvidenceKind::HandshakeCompleted,
            now,
        ));
    }

    /// A refusal is evidence only against a peer whose signature verified.
    fn learn_refusal(&mut self, refused: &Refused, now: Timestamp) {
        if let Some(peer) = &refused.accountable {
            self.trust.record(Evidence::new(
                peer.clone(),
                EvidenceKind::HandshakeFailure,
                now,
            ));
        }
    }

    /// Answer an IATP request: the reply, an event to report, and whether
    /// to close the connection once the reply is sent.
    fn on_request(&mut self, peer: libp2p::PeerId, request: IatpRequest) -> Reply {
        let now = self.clock.now();
        let Some(remote) = Self::mesh_peer(&peer) else {
            return refusal_reply(
                peer,
                Refusal::InvalidCard("the connection's PeerId is not an Ed25519 key"),
            );
        };
        let outcome: Result<(IatpResponse, Option<Session>), Refused> = {
            let view = self.trust.view(now);
            let ctx = self.peering.context(&view);
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
                let event = session.map(|session| {
                    self.learn_session(&session, now);
                    self.sessions.insert(peer, session.clone());
                    NodeEvent::SessionEstablished(Box::new(session))
                });
                Reply {
                    response,
                    event,
                    close: false,
                }
            }
            Err(refused) => {
                self.learn_refusal(&refused, now);
                refusal_reply(peer, refused.refusal)
            }
        }
    }

    async fn on_response(&mut self, peer: libp2p::PeerId, response: IatpResponse) {
        match response {
            IatpResponse::Response(bytes) => {
                let Some(waiting) = self.initiating.remove(&peer) else {
                    let _ = self.swarm.disconnect_peer_id(peer);
                    return;
                };
                let now = self.clock.now();
                let outcome = {
                    let view = self.trust.view(now);
                    let ctx = self.peering.context(&view);
                    waiting.on_response(ctx, &bytes, now)
                };
                match outcome {
                    Ok((session, confirm)) => {
                        self.learn_session(&session, now);
                        self.sessions.insert(peer, session.clone());
                        self.swarm
                            .behaviour_mut()
                            .iatp
                            .send_request(&peer, IatpRequest::Confirm(ByteBuf::from(confirm)));
                        emit(
                            &self.events,
                            NodeEvent::SessionEstablished(Box::new(session)),
                        )
                        .await;
                    }
                    Err(refused) => {
                        self.learn_refusal(&refused, now);
                        emit(
                            &self.events,
                            NodeEvent::RefusedPeer {
                                peer,
                                refusal: refused.refusal,
                            },
                        )
                        .await;
                        let _ = self.swarm.disconnect_peer_id(peer);
                    }
                }
            }
            IatpResponse::Accepted => {}
            IatpResponse::Refused { code, reason } => {
                self.initiating.remove(&peer);
                self.sessions.remove(&peer);
                emit(
                    &self.events,
                    NodeEvent::RefusedByPeer { peer, code, reason },
                )
                .await;
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
    }
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
