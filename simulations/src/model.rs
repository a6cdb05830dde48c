//! Model mode: the scenario as a deterministic round-based simulation,
//! without networking, at 100,000-agent scale (docs/SIMULATIONS.md §3).
//!
//! What is real and what is modelled:
//! - Scores are the engine's own arithmetic (`mesh_trust::scoring`):
//!   evidence kinds with the engine's weights in its five dimensions (a
//!   task success 1.0, a failure 2.0, a rate-limit strike 1.0), the Beta
//!   estimate with the org's initial trust as prior, the blend with the
//!   global score by `β = n / (n + k)`, the org ceiling, 0 once an
//!   equivocation is proven; global scores and credibility are
//!   `scoring::global_trust`. Simplified: no decay (a run is short in
//!   simulated time), and one global view shared by every agent.
//! - The gate's rules that decide here are mesh-delegation's: a delegatee
//!   under the grant's minimum trust is refused (`trust_below_link_minimum`),
//!   and spawning obeys `SpawnPolicy` (threshold and budget by score).
//! - Signatures, ledgers and gossip are not simulated: every report reaches
//!   every agent at the end of its epoch, and an equivocation is proven at
//!   the first epoch after it (a witness catches the fork).
//!
//! Same scenario and seed → the same results, bit for bit.

use std::collections::{BTreeMap, HashMap};

use mesh_delegation::SpawnPolicy;
use mesh_iatp::Score;
use mesh_trust::scoring::{self, GlobalInputs, Opinion, Tally};
use mesh_trust::select::Selection;
use mesh_trust::{EvidenceKind, TrustConfig};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

pub use crate::class::Class;
pub use crate::results::{Results, RoundStats, Run, Work, gini};
use crate::scenario::{Scenario, Strategy};

/// How often an honest agent fails a task anyway.
pub const HONEST_ERROR: f64 = 0.02;
/// Evidence claimed by a crafted (praising or slandering) report entry.
pub const CRAFTED_EVIDENCE: f64 = 100.0;
/// Entries in an adversary's crafted report (honest reports hold the
/// engine's `max_report_entries`, most-evidenced first).
pub const REPORT_ENTRIES: usize = 20;
/// Honest anchors (pre-trusted) per organisation: 1% of its honest agents,
/// at least one.
pub const ANCHOR_SHARE: f64 = 0.01;

struct Agent {
    class: Class,
    org: usize,
    initial: f64,
    ceiling: f64,
    /// Sybil child → parent; spy → nothing.
    parent: Option<u32>,
}

