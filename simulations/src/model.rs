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
//!   `scoring::global_trust`, each report's claimed evidence believed up
//!   to the engine's claim cap (`scoring::claim_cap`). Simplified: no decay (a run is short in
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
use mesh_trust::select::{Candidate, Selection};
use mesh_trust::{EvidenceKind, TrustConfig};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub use crate::class::Class;
pub use crate::results::{Results, RoundStats, Run, Work, gini};
use crate::roles::{
    CRAFTED_EVIDENCE, Cast, behaves, below, capable_orgs, caught, colluding, crafted, defects,
    pads, population, unit,
};
use crate::scenario::{Scenario, Strategy};

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
    /// Whether credible reports spoke well of each agent in the last epoch
    /// (a global score with weight, at or above its initial trust).
    spoken_well: Vec<bool>,
    /// What the last epoch believed of each reporter's claims: subject →
    /// evidence (the engine's claim cap, TRUST.md §5 "Claims").
    believed: Vec<HashMap<u32, u32>>,
    credibility: Option<Vec<f64>>,
    severe: Vec<bool>,
    /// Adaptive agents spending their trust this epoch.
    defecting: Vec<bool>,
    /// Identities whitewashers have discarded.
    new_identities: u64,
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
            defecting: vec![false; total],
            new_identities: 0,
            believed: vec![HashMap::new(); total],
            spoken_well: vec![false; total],
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

    /// Whether `i` has seen `j` work, or credible reports speak well of it
    /// (the engine's `is_proven`).
    fn proven(&self, i: u32, j: u32) -> bool {
        self.severe[j as usize]
            || self.spoken_well[j as usize]
            || self.direct[i as usize]
                .get(&j)
                .is_some_and(|seen| scoring::has_worked(&seen.masses))
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
        let j = j as usize;
        behaves(self.agents[j].class, good, self.defecting[j], &mut self.rng)
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
            let seen: Vec<Candidate> = cands
                .iter()
                .map(|&j| Candidate {
                    score: self.score(i, j),
                    proven: self.proven(i, j),
                })
                .collect();
            let (explore, draw) = (unit(&mut self.rng), unit(&mut self.rng));
            match Selection::default().pick(&seen, min, explore, draw) {
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
        // (reporter, subject, score, claimed evidence), capped below.
        let mut claims: Vec<(usize, usize, f64, u32)> = Vec::new();
        let mut reporters: Vec<usize> = Vec::new();
        let classes: Vec<Class> = self.agents.iter().map(|a| a.class).collect();
        let cast = Cast::new(&classes);
        let colluding = colluding(self.s);
        // Anchor → its report, computed once however many spies echo it.
        let mut echoes: HashMap<usize, Vec<(usize, f64, u32)>> = HashMap::new();
        for i in 0..n {
            let before = claims.len();
            let parent = self.agents[i].parent.map(|p| p as usize);
            let class = self.agents[i].class;
            match crafted(i, class, parent, &cast, colluding, &mut self.rng) {
                Some(entries) => {
                    let named: std::collections::HashSet<usize> =
                        entries.iter().map(|(j, _)| *j).collect();
                    claims.extend(
                        entries
                            .into_iter()
                            .map(|(j, score)| (i, j, f64::from(score), CRAFTED_EVIDENCE)),
                    );
                    // A padding spy (who delegates nothing, so has no
                    // opinions of its own) echoes its org's anchor's
                    // report, read off the gossip, so most of its report
                    // agrees with the pre-trusted peers exactly.
                    if pads(class, self.s) {
                        let room = self
                            .cfg
                            .aggregation
                            .max_report_entries
                            .saturating_sub(named.len());
                        let org = self.agents[i].org;
                        let echoed = self.anchors.iter().find(|&&a| self.agents[a].org == org);
                        if let Some(&a) = echoed {
                            let report = echoes.entry(a).or_insert_with(|| self.honest_report(a));
                            claims.extend(
                                report
                                    .iter()
                                    .filter(|(j, _, _)| *j != i && !named.contains(j))
                                    .take(room)
                                    .map(|&(j, score, evidence)| (i, j, score, evidence)),
                            );
                        }
                    }
                }
                None => claims.extend(
                    self.honest_report(i)
                        .into_iter()
                        .map(|(j, score, evidence)| (i, j, score, evidence)),
                ),
            }
            if claims.len() > before {
                reporters.push(i);
            }
        }
        let opinions = self.believe(claims);
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
            self.spoken_well[j] =
                g.is_some_and(|g| scoring::spoken_well(g.weight, g.score, self.agents[j].initial));
        }
        self.credibility = Some(result.credibility);
        // Witnesses have caught every fork signed before this epoch.
        for j in 0..n {
            if self.agents[j].class == Class::Equivocating {
                self.severe[j] = true;
            }
        }
        self.adapt();
    }

    /// Adaptive agents decide whether to defect until the next epoch;
    /// caught whitewashers come back as strangers: nobody has evidence of
    /// the new identity or hears reports of it, it has no credibility and
    /// reports nothing it saw as the old one.
    fn adapt(&mut self) {
        let mut caught_now = std::collections::HashSet::new();
        for j in 0..self.agents.len() {
            let reputation = self.global[j].min(self.agents[j].ceiling);
            match self.agents[j].class {
                Class::Adaptive => self.defecting[j] = defects(reputation, self.s),
                Class::Whitewasher if caught(reputation, self.s) => {
                    caught_now.insert(j as u32);
                }
                _ => {}
            }
        }
        if caught_now.is_empty() {
            return;
        }
        for (seen, believed) in self.direct.iter_mut().zip(&mut self.believed) {
            seen.retain(|j, _| !caught_now.contains(j));
            believed.retain(|j, _| !caught_now.contains(j));
        }
        for &j in &caught_now {
            let j = j as usize;
            self.direct[j].clear();
            self.believed[j].clear();
            self.global[j] = self.agents[j].initial;
            self.spoken_well[j] = false;
            if let Some(c) = self.credibility.as_mut() {
                c[j] = 0.0;
            }
        }
        self.new_identities += caught_now.len() as u64;
    }

    /// Agent `i`'s real report as `(subject, score, evidence)`, as the
    /// engine's `make_report` builds it: bad news first, then the
    /// most-evidenced, score rounded, evidence rounded up.
    fn honest_report(&self, i: usize) -> Vec<(usize, f64, u32)> {
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
        mine.into_iter()
            .map(|(j, score, mass, _)| {
                let (score, evidence) = scoring::report_entry(score, mass);
                (j as usize, f64::from(score), evidence)
            })
            .collect()
    }

    /// Opinions from one epoch's claims, each believed up to the engine's
    /// claim cap given what the reporter's previous report was believed
    /// (reports are `report_every` rounds apart).
    fn believe(&mut self, claims: Vec<(usize, usize, f64, u32)>) -> Vec<Opinion> {
        let cfg = &self.cfg.aggregation;
        let elapsed = (self.s.report_every * self.s.round_secs) as f64;
        let mut now: Vec<HashMap<u32, u32>> = vec![HashMap::new(); self.agents.len()];
        let opinions = claims
            .into_iter()
            .map(|(i, j, score, claimed)| {
                let before = self.believed[i].get(&(j as u32)).copied();
                let evidence = scoring::believed_claim(claimed, before, elapsed, cfg);
                now[i].insert(j as u32, evidence);
                Opinion {
                    reporter: i,
                    subject: j,
                    score,
                    confidence: scoring::confidence(f64::from(evidence), self.cfg.blend_evidence),
                }
            })
            .collect();
        self.believed = now;
        opinions
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
    results.new_identities = w.new_identities;
    Run { results, timeline }
}
