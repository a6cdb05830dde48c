//! The embedding API: a cloneable [`Node`] with async methods. Each is a
//! command to the driver (which hands it to the agent) or a read of the
//! committed log; reads of the agent's knowledge are snapshots taken on the
//! driver, so nothing here holds a lock on the agent.

use mesh_ledger::LogStore;
use std::sync::Arc;

use libp2p::Multiaddr;
use mesh_agent::{Agent, AgentError, Command as AgentCommand, Outcome, Topic};
use mesh_delegation::{LinkHash, SignedGrant};
use mesh_iatp::handshake::LocalAgent;
use mesh_iatp::{Did, Score, TrustBundle};
use mesh_ledger::merkle::Hash;
use mesh_ledger::record::ActionKind;
use mesh_ledger::store::{Log, Store};
use mesh_trust::{Evidence, Explanation, Tier};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::driver::Command;
use super::metrics::NodeMetrics;
use super::{
    Clock, DelegateOptions, Delegated, GrantOptions, InclusionProof, IssuedGrant, NodeError,
    NodeEvent, Recorded, Revoked, Settings, SpawnOptions, Spawned, protocol::Task,
};

/// Stops the driver when the last handle is dropped.
struct StopOnDrop(mpsc::Sender<Command>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.try_send(Command::Stop(None));
    }
}

/// What every handle shares.
pub(super) struct Parts {
    pub did: Did,
    pub peer_id: libp2p::PeerId,
    pub local: LocalAgent,
    pub bundle: TrustBundle,
    pub clock: Arc<dyn Clock>,
    pub commands: mpsc::Sender<Command>,
    pub events: broadcast::Sender<NodeEvent>,
    pub store: Store,
    pub settings: Settings,
    pub metrics: Arc<NodeMetrics>,
}

/// A running node. Cheap to clone; the node stops when every clone is
/// dropped or [`Node::shutdown`] is called.
#[derive(Clone)]
pub struct Node {
    pub(super) parts: Arc<Parts>,
    _stop: Arc<StopOnDrop>,
}

/// An authenticated peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its agent.
    pub did: Did,
    /// Its libp2p PeerId.
    pub peer_id: libp2p::PeerId,
    /// The name on its card.
    pub name: String,
    /// Its organisation's name in our trust bundle.
    pub org: String,
    /// Our trust in it now.
    pub score: Score,
    /// Whether it has shown how it works (`TrustEngine::is_proven`): only
    /// proven peers share the proportional draw of TRUST.md §5b.
    pub proven: bool,
    /// What it offers, from its card.
    pub capabilities: Vec<mesh_iatp::CapabilityPattern>,
}

/// The node's log now (as committed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    /// Its origin (the agent's DID).
    pub origin: String,
    /// Records.
    pub size: u64,
    /// Root.
    pub root: Hash,
}

/// A delegated task the delegatee accepted, its answer still to come.
#[derive(Debug)]
pub struct StartedTask {
    /// The task's grant: its name on both sides.
    pub grant: LinkHash,
    /// When it must be answered.
    pub deadline: mesh_iatp::Timestamp,
    /// Who runs it.
    pub delegatee: Did,
    answer: oneshot::Receiver<Result<Outcome, mesh_agent::AgentError>>,
}

impl StartedTask {
    /// Wait for the answer (or `TaskExpired` past the deadline).
    pub async fn answer(self) -> Result<Delegated, NodeError> {
        match self.answer.await {
            Ok(Ok(Outcome::Delegated(d))) => Ok(*d),
            Ok(Ok(other)) => Err(unexpected(other)),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(NodeError::Stopped),
        }
    }
}

fn unexpected(outcome: Outcome) -> NodeError {
    NodeError::BadResponse(format!("the agent answered {outcome:?}"))
}

impl Node {
    /// Configure a node.
    pub fn builder() -> super::NodeBuilder {
        super::NodeBuilder::default()
    }

    pub(super) fn from_parts(parts: Parts) -> Node {
        let stop = StopOnDrop(parts.commands.clone());
        Node {
            parts: Arc::new(parts),
            _stop: Arc::new(stop),
        }
    }

    /// This agent.
    pub fn did(&self) -> &Did {
        &self.parts.did
    }

    /// This node's libp2p PeerId (the same key).
    pub fn peer_id(&self) -> libp2p::PeerId {
        self.parts.peer_id
    }

    /// Who this agent is: identity and card.
    pub fn local(&self) -> &LocalAgent {
        &self.parts.local
    }

