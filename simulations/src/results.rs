//! What a run reports, in every mode: per-round figures, totals
//! (`results.json`), and how work spread over the honest agents.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::class::Class;
use crate::scenario::Scenario;

/// One round's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundStats {
    /// 1-based.
    pub round: u64,
    /// Tasks honest agents tried to delegate.
    pub tasks: u64,
    /// Of which delegated.
    pub delegated: u64,
    /// Of which to a malicious agent.
    pub to_malicious: u64,
    /// Of which failed.
    pub failed: u64,
    /// Of which failed at a malicious agent (EigenTrust's "inauthentic").
    pub inauthentic: u64,
    /// Refused by the gate (no candidate trusted enough).
    pub refused: u64,
    /// Mean global score of honest agents.
    pub mean_score_honest: f64,
    /// Mean global score of malicious agents (NaN-free: 0 if none).
    pub mean_score_malicious: f64,
}

impl RoundStats {
    /// An empty round.
    pub fn new(round: u64) -> Self {
        RoundStats {
            round,
            tasks: 0,
            delegated: 0,
            to_malicious: 0,
            failed: 0,
            inauthentic: 0,
            refused: 0,
            mean_score_honest: 0.0,
            mean_score_malicious: 0.0,
        }
    }

    /// Count a task that was delegated, to a malicious agent or not, and
    /// done well or not. Shared by every mode.
    pub fn count_delegated(&mut self, to_malicious: bool, success: bool) {
        self.delegated += 1;
        self.to_malicious += u64::from(to_malicious);
        self.failed += u64::from(!success);
        self.inauthentic += u64::from(to_malicious && !success);
    }
}

/// A run's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Results {
    /// Scenario name.
    pub scenario: String,
    /// `model` or `protocol`.
    pub mode: String,
    /// The seed.
    pub seed: u64,
    /// The adversary model (`none` without one).
    pub strategy: String,
    /// The adversary fraction asked for.
    pub fraction: f64,
    /// Whether the gate used trust.
    pub gate_enabled: bool,
    /// Agents, sybil children included.
    pub agents: u64,
    /// Malicious agents, sybil children included.
    pub malicious: u64,
    /// Rounds run.
    pub rounds: u64,
    /// Tasks tried.
    pub tasks: u64,
    /// Tasks delegated.
    pub delegated: u64,
    /// Tasks delegated to malicious agents.
    pub to_malicious: u64,
    /// `to_malicious / tasks`: the headline figure.
    pub fraction_to_malicious: f64,
    /// Tasks that failed (delegated, then done badly).
    pub failed: u64,
    /// `failed / tasks`.
    pub fraction_failed: f64,
    /// Tasks that failed at a malicious agent (EigenTrust's inauthentic
    /// downloads; honest agents' own errors are not in it).
    pub inauthentic: u64,
    /// `inauthentic / tasks`.
    pub fraction_inauthentic: f64,
    /// The gate's `min_trust` (in force only when `gate_enabled`).
    pub min_trust: u16,
    /// Tasks the gate refused (every rule; the `refusals` not named
    /// `failed:…`).
    pub refused: u64,
    /// Requests that failed on the way (protocol and network modes: the
    /// `refusals` named `failed:…`).
    pub failed_requests: u64,
    /// Gate refusals by rule, and failed requests by reason (`failed:…`).
    pub refusals: BTreeMap<String, u64>,
    /// Mean final global score by class.
    pub mean_score_by_class: BTreeMap<String, f64>,
    /// Trust aggregations run.
    pub aggregations: u64,
    /// Gini coefficient of the tasks honest agents received (0: all the
    /// same; toward 1: a few get everything).
    pub gini_honest_work: f64,
    /// Honest agents that received no task at all.
    pub honest_without_work: u64,
    /// New identities whitewashers took after being caught (0 for other
    /// strategies).
    pub new_identities: u64,
}

/// A run: results and the per-round timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Totals.
    pub results: Results,
    /// Per round.
    pub timeline: Vec<RoundStats>,
}

