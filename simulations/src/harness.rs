//! Protocol mode on the deterministic harness: the scenario played by real
//! agents (`mesh_agent::Agent`, the same protocol brain a node runs) in one
//! thread, on virtual time, over the seeded in-memory network of
//! `mesh_agent::sim`. Handshakes, co-signing, gossip, gates, trust engines,
//! witnessing and anti-entropy are the agents' own; the simulator decides
//! who delegates what to whom (as model mode does) and plays the
//! adversaries' parts. The same scenario and seed give the same
//! `results.json` and `timeline.csv`, byte for byte.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mesh_agent::sim::{Mesh, NetConfig, OrgId, OrgOptions};
use mesh_agent::wire::{Task, TaskOutcome};
use mesh_agent::{AgentError, Command, DelegateOptions, OpId, Outcome, SpawnOptions, Topic};
use mesh_delegation::SpawnPolicy;
use mesh_iatp::{Did, Identity, Score};
use mesh_ledger::checkpoint::Checkpoint;
use mesh_ledger::record::ActionKind;
use mesh_trust::select::{Candidate, Selection};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::model::{self, Class, Results, RoundStats, Run};
use crate::protocol::{EXTRA_LINKS, FULL_MESH_UP_TO, OBSERVERS};
use crate::roles::{self, below, crafted_entries, crafted_report, pads, unit};
use crate::scenario::{Scenario, Strategy};

/// Virtual time a delegation round may take before its stragglers count
/// as failed.
const ROUND_LIMIT: Duration = Duration::from_secs(30);

struct Member {
    index: usize,
    class: Class,
    org: usize,
    parent: Option<usize>,
    /// An adaptive agent spending its trust (its task handler reads it).
    defecting: Arc<AtomicBool>,
}

fn tune(s: &Scenario) -> impl Fn(&mut mesh_agent::AgentConfig) + 'static {
    let gate = s.gate_enabled;
    move |c| {
        if !gate {
            c.spawn = SpawnPolicy {
                threshold: Score::saturating(0),
                budgets: vec![(Score::saturating(0), 1000)],
                max_depth: 3,
            };
        }
        // The simulator drives reports and checkpoints itself.
        c.settings.report_interval = Duration::from_secs(1 << 30);
        c.settings.checkpoint_interval = Duration::from_secs(1 << 30);
        c.settings.limits.requests_per_sec = 20.0;
        c.settings.limits.request_burst = 40.0;
    }
}

/// Connect the `n` agents (sybils' children included): every pair up to
/// [`FULL_MESH_UP_TO`] agents, otherwise each to its ring neighbour and
/// [`EXTRA_LINKS`] others drawn from the whole population, so an agent's
/// peers, among whom it draws candidates, are a uniform sample of the
/// population, as model mode's candidates are.
fn link(mesh: &mut Mesh, n: usize, rng: &mut ChaCha20Rng) {
    if n <= FULL_MESH_UP_TO {
        for a in 0..n {
            for b in 0..a {
                mesh.connect(a, b);
            }
        }
        return;
    }
    for a in 0..n {
        mesh.connect(a, (a + 1) % n);
        for _ in 0..EXTRA_LINKS {
            let b = below(rng, n);
            if b != a && b != (a + 1) % n {
                mesh.connect(a, b);
            }
        }
    }
}

