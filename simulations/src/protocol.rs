//! Network mode: the scenario played by real `mesh-node` instances in one
//! process, over libp2p's memory transport, with their real handshakes,
//! gossip, gates, trust engines and SQLite ledgers (docs/SIMULATIONS.md §3).
//!
//! The simulator only decides who tries to delegate what to whom (as model
//! mode does) and plays the adversaries' parts: their task handlers fail,
//! their crafted trust reports are signed with their keys and gossiped,
//! equivocators sign a forged checkpoint, free riders flood, sybils spawn
//! through the real gate. Everything else — whether the gate allows a
//! delegation, what each node's trust engine concludes from outcomes and
//! gossip, whether an equivocation is caught — is the nodes' own doing.
//! Time is simulated (a shared clock advanced per round); gossip runs in
//! real time, with a pause at each reporting epoch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesh_delegation::SpawnPolicy;
use mesh_iatp::envelope::PROTOCOL_VERSION;
use mesh_iatp::handshake::LocalAgent;
use mesh_iatp::{
    AgentCard, Did, Identity, OrgCredential, OrgPolicy, Score, Timestamp, TrustBundle,
};
use mesh_ledger::checkpoint::Checkpoint;
use mesh_node::node::gossip::Topic;
use mesh_node::node::{
    Clock, DelegateOptions, Limits, Node, NodeError, SpawnOptions, Task, TaskOutcome,
};
use mesh_trust::select::{Candidate, Selection};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::model::{self, Class, Results, RoundStats, Run};
use crate::roles::{self, below, crafted_entries, crafted_report, unit};
use crate::scenario::{Scenario, Strategy};

/// Why a protocol run failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// A node failed to start or connect.
    #[error("node {agent}: {source}")]
    Node {
        /// Which agent.
        agent: String,
        /// Why.
        source: NodeError,
    },
    /// Setting up identities or the bundle failed.
    #[error("setup: {0}")]
    Setup(String),
    /// The scenario asks for something network mode does not play.
    #[error("{0} runs in model and protocol modes only (network mode does not play it yet)")]
    Unsupported(String),
}

/// Simulated time shared by every node.
#[derive(Debug, Clone)]
pub struct SimClock(Arc<AtomicU64>);

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::Relaxed))
    }
}

/// Simulated time starts here (2026-01-01T00:00:00Z).
const T0: u64 = 1_767_225_600;
/// Peers each node connects to beyond its ring neighbour, when the mesh is
/// too large to connect fully.
pub(crate) const EXTRA_LINKS: usize = 7;
/// Up to this many agents, every agent connects to every other.
pub(crate) const FULL_MESH_UP_TO: usize = 64;
/// Honest nodes whose views give the mean scores by class.
pub(crate) const OBSERVERS: usize = 10;

struct Member {
    node: Node,
    identity: Identity,
    class: Class,
    org: usize,
    parent: Option<usize>,
    /// An adaptive agent spending its trust (its task handler reads it).
    defecting: Arc<AtomicBool>,
}

fn identity(seed: u64, label: &str) -> Identity {
    let secret: [u8; 32] = Sha256::digest(format!("mesh-sim {seed} {label}")).into();
    Identity::from_secret_bytes(&secret)
}

fn agent(
    org_key: &Identity,
    id: Identity,
    name: &str,
    until: Timestamp,
) -> Result<LocalAgent, ProtocolError> {
    let credential = OrgCredential {
        org: org_key.did().clone(),
        agent: id.did().clone(),
        roles: vec!["sim".into()],
        not_before: Timestamp(T0 - 86_400),
        expires: until,
    }
    .sign(org_key)
    .map_err(|e| ProtocolError::Setup(e.to_string()))?;
    let card = AgentCard {
        did: id.did().clone(),
        name: name.into(),
        credential,
        capabilities: vec![],
        versions: vec![PROTOCOL_VERSION],
        lineage: vec![],
    };
    LocalAgent::new(id, card).map_err(|e| ProtocolError::Setup(format!("card: {e}")))
}

struct Setup<'a> {
    s: &'a Scenario,
    dir: PathBuf,
    bundle: TrustBundle,
    org_keys: Vec<Identity>,
    clock: SimClock,
    until: Timestamp,
}