impl Results {
    /// Totals of a run: `classes` of every agent (spawned ones included),
    /// `scores` each agent's class and final score, in any order.
    pub fn summarize(
        s: &Scenario,
        mode: &str,
        classes: &[Class],
        timeline: &[RoundStats],
        refusals: BTreeMap<String, u64>,
        scores: impl IntoIterator<Item = (Class, f64)>,
        aggregations: u64,
    ) -> Results {
        let sum = |f: fn(&RoundStats) -> u64| timeline.iter().map(f).sum::<u64>();
        let tasks = sum(|r| r.tasks);
        let to_malicious = sum(|r| r.to_malicious);
        let share = |n: u64| {
            if tasks == 0 {
                0.0
            } else {
                n as f64 / tasks as f64
            }
        };
        let mut by_class: BTreeMap<String, (f64, u64)> = BTreeMap::new();
        for (class, score) in scores {
            let e = by_class.entry(class.name().to_string()).or_default();
            e.0 += score;
            e.1 += 1;
        }
        Results {
            scenario: s.name.clone(),
            mode: mode.into(),
            seed: s.seed,
            strategy: s
                .adversary
                .as_ref()
                .map_or("none", |a| a.strategy.name())
                .into(),
            fraction: s.adversary.as_ref().map_or(0.0, |a| a.fraction),
            gate_enabled: s.gate_enabled,
            agents: classes.len() as u64,
            malicious: classes.iter().filter(|c| c.is_malicious()).count() as u64,
            rounds: s.rounds,
            tasks,
            delegated: sum(|r| r.delegated),
            to_malicious,
            fraction_to_malicious: share(to_malicious),
            failed: sum(|r| r.failed),
            fraction_failed: share(sum(|r| r.failed)),
            inauthentic: sum(|r| r.inauthentic),
            fraction_inauthentic: share(sum(|r| r.inauthentic)),
            min_trust: s.min_trust.get(),
            refused: refusals
                .iter()
                .filter(|(k, _)| !k.starts_with("failed:"))
                .map(|(_, v)| v)
                .sum(),
            failed_requests: refusals
                .iter()
                .filter(|(k, _)| k.starts_with("failed:"))
                .map(|(_, v)| v)
                .sum(),
            refusals,
            mean_score_by_class: by_class
                .into_iter()
                .map(|(k, (v, n))| (k, v / n as f64))
                .collect(),
            aggregations,
            gini_honest_work: 0.0,
            honest_without_work: 0,
            new_identities: 0,
        }
    }

    /// Fill in how work spread over the honest agents: `classes` and
    /// `work` are indexed alike.
    pub fn note_work(&mut self, classes: &[Class], work: &Work) {
        let honest: Vec<u64> = classes
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == Class::Honest)
            .map(|(i, _)| work.of(i))
            .collect();
        self.honest_without_work = honest.iter().filter(|&&n| n == 0).count() as u64;
        self.gini_honest_work = gini(&honest);
    }
}

/// Tasks each agent received, by index (grows as agents appear).
#[derive(Debug, Clone, Default)]
pub struct Work(Vec<u64>);

impl Work {
    /// Agent `j` received a task.
    pub fn credit(&mut self, j: usize) {
        if self.0.len() <= j {
            self.0.resize(j + 1, 0);
        }
        self.0[j] += 1;
    }

    /// Tasks agent `j` received.
    pub fn of(&self, j: usize) -> u64 {
        self.0.get(j).copied().unwrap_or(0)
    }
}

/// The Gini coefficient of `counts` (0 when they are all equal or all 0).
pub fn gini(counts: &[u64]) -> f64 {
    let total: f64 = counts.iter().map(|&c| c as f64).sum();
    let n = counts.len() as f64;
    if total == 0.0 || counts.len() < 2 {
        return 0.0;
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let ranked: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, &c)| (i as f64 + 1.0) * c as f64)
        .sum();
    2.0 * ranked / (n * total) - (n + 1.0) / n
}
