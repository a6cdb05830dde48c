//! The node as the dashboard sees it: [`NodeView`] implements
//! `mesh_dashboards`' read-only view (and its token-guarded revoke) over
//! the node's state, so the dashboard never touches libp2p.

use mesh_ledger::LogStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mesh_dashboards::view::{
    Activity, CheckpointStatus, Cosignature, InclusionProof, LedgerStatus, Link, NodeIdentity,
    Peer, RecordEntry, Refusal, RevokeOutcome, Verification, ViewError,
};
use mesh_dashboards::{Dashboard, DashboardConfig, DashboardError, MeshControl, MeshView};
use mesh_delegation::{SignedGrant, SignedSpawnCertificate, TargetKind};
use mesh_iatp::Did;
use mesh_ledger::checkpoint::{Checkpoint, verify_cosignature, witness_verifier};
use mesh_ledger::note::Note;
use mesh_ledger::record::CoSignedRecord;
use mesh_ledger::verify::verify_log_at;
use mesh_trust::Explanation;
use tokio::sync::broadcast;

use mesh_agent::kind_name;
use mesh_delegation::Decision;

use super::{Node, NodeError, NodeEvent};

/// A [`Node`] seen through the dashboard's view traits.
pub struct NodeView {
    node: Node,
    listen: Vec<String>,
    activity: broadcast::Sender<Activity>,
}

/// Serve `node`'s dashboard (see `mesh_dashboards`).
pub async fn serve_dashboard(
    node: &Node,
    config: DashboardConfig,
) -> Result<Dashboard, DashboardError> {
    mesh_dashboards::serve(Arc::new(NodeView::new(node.clone()).await), config).await
}

fn hex(bytes: &[u8]) -> String {
    mesh_delegation::grant::hex(bytes)
}

/// The wall clock in Unix milliseconds, for events timed across
/// processes on one host (`benchmarks/scale/`).
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unavailable(e: impl std::fmt::Display) -> ViewError {
    ViewError::Unavailable(e.to_string())
}