impl Setup<'_> {
    async fn start(
        &self,
        index: usize,
        name: &str,
        id: Identity,
        class: Class,
        org: usize,
        defecting: Arc<AtomicBool>,
    ) -> Result<Node, ProtocolError> {
        let local = agent(&self.org_keys[org], id, name, self.until)?;
        let good = self.s.adversary.as_ref().map_or(0.0, |a| a.good_fraction);
        let rng = Mutex::new(ChaCha20Rng::seed_from_u64(
            self.s.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        ));
        let spawn = if self.s.gate_enabled {
            SpawnPolicy::default()
        } else {
            SpawnPolicy {
                threshold: Score::saturating(0),
                budgets: vec![(Score::saturating(0), 1000)],
                max_depth: 3,
            }
        };
        let node = Node::builder()
            .agent(local)
            .bundle(self.bundle.clone())
            .data_dir(self.dir.join(name))
            .clock(self.clock.clone())
            .seed(Sha256::digest(format!("mesh-sim node {} {index}", self.s.seed)).into())
            // The simulator drives reports and checkpoints itself.
            .intervals(Duration::from_secs(3600), Duration::from_secs(3600))
            // Links are the simulator's: no DHT discovery.
            .kademlia(false)
            .limits(Limits {
                requests_per_sec: 20.0,
                request_burst: 40.0,
                ..Limits::default()
            })
            .spawn_policy(spawn)
            .task_handler(move |_: &Did, _: &Task| {
                let mut rng = rng.lock().unwrap_or_else(|e| e.into_inner());
                TaskOutcome {
                    success: roles::behaves(
                        class,
                        good,
                        defecting.load(Ordering::Relaxed),
                        &mut rng,
                    ),
                    output: ByteBuf::new(),
                    stopped: None,
                }
            })
            .listen(
                "/memory/0"
                    .parse()
                    .map_err(|e| ProtocolError::Setup(format!("{e}")))?,
            )
            .build()
            .await
            .map_err(|source| ProtocolError::Node {
                agent: name.into(),
                source,
            })?;
        Ok(node)
    }
}

async fn connect(members: &[Member], a: usize, b: usize) -> Result<(), ProtocolError> {
    let addr = members[b]
        .node
        .listen_addrs()
        .await
        .ok()
        .and_then(|mut v| v.pop())
        .ok_or_else(|| ProtocolError::Setup("a node listens nowhere".into()))?;
    members[a]
        .node
        .connect(addr)
        .await
        .map(|_| ())
        .map_err(|source| ProtocolError::Node {
            agent: format!("{a} connecting to {b}"),
            source,
        })
}

