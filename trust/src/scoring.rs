//! The engine's arithmetic on plain numbers: no DIDs, no clock, no
//! reports. [`TrustEngine`](crate::TrustEngine) scores through these
//! functions, and so does mesh-sim's model mode, so a simulation cannot
//! drift from the engine it stands for (TRUST.md §3 and §5 give the
//! formulas; this module is their one implementation).
//!
//! ```
//! use mesh_trust::scoring::{self, Tally};
//! use mesh_trust::{EvidenceKind, TrustConfig};
//!
//! let cfg = TrustConfig::default();
//! // Ten failures seen first-hand of an agent whose org starts it at 500.
//! let mut seen = Tally::default();
//! seen.add(EvidenceKind::TaskFailure, 10.0, &cfg);
//! let (direct, mass) = scoring::direct_score(&seen.masses, 0.5, &cfg);
//! assert!(direct < 300.0 && mass == 60.0); // a failure weighs 2.0 in 3 dimensions
//! let score = scoring::final_score(scoring::blend(direct, mass, 500.0, &cfg), 850.0);
//! assert!(score < direct + 50.0);
//! ```

use crate::config::{AggregationConfig, TrustConfig};
use crate::eigentrust::{self, Params, Row};
use crate::evidence::{Dimension, EvidenceKind};

/// Evidence masses for one dimension (a node's direct record keeps them
/// decayed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Masses {
    /// Evidence for.
    pub positive: f64,
    /// Evidence against.
    pub negative: f64,
}

/// Undecayed evidence masses per dimension, built from counts of evidence
/// kinds with the configured weights (what a node's direct record holds,
/// without time). Severe kinds are not masses and are ignored here.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    /// Per [`Dimension`], in [`Dimension::ALL`] order.
    pub masses: [Masses; 5],
}

impl Tally {
    /// Add `count` items of `kind`.
    pub fn add(&mut self, kind: EvidenceKind, count: f64, config: &TrustConfig) {
        add_weight(&mut self.masses, kind, count * config.evidence.weight(kind));
    }
}

/// Add `weight` of `kind` to every dimension it speaks to, on its side.
pub(crate) fn add_weight(masses: &mut [Masses; 5], kind: EvidenceKind, weight: f64) {
    if kind.is_severe() {
        return;
    }
    for d in kind.dimensions() {
        let m = &mut masses[*d as usize];
        if kind.is_positive() {
            m.positive += weight;
        } else {
            m.negative += weight;
        }
    }
}

/// Whether these masses hold evidence of work: task outcomes, the only
/// kinds that speak to output quality. A handshake proves a key, not an
/// agent: a fresh identity gets one from every peer it dials.
pub fn has_worked(masses: &[Masses; 5]) -> bool {
    let q = masses[Dimension::OutputQuality as usize];
    q.positive + q.negative > 0.0
}

/// Per-dimension estimates in [0, 1] and the total evidence mass:
/// `s_d = (P_d + α·p) / (P_d + N_d + α)`, with prior `p` (the subject's
/// initial trust / 1000).
pub fn estimates(masses: &[Masses; 5], prior: f64, config: &TrustConfig) -> ([f64; 5], f64) {
    let alpha = config.prior_strength;
    let mut total = 0.0;
    let mut s = [0.0; 5];
    for d in Dimension::ALL {
        let m = masses[d as usize];
        s[d as usize] = (m.positive + alpha * prior) / (m.positive + m.negative + alpha);
        total += m.positive + m.negative;
    }
    (s, total)
}

/// The direct score in [0, 1000], `1000 · Σ_d w_d · s_d`, and the evidence
/// mass behind it.
pub fn direct_score(masses: &[Masses; 5], prior: f64, config: &TrustConfig) -> (f64, f64) {
    let (s, mass) = estimates(masses, prior, config);
    let weighted: f64 = Dimension::ALL
        .iter()
        .map(|d| config.dimensions.weight(*d) * s[*d as usize])
        .sum();
    (1000.0 * weighted, mass)
}

/// How much a body of `evidence` is believed: `e / (e + k)`, with `k` the
/// config's `blend_evidence`. It weighs a reporter's entry, and the direct
/// side of the final blend (β).
pub fn confidence(evidence: f64, blend_evidence: f64) -> f64 {
    evidence / (evidence + blend_evidence)
}

/// `β·direct + (1 − β)·global`, with `β` the confidence of the direct mass.
pub fn blend(direct: f64, mass: f64, global: f64, config: &TrustConfig) -> f64 {
    let beta = confidence(mass, config.blend_evidence);
    beta * direct + (1.0 - beta) * global
}

/// A blended score held under the subject's ceiling and above 0 (not yet
/// rounded: [`crate::Score`] rounds it).
pub fn final_score(blended: f64, ceiling: f64) -> f64 {
    blended.min(ceiling).max(0.0)
}

