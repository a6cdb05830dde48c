//! The embedding API: a cloneable [`Node`] with async methods, each one a
//! short conversation with the network task or a peer.

use std::sync::Arc;

use libp2p::Multiaddr;
use mesh_delegation::{
    Capability, Decision, Grant, LinkHash, Request, Revocation, SignedGrant,
    SignedSpawnCertificate, SpawnCertificate, TargetKind, verify_revocation,
};
use mesh_iatp::{Did, Identity, Score};
use mesh_ledger::merkle::{Hash, verify_inclusion};
use mesh_ledger::record::{ActionKind, ActionRecord, CoSignedRecord};
use mesh_trust::{Evidence, EvidenceKind, Explanation, Proof, Tier};
use rand_core::Rng;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::gossip::Topic;
use super::protocol::{ActionContext, ActionRequest, ActionResponse, Task, TaskOutcome};
use super::serve::{self, kind_name};
use super::state::{GateView, Issued};
use super::swarm::{Command, Shared};
use super::{NodeError, NodeEvent, digest_of};

/// Stops the network task when the last handle is dropped.
struct StopOnDrop(mpsc::Sender<Command>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.try_send(Command::Stop(None));
    }
}

/// A running node. Cheap to clone; the node stops when every clone is
/// dropped or [`Node::shutdown`] is called.
#[derive(Clone)]
pub struct Node {
    pub(super) shared: Arc<Shared>,
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
}

/// A record this node co-signed and appended.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Its index in this node's log.
    pub index: u64,
    /// The record with both signatures.
    pub record: CoSignedRecord,
}

/// What [`Node::grant`] issues.
#[derive(Debug, Clone)]
pub struct GrantOptions {
    /// The capabilities (within the authority's).
    pub capabilities: Vec<Capability>,
    /// Valid for this long from now.
    pub lifetime_secs: u64,
    /// How many more times the audience may re-delegate.
    pub depth: u8,
    /// The audience must keep at least this trust for the grant to work.
    pub min_trust: Score,
    /// The chain this grant extends (a grant this node holds); `None`
    /// issues a root grant on this agent's own authority.
    pub authority: Option<Vec<SignedGrant>>,
}

impl GrantOptions {
    /// A root grant of `capabilities` for an hour, no re-delegation,
    /// minimum trust 400.
    pub fn new(capabilities: Vec<Capability>) -> Self {
        GrantOptions {
            capabilities,
            lifetime_secs: 3600,
            depth: 0,
            min_trust: Score::saturating(400),
            authority: None,
        }
    }
}

/// A grant issued to a peer and acknowledged in both logs.
#[derive(Debug, Clone)]
pub struct IssuedGrant {
    /// Root first, the new grant last (what the audience presents).
    pub chain: Vec<SignedGrant>,
    /// The new grant's hash (what [`Node::revoke`] takes).
    pub hash: LinkHash,
    /// The `delegate` record in this node's log.
    pub record: Recorded,
}

/// How [`Node::delegate_task`] delegates.
#[derive(Debug, Clone)]
pub struct DelegateOptions {
    /// The task's grant is valid this long.
    pub lifetime_secs: u64,
    /// The delegatee needs at least this trust (the gate checks it here and
    /// again at the delegatee).
    pub min_trust: Score,
    /// Delegate under this chain (held by this node); `None` on this
    /// agent's own authority.
    pub authority: Option<Vec<SignedGrant>>,
}

impl Default for DelegateOptions {
    fn default() -> Self {
        DelegateOptions {
            lifetime_secs: 300,
            min_trust: Score::saturating(400),
            authority: None,
        }
    }
}

/// A delegated task and its outcome, both co-signed.
#[derive(Debug, Clone)]
pub struct Delegated {
    /// What the delegatee returned.
    pub outcome: TaskOutcome,
    /// The task's grant.
    pub grant: LinkHash,
    /// The `delegate` record.
    pub delegate: Recorded,
    /// The `result` record.
    pub result: Recorded,
}

/// What a child is spawned with.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// What it may do (within this agent's org policy).
    pub capabilities: Vec<Capability>,
    /// Its score never exceeds this.
    pub trust_ceiling: Score,
    /// Its certificate is valid this long.
    pub lifetime_secs: u64,
}