    /// The orgs this node accepts.
    pub fn bundle(&self) -> &TrustBundle {
        &self.parts.bundle
    }

    /// The node's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.parts.clock
    }

    /// The node's settings.
    pub fn settings(&self) -> &Settings {
        &self.parts.settings
    }

    pub(super) fn metrics(&self) -> &NodeMetrics {
        &self.parts.metrics
    }

    /// Events from now on. A receiver that falls behind by more than the
    /// buffer gets `Lagged(n)`: it knows it missed `n` events.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.parts.events.subscribe()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.parts
            .commands
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Read the agent: `f` runs on the driver against the agent as it is
    /// between two inputs, and its result comes back.
    pub async fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Agent) -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        self.ask(|tx| {
            Command::Query(Box::new(move |agent: &Agent| {
                let _ = tx.send(f(agent));
            }))
        })
        .await
    }

    async fn agent(&self, command: AgentCommand) -> Result<Outcome, NodeError> {
        self.ask(|tx| Command::Agent(command, tx))
            .await?
            .map_err(|e: AgentError| e.into())
    }

    /// Listen on `addr` (e.g. `/ip4/127.0.0.1/tcp/0`, `/ip4/127.0.0.1/udp/0/quic-v1`,
    /// `/memory/0`); the address actually bound.
    pub async fn listen(&self, addr: Multiaddr) -> Result<Multiaddr, NodeError> {
        self.ask(|tx| Command::Listen(addr, tx)).await?
    }

    /// The addresses this node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.ask(Command::ListenAddrs).await
    }

    /// Dial `addr` and run the handshake; the peer's agent once both sides
    /// hold the session. Bounded by twice the request timeout.
    pub async fn connect(&self, addr: Multiaddr) -> Result<Did, NodeError> {
        let wait = self.parts.settings.request_timeout * 2;
        tokio::time::timeout(wait, async {
            self.ask(|tx| Command::Connect(addr, tx)).await?
        })
        .await
        .map_err(|_| NodeError::Timeout("the handshake"))?
    }

    /// The authenticated peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        let now = self.parts.clock.now();
        self.inspect(move |agent| {
            let mut peers: Vec<PeerInfo> = agent
                .sessions()
                .filter_map(|s| {
                    Some(PeerInfo {
                        did: s.remote.clone(),
                        peer_id: super::peer_of(&s.remote)?,
                        name: s.remote_card.name.clone(),
                        org: s.policy.name.clone(),
                        score: agent.trust_of(&s.remote, now),
                        proven: agent.trust().is_proven(&s.remote, now),
                        capabilities: s.remote_card.capabilities.clone(),
                    })
                })
                .collect();
            peers.sort_by(|a, b| a.did.cmp(&b.did));
            peers
        })
        .await
    }

    /// Every peer with an open connection (authenticated or not).
    pub async fn connected_peers(&self) -> Result<Vec<libp2p::PeerId>, NodeError> {
        self.ask(Command::ConnectedPeers).await
    }

    /// gossipsub's score of a peer (delivery behaviour plus the trust-fed
    /// application score), if it is known.
    pub async fn gossip_score(&self, peer: libp2p::PeerId) -> Result<Option<f64>, NodeError> {
        self.ask(|tx| Command::GossipScore(peer, tx)).await
    }

    /// Our trust in `agent` now.
    pub async fn trust_of(&self, agent: &Did) -> Result<Score, NodeError> {
        let (did, now) = (agent.clone(), self.parts.clock.now());
        self.inspect(move |a| a.trust_of(&did, now)).await
    }

    /// Its tier.
    pub async fn tier_of(&self, agent: &Did) -> Result<Tier, NodeError> {
        let (did, now) = (agent.clone(), self.parts.clock.now());
        self.inspect(move |a| a.tier_of(&did, now)).await
    }

    /// Everything behind our score for `agent`.
    pub async fn explain(&self, agent: &Did) -> Result<Explanation, NodeError> {
        let (did, now) = (agent.clone(), self.parts.clock.now());
        self.inspect(move |a| a.explain(&did, now)).await
    }

    /// Report evidence the embedding application observed.
    pub async fn record_evidence(&self, evidence: Evidence) -> Result<(), NodeError> {
        self.agent(AgentCommand::RecordEvidence(evidence))
            .await
            .map(|_| ())
    }

    /// Refuse these org credentials from now on, in place of the ones given
    /// to the builder or set before; peers holding a session under one of
    /// them are cut off at once (`credential_revoked`).
    pub async fn set_revoked_credentials(
        &self,
        revoked: mesh_iatp::RevokedCredentials,
    ) -> Result<(), NodeError> {
        self.agent(AgentCommand::SetRevokedCredentials(revoked))
            .await
            .map(|_| ())
    }

    /// Re-aggregate trust from the reports received so far (the node does
    /// this before each report it publishes).
    pub async fn refresh_trust(&self) -> Result<(), NodeError> {
        self.agent(AgentCommand::RefreshTrust).await.map(|_| ())
    }

    /// Record an `invoke` or `result` action about `payload` (kept
    /// off-ledger; its SHA-256 is signed) with `counterparty`, co-signed and
    /// appended to both logs.
    pub async fn record_action(
        &self,
        counterparty: &Did,
        kind: ActionKind,
        payload: &[u8],
    ) -> Result<Recorded, NodeError> {
        match self
            .agent(AgentCommand::Record {
                counterparty: counterparty.clone(),
                kind,
                payload: payload.to_vec(),
            })
            .await?
        {
            Outcome::Recorded(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Issue a grant to `audience` through the gate; the `delegate` record
    /// goes to both logs. Denied here if the audience's trust is under the
    /// grant's minimum (among the gate's other rules).
    pub async fn grant(
        &self,
        audience: &Did,
        options: GrantOptions,
    ) -> Result<IssuedGrant, NodeError> {
        match self
            .agent(AgentCommand::Grant {
                audience: audience.clone(),
                options,
            })
            .await?
        {
            Outcome::Granted(g) => Ok(g),
            other => Err(unexpected(other)),
        }
    }

    /// Hand `task` to `delegatee` under a grant for exactly its resource and
    /// action: the gate decides here (and again there); the delegatee
    /// co-signs the `delegate` record and runs the task; its outcome becomes
    /// a co-signed `result` record and trust evidence about the delegatee.
    pub async fn delegate_task(
        &self,
        delegatee: &Did,
        task: Task,
        options: DelegateOptions,
    ) -> Result<Delegated, NodeError> {
        match self
            .agent(AgentCommand::Delegate {
                delegatee: delegatee.clone(),
                task,
                options,
            })
            .await?
        {
            Outcome::Delegated(d) => Ok(*d),
            other => Err(unexpected(other)),
        }
    }

    /// Delegate a task and return as soon as the delegatee accepted it
    /// (the `delegate` record is in both logs): its grant names it (to
    /// cancel it, or in the local agent API), and
    /// [`StartedTask::answer`] waits for the answer. A refusal or a gate
    /// denial comes back here.
    pub async fn start_task(
        &self,
        delegatee: &Did,
        task: Task,
        options: DelegateOptions,
    ) -> Result<StartedTask, NodeError> {
        let (accepted_tx, accepted_rx) = oneshot::channel();
        let (answer_tx, mut answer_rx) = oneshot::channel();
        let command = AgentCommand::Delegate {
            delegatee: delegatee.clone(),
            task,
            options,
        };
        self.parts
            .commands
            .send(Command::Delegate(command, accepted_tx, answer_tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        // The driver tells the acceptance before the answer, so with both
        // ready the acceptance is taken first (`biased`).
        tokio::select! {
            biased;
            accepted = accepted_rx => match accepted {
                Ok((grant, deadline)) => Ok(StartedTask {
                    grant,
                    deadline,
                    delegatee: delegatee.clone(),
                    answer: answer_rx,
                }),
                // Ended before any acceptance: the answer says why.
                Err(_) => Err(match answer_rx.await {
                    Ok(Err(e)) => e.into(),
                    Ok(Ok(other)) => unexpected(other),
                    Err(_) => NodeError::Stopped,
                }),
            },
            answer = &mut answer_rx => Err(match answer {
                Ok(Err(e)) => e.into(),
                Ok(Ok(other)) => unexpected(other),
                Err(_) => NodeError::Stopped,
            }),
        }
    }

    /// Cancel a task this node delegated, named by its grant
    /// ([`NodeEvent::TaskAccepted`] gives it): the delegatee stops it and
    /// answers `cancelled`, which the waiting [`Node::delegate_task`]
    /// returns. Refused by the delegatee (`unknown_task`) when the task has
    /// ended already.
    pub async fn cancel_task(&self, grant: &LinkHash) -> Result<(), NodeError> {
        match self.agent(AgentCommand::Cancel { grant: *grant }).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Spawn a child agent: a fresh identity and a certificate, through the
    /// gate's spawn rules (trust threshold, budget by score, depth); the
    /// `spawn` record (co-signed with the child's new key) goes to this log.
    /// The child runs its own node with the identity once its org issues it
    /// a credential.
    pub async fn spawn(&self, options: SpawnOptions) -> Result<Spawned, NodeError> {
        match self.agent(AgentCommand::Spawn(options)).await? {
            Outcome::Spawned(s) => Ok(*s),
            other => Err(unexpected(other)),
        }
    }

    /// Revoke a grant or spawn certificate this node issued: the signed
    /// revocation takes effect here at once, is gossiped to every node, and
    /// a `revoke` record is co-signed with the audience if it is connected.
    pub async fn revoke(&self, target: &LinkHash, reason: &str) -> Result<Revoked, NodeError> {
        match self
            .agent(AgentCommand::Revoke {
                target: *target,
                reason: reason.into(),
            })
            .await?
        {
            Outcome::Revoked(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Whether a link is revoked as far as this node knows.
    pub async fn is_revoked(&self, link: &LinkHash) -> Result<bool, NodeError> {
        let link = *link;
        self.inspect(move |a| a.is_revoked(&link)).await
    }

    /// A grant chain another agent gave this node, by the hash of its last
    /// link.
    pub async fn held_grant(&self, hash: &LinkHash) -> Result<Option<Vec<SignedGrant>>, NodeError> {
        let hash = *hash;
        self.inspect(move |a| a.held().get(&hash).cloned()).await
    }

    async fn log(&self) -> Result<Log, NodeError> {
        Ok(self.parts.store.log(self.parts.did.as_str()).await?)
    }

    /// This node's log, as committed.
    pub async fn log_info(&self) -> Result<LogInfo, NodeError> {
        let log = self.log().await?;
        Ok(LogInfo {
            origin: log.origin().to_string(),
            size: log.size(),
            root: log.root(),
        })
    }

    /// Record `index` of this node's log with its inclusion proof against
    /// the current size.
    pub async fn prove(&self, index: u64) -> Result<InclusionProof, NodeError> {
        let log = self.log().await?;
        let size = log.size();
        if index >= size {
            return Err(NodeError::Invalid(format!(
                "record {index} does not exist (the log has {size})"
            )));
        }
        Ok(InclusionProof {
            origin: log.origin().to_string(),
            index,
            size,
            root: log.root(),
            record: log.record(index).await?,
            hashes: log.inclusion_proof(index, size).await?,
        })
    }

    /// Fetch record `index` of `agent`'s log and its inclusion proof for
    /// the tree of `size`, from the agent. The caller checks `root` against
    /// a checkpoint signed by the agent (and cosigned by witnesses).
    pub async fn fetch_proof(
        &self,
        agent: &Did,
        index: u64,
        size: u64,
        root: Hash,
    ) -> Result<InclusionProof, NodeError> {
        match self
            .agent(AgentCommand::FetchProof {
                agent: agent.clone(),
                index,
                size,
                root,
            })
            .await?
        {
            Outcome::Proof(p) => Ok(*p),
            other => Err(unexpected(other)),
        }
    }

    /// Sign and gossip a checkpoint of this node's log now (normally done
    /// every checkpoint interval); the note.
    pub async fn checkpoint(&self) -> Result<Vec<u8>, NodeError> {
        match self.agent(AgentCommand::Checkpoint { force: true }).await? {
            Outcome::Checkpoint(Some(note)) => Ok(note),
            other => Err(unexpected(other)),
        }
    }

    /// The latest checkpoint note stored for this node's log (with the
    /// witnesses' cosignatures received so far).
    pub async fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.log().await?.latest_checkpoint().await?)
    }

    /// Re-aggregate trust and publish this node's signed trust report now
    /// (normally done every report interval and on significant change).
    pub async fn publish_trust_report(&self) -> Result<(), NodeError> {
        self.agent(AgentCommand::PublishReport).await.map(|_| ())
    }

    /// Publish raw bytes on a topic, bypassing every check. Honest nodes
    /// never need this; simulations and tests use it to play an attacker
    /// (e.g. an equivocating log).
    pub async fn publish_raw(&self, topic: Topic, bytes: Vec<u8>) -> Result<(), NodeError> {
        self.agent(AgentCommand::PublishRaw { topic, data: bytes })
            .await
            .map(|_| ())
    }

    /// Checkpoint, commit everything, close the ledger and stop the
    /// network.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let checkpointed = self.agent(AgentCommand::Checkpoint { force: false }).await;
        let _ = self.ask(|tx| Command::Stop(Some(tx))).await;
        checkpointed.map(|_| ())
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("did", &self.parts.did)
            .finish()
    }
}