/// Run `s` with real nodes; their data goes under `dir`.
pub async fn run(
    s: &Scenario,
    dir: &Path,
    mut progress: impl FnMut(u64),
) -> Result<Run, ProtocolError> {
    if let Some(a) = s.adversary.as_ref() {
        if a.strategy == Strategy::Whitewashing {
            return Err(ProtocolError::Unsupported("strategy `whitewashing`".into()));
        }
        if a.padding {
            return Err(ProtocolError::Unsupported("`adversary.padding`".into()));
        }
    }
    let org_keys: Vec<Identity> = s
        .orgs
        .iter()
        .map(|o| identity(s.seed, &format!("org {}", o.name)))
        .collect();
    let bundle = TrustBundle::new(
        s.orgs
            .iter()
            .zip(&org_keys)
            .map(|(o, k)| OrgPolicy {
                name: o.name.clone(),
                root: k.did().clone(),
                initial_trust: o.initial_trust,
                trust_ceiling: o.trust_ceiling,
                capabilities: o.capabilities.clone(),
            })
            .collect(),
    )
    .map_err(|e| ProtocolError::Setup(e.to_string()))?;
    let clock = SimClock(Arc::new(AtomicU64::new(T0)));
    let until = Timestamp(T0 + s.rounds * s.round_secs + 86_400);
    let setup = Setup {
        s,
        dir: dir.to_path_buf(),
        bundle,
        org_keys,
        clock: clock.clone(),
        until,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(s.seed);

    // The agents, as real nodes.
    let mut members: Vec<Member> = Vec::new();
    for (i, (class, org)) in roles::population(s).into_iter().enumerate() {
        let id = identity(s.seed, &format!("agent {i}"));
        let defecting = Arc::new(AtomicBool::new(false));
        let node = setup
            .start(
                i,
                &format!("agent-{i}"),
                id.clone(),
                class,
                org,
                Arc::clone(&defecting),
            )
            .await?;
        members.push(Member {
            node,
            identity: id,
            class,
            org,
            parent: None,
            defecting,
        });
    }
    let n = members.len();
    if n <= FULL_MESH_UP_TO {
        for a in 0..n {
            for b in 0..a {
                connect(&members, a, b).await?;
            }
        }
    } else {
        for a in 1..n {
            connect(&members, a, a - 1).await?;
            for _ in 0..EXTRA_LINKS {
                let b = below(&mut rng, a);
                if b != a - 1 {
                    // A duplicate link is refused or reused; either is fine.
                    let _ = connect(&members, a, b).await;
                }
            }
        }
    }

    // Sybils spawn through the real gate; children that get certificates
    // run their own nodes, credentialed by their org.
    if let Some(a) = s
        .adversary
        .as_ref()
        .filter(|a| a.strategy == Strategy::Sybil)
    {
        for p in 0..n {
            if members[p].class != Class::Sybil {
                continue;
            }
            for k in 0..a.sybils_per_agent {
                let spawned = members[p]
                    .node
                    .spawn(SpawnOptions {
                        capabilities: vec![],
                        trust_ceiling: s.orgs[members[p].org].trust_ceiling,
                        lifetime_secs: s.rounds * s.round_secs + 86_400,
                    })
                    .await;
                let Ok(child) = spawned else { break };
                let index = members.len();
                let name = format!("agent-{p}-child-{k}");
                let org = members[p].org;
                let defecting = Arc::new(AtomicBool::new(false));
                let node = setup
                    .start(
                        index,
                        &name,
                        child.identity.clone(),
                        Class::SybilChild,
                        org,
                        Arc::clone(&defecting),
                    )
                    .await?;
                members.push(Member {
                    node,
                    identity: child.identity,
                    class: Class::SybilChild,
                    org,
                    parent: Some(p),
                    defecting,
                });
                connect(&members, index, p).await?;
                for _ in 0..3 {
                    let _ = connect(&members, index, below(&mut rng, n)).await;
                }
            }
        }
    }

    let honest: Vec<usize> = (0..members.len())
        .filter(|&i| members[i].class == Class::Honest)
        .collect();
    let capable = roles::capable_orgs(s);
    let index_of: BTreeMap<Did, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.node.did().clone(), i))
        .collect();
    let per = s.workload.tasks_per_agent;
    let (whole, frac) = (per.floor() as u64, per - per.floor());
    let mut timeline = Vec::new();
    let mut work = model::Work::default();
    let mut refusals: BTreeMap<String, u64> = BTreeMap::new();
    let mut aggregations = 0;
    let mut equivocated = false;

    for round in 1..=s.rounds {
        clock.0.store(T0 + round * s.round_secs, Ordering::Relaxed);
        let mut stats = RoundStats::new(round);
        // Each honest agent's tasks this round: pick as model mode does,
        // among its authenticated peers; the node's gate decides.
        let mut jobs = Vec::new();
        for &i in &honest {
            let tasks = whole + u64::from(unit(&mut rng) < frac);
            for _ in 0..tasks {
                stats.tasks += 1;
                let cap = below(&mut rng, s.workload.capabilities.len());
                let peers: Vec<usize> = members[i]
                    .node
                    .peers()
                    .await
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|p| index_of.get(&p.did).copied())
                    .filter(|&j| capable[cap].contains(&members[j].org))
                    .collect();
                let mut cands: Vec<usize> = Vec::new();
                let want = (s.workload.candidates as usize).min(peers.len());
                while cands.len() < want {
                    let j = peers[below(&mut rng, peers.len())];
                    if !cands.contains(&j) {
                        cands.push(j);
                    }
                }
                let chosen = if cands.is_empty() {
                    None
                } else if s.gate_enabled {
                    let min = f64::from(s.min_trust.get());
                    let mut seen: Vec<Candidate> = Vec::with_capacity(cands.len());
                    for &j in &cands {
                        seen.push(candidate(&members[i], &members[j]).await);
                    }
                    let (explore, draw) = (unit(&mut rng), unit(&mut rng));
                    Selection::default()
                        .pick(&seen, min, explore, draw)
                        .map(|k| cands[k])
                } else {
                    Some(cands[below(&mut rng, cands.len())])
                };
                let Some(j) = chosen else {
                    stats.refused += 1;
                    *refusals
                        .entry("trust_below_link_minimum".into())
                        .or_default() += 1;
                    continue;
                };
                let (resource, action) = s.workload.capabilities[cap].clone();
                let node = members[i].node.clone();
                let to = members[j].node.did().clone();
                let min_trust = if s.gate_enabled {
                    s.min_trust
                } else {
                    Score::saturating(0)
                };
                jobs.push((
                    j,
                    tokio::spawn(async move {
                        node.delegate_task(
                            &to,
                            Task {
                                resource,
                                action,
                                input: ByteBuf::new(),
                            },
                            DelegateOptions {
                                min_trust,
                                ..DelegateOptions::default()
                            },
                        )
                        .await
                    }),
                ));
            }
        }
        // Free riders flood whoever they are connected to.
        if let Some(per) = s
            .adversary
            .as_ref()
            .filter(|a| a.strategy == Strategy::FreeRider)
            .map(|a| a.flood_per_round)
        {
            for m in members.iter().filter(|m| m.class == Class::FreeRider) {
                let peers = m.node.peers().await.unwrap_or_default();
                for k in 0..per.min(200) {
                    if peers.is_empty() {
                        break;
                    }
                    let to = peers[k as usize % peers.len()].did.clone();
                    let node = m.node.clone();
                    tokio::spawn(async move {
                        let _ = node
                            .record_action(&to, mesh_ledger::record::ActionKind::Invoke, b"flood")
                            .await;
                    });
                }
            }
        }
        for (j, job) in jobs {
            match job.await {
                Ok(Ok(done)) => {
                    stats.count_delegated(members[j].class.is_malicious(), done.outcome.success);
                    work.credit(j);
                }
                Ok(Err(NodeError::Denied(d))) => {
                    stats.refused += 1;
                    *refusals.entry(d.rule().into()).or_default() += 1;
                }
                Ok(Err(e)) => {
                    let key = match e {
                        NodeError::PeerRefused { rule, .. } => format!("peer_refused:{rule}"),
                        other => format!(
                            "failed:{}",
                            other.to_string().split(':').next().unwrap_or("error")
                        ),
                    };
                    *refusals.entry(key).or_default() += 1;
                }
                Err(_) => *refusals.entry("failed:task_panicked".into()).or_default() += 1,
            }
        }

        if round % s.report_every == 0 {
            epoch(&members, round, clock.now(), roles::colluding(s), &mut rng).await;
            if !equivocated {
                equivocated = true;
                equivocate(&members).await;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
            for m in &members {
                let _ = m.node.refresh_trust().await;
            }
            aggregations += 1;
            let observers = observers(&honest);
            for (j, m) in members.iter().enumerate() {
                if m.class == Class::Adaptive {
                    let reputation = seen(&members, &observers, j).await;
                    m.defecting
                        .store(roles::defects(reputation, s), Ordering::Relaxed);
                }
            }
        }
        let (h, mal) = mean_scores(&members, &honest).await;
        stats.mean_score_honest = h;
        stats.mean_score_malicious = mal;
        timeline.push(stats);
        progress(round);
    }

    // Final scores as up to ten honest nodes see each agent.
    let observers = observers(&honest);
    let mut scores = Vec::with_capacity(members.len());
    for j in 0..members.len() {
        scores.push((members[j].class, seen(&members, &observers, j).await));
    }
    let classes: Vec<Class> = members.iter().map(|m| m.class).collect();
    let mut results = Results::summarize(
        s,
        "network",
        &classes,
        &timeline,
        refusals,
        scores,
        aggregations,
    );
    results.note_work(&classes, &work);
    for m in members {
        let _ = m.node.shutdown().await;
    }
    Ok(Run { results, timeline })
}