/// Uniform in [0, 1).
pub(crate) fn unit(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Uniform in 0..n (n > 0).
pub(crate) fn below(rng: &mut ChaCha20Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Whether an agent of `class` does a task well this time (`good_fraction`
/// is the camouflaged agents'). Shared by both modes.
pub fn behaves(class: Class, good_fraction: f64, rng: &mut ChaCha20Rng) -> bool {
    match class {
        Class::Honest => unit(rng) >= HONEST_ERROR,
        Class::Camouflaged => unit(rng) < good_fraction,
        Class::Spy | Class::Equivocating => true,
        Class::AlwaysBad
        | Class::Collective
        | Class::Sybil
        | Class::SybilChild
        | Class::FreeRider => false,
    }
}

/// The agents of each class, by index, gathered once per reporting epoch
/// for [`crafted`] (which would otherwise scan every agent for every
/// adversary: quadratic at model mode's 100,000 agents).
#[derive(Debug, Clone, Default)]
pub struct Cast(std::collections::BTreeMap<Class, Vec<usize>>);

impl Cast {
    /// Group `classes` (index = agent).
    pub fn new(classes: &[Class]) -> Self {
        let mut by = std::collections::BTreeMap::<Class, Vec<usize>>::new();
        for (j, c) in classes.iter().enumerate() {
            by.entry(*c).or_default().push(j);
        }
        Cast(by)
    }

    /// The agents of `class`.
    pub fn of(&self, class: Class) -> &[usize] {
        self.0.get(&class).map_or(&[], Vec::as_slice)
    }
}

/// Whether the scenario's camouflaged agents collude (report as a
/// collective).
pub fn colluding(s: &Scenario) -> bool {
    s.adversary.as_ref().is_some_and(|a| a.collusion)
}

/// What an adversary at index `i` puts in its report instead of its real
/// opinions, as `(subject index, score)`, each subject once; `None` for an
/// agent that reports honestly. Collectives (and camouflaged agents when
/// `colluding`) praise their own kind and slander honest agents; spies
/// praise the always-bad protégés; a sybil's child praises its parent.
/// Every entry claims [`CRAFTED_EVIDENCE`]. Shared by every mode.
pub fn crafted(
    i: usize,
    class: Class,
    parent: Option<usize>,
    cast: &Cast,
    colluding: bool,
    rng: &mut ChaCha20Rng,
) -> Option<Vec<(usize, u16)>> {
    let mut entries: Vec<(usize, u16)> = Vec::new();
    match class {
        Class::Collective | Class::Camouflaged if class == Class::Collective || colluding => {
            let (members, honest) = (cast.of(class), cast.of(Class::Honest));
            for _ in 0..REPORT_ENTRIES / 2 {
                let j = members[below(rng, members.len())];
                if j != i {
                    entries.push((j, 1000));
                }
                if !honest.is_empty() {
                    entries.push((honest[below(rng, honest.len())], 0));
                }
            }
        }
        Class::Spy if !cast.of(Class::AlwaysBad).is_empty() => {
            let proteges = cast.of(Class::AlwaysBad);
            for _ in 0..REPORT_ENTRIES {
                entries.push((proteges[below(rng, proteges.len())], 1000));
            }
        }
        Class::SybilChild => entries.extend(parent.map(|p| (p, 1000))),
        _ => return None,
    }
    // A report names each subject once (the engine refuses duplicates):
    // keep the first of any repeated random pick.
    let mut seen = std::collections::BTreeSet::new();
    entries.retain(|(j, _)| seen.insert(*j));
    entries.sort_by_key(|(j, _)| *j);
    Some(entries)
}

/// The scenario's agents before any spawning: each one's class and org
/// index. Orgs take consecutive ids by share (the last takes the rounding
/// remainder); malicious agents are spread evenly over the ids, so over the
/// orgs. Shared by both modes.
pub fn population(s: &Scenario) -> Vec<(Class, usize)> {
    let n = s.agents as usize;
    let n_bad = s.malicious_count() as usize;
    let mut org_of = Vec::with_capacity(n);
    for (k, o) in s.orgs.iter().enumerate() {
        let count = if k + 1 == s.orgs.len() {
            n - org_of.len()
        } else {
            ((o.share * n as f64).round() as usize).min(n - org_of.len())
        };
        org_of.extend(std::iter::repeat_n(k, count));
    }
    let mut class = vec![Class::Honest; n];
    let strategy = s.adversary.as_ref().map(|a| a.strategy);
    for k in 0..n_bad {
        let id = k * n / n_bad.max(1);
        class[id] = match strategy {
            Some(Strategy::AlwaysBad) => Class::AlwaysBad,
            Some(Strategy::Camouflaged) => Class::Camouflaged,
            Some(Strategy::Collective) => Class::Collective,
            // Half spies, half the always-bad agents they vouch for.
            Some(Strategy::Spy) if k % 2 == 0 => Class::Spy,
            Some(Strategy::Spy) => Class::AlwaysBad,
            Some(Strategy::Sybil) => Class::Sybil,
            Some(Strategy::Equivocating) => Class::Equivocating,
            Some(Strategy::FreeRider) => Class::FreeRider,
            None => Class::Honest,
        };
    }
    class.into_iter().zip(org_of).collect()
}

/// For each workload capability, the orgs whose policy allows its
/// resource (the gate's cross-org rule). Shared by both modes.
pub fn capable_orgs(s: &Scenario) -> Vec<Vec<usize>> {
    s.workload
        .capabilities
        .iter()
        .map(|(resource, _)| {
            let r = mesh_iatp::CapabilityPattern::parse(resource).ok();
            (0..s.orgs.len())
                .filter(|&k| {
                    r.as_ref()
                        .is_some_and(|r| s.orgs[k].capabilities.iter().any(|p| p.contains(r)))
                })
                .collect()
        })
        .collect()
}

struct World<'a> {
    s: &'a Scenario,
    cfg: TrustConfig,
    agents: Vec<Agent>,
    honest: Vec<u32>,
    /// Agents by org, for candidate draws.
    by_org: Vec<Vec<u32>>,
    /// Orgs allowed to take each workload capability.
    capable_orgs: Vec<Vec<usize>>,
    anchors: Vec<usize>,
    /// Direct evidence of each agent: subject → what it saw.
    direct: Vec<HashMap<u32, Tally>>,
    global: Vec<f64>,
    credibility: Option<Vec<f64>>,
    severe: Vec<bool>,
    work: Work,
    rng: ChaCha20Rng,
}

impl<'a> World<'a> {
    fn new(s: &'a Scenario) -> World<'a> {
        let mut rng = ChaCha20Rng::seed_from_u64(s.seed);
        let cfg = TrustConfig::default();
        let n = s.agents as usize;
        let population = population(s);
        let mut agents: Vec<Agent> = population
            .iter()
            .map(|&(class, org)| {
                let o = &s.orgs[org];
                Agent {
                    class,
                    org,
                    initial: f64::from(o.initial_trust.get()),
                    ceiling: f64::from(o.trust_ceiling.get()),
                    parent: None,
                }
            })
            .collect();
        // Sybils spawn: with the gate, only what SpawnPolicy's budget for
        // their score allows; without it, all they want.
        if let Some(a) = s
            .adversary
            .as_ref()
            .filter(|a| a.strategy == Strategy::Sybil)
        {
            let policy = SpawnPolicy::default();
            for p in 0..n {
                if agents[p].class != Class::Sybil {
                    continue;
                }
                let parent_score = Score::saturating(agents[p].initial as u16);
                let allowed = if s.gate_enabled {
                    if parent_score < policy.threshold {
                        0
                    } else {
                        a.sybils_per_agent.min(policy.budget(parent_score))
                    }
                } else {
                    a.sybils_per_agent
                };
                for _ in 0..allowed {
                    // child_initial_score: min(certificate ceiling, parent score).
                    let (org, ceiling, initial) =
                        (agents[p].org, agents[p].ceiling, agents[p].initial);
                    agents.push(Agent {
                        class: Class::SybilChild,
                        org,
                        initial: initial.min(ceiling),
                        ceiling,
                        parent: Some(p as u32),
                    });
                }
            }
        }
        let total = agents.len();
        let honest: Vec<u32> = (0..total as u32)
            .filter(|&i| agents[i as usize].class == Class::Honest)
            .collect();
        let mut by_org = vec![Vec::new(); s.orgs.len()];
        for (i, a) in agents.iter().enumerate() {
            by_org[a.org].push(i as u32);
        }
        let capable_orgs = capable_orgs(s);
        let mut anchors = Vec::new();
        for members in &by_org {
            let honest_here: Vec<u32> = members
                .iter()
                .copied()
                .filter(|&i| agents[i as usize].class == Class::Honest)
                .collect();
            let k = ((honest_here.len() as f64 * ANCHOR_SHARE).ceil() as usize).max(1);
            anchors.extend(honest_here.iter().take(k).map(|&i| i as usize));
        }
        let global = agents.iter().map(|a| a.initial).collect();
        let _ = unit(&mut rng); // decouple the stream from the seed's first word
        World {
            s,
            cfg,
            direct: (0..total).map(|_| HashMap::new()).collect(),
            severe: vec![false; total],
            global,
            credibility: None,
            work: Work::default(),
            honest,
            by_org,
            capable_orgs,
            anchors,
            agents,
            rng,
        }
    }

    /// Agent `i`'s score for `j`, as its engine would give it (no decay).
    fn score(&self, i: u32, j: u32) -> f64 {
        if self.severe[j as usize] {
            return 0.0;
        }
        let a = &self.agents[j as usize];
        let seen = self.direct[i as usize].get(&j).copied().unwrap_or_default();
        let (direct, mass) = scoring::direct_score(&seen.masses, a.initial / 1000.0, &self.cfg);
        let blended = scoring::blend(direct, mass, self.global[j as usize], &self.cfg);
        scoring::final_score(blended, a.ceiling)
    }

    /// `i` records one item of `kind` about `j`.
    fn observe(&mut self, i: u32, j: u32, kind: EvidenceKind) {
        self.direct[i as usize]
            .entry(j)
            .or_default()
            .add(kind, 1.0, &self.cfg);
    }

    fn behaves(&mut self, j: u32) -> bool {
        let good = self.s.adversary.as_ref().map_or(0.0, |a| a.good_fraction);
        behaves(self.agents[j as usize].class, good, &mut self.rng)
    }

    /// Up to `candidates` distinct agents other than `i` whose org may take
    /// capability `cap`.
    fn candidates(&mut self, i: u32, cap: usize) -> Vec<u32> {
        let want = self.s.workload.candidates as usize;
        let orgs = &self.capable_orgs[cap];
        let pool: usize = orgs.iter().map(|&k| self.by_org[k].len()).sum();
        let mut out: Vec<u32> = Vec::with_capacity(want);
        if pool == 0 {
            return out;
        }
        let mut attempts = 0;
        while out.len() < want.min(pool.saturating_sub(1)) && attempts < want * 8 {
            attempts += 1;
            let mut r = below(&mut self.rng, pool);
            let mut pick = None;
            for &k in orgs {
                let members = &self.by_org[k];
                if r < members.len() {
                    pick = Some(members[r]);
                    break;
                }
                r -= members.len();
            }
            if let Some(j) = pick
                && j != i
                && !out.contains(&j)
            {
                out.push(j);
            }
        }
        out
    }

    /// One task from honest agent `i`; (delegated to, behaved) or refused.
    fn task(&mut self, i: u32, stats: &mut RoundStats) {
        stats.tasks += 1;
        let cap = below(&mut self.rng, self.s.workload.capabilities.len());
        let cands = self.candidates(i, cap);
        if cands.is_empty() {
            stats.refused += 1;
            return;
        }
        let chosen = if self.s.gate_enabled {
            let min = f64::from(self.s.min_trust.get());
            let scores: Vec<f64> = cands.iter().map(|&j| self.score(i, j)).collect();
            let (explore, draw) = (unit(&mut self.rng), unit(&mut self.rng));
            match Selection::default().pick(&scores, min, explore, draw) {
                Some(k) => cands[k],
                None => {
                    stats.refused += 1;
                    return;
                }
            }
        } else {
            cands[below(&mut self.rng, cands.len())]
        };
        let ok = self.behaves(chosen);
        stats.count_delegated(self.agents[chosen as usize].class.is_malicious(), ok);
        self.work.credit(chosen as usize);
        let kind = if ok {
            EvidenceKind::TaskSuccess
        } else {
            EvidenceKind::TaskFailure
        };
        self.observe(i, chosen, kind);
    }

    /// Free riders flood random honest agents, who count it against them.
    fn flood(&mut self) {
        let Some(per) = self
            .s
            .adversary
            .as_ref()
            .filter(|a| a.strategy == Strategy::FreeRider)
            .map(|a| a.flood_per_round)
        else {
            return;
        };
        // A node's rate limit turns a flood into one strike per flooded
        // peer per round (Limits: 50 requests/s sustained).
        let targets = (per as usize).min(self.honest.len());
        for f in 0..self.agents.len() {
            if self.agents[f].class != Class::FreeRider {
                continue;
            }
            for _ in 0..targets.min(8) {
                let h = self.honest[below(&mut self.rng, self.honest.len())];
                self.observe(h, f as u32, EvidenceKind::RateLimitExceeded);
            }
        }
    }

    /// The reports of one epoch, then credibility and global scores.
    fn aggregate(&mut self) {
        let n = self.agents.len();
        let k = self.cfg.blend_evidence;
        let crafted_confidence = scoring::confidence(CRAFTED_EVIDENCE, k);
        let mut opinions: Vec<Opinion> = Vec::new();
        let mut reporters: Vec<usize> = Vec::new();
        let classes: Vec<Class> = self.agents.iter().map(|a| a.class).collect();
        let cast = Cast::new(&classes);
        let colluding = colluding(self.s);
        for i in 0..n {
            let before = opinions.len();
            let parent = self.agents[i].parent.map(|p| p as usize);
            let class = self.agents[i].class;
            match crafted(i, class, parent, &cast, colluding, &mut self.rng) {
                Some(entries) => opinions.extend(entries.into_iter().map(|(j, score)| Opinion {
                    reporter: i,
                    subject: j,
                    score: f64::from(score),
                    confidence: crafted_confidence,
                })),
                None => {
                    // Honest reporting, as the engine's `make_report`: bad
                    // news first, then the most-evidenced, score rounded,
                    // evidence rounded up.
                    let mut mine: Vec<(u32, f64, f64, f64)> = self.direct[i]
                        .iter()
                        .map(|(&j, seen)| {
                            let initial = self.agents[j as usize].initial;
                            let (score, mass) =
                                scoring::direct_score(&seen.masses, initial / 1000.0, &self.cfg);
                            (j, score, mass, initial)
                        })
                        .filter(|(_, _, mass, _)| *mass > 0.0)
                        .collect();
                    mine.sort_by(|a, b| {
                        scoring::report_order((a.1, a.2, a.3), (b.1, b.2, b.3)).then(a.0.cmp(&b.0))
                    });
                    mine.truncate(self.cfg.aggregation.max_report_entries);
                    for (j, score, mass, _) in mine {
                        let (score, evidence) = scoring::report_entry(score, mass);
                        opinions.push(Opinion {
                            reporter: i,
                            subject: j as usize,
                            score: f64::from(score),
                            confidence: scoring::confidence(f64::from(evidence), k),
                        });
                    }
                }
            }
            if opinions.len() > before {
                reporters.push(i);
            }
        }
        let result = scoring::global_trust(
            GlobalInputs {
                peers: n,
                opinions: &opinions,
                pre_trusted: &self.anchors,
                local: None,
                reporters: &reporters,
                start: self.credibility.as_deref(),
            },
            |j| self.agents[j].initial,
            &self.cfg.aggregation,
        );
        for (j, g) in result.scores.iter().enumerate() {
            self.global[j] = g.map_or(self.agents[j].initial, |g| g.score);
        }
        self.credibility = Some(result.credibility);
        // Witnesses have caught every fork signed before this epoch.
        for j in 0..n {
            if self.agents[j].class == Class::Equivocating {
                self.severe[j] = true;
            }
        }
    }

    fn mean_scores(&self) -> (f64, f64) {
        let (mut h, mut hn, mut m, mut mn) = (0.0, 0usize, 0.0, 0usize);
        for (j, a) in self.agents.iter().enumerate() {
            let s = if self.severe[j] {
                0.0
            } else {
                self.global[j].min(a.ceiling)
            };
            if a.class.is_malicious() {
                m += s;
                mn += 1;
            } else {
                h += s;
                hn += 1;
            }
        }
        (h / hn.max(1) as f64, m / mn.max(1) as f64)
    }
}

/// Run `scenario` in model mode; `progress(round)` after each round.
pub fn run(scenario: &Scenario, mut progress: impl FnMut(u64)) -> Run {
    let mut w = World::new(scenario);
    let mut timeline = Vec::with_capacity(scenario.rounds as usize);
    let mut aggregations = 0;
    let per = scenario.workload.tasks_per_agent;
    let (whole, frac) = (per.floor() as u64, per - per.floor());
    for round in 1..=scenario.rounds {
        let mut stats = RoundStats::new(round);
        for h in 0..w.honest.len() {
            let i = w.honest[h];
            let extra = u64::from(unit(&mut w.rng) < frac);
            for _ in 0..whole + extra {
                w.task(i, &mut stats);
            }
        }
        w.flood();
        if round % scenario.report_every == 0 {
            w.aggregate();
            aggregations += 1;
        }
        let (mh, mm) = w.mean_scores();
        stats.mean_score_honest = mh;
        stats.mean_score_malicious = mm;
        timeline.push(stats);
        progress(round);
    }

    let mut refusals = BTreeMap::new();
    let refused: u64 = timeline.iter().map(|r| r.refused).sum();
    if refused > 0 {
        refusals.insert("trust_below_link_minimum".to_string(), refused);
    }
    let scores = w.agents.iter().enumerate().map(|(j, a)| {
        let s = if w.severe[j] {
            0.0
        } else {
            w.global[j].min(a.ceiling)
        };
        (a.class, s)
    });
    let classes: Vec<Class> = w.agents.iter().map(|a| a.class).collect();
    let mut results = Results::summarize(
        scenario,
        "model",
        &classes,
        &timeline,
        refusals,
        scores,
        aggregations,
    );
    results.note_work(&classes, &w.work);
    Run { results, timeline }
}
