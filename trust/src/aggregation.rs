//! One aggregation of global trust, apart from the engine that asked for
//! it: [`TrustEngine::aggregation`] takes a snapshot of its inputs (shared
//! reports and policies, the previous result for a warm start), [`run`]
//! computes EigenTrust credibility and every reported subject's global
//! score from that snapshot alone, and [`TrustEngine::install`] puts the
//! result in force. A node runs the middle step off its network path (the
//! snapshot costs a clone of a few pointers per reporter; the computation
//! is what grows with the reports); [`TrustEngine::refresh`] does all three
//! in place. The formulas are in [`crate::engine`]'s module docs.
//!
//! [`run`]: Aggregation::run
//! [`TrustEngine::aggregation`]: crate::TrustEngine::aggregation
//! [`TrustEngine::install`]: crate::TrustEngine::install
//! [`TrustEngine::refresh`]: crate::TrustEngine::refresh

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mesh_iatp::Did;

use crate::claims::HeldReport;
use crate::config::AggregationConfig;
use crate::policy::AgentPolicy;
use crate::scoring::{self, GlobalInputs, Opinion};

/// Figures from one aggregation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AggregationStats {
    /// Reports taken into account (fresh ones, plus this node's own).
    pub reporters: usize,
    /// Distinct peers in the computation.
    pub peers: usize,
    /// Power iterations run.
    pub iterations: u32,
    /// Whether it met ε.
    pub converged: bool,
    /// Whether it started from the previous result.
    pub warm_start: bool,
}

/// The global (reported) side of one subject's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlobalScore {
    /// Credibility-weighted mean opinion, 0–1000 (the prior when nobody reports).
    pub score: f64,
    /// Reporters with an opinion on the subject.
    pub reporters: usize,
    /// Σ credibility × confidence behind it.
    pub weight: f64,
}

/// The result of the last aggregation: every peer's credibility as a
/// reporter, every reported subject's global score.
#[derive(Debug, Clone, Default)]
pub(crate) struct GlobalView {
    pub(crate) credibility: BTreeMap<Did, f64>,
    pub(crate) scores: BTreeMap<Did, GlobalScore>,
}

/// Everything one aggregation reads, owned: it can be sent to another
/// thread and run there while the engine goes on taking reports.
#[derive(Debug, Clone)]
pub struct Aggregation {
    pub(crate) local: Did,
    /// This node's direct opinions: `(subject, score, confidence)`.
    pub(crate) own: Vec<(Did, f64, f64)>,
    /// The fresh reports of others, with what this node believes of them.
    pub(crate) fresh: Vec<HeldReport>,
    pub(crate) pre_trusted: Vec<Did>,
    /// The previous result, to start from.
    pub(crate) previous: Arc<GlobalView>,
    pub(crate) policies: Arc<BTreeMap<Did, AgentPolicy>>,
    pub(crate) unknown: AgentPolicy,
    pub(crate) config: AggregationConfig,
    pub(crate) blend_evidence: f64,
}

/// A finished aggregation, for [`crate::TrustEngine::install`].
#[derive(Debug, Clone)]
pub struct Aggregated {
    pub(crate) view: GlobalView,
    /// Its figures.
    pub stats: AggregationStats,
}

impl Aggregation {
    /// How many fresh reports of others it weighs.
    pub fn reports(&self) -> usize {
        self.fresh.len()
    }

    fn policy(&self, agent: &Did) -> AgentPolicy {
        self.policies.get(agent).copied().unwrap_or(self.unknown)
    }

    fn confidence(&self, evidence: f64) -> f64 {
        scoring::confidence(evidence, self.blend_evidence)
    }

    /// Compute credibility and global scores. Pure and deterministic: the
    /// same snapshot always gives the same result.
    pub fn run(self) -> Aggregated {
        let agg = &self.config;
        // Index every peer in DID order (deterministic), look up by hash.
        // Each is named in many reports: gather the distinct ones first,
        // then sort only those (DIDs share a long prefix, so comparisons
        // are the cost).
        let mut index: HashMap<&Did, usize> = HashMap::new();
        let named = std::iter::once(&self.local)
            .chain(&self.pre_trusted)
            .chain(self.own.iter().map(|(s, _, _)| s));
        let reported =
            self.fresh.iter().map(|h| &h.report).flat_map(|r| {
                std::iter::once(&r.reporter).chain(r.entries.iter().map(|(s, _, _)| s))
            });
        for did in named.chain(reported) {
            index.entry(did).or_insert(0);
        }
        let mut peers: Vec<&Did> = index.keys().copied().collect();
        peers.sort_unstable();
        for (i, did) in peers.iter().enumerate() {
            index.insert(did, i);
        }
        let n = peers.len();
        let me = index[&self.local];

        let mut opinions: Vec<Opinion> = self
            .own
            .iter()
            .map(|(s, score, conf)| Opinion {
                reporter: me,
                subject: index[s],
                score: *score,
                confidence: *conf,
            })
            .collect();
        for h in &self.fresh {
            let i = index[&h.report.reporter];
            opinions.extend(
                h.report
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(k, (s, score, _))| Opinion {
                        reporter: i,
                        subject: index[s],
                        score: f64::from(score.get()),
                        confidence: self.confidence(f64::from(h.evidence(k))),
                    }),
            );
        }
        let pre: Vec<usize> = self.pre_trusted.iter().map(|d| index[d]).collect();
        let start: Option<Vec<f64>> = (!self.previous.credibility.is_empty()).then(|| {
            peers
                .iter()
                .map(|d| self.previous.credibility.get(*d).copied().unwrap_or(0.0))
                .collect()
        });
        let reporters: Vec<usize> = self
            .fresh
            .iter()
            .map(|h| index[&h.report.reporter])
            .collect();
        let result = scoring::global_trust(
            GlobalInputs {
                peers: n,
                opinions: &opinions,
                pre_trusted: &pre,
                local: Some(me),
                reporters: &reporters,
                start: start.as_deref(),
            },
            |j| f64::from(self.policy(peers[j]).initial.get()),
            agg,
        );
        let scores = result
            .scores
            .iter()
            .enumerate()
            .filter_map(|(j, g)| {
                g.map(|g| {
                    (
                        peers[j].clone(),
                        GlobalScore {
                            score: g.score,
                            reporters: g.reporters,
                            weight: g.weight,
                        },
                    )
                })
            })
            .collect();
        let credibility = peers
            .iter()
            .enumerate()
            .map(|(i, d)| ((*d).clone(), result.credibility[i]))
            .collect();
        Aggregated {
            stats: AggregationStats {
                reporters: self.fresh.len() + 1,
                peers: n,
                iterations: result.iterations,
                converged: result.converged,
                warm_start: start.is_some(),
            },
            view: GlobalView {
                credibility,
                scores,
            },
        }
    }
}