/// The order of a report's entries, which decides what survives when a
/// node has direct opinions of more subjects than `max_report_entries`:
/// **bad news first** — subjects scored below their initial trust (their
/// org's prior), most-evidenced first — then the rest, most-evidenced
/// first. Without it, an agent that failed a few tasks for each of many
/// peers would never appear in anyone's report (its evidence is always
/// thinner than the good partners'), and every honest agent would have to
/// discover it alone. `(score, mass, initial)` of each side.
pub fn report_order(a: (f64, f64, f64), b: (f64, f64, f64)) -> std::cmp::Ordering {
    let bad = |(score, _, initial): (f64, f64, f64)| score < initial;
    bad(b).cmp(&bad(a)).then(b.1.total_cmp(&a.1))
}

/// The most evidence a reporter's claim about one subject is believed
/// (TRUST.md §5, "Claims"): what it was believed in the reporter's previous
/// report (`None` if that did not name the subject, or there was none)
/// plus `claim_rate_per_hour` for the seconds between the two reports, and
/// never less than `claim_floor`. A reporter cannot have observed a
/// subject faster than tasks can run, so a spy that claims a hundred
/// observations of a protégé it names for the first time is believed for
/// ten, and gains weight no faster than an honest partner would.
pub fn claim_cap(previous: Option<f64>, elapsed_secs: f64, config: &AggregationConfig) -> f64 {
    let grown = previous.unwrap_or(0.0) + config.claim_rate_per_hour * elapsed_secs / 3600.0;
    grown.max(config.claim_floor)
}

/// How much of a `claimed` evidence count is believed: the claim, at most
/// [`claim_cap`] (rounded down). `previous` is what was believed of the
/// same subject in the reporter's previous report.
pub fn believed_claim(
    claimed: u32,
    previous: Option<u32>,
    elapsed_secs: f64,
    config: &AggregationConfig,
) -> u32 {
    let cap = claim_cap(previous.map(f64::from), elapsed_secs, config);
    // The cap is ≥ 0 and a claim is a u32: the floor of the smaller is a
    // u32 again.
    f64::from(claimed).min(cap).floor() as u32
}

/// Whether credible reports speak well of a subject (part of being
/// proven, TRUST.md §5b): a global score with weight, at or above the
/// subject's initial trust.
pub fn spoken_well(weight: f64, score: f64, initial: f64) -> bool {
    weight > 0.0 && score >= initial
}

/// What a report says of one subject: the direct score rounded to an
/// integer and the evidence mass rounded up (the bytes of a
/// [`crate::ReportEntry`]).
pub fn report_entry(direct: f64, mass: f64) -> (u16, u32) {
    (
        direct.round().clamp(0.0, 1000.0) as u16,
        mass.ceil().clamp(0.0, f64::from(u32::MAX)) as u32,
    )
}

/// One opinion in an aggregation: `reporter` says `score` of `subject`,
/// believed with `confidence` (of the evidence it claims). Indexes are the
/// caller's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Opinion {
    /// Who says it.
    pub reporter: usize,
    /// Of whom.
    pub subject: usize,
    /// 0–1000.
    pub score: f64,
    /// In [0, 1).
    pub confidence: f64,
}

/// A subject's global score from one aggregation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Global {
    /// The credibility-weighted mean opinion, pulled toward the prior.
    pub score: f64,
    /// Reporters with credibility (other than `local`) with an opinion on
    /// the subject.
    pub reporters: usize,
    /// Σ credibility × confidence behind it.
    pub weight: f64,
}

/// Credibility of every peer and the global score of every subject someone
/// credible reported on.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalTrust {
    /// EigenTrust credibility, summing to 1.
    pub credibility: Vec<f64>,
    /// Per peer: `None` when no reporter other than `local` spoke of it.
    pub scores: Vec<Option<Global>>,
    /// Power iterations run.
    pub iterations: u32,
    /// Whether they met ε.
    pub converged: bool,
}

/// What one aggregation weighs, by index (`0..peers`).
#[derive(Debug, Clone, Copy)]
pub struct GlobalInputs<'a> {
    /// How many peers.
    pub peers: usize,
    /// Every opinion, this node's own included.
    pub opinions: &'a [Opinion],
    /// The pre-trusted peers (this node, anchors, its own org's agents).
    pub pre_trusted: &'a [usize],
    /// This node: its opinions pass credibility on but enter the score
    /// through the direct side of the blend, not the global mean.
    pub local: Option<usize>,
    /// The reporters other than `local` (the prior's mass is spread over
    /// those of them with credibility).
    pub reporters: &'a [usize],
    /// A previous credibility vector, to warm-start from.
    pub start: Option<&'a [f64]>,
}