/// Agent `index` does its tasks well or badly as its `class` does
/// ([`roles::behaves`]), with its own seeded draws; `defecting` is read at
/// each task.
fn behave(mesh: &mut Mesh, index: usize, class: Class, s: &Scenario, defecting: Arc<AtomicBool>) {
    let good = s.adversary.as_ref().map_or(0.0, |a| a.good_fraction);
    let mut task_rng =
        ChaCha20Rng::seed_from_u64(s.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    mesh.set_handler(index, Duration::ZERO, move |_: &Did, _: &Task| {
        TaskOutcome {
            success: roles::behaves(
                class,
                good,
                defecting.load(Ordering::Relaxed),
                &mut task_rng,
            ),
            output: ByteBuf::new(),
            stopped: None,
        }
    });
}

/// Agent `index`, just added to the mesh, joins the members with its
/// class's behaviour.
fn enlist(
    mesh: &mut Mesh,
    members: &mut Vec<Member>,
    s: &Scenario,
    (index, class, org, parent): (usize, Class, usize, Option<usize>),
) {
    let defecting = Arc::new(AtomicBool::new(false));
    behave(mesh, index, class, s, Arc::clone(&defecting));
    members.push(Member {
        index,
        class,
        org,
        parent,
        defecting,
    });
}

/// Run `s` on the harness.
pub fn run(s: &Scenario, mut progress: impl FnMut(u64)) -> Run {
    let net = NetConfig {
        tick: Duration::from_secs(1),
        ..NetConfig::default()
    };
    let mut mesh = Mesh::new(s.seed, net);
    mesh.record_events(false);
    let orgs: Vec<OrgId> = s
        .orgs
        .iter()
        .map(|o| {
            mesh.add_org_with(
                &o.name,
                OrgOptions {
                    initial_trust: o.initial_trust.get(),
                    trust_ceiling: o.trust_ceiling.get(),
                    capabilities: o.capabilities.iter().map(ToString::to_string).collect(),
                    listed: true,
                },
            )
        })
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(s.seed);

    let mut members: Vec<Member> = Vec::new();
    for (i, (class, org)) in roles::population(s).into_iter().enumerate() {
        let index = mesh.add_agent_with(orgs[org], &format!("agent-{i}"), tune(s));
        enlist(&mut mesh, &mut members, s, (index, class, org, None));
    }
    let n = members.len();

    // Sybils spawn through the real gate; children that get certificates
    // join as agents of their parent's org.
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
                let spawned = mesh.run_command(
                    p,
                    Command::Spawn(SpawnOptions {
                        capabilities: vec![],
                        trust_ceiling: s.orgs[members[p].org].trust_ceiling,
                        lifetime_secs: s.rounds * s.round_secs + 86_400,
                    }),
                    ROUND_LIMIT,
                );
                let Some(Ok(Outcome::Spawned(child))) = spawned else {
                    break;
                };
                let org = members[p].org;
                let identity: Identity = child.identity.clone();
                let index = mesh.add_agent_as(
                    orgs[org],
                    &format!("agent-{p}-child-{k}"),
                    identity,
                    tune(s),
                );
                // A child fails its tasks as its parent does (without a
                // handler of its own, the harness would answer success).
                enlist(
                    &mut mesh,
                    &mut members,
                    s,
                    (index, Class::SybilChild, org, Some(p)),
                );
            }
        }
    }
    link(&mut mesh, members.len(), &mut rng);
    mesh.run_for(Duration::from_secs(5));

    let honest: Vec<usize> = (0..members.len())
        .filter(|&i| members[i].class == Class::Honest)
        .collect();
    let capable = roles::capable_orgs(s);
    let per = s.workload.tasks_per_agent;
    let (whole, frac) = (per.floor() as u64, per - per.floor());
    let mut timeline = Vec::new();
    let mut work = model::Work::default();
    let mut refusals: BTreeMap<String, u64> = BTreeMap::new();
    let mut aggregations = 0;
    let mut equivocated = false;
    let mut new_identities = 0;
    let start = mesh.now();

    for round in 1..=s.rounds {
        let mut stats = RoundStats::new(round);
        let now = mesh.agent_now().wall;
        let mut jobs: Vec<(usize, usize, OpId)> = Vec::new();
        for &i in &honest {
            let tasks = whole + u64::from(unit(&mut rng) < frac);
            for _ in 0..tasks {
                stats.tasks += 1;
                let cap = below(&mut rng, s.workload.capabilities.len());
                let mut peers: Vec<usize> = mesh
                    .agent(i)
                    .sessions()
                    .filter_map(|sess| mesh.index_of(&sess.remote))
                    .filter(|&j| capable[cap].contains(&members[j].org))
                    .collect();
                peers.sort();
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
                    let seen: Vec<Candidate> = cands
                        .iter()
                        .map(|&j| {
                            let engine = mesh.agent(i).trust();
                            Candidate {
                                score: f64::from(engine.score(mesh.did(j), now).get()),
                                proven: engine.is_proven(mesh.did(j), now),
                            }
                        })
                        .collect();
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
                let min_trust = if s.gate_enabled {
                    s.min_trust
                } else {
                    Score::saturating(0)
                };
                let op = mesh.command(
                    i,
                    Command::Delegate {
                        delegatee: mesh.did(j).clone(),
                        task: Task {
                            resource,
                            action,
                            input: ByteBuf::new(),
                        },
                        options: DelegateOptions {
                            min_trust,
                            ..DelegateOptions::default()
                        },
                    },
                );
                jobs.push((i, j, op));
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
                let mut peers: Vec<Did> = mesh
                    .agent(m.index)
                    .sessions()
                    .map(|x| x.remote.clone())
                    .collect();
                peers.sort();
                for k in 0..per.min(200) {
                    if peers.is_empty() {
                        break;
                    }
                    let to = peers[k as usize % peers.len()].clone();
                    let _ = mesh.command(
                        m.index,
                        Command::Record {
                            counterparty: to,
                            kind: ActionKind::Invoke,
                            payload: b"flood".to_vec(),
                        },
                    );
                }
            }
        }
        // The round lasts its virtual seconds; stragglers get a little more.
        let round_end = start.plus(Duration::from_secs(round * s.round_secs));
        let deadline = round_end.plus(ROUND_LIMIT);
        let mut results: Vec<Option<Result<Outcome, AgentError>>> = vec![None; jobs.len()];
        mesh.run_for(round_end.since(mesh.now()));
        let mut waiting: Vec<(usize, OpId)> = jobs.iter().map(|(i, _, op)| (*i, *op)).collect();
        waiting.retain(|(i, op)| !mesh.is_done(*i, *op));
        if !waiting.is_empty() {
            mesh.run_until(deadline.since(mesh.now()), |m| {
                waiting.iter().all(|(i, op)| m.is_done(*i, *op))
            });
        }
        for (k, (i, _, op)) in jobs.iter().enumerate() {
            results[k] = mesh.result(*i, *op);
        }
        for ((_, j, _), result) in jobs.iter().zip(results) {
            match result {
                Some(Ok(Outcome::Delegated(done))) => {
                    stats.count_delegated(members[*j].class.is_malicious(), done.outcome.success);
                    work.credit(*j);
                }
                Some(Err(AgentError::Denied(d))) => {
                    stats.refused += 1;
                    *refusals.entry(d.rule().into()).or_default() += 1;
                }
                Some(Err(AgentError::PeerRefused { rule, .. })) => {
                    *refusals.entry(format!("peer_refused:{rule}")).or_default() += 1;
                }
                Some(Ok(_)) | Some(Err(_)) => {
                    *refusals.entry("failed:request".into()).or_default() += 1;
                }
                None => *refusals.entry("failed:timeout".into()).or_default() += 1,
            }
        }

        if round % s.report_every == 0 {
            epoch(&mut mesh, &members, round, s, &mut rng);
            if !equivocated {
                equivocated = true;
                equivocate(&mut mesh, &members);
            }
            mesh.run_for(Duration::from_secs(2));
            for m in &members {
                let _ = mesh.command(m.index, Command::RefreshTrust);
            }
            aggregations += 1;
            new_identities += adapt(&mut mesh, &mut members, s, &orgs, &honest);
        }
        let (h, mal) = mean_scores(&mesh, &members, &honest);
        stats.mean_score_honest = h;
        stats.mean_score_malicious = mal;
        timeline.push(stats);
        progress(round);
    }

    let observers: Vec<usize> = honest.iter().copied().take(OBSERVERS).collect();
    let scores = (0..members.len()).map(|j| (members[j].class, seen(&mesh, &observers, j)));
    let classes: Vec<Class> = members.iter().map(|m| m.class).collect();
    let mut results = Results::summarize(
        s,
        "protocol",
        &classes,
        &timeline,
        refusals,
        scores,
        aggregations,
    );
    results.note_work(&classes, &work);
    results.new_identities = new_identities;
    Run { results, timeline }
}