/// A spawned child: its key (to run its own node with) and certificate.
pub struct Spawned {
    /// The child's identity. Store it like any key (0600).
    pub identity: Identity,
    /// The certificate, signed by this agent.
    pub certificate: SignedSpawnCertificate,
    /// The `spawn` record in this node's log (co-signed by the child's key).
    pub record: Recorded,
}

impl std::fmt::Debug for Spawned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the child's secret key.
        f.debug_struct("Spawned")
            .field("child", self.identity.did())
            .field("certificate", &self.certificate)
            .field("record", &self.record.index)
            .finish()
    }
}

/// A revocation issued by this node.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// The signed revocation (gossiped).
    pub revocation: Vec<u8>,
    /// The `revoke` record, if the audience was connected to co-sign it.
    pub record: Option<Recorded>,
}

/// A record's inclusion proof against a tree size of a log.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    /// The log's origin.
    pub origin: String,
    /// The record's index.
    pub index: u64,
    /// The tree size proven against.
    pub size: u64,
    /// The root at that size.
    pub root: Hash,
    /// The co-signed record.
    pub record: CoSignedRecord,
    /// The audit path.
    pub hashes: Vec<Hash>,
}

impl InclusionProof {
    /// Check the proof (RFC 9162 §2.1.3.2).
    pub fn verify(&self) -> bool {
        verify_inclusion(
            self.index,
            self.size,
            &self.record.leaf_hash(),
            &self.hashes,
            &self.root,
        )
        .is_ok()
    }
}

/// The node's log now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    /// Its origin (the agent's DID).
    pub origin: String,
    /// Records.
    pub size: u64,
    /// Root.
    pub root: Hash,
}

impl Node {
    /// Configure a node.
    pub fn builder() -> super::NodeBuilder {
        super::NodeBuilder::default()
    }

    pub(super) fn from_shared(shared: Arc<Shared>) -> Node {
        let stop = StopOnDrop(shared.commands.clone());
        Node {
            shared,
            _stop: Arc::new(stop),
        }
    }

    /// This agent.
    pub fn did(&self) -> &Did {
        &self.shared.did
    }

    /// This node's libp2p PeerId (the same key).
    pub fn peer_id(&self) -> libp2p::PeerId {
        self.shared.peer_id
    }