impl NodeView {
    /// Start translating the node's events into dashboard activity.
    pub async fn new(node: Node) -> NodeView {
        let listen = node
            .listen_addrs()
            .await
            .map(|addrs| addrs.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let (activity, _) = broadcast::channel(1024);
        let mut events = node.events();
        let tx = activity.clone();
        let clock = node.clock().clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        if let Some(a) = activity_of(event, clock.now().0) {
                            // Nobody listening yet is fine.
                            let _ = tx.send(a);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(missed = n, "dashboard missed node events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        NodeView {
            node,
            listen,
            activity,
        }
    }
}

fn peer_name(peer: &Did) -> String {
    peer.to_string()
}

/// What the dashboard shows of a node event (`None`: not shown).
fn activity_of(event: NodeEvent, at: u64) -> Option<Activity> {
    let refusal = |kind, subject, rule, reason| {
        Some(Activity::Refusal(Refusal {
            at,
            kind,
            subject,
            rule,
            reason,
        }))
    };
    match event {
        NodeEvent::SessionEstablished(s) => Some(Activity::PeerJoined {
            did: s.remote.to_string(),
            name: s.remote_card.name.clone(),
            org: s.policy.name.clone(),
        }),
        NodeEvent::SessionClosed { peer } => Some(Activity::PeerLeft {
            peer_id: super::peer_of(&peer).map_or_else(|| peer.to_string(), |p| p.to_string()),
        }),
        NodeEvent::RefusedPeer { peer, refusal: r } => refusal(
            "handshake_refused",
            peer_name(&peer),
            r.name().to_string(),
            r.to_string(),
        ),
        NodeEvent::RefusedByPeer { peer, code, reason } => refusal(
            "refused_by_peer",
            peer_name(&peer),
            reason.clone(),
            format!("the peer refused our handshake with code {code} ({reason})"),
        ),
        NodeEvent::GateDecision {
            what,
            decision: Decision::Deny(denial),
            ..
        } => refusal(
            "gate_denied",
            what,
            denial.rule().to_string(),
            denial.to_string(),
        ),
        NodeEvent::ActionRefused { peer, refusal: r } => refusal(
            "action_refused",
            peer_name(&peer),
            r.rule().to_string(),
            r.to_string(),
        ),
        NodeEvent::Rejected { peer, what, reason } => {
            refusal("rejected", peer_name(&peer), what.to_string(), reason)
        }
        NodeEvent::Throttled {
            peer,
            strikes,
            banned,
        } => refusal(
            "throttled",
            peer_name(&peer),
            if banned { "banned" } else { "rate_limited" }.into(),
            format!("{strikes} strikes{}", if banned { "; banned" } else { "" }),
        ),
        NodeEvent::Recorded { index, kind, with } => Some(Activity::Recorded {
            index,
            kind: kind_name(kind).to_string(),
            with: with.to_string(),
        }),
        NodeEvent::Revocation { revoker, target } => Some(Activity::Revocation {
            revoker: revoker.to_string(),
            target: hex(&target),
        }),
        NodeEvent::Witnessed { origin, size } => Some(Activity::Witnessed { origin, size }),
        NodeEvent::Cosigned { witness, size } => Some(Activity::Cosigned {
            witness: witness.to_string(),
            size,
        }),
        NodeEvent::Equivocation { offender } => Some(Activity::Equivocation {
            offender: offender.to_string(),
        }),
        NodeEvent::TrustReport { reporter, sequence } => Some(Activity::TrustReport {
            reporter: reporter.to_string(),
            sequence,
            at_ms: unix_millis(),
        }),
        NodeEvent::ReportPublished { sequence } => Some(Activity::ReportPublished {
            sequence,
            at_ms: unix_millis(),
        }),
        NodeEvent::GateDecision { .. }
        | NodeEvent::TaskDone { .. }
        | NodeEvent::TaskAccepted { .. }
        | NodeEvent::TaskAnswered { .. }
        | NodeEvent::CheckpointSigned { .. } => None,
    }
}

fn record_entry(index: u64, co: &CoSignedRecord) -> RecordEntry {
    let r = co.record();
    RecordEntry {
        index,
        kind: kind_name(r.kind).to_string(),
        actor: r.actor.to_string(),
        counterparty: r.counterparty.to_string(),
        grant: r.grant.as_ref().map(|g| hex(g)),
        payload_digest: hex(&r.payload_digest),
        timestamp: r.timestamp.0,
        leaf_hash: hex(&co.leaf_hash()),
    }
}

/// The cosignatures on a checkpoint note, each checked under the DID its
/// key name states.
fn cosignatures(note: &Note, origin: &str) -> Vec<Cosignature> {
    let mut seen = Vec::new();
    for line in note.signatures.iter().filter(|l| l.name != origin) {
        if seen.iter().any(|c: &Cosignature| c.witness == line.name) {
            continue;
        }
        let time = Did::parse(&line.name)
            .ok()
            .and_then(|did| witness_verifier(&line.name, did).ok())
            .and_then(|v| verify_cosignature(note, &v).ok());
        seen.push(Cosignature {
            witness: line.name.clone(),
            time: time.map(|t| t.0),
            valid: time.is_some(),
        });
    }
    seen
}

impl MeshView for NodeView {
    fn identity(&self) -> NodeIdentity {
        let node = &self.node;
        let card = node.local().card();
        let org = card
            .credential
            .verify_signature()
            .ok()
            .and_then(|c| node.bundle().orgs().iter().find(|o| o.root == c.org))
            .map(|o| o.name.clone())
            .unwrap_or_default();
        NodeIdentity {
            did: node.did().to_string(),
            peer_id: node.peer_id().to_string(),
            name: card.name.clone(),
            org,
            listen: self.listen.clone(),
        }
    }

    async fn peers(&self) -> Vec<Peer> {
        let peers = self.node.peers().await.unwrap_or_default();
        let mut out = Vec::with_capacity(peers.len());
        for p in peers {
            let tier = match self.node.tier_of(&p.did).await {
                Ok(t) => t,
                Err(_) => continue,
            };
            out.push(Peer {
                tier,
                did: p.did,
                name: p.name,
                org: p.org,
                score: p.score,
            });
        }
        out
    }

    async fn explain(&self, agent: &Did) -> Result<Explanation, ViewError> {
        self.node.explain(agent).await.map_err(unavailable)
    }

    async fn links(&self) -> Vec<Link> {
        self.node.inspect(links_of).await.unwrap_or_default()
    }

    async fn ledger(&self) -> Result<LedgerStatus, ViewError> {
        let info = self.node.log_info().await.map_err(unavailable)?;
        let note = self.node.latest_checkpoint().await.map_err(unavailable)?;
        let checkpoint = note.and_then(|bytes| {
            let note = Note::parse(&bytes).ok()?;
            let cp = Checkpoint::parse_body(&note.text).ok()?;
            Some(CheckpointStatus {
                size: cp.size,
                root: hex(&cp.root),
                note: String::from_utf8_lossy(&bytes).into_owned(),
                cosignatures: cosignatures(&note, &info.origin),
            })
        });
        let witnessing = self
            .node
            .parts
            .store
            .witnessed()
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|(origin, size, root)| mesh_dashboards::view::WitnessedLog {
                origin,
                size,
                root: hex(&root),
            })
            .collect();
        Ok(LedgerStatus {
            origin: info.origin,
            size: info.size,
            root: hex(&info.root),
            checkpoint,
            witnessing,
        })
    }

    async fn records(&self, from: u64, limit: u64) -> Result<Vec<RecordEntry>, ViewError> {
        let log = self
            .node
            .parts
            .store
            .log(self.node.did().as_str())
            .await
            .map_err(unavailable)?;
        let end = log.size().min(from.saturating_add(limit));
        let mut out = Vec::new();
        for index in from..end {
            let co = log.record(index).await.map_err(unavailable)?;
            out.push(record_entry(index, &co));
        }
        Ok(out)
    }

    async fn prove(&self, index: u64) -> Result<InclusionProof, ViewError> {
        let proof = self.node.prove(index).await.map_err(|e| match e {
            NodeError::Invalid(m) => ViewError::NotFound(m),
            other => unavailable(other),
        })?;
        Ok(InclusionProof {
            verified: proof.verify(),
            origin: proof.origin,
            record: record_entry(index, &proof.record),
            size: proof.size,
            root: hex(&proof.root),
            path: proof.hashes.iter().map(|h| hex(h)).collect(),
        })
    }

    async fn verify(&self) -> Result<Verification, ViewError> {
        // The log keeps growing while it is read: verify it as of its size
        // now (appends commit the size with the records, so that prefix is
        // whole); later records are the next verification's.
        let store = self.node.parts.store.clone();
        let info = self.node.log_info().await.map_err(unavailable)?;
        let (origin, size) = (info.origin, info.size);
        // Witnesses: every peer seen, and every DID-named cosigner of the
        // latest checkpoint (a DID names its own key).
        let mut names: Vec<String> = self
            .node
            .peers()
            .await
            .unwrap_or_default()
            .iter()
            .map(|p| p.did.to_string())
            .collect();
        if let Some(cp) = self.ledger().await?.checkpoint {
            names.extend(cp.cosignatures.into_iter().map(|c| c.witness));
        }
        names.sort();
        names.dedup();
        let verifiers: Vec<_> = names
            .iter()
            .filter_map(|n| witness_verifier(n, Did::parse(n).ok()?).ok())
            .collect();
        let started = Instant::now();
        // On a thread of its own: each page of 10,000 records is checked
        // (two signatures a record) between reads, which on a runtime worker
        // would hold up the node's own driver for the whole page.
        let runtime = tokio::runtime::Handle::current();
        let report = tokio::task::spawn_blocking(move || {
            runtime.block_on(verify_log_at(&store, &origin, size, &verifiers, |_, _| {}))
        })
        .await
        .map_err(|e| unavailable(format!("the verification stopped: {e}")))?
        .map_err(unavailable)?;
        let took = started.elapsed();
        self.node.metrics().verify_took("full_log", took);
        Ok(Verification {
            records: report.records,
            checkpoints: report.checkpoints,
            cosignatures: report.cosignatures,
            unknown_cosigners: report.unknown_cosigners,
            sound: report.is_sound(),
            faults: report.faults.iter().map(ToString::to_string).collect(),
            millis: took.as_millis() as u64,
            at: unix_now(),
        })
    }

    async fn metrics(&self) -> String {
        let size = self.node.log_info().await.map_or(0, |i| i.size);
        let peers = self
            .node
            .inspect(|a| a.sessions().count())
            .await
            .unwrap_or(0);
        self.node.metrics().encode(peers, size)
    }

    fn activity(&self) -> broadcast::Receiver<Activity> {
        self.activity.subscribe()
    }
}

impl MeshControl for NodeView {
    async fn revoke(&self, link: [u8; 32], reason: &str) -> Result<RevokeOutcome, ViewError> {
        let revoked = self.node.revoke(&link, reason).await.map_err(|e| match e {
            NodeError::UnknownLink(_) => ViewError::NotFound(e.to_string()),
            NodeError::Invalid(m) => ViewError::Invalid(m),
            other => unavailable(other),
        })?;
        Ok(RevokeOutcome {
            link: hex(&link),
            record: revoked.record.map(|r| r.index),
        })
    }
}

/// The grants and spawn certificates the agent issued or holds.
fn links_of(agent: &mesh_agent::Agent) -> Vec<Link> {
    let mut links: BTreeMap<[u8; 32], Link> = BTreeMap::new();
    let mut add = |bytes: &[u8], kind: TargetKind, issued_here: bool| {
        let link = match kind {
            TargetKind::SpawnCertificate => {
                let signed = SignedSpawnCertificate(bytes.to_vec());
                signed.open().ok().map(|c| {
                    (
                        signed.hash(),
                        c.parent,
                        c.child,
                        c.capabilities,
                        c.expires,
                        "spawn",
                    )
                })
            }
            _ => {
                let signed = SignedGrant(bytes.to_vec());
                signed.open().ok().map(|g| {
                    (
                        signed.hash(),
                        g.issuer,
                        g.audience,
                        g.capabilities,
                        g.expires,
                        "grant",
                    )
                })
            }
        };
        if let Some((hash, issuer, audience, caps, expires, kind)) = link {
            let entry = links.entry(hash).or_insert_with(|| Link {
                hash: hex(&hash),
                kind,
                issuer: issuer.to_string(),
                audience: audience.to_string(),
                capabilities: caps.iter().map(ToString::to_string).collect(),
                expires: expires.0,
                revoked: agent.is_revoked(&hash),
                issued_here,
            });
            entry.issued_here |= issued_here;
        }
    };
    for issued in agent.issued().values() {
        let last = issued.chain.len().saturating_sub(1);
        for (i, bytes) in issued.chain.iter().enumerate() {
            let kind = if i == last {
                issued.kind
            } else {
                TargetKind::Grant
            };
            add(bytes, kind, i == last);
        }
    }
    for chain in agent.held().values() {
        for g in chain {
            add(&g.0, TargetKind::Grant, false);
        }
    }
    links.into_values().collect()
}