/// TRUST.md §5: credibility from endorsements (`conf · max(s − neutral, 0)`),
/// then each subject's global score
/// `(Σ t_i·conf_ij·s_ij + m₀·initial_j) / (Σ t_i·conf_ij + m₀)` over the
/// reporters other than `local`, with `m₀ = prior_mass / credible reporters`.
/// `initial(j)` is subject `j`'s initial trust (0–1000).
pub fn global_trust(
    inputs: GlobalInputs<'_>,
    initial: impl Fn(usize) -> f64,
    config: &AggregationConfig,
) -> GlobalTrust {
    let n = inputs.peers;
    let neutral = f64::from(config.neutral);
    let mut rows: Vec<Row> = vec![Vec::new(); n];
    for o in inputs.opinions {
        let w = o.confidence * (o.score - neutral).max(0.0);
        if w > 0.0 {
            rows[o.reporter].push((o.subject, w));
        }
    }
    let params = Params {
        damping: config.damping,
        epsilon: config.epsilon,
        max_iterations: config.max_iterations,
    };
    let result = eigentrust::credibility(n, &rows, inputs.pre_trusted, params, inputs.start);
    // A reporter nobody credible vouches for has no weight at all: not in
    // the sums, not in the count, and not in how thinly the prior is
    // spread (a thousand fresh keys must not dilute it).
    let credible = inputs
        .reporters
        .iter()
        .filter(|&&r| result.trust[r] > 0.0)
        .count();
    let m0 = config.prior_mass / credible.max(1) as f64;
    let agreement = Agreement::new(&inputs, config.agreement_power);
    let mut sums = vec![(0.0f64, 0.0f64, 0usize); n];
    for o in inputs.opinions {
        let w = result.trust[o.reporter] * agreement.factor(o) * o.confidence;
        if Some(o.reporter) == inputs.local || w <= 0.0 {
            continue;
        }
        let e = &mut sums[o.subject];
        e.0 += w * o.score;
        e.1 += w;
        e.2 += 1;
    }
    let scores = sums
        .into_iter()
        .enumerate()
        .map(|(j, (num, den, count))| {
            (count > 0).then(|| {
                let prior = initial(j);
                Global {
                    score: if den + m0 > 0.0 {
                        (num + m0 * prior) / (den + m0)
                    } else {
                        prior
                    },
                    reporters: count,
                    weight: den,
                }
            })
        })
        .collect();
    GlobalTrust {
        credibility: result.trust,
        scores,
        iterations: result.iterations,
        converged: result.converged,
    }
}

/// How far opinions agree with the pre-trusted peers' own (TRUST.md §5,
/// "Agreement"). `r_j` is the pre-trusted peers' confidence-weighted mean
/// opinion of `j` and `c_j` their summed confidence. A reporter's factor is
/// `(Σ c_j·(1 − |s_ij − r_j| / 1000) / Σ c_j)^power` over the subjects both
/// spoke of; an entry's own factor is `(1 − |s_ij − r_j| / 1000)^power`, so
/// a spy cannot buy weight for a lie by padding its report with truths.
/// Both are 1 for a pre-trusted reporter, where nobody pre-trusted spoke of
/// the subject (or of any subject the reporter names), and when `power`
/// is 0.
struct Agreement {
    power: f64,
    pre: Vec<bool>,
    reference: Vec<Option<f64>>,
    reporter: Vec<f64>,
}

impl Agreement {
    fn new(inputs: &GlobalInputs<'_>, power: f64) -> Self {
        let n = inputs.peers;
        let mut pre = vec![false; n];
        for &p in inputs.pre_trusted {
            pre[p] = true;
        }
        let mut sums = vec![(0.0f64, 0.0f64); n];
        for o in inputs.opinions.iter().filter(|o| pre[o.reporter]) {
            sums[o.subject].0 += o.confidence * o.score;
            sums[o.subject].1 += o.confidence;
        }
        let mut agreement = Agreement {
            power,
            pre,
            reference: sums
                .iter()
                .map(|&(sum, weight)| (weight > 0.0).then(|| sum / weight))
                .collect(),
            reporter: vec![1.0; n],
        };
        if power == 0.0 {
            return agreement;
        }
        let mut tally = vec![(0.0f64, 0.0f64); n];
        for o in inputs
            .opinions
            .iter()
            .filter(|o| !agreement.pre[o.reporter])
        {
            if let Some(close) = agreement.closeness(o) {
                let weight = sums[o.subject].1;
                tally[o.reporter].0 += weight * close;
                tally[o.reporter].1 += weight;
            }
        }
        for (r, (agree, weight)) in tally.into_iter().enumerate() {
            if weight > 0.0 {
                agreement.reporter[r] = (agree / weight).powf(power);
            }
        }
        agreement
    }