/// After an epoch, adaptive agents decide whether to defect (by their
/// reputation among the observers), and caught whitewashers come back as
/// a new agent of the same org (a fresh identity nobody has evidence of),
/// linked to the old one's peers, while the old one leaves. Returns how
/// many new identities were taken.
fn adapt(
    mesh: &mut Mesh,
    members: &mut Vec<Member>,
    s: &Scenario,
    orgs: &[OrgId],
    honest: &[usize],
) -> u64 {
    let observers: Vec<usize> = honest.iter().copied().take(OBSERVERS).collect();
    let mut caught = Vec::new();
    for (j, m) in members.iter().enumerate() {
        let reputation = || seen(mesh, &observers, j);
        match m.class {
            Class::Adaptive => m
                .defecting
                .store(roles::defects(reputation(), s), Ordering::Relaxed),
            Class::Whitewasher if is_linked(mesh, j) && roles::caught(reputation(), s) => {
                caught.push(j);
            }
            _ => {}
        }
    }
    for &j in &caught {
        let peers: Vec<usize> = mesh
            .agent(j)
            .sessions()
            .filter_map(|x| mesh.index_of(&x.remote))
            .collect();
        for &p in &peers {
            mesh.disconnect(j, p);
        }
        let org = members[j].org;
        let index = mesh.add_agent_with(
            orgs[org],
            &format!("agent-{j}-again-{}", members.len()),
            tune(s),
        );
        enlist(mesh, members, s, (index, Class::Whitewasher, org, None));
        for p in peers {
            mesh.connect(index, p);
        }
    }
    if !caught.is_empty() {
        mesh.run_for(Duration::from_secs(5));
    }
    caught.len() as u64
}