    /// Events from now on. A receiver that falls behind by more than the
    /// buffer gets `Lagged(n)`: it knows it missed `n` events.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.shared.events.subscribe()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
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
        let wait = self.shared.settings.request_timeout * 2;
        tokio::time::timeout(wait, async {
            self.ask(|tx| Command::Connect(addr, tx)).await?
        })
        .await
        .map_err(|_| NodeError::Timeout("the handshake"))?
    }

    /// The authenticated peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let now = self.shared.now();
        let st = self.shared.state();
        let mut peers: Vec<PeerInfo> = st
            .sessions
            .iter()
            .map(|(peer, s)| PeerInfo {
                did: s.remote.clone(),
                peer_id: *peer,
                name: s.remote_card.name.clone(),
                org: s.policy.name.clone(),
                score: st.trust.score(&s.remote, now),
            })
            .collect();
        peers.sort_by(|a, b| a.did.cmp(&b.did));
        peers
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
    pub fn trust_of(&self, agent: &Did) -> Score {
        self.shared.state().trust.score(agent, self.shared.now())
    }

    /// Its tier.
    pub fn tier_of(&self, agent: &Did) -> Tier {
        self.shared.state().trust.tier(agent, self.shared.now())
    }

    /// Everything behind our score for `agent`.
    pub fn explain(&self, agent: &Did) -> Explanation {
        self.shared.state().trust.explain(agent, self.shared.now())
    }

    /// Report evidence the embedding application observed.
    pub fn record_evidence(&self, evidence: Evidence) {
        self.shared.record(evidence);
    }

    /// Re-aggregate trust from the reports received so far (the node does
    /// this before each report it publishes).
    pub fn refresh_trust(&self) {
        let now = self.shared.now();
        self.shared.state().trust.refresh(now);
    }

    fn session_peer(&self, agent: &Did) -> Result<libp2p::PeerId, NodeError> {
        self.shared
            .state()
            .session_of(agent)
            .map(|(p, _)| *p)
            .ok_or_else(|| NodeError::NoSession(agent.clone()))
    }

    fn new_record(
        &self,
        kind: ActionKind,
        counterparty: &Did,
        grant: Option<LinkHash>,
        payload_digest: [u8; 32],
    ) -> ActionRecord {
        let mut nonce = [0u8; 16];
        self.shared.state().rng.fill_bytes(&mut nonce);
        ActionRecord {
            kind,
            actor: self.shared.did.clone(),
            counterparty: counterparty.clone(),
            grant,
            payload_digest,
            timestamp: self.shared.now(),
            nonce,
        }
    }

    async fn append(&self, co: CoSignedRecord) -> Result<Recorded, NodeError> {
        self.shared.state().remember_record(co.leaf_hash());
        let index = self.shared.append_record(&co).await?;
        self.shared.emit(NodeEvent::Recorded {
            index,
            kind: kind_name(co.record().kind).into(),
            with: co.record().counterparty.clone(),
        });
        Ok(Recorded { index, record: co })
    }

    /// Sign `record`, have its counterparty countersign it with `context`,
    /// append it here. The counterparty has appended it too.
    async fn cosign(
        &self,
        record: ActionRecord,
        context: ActionContext,
    ) -> Result<(Recorded, Option<TaskOutcome>), NodeError> {
        let peer = self.session_peer(&record.counterparty)?;
        let half = record
            .sign(self.shared.local.identity())
            .map_err(|e| NodeError::Signing(e.to_string()))?;
        let bytes = half
            .to_bytes()
            .map_err(|e| NodeError::Signing(e.to_string()))?;
        let response = self
            .shared
            .request(
                peer,
                ActionRequest::CoSign {
                    record: ByteBuf::from(bytes),
                    context,
                },
            )
            .await?;
        match response {
            ActionResponse::CoSigned { record, outcome } => {
                let co = CoSignedRecord::from_bytes(&record)
                    .map_err(|e| NodeError::BadResponse(format!("co-signed record: {e}")))?;
                if co.record() != half.record() {
                    return Err(NodeError::BadResponse(
                        "the peer co-signed a different record".into(),
                    ));
                }
                Ok((self.append(co).await?, outcome))
            }
            ActionResponse::Refused { rule, reason } => {
                Err(NodeError::PeerRefused { rule, reason })
            }
            other => Err(NodeError::BadResponse(format!(
                "unexpected answer {other:?}"
            ))),
        }
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
        if !matches!(kind, ActionKind::Invoke | ActionKind::Result) {
            return Err(NodeError::Invalid(format!(
                "record_action records invoke or result actions; {} has its own method",
                kind_name(kind)
            )));
        }
        let digest: [u8; 32] = Sha256::digest(payload).into();
        let record = self.new_record(kind, counterparty, None, digest);
        let (recorded, _) = self
            .cosign(
                record,
                ActionContext::Plain {
                    payload: ByteBuf::from(payload.to_vec()),
                },
            )
            .await?;
        Ok(recorded)
    }

    /// Issue a grant to `audience` through the gate; the `delegate` record
    /// goes to both logs. Denied here if the audience's trust is under the
    /// grant's minimum (among the gate's other rules).
    pub async fn grant(
        &self,
        audience: &Did,
        options: GrantOptions,
    ) -> Result<IssuedGrant, NodeError> {
        let (chain, hash) = self.issue_grant(
            audience,
            &options.capabilities,
            options.lifetime_secs,
            options.depth,
            options.min_trust,
            options.authority,
            "grant",
        )?;
        let record = self.new_record(ActionKind::Delegate, audience, Some(hash), hash);
        let (recorded, _) = self
            .cosign(
                record,
                ActionContext::Grant {
                    chain: chain.clone(),
                },
            )
            .await?;
        self.remember_issued(
            hash,
            TargetKind::Grant,
            grant_bytes(&chain),
            audience,
            options.lifetime_secs,
        );
        Ok(IssuedGrant {
            chain,
            hash,
            record: recorded,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn issue_grant(
        &self,
        audience: &Did,
        capabilities: &[Capability],
        lifetime_secs: u64,
        depth: u8,
        min_trust: Score,
        authority: Option<Vec<SignedGrant>>,
        what: &str,
    ) -> Result<(Vec<SignedGrant>, LinkHash), NodeError> {
        let now = self.shared.now();
        let mut chain = authority.unwrap_or_default();
        let mut nonce = [0u8; 16];
        self.shared.state().rng.fill_bytes(&mut nonce);
        let grant = Grant {
            issuer: self.shared.did.clone(),
            audience: audience.clone(),
            capabilities: capabilities.to_vec(),
            not_before: now,
            expires: now.plus_secs(lifetime_secs),
            depth,
            min_trust,
            nonce,
            parent: chain.last().map(SignedGrant::hash),
        }
        .sign(self.shared.local.identity())
        .map_err(|e| NodeError::Signing(e.to_string()))?;
        let hash = grant.hash();
        chain.push(grant);
        let decision = {
            let mut guard = self.shared.state();
            let st = &mut *guard;
            let view = GateView {
                trust: &st.trust,
                orgs: &st.orgs,
                now,
            };
            st.gate.decide(
                Request::Delegate { chain: &chain },
                &view,
                &st.revocations,
                now,
            )
        };
        self.shared.metrics.gate("delegate", &decision);
        if let Decision::Deny(denial) = decision {
            tracing::info!(to = %audience, rule = denial.rule(), "gate denied {what}");
            self.shared.emit(NodeEvent::GateDenied {
                what: format!("{what} to {audience}"),
                rule: denial.rule().into(),
                reason: denial.to_string(),
            });
            return Err(NodeError::Denied(denial));
        }
        Ok((chain, hash))
    }

    fn remember_issued(
        &self,
        hash: LinkHash,
        kind: TargetKind,
        chain: Vec<Vec<u8>>,
        audience: &Did,
        lifetime_secs: u64,
    ) {
        let expires = self.shared.now().plus_secs(lifetime_secs);
        self.shared.state().issued.insert(
            hash,
            Issued {
                kind,
                chain,
                audience: audience.clone(),
                expires,
            },
        );
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
        let capability = Capability::parse(&format!("{}:{}", task.resource, task.action))
            .map_err(|e| NodeError::Invalid(format!("task capability: {e}")))?;
        let (chain, hash) = self.issue_grant(
            delegatee,
            &[capability],
            options.lifetime_secs,
            0,
            options.min_trust,
            options.authority,
            "task",
        )?;
        let digest = digest_of(&task)?;
        let record = self.new_record(ActionKind::Delegate, delegatee, Some(hash), digest);
        let (delegate, outcome) = self
            .cosign(
                record,
                ActionContext::Task {
                    chain: chain.clone(),
                    task,
                },
            )
            .await?;
        self.remember_issued(
            hash,
            TargetKind::Grant,
            grant_bytes(&chain),
            delegatee,
            options.lifetime_secs,
        );
        let outcome = outcome.ok_or_else(|| NodeError::BadResponse("no task outcome".into()))?;
        let record = self.new_record(
            ActionKind::Result,
            delegatee,
            Some(hash),
            digest_of(&outcome)?,
        );
        let (result, _) = self
            .cosign(
                record,
                ActionContext::Outcome {
                    outcome: outcome.clone(),
                },
            )
            .await?;
        let kind = if outcome.success {
            EvidenceKind::TaskSuccess
        } else {
            EvidenceKind::TaskFailure
        };
        self.shared.record(
            Evidence::new(delegatee.clone(), kind, self.shared.now()).with_proof(Proof {
                kind: "ledger/record".into(),
                bytes: result.record.bytes().to_vec(),
            }),
        );
        Ok(Delegated {
            outcome,
            grant: hash,
            delegate,
            result,
        })
    }

    /// Spawn a child agent: a fresh identity and a certificate, through the
    /// gate's spawn rules (trust threshold, budget by score, depth); the
    /// `spawn` record (co-signed with the child's new key) goes to this log.
    /// The child runs its own node with the identity once its org issues it
    /// a credential.
    pub async fn spawn(&self, options: SpawnOptions) -> Result<Spawned, NodeError> {
        let now = self.shared.now();
        let (child, certificate, decision) = {
            let mut guard = self.shared.state();
            let st = &mut *guard;
            let child = Identity::generate(&mut st.rng);
            let mut nonce = [0u8; 16];
            st.rng.fill_bytes(&mut nonce);
            let certificate = SpawnCertificate {
                parent: self.shared.did.clone(),
                child: child.did().clone(),
                capabilities: options.capabilities.clone(),
                trust_ceiling: options.trust_ceiling,
                not_before: now,
                expires: now.plus_secs(options.lifetime_secs),
                spawn_depth: 1,
                parent_certificate: None,
                nonce,
            }
            .sign(self.shared.local.identity())
            .map_err(|e| NodeError::Signing(e.to_string()))?;
            let alive = st.children_alive(now);
            let view = GateView {
                trust: &st.trust,
                orgs: &st.orgs,
                now,
            };
            let decision = st.gate.decide(
                Request::Spawn {
                    parent: &self.shared.did,
                    certificate: &certificate,
                    lineage: &[],
                    children_alive: alive,
                },
                &view,
                &st.revocations,
                now,
            );
            (child, certificate, decision)
        };
        self.shared.metrics.gate("spawn", &decision);
        if let Decision::Deny(denial) = decision {
            self.shared.emit(NodeEvent::GateDenied {
                what: "spawn".into(),
                rule: denial.rule().into(),
                reason: denial.to_string(),
            });
            return Err(NodeError::Denied(denial));
        }
        let hash = certificate.hash();
        let co = self
            .new_record(ActionKind::Spawn, child.did(), Some(hash), hash)
            .sign(self.shared.local.identity())
            .and_then(|half| half.countersign(&child))
            .map_err(|e| NodeError::Signing(e.to_string()))?;
        let record = self.append(co).await?;
        self.remember_issued(
            hash,
            TargetKind::SpawnCertificate,
            vec![certificate.0.clone()],
            child.did(),
            options.lifetime_secs,
        );
        Ok(Spawned {
            identity: child,
            certificate,
            record,
        })
    }

    /// Revoke a grant or spawn certificate this node issued: the signed
    /// revocation takes effect here at once, is gossiped to every node, and
    /// a `revoke` record is co-signed with the audience if it is connected.
    pub async fn revoke(&self, target: &LinkHash, reason: &str) -> Result<Revoked, NodeError> {
        let issued = self
            .shared
            .state()
            .issued
            .get(target)
            .cloned()
            .ok_or_else(|| NodeError::UnknownLink(mesh_delegation::grant::hex(target)))?;
        let bytes = Revocation {
            revoker: self.shared.did.clone(),
            target: *target,
            kind: issued.kind,
            chain: issued.chain.iter().cloned().map(ByteBuf::from).collect(),
            reason: reason.into(),
            issued: self.shared.now(),
        }
        .sign(self.shared.local.identity())
        .map_err(|e| NodeError::Signing(e.to_string()))?;
        let verified = verify_revocation(&bytes).map_err(|e| NodeError::Invalid(e.to_string()))?;
        self.shared.state().revocations.insert(verified);
        self.shared.emit(NodeEvent::Revocation {
            revoker: self.shared.did.clone(),
            target: *target,
        });
        self.shared.publish(Topic::Revocation, bytes.clone()).await;
        let record = if self.session_peer(&issued.audience).is_ok() {
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            let record =
                self.new_record(ActionKind::Revoke, &issued.audience, Some(*target), digest);
            match self
                .cosign(
                    record,
                    ActionContext::Revoke {
                        revocation: ByteBuf::from(bytes.clone()),
                    },
                )
                .await
            {
                Ok((r, _)) => Some(r),
                Err(e) => {
                    tracing::info!(error = %e, "revoke record not co-signed");
                    None
                }
            }
        } else {
            None
        };
        Ok(Revoked {
            revocation: bytes,
            record,
        })
    }

    /// Whether a link is revoked as far as this node knows.
    pub fn is_revoked(&self, link: &LinkHash) -> bool {
        self.shared.state().revocations.is_revoked(link)
    }

    /// Grant chains other agents gave this node, by the hash of their last
    /// link.
    pub fn held_grant(&self, hash: &LinkHash) -> Option<Vec<SignedGrant>> {
        self.shared.state().held.get(hash).cloned()
    }

    /// This node's log.
    pub async fn log_info(&self) -> LogInfo {
        let ledger = self.shared.ledger.lock().await;
        LogInfo {
            origin: ledger.log().origin().to_string(),
            size: ledger.log().size(),
            root: ledger.log().root(),
        }
    }

    /// Record `index` of this node's log with its inclusion proof against
    /// the current size.
    pub async fn prove(&self, index: u64) -> Result<InclusionProof, NodeError> {
        let ledger = self.shared.ledger.lock().await;
        let size = ledger.log().size();
        if index >= size {
            return Err(NodeError::Invalid(format!(
                "record {index} does not exist (the log has {size})"
            )));
        }
        let (record, hashes, root) = ledger.prove(index, size).await?;
        Ok(InclusionProof {
            origin: ledger.log().origin().to_string(),
            index,
            size,
            root,
            record,
            hashes,
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
        let peer = self.session_peer(agent)?;
        match self
            .shared
            .request(peer, ActionRequest::Inclusion { index, size })
            .await?
        {
            ActionResponse::Included { record, hashes } => {
                let record = CoSignedRecord::from_bytes(&record)
                    .map_err(|e| NodeError::BadResponse(e.to_string()))?;
                let hashes = hashes
                    .iter()
                    .take(super::protocol::MAX_PROOF_HASHES + 1)
                    .map(|h| <Hash>::try_from(h.as_slice()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| NodeError::BadResponse("a proof hash is not 32 bytes".into()))?;
                let proof = InclusionProof {
                    origin: agent.as_str().to_string(),
                    index,
                    size,
                    root,
                    record,
                    hashes,
                };
                if proof.verify() {
                    Ok(proof)
                } else {
                    Err(NodeError::BadResponse(
                        "the inclusion proof does not verify against the given root".into(),
                    ))
                }
            }
            ActionResponse::Refused { rule, reason } => {
                Err(NodeError::PeerRefused { rule, reason })
            }
            other => Err(NodeError::BadResponse(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// Sign and gossip a checkpoint of this node's log now (normally done
    /// every checkpoint interval); the note.
    pub async fn checkpoint(&self) -> Result<Vec<u8>, NodeError> {
        serve::checkpoint(&self.shared, true)
            .await?
            .ok_or(NodeError::Invalid("no checkpoint was made".into()))
    }

    /// The latest checkpoint note stored for this node's log (with the
    /// witnesses' cosignatures received so far).
    pub async fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self
            .shared
            .ledger
            .lock()
            .await
            .log()
            .latest_checkpoint()
            .await?)
    }

    /// Re-aggregate trust and publish this node's signed trust report now
    /// (normally done every report interval and on significant change).
    pub async fn publish_trust_report(&self) -> Result<(), NodeError> {
        self.shared
            .commands
            .send(Command::PublishReport)
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Publish raw bytes on a topic, bypassing every check. Honest nodes
    /// never need this; simulations and tests use it to play an attacker
    /// (e.g. an equivocating log).
    pub async fn publish_raw(&self, topic: Topic, bytes: Vec<u8>) {
        self.shared.publish(topic, bytes).await;
    }

    /// Checkpoint, close the ledger (everything is on disk) and stop the
    /// network.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let checkpointed = serve::checkpoint(&self.shared, false).await;
        self.shared.ledger.lock().await.close().await;
        let (tx, rx) = oneshot::channel();
        if self
            .shared
            .commands
            .send(Command::Stop(Some(tx)))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
        checkpointed.map(|_| ())
    }
}

fn grant_bytes(chain: &[SignedGrant]) -> Vec<Vec<u8>> {
    chain.iter().map(|g| g.0.clone()).collect()
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("did", &self.shared.did)
            .finish()
    }
}