/// A reporting epoch: adversaries gossip their crafted reports, everyone
/// else publishes its real one.
async fn epoch(
    members: &[Member],
    round: u64,
    now: Timestamp,
    colluding: bool,
    rng: &mut ChaCha20Rng,
) {
    let cast = roles::Cast::new(&members.iter().map(|m| m.class).collect::<Vec<_>>());
    let dids: Vec<Did> = members.iter().map(|m| m.node.did().clone()).collect();
    for (i, m) in members.iter().enumerate() {
        match crafted_entries(i, m.class, m.parent, &dids, &cast, colluding, rng) {
            None => {
                let _ = m.node.publish_trust_report().await;
            }
            Some(entries) => {
                if let Some(bytes) = crafted_report(&m.identity, &entries, Vec::new(), round, now) {
                    let _ = m.node.publish_raw(Topic::Trust, bytes).await;
                }
            }
        }
    }
}

/// Equivocators sign a second history of their log (a forged root at the
/// size of their real checkpoint) and gossip both.
async fn equivocate(members: &[Member]) {
    for m in members.iter().filter(|m| m.class == Class::Equivocating) {
        let Ok(_) = m.node.checkpoint().await else {
            continue;
        };
        let Ok(size) = m.node.log_info().await.map(|i| i.size) else {
            continue;
        };
        let forged = Checkpoint {
            origin: m.node.did().as_str().into(),
            size,
            root: Sha256::digest(format!("a second history of {}", m.node.did())).into(),
        }
        .sign(&m.identity);
        if let Ok(note) = forged {
            let _ = m.node.publish_raw(Topic::Checkpoint, note.to_bytes()).await;
        }
    }
}