/// Whether agent `j` still holds any session (a whitewasher's discarded
/// identity holds none).
fn is_linked(mesh: &Mesh, j: usize) -> bool {
    mesh.agent(j).sessions().next().is_some()
}

/// How long a reporting epoch's publications are spread over: agents'
/// report timers are not synchronised (a thousand reports published in the
/// same millisecond would put ~16 million gossip copies in flight at once).
const REPORT_SPREAD: Duration = Duration::from_secs(10);

/// A reporting epoch: adversaries gossip their crafted reports, everyone
/// else publishes its real one, one after another over [`REPORT_SPREAD`].
fn epoch(mesh: &mut Mesh, members: &[Member], round: u64, s: &Scenario, rng: &mut ChaCha20Rng) {
    let colluding = roles::colluding(s);
    let cast = roles::Cast::new(&members.iter().map(|m| m.class).collect::<Vec<_>>());
    let dids: Vec<Did> = (0..members.len()).map(|i| mesh.did(i).clone()).collect();
    let now = mesh.agent_now().wall;
    let gap = REPORT_SPREAD / u32::try_from(members.len().max(1)).unwrap_or(u32::MAX);
    for (i, m) in members.iter().enumerate() {
        mesh.run_for(gap);
        match crafted_entries(i, m.class, m.parent, &dids, &cast, colluding, rng) {
            None => {
                let _ = mesh.command(m.index, Command::PublishReport);
            }
            Some(entries) => {
                let identity = mesh.agent(m.index).local().identity().clone();
                // A padding spy echoes the report of its org's first
                // honest agent (model mode's anchor), minus itself.
                let echoed = members
                    .iter()
                    .position(|x| x.class == Class::Honest && x.org == m.org)
                    .filter(|_| pads(m.class, s));
                let padding = echoed.map_or_else(Vec::new, |a| {
                    let me = dids[i].to_string();
                    let mut e = mesh.agent(a).trust().opinions(now);
                    e.retain(|x| x.subject != me);
                    e
                });
                if let Some(data) = crafted_report(&identity, &entries, padding, round, now) {
                    let _ = mesh.command(
                        m.index,
                        Command::PublishRaw {
                            topic: Topic::Trust,
                            data,
                        },
                    );
                }
            }
        }
    }
}

/// Equivocators sign a second history of their log (a forged root at the
/// size of their real checkpoint) and gossip both.
fn equivocate(mesh: &mut Mesh, members: &[Member]) {
    for m in members.iter().filter(|m| m.class == Class::Equivocating) {
        let _ = mesh.command(m.index, Command::Checkpoint { force: true });
        let agent = mesh.agent(m.index);
        let forged = Checkpoint {
            origin: agent.did().as_str().into(),
            size: agent.log_size(),
            root: Sha256::digest(format!("a second history of {}", agent.did())).into(),
        }
        .sign(agent.local().identity());
        if let Ok(note) = forged {
            let _ = mesh.command(
                m.index,
                Command::PublishRaw {
                    topic: Topic::Checkpoint,
                    data: note.to_bytes(),
                },
            );
        }
    }
}

/// Agent `j`'s mean score in the observers' views (its own excluded).
fn seen(mesh: &Mesh, observers: &[usize], j: usize) -> f64 {
    let now = mesh.agent_now().wall;
    let views: Vec<f64> = observers
        .iter()
        .filter(|&&o| o != j)
        .map(|&o| f64::from(mesh.agent(o).trust_of(mesh.did(j), now).get()))
        .collect();
    views.iter().sum::<f64>() / views.len().max(1) as f64
}

/// Mean score of honest and malicious agents as the observers see them.
fn mean_scores(mesh: &Mesh, members: &[Member], honest: &[usize]) -> (f64, f64) {
    let observers: Vec<usize> = honest.iter().copied().take(OBSERVERS).collect();
    let (mut h, mut hn, mut m, mut mn) = (0.0, 0usize, 0.0, 0usize);
    for (j, x) in members.iter().enumerate() {
        let s = seen(mesh, &observers, j);
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