    /// `1 − |s − r| / 1000` for an opinion a pre-trusted peer also holds.
    fn closeness(&self, o: &Opinion) -> Option<f64> {
        let r = self.reference[o.subject]?;
        Some(1.0 - ((o.score - r).abs() / 1000.0).min(1.0))
    }

    /// The factor on one opinion's weight: its reporter's, times its own.
    fn factor(&self, o: &Opinion) -> f64 {
        if self.power == 0.0 || self.pre[o.reporter] {
            return 1.0;
        }
        let own = self.closeness(o).map_or(1.0, |c| c.powf(self.power));
        self.reporter[o.reporter] * own
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_weighs_twice_a_success_in_three_dimensions() {
        let cfg = TrustConfig::default();
        let mut t = Tally::default();
        t.add(EvidenceKind::TaskSuccess, 1.0, &cfg);
        t.add(EvidenceKind::TaskFailure, 1.0, &cfg);
        let (_, mass) = direct_score(&t.masses, 0.5, &cfg);
        assert_eq!(mass, 9.0);
        let q = t.masses[Dimension::OutputQuality as usize];
        assert_eq!((q.positive, q.negative), (1.0, 2.0));
        // Dimensions task outcomes do not speak to stay at the prior.
        let (s, _) = estimates(&t.masses, 0.5, &cfg);
        assert_eq!(s[Dimension::PolicyCompliance as usize], 0.5);
        // Severe kinds are not masses.
        let before = t;
        t.add(EvidenceKind::LedgerEquivocation, 1.0, &cfg);
        assert_eq!(t, before);
    }

    #[test]
    fn no_evidence_is_the_prior_and_the_ceiling_caps() {
        let cfg = TrustConfig::default();
        let (direct, mass) = direct_score(&[Masses::default(); 5], 0.6, &cfg);
        assert!((direct - 600.0).abs() < 1e-9 && mass == 0.0);
        assert_eq!(blend(direct, 0.0, 420.0, &cfg), 420.0);
        assert_eq!(final_score(900.0, 850.0), 850.0);
        assert_eq!(final_score(-3.0, 850.0), 0.0);
        assert_eq!(report_entry(499.5, 2.01), (500, 3));
    }

    #[test]
    fn a_claim_grows_no_faster_than_observations_could() {
        let cfg = AggregationConfig::default();
        // A first report: the floor.
        assert_eq!(claim_cap(None, 0.0, &cfg), cfg.claim_floor);
        // Later: what was believed plus the rate for the time between the
        // reports (a subject not named before starts from 0).
        assert_eq!(claim_cap(Some(10.0), 1800.0, &cfg), 40.0);
        assert_eq!(claim_cap(None, 86_400.0, &cfg), 1440.0);
        assert_eq!(claim_cap(Some(0.0), 0.0, &cfg), cfg.claim_floor);
        let off = AggregationConfig {
            claim_floor: f64::from(u32::MAX),
            ..cfg
        };
        assert_eq!(claim_cap(None, 0.0, &off), f64::from(u32::MAX));
    }

    #[test]
    fn bad_news_comes_first_in_a_report() {
        // (score, mass, initial): a well-known good agent, a little-known
        // bad one, a well-known bad one, a little-known good one.
        let mut e = [
            (800.0, 90.0, 500.0),
            (300.0, 6.0, 500.0),
            (250.0, 30.0, 500.0),
            (600.0, 3.0, 500.0),
        ];
        e.sort_by(|a, b| report_order(*a, *b));
        assert_eq!(
            e.iter().map(|x| x.1).collect::<Vec<_>>(),
            [30.0, 6.0, 90.0, 3.0]
        );
    }

    #[test]
    fn only_credible_reporters_move_a_global_score_and_local_stays_out() {
        let cfg = AggregationConfig::default();
        // 0 is this node (pre-trusted); it endorses 1; 2 is a stranger who
        // praises 3; 1 slanders 3.
        let op = |reporter, subject, score| Opinion {
            reporter,
            subject,
            score,
            confidence: 0.9,
        };
        let opinions = [op(0, 1, 900.0), op(2, 3, 1000.0), op(1, 3, 100.0)];
        let g = global_trust(
            GlobalInputs {
                peers: 4,
                opinions: &opinions,
                pre_trusted: &[0],
                local: Some(0),
                reporters: &[1, 2],
                start: None,
            },
            |_| 500.0,
            &cfg,
        );
        assert_eq!(g.credibility[2], 0.0);
        // Only 1's opinion counts (2 has no credibility): pulled below 500.
        let s3 = g.scores[3].unwrap();
        assert!(s3.score < 500.0, "{s3:?}");
        assert_eq!(s3.reporters, 1);
        // This node's own opinion of 1 is not in 1's global score.
        assert!(g.scores[1].is_none());
    }
}