/// The honest nodes whose views stand for "the mesh's" in reports.
fn observers(honest: &[usize]) -> Vec<usize> {
    honest.iter().copied().take(OBSERVERS).collect()
}

/// Agent `j`'s mean score in the observers' views (its own excluded).
async fn seen(members: &[Member], observers: &[usize], j: usize) -> f64 {
    let mut views: Vec<f64> = Vec::with_capacity(observers.len());
    for &o in observers.iter().filter(|&&o| o != j) {
        views.push(score_of(&members[o], &members[j]).await);
    }
    views.iter().sum::<f64>() / views.len().max(1) as f64
}

/// `subject` as `viewer` sees it when choosing (score 0, unproven, if the
/// viewer's node stopped).
async fn candidate(viewer: &Member, subject: &Member) -> Candidate {
    viewer.node.explain(subject.node.did()).await.map_or(
        Candidate {
            score: 0.0,
            proven: false,
        },
        |e| Candidate {
            score: f64::from(e.score.get()),
            proven: e.proven,
        },
    )
}

/// `viewer`'s trust in `subject` (0 if the viewer's node stopped).
async fn score_of(viewer: &Member, subject: &Member) -> f64 {
    viewer
        .node
        .trust_of(subject.node.did())
        .await
        .map_or(0.0, |s| f64::from(s.get()))
}

/// Mean score of honest and malicious agents as up to ten honest nodes see
/// them.
async fn mean_scores(members: &[Member], honest: &[usize]) -> (f64, f64) {
    let observers = observers(honest);
    let (mut h, mut hn, mut m, mut mn) = (0.0, 0usize, 0.0, 0usize);
    for (j, x) in members.iter().enumerate() {
        let s = seen(members, &observers, j).await;
        if x.class.is_malicious() {
            m += s;
            mn += 1;
        } else {
            h += s;
            hn += 1;
        }
    }
    (h / hn.max(1) as f64, m / mn.max(1) as f64)
}

/// A temporary directory for the nodes' ledgers, removed when dropped: in
/// memory-backed /dev/shm when there is one (a round makes thousands of
/// fsyncs), else the system's temporary directory.
pub fn scratch_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix("mesh-sim-");
    if shm.is_dir() {
        builder.tempdir_in(shm)
    } else {
        builder.tempdir()
    }
}
