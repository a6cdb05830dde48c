//! The trust engine: one node's complete view of whom to trust.
//!
//! It holds this node's direct evidence ([`crate::direct`]), the latest
//! verified report of every reporter ([`crate::report`]), and the last
//! aggregation ([`crate::eigentrust`]). A subject's score is
//!
//! ```text
//! β     = n / (n + k)                      n: direct evidence mass, k: blend_evidence
//! final = min(ceiling, β·direct + (1 − β)·global)       (0 while severe evidence stands)
//! global_j = (Σ_i t_i·conf_ij·s_ij + m₀·initial_j) / (Σ_i t_i·conf_ij + m₀)
//! ```
//!
//! where `t_i` is reporter `i`'s EigenTrust credibility, `s_ij` its reported
//! score for `j`, `conf_ij = e/(e + k)` for its evidence count `e`, and
//! `m₀ = prior_mass / (number of reporters with credibility > 0)`; a
//! reporter of zero credibility weighs nothing anywhere. Local trust for EigenTrust is
//! `c_ij = conf_ij · max(s_ij − neutral, 0)`: only opinions above neutral
//! pass credibility on. Everything is deterministic: maps are ordered and
//! time is passed in.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mesh_iatp::handshake::PeerTrust;
use mesh_iatp::{Did, Identity, OrgPolicy, Score, Timestamp};

use crate::aggregation::{Aggregated, Aggregation, AggregationStats, GlobalScore, GlobalView};
use crate::claims::HeldReport;
use crate::config::{ConfigError, TrustConfig};
use crate::direct::{DirectRecord, Masses, SevereMark};
use crate::evidence::{Dimension, Evidence};
use crate::policy::AgentPolicy;
use crate::report::{self, ReportEntry, ReportError, TrustReport};
use crate::scoring;
use crate::tier::Tier;

/// What happened to a received report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// New: it replaced the reporter's previous report (or was its first).
    Accepted,
    /// Exactly the report already held: nothing changed.
    Duplicate,
}

/// One dimension's part of a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DimensionBreakdown {
    /// Which dimension.
    pub dimension: Dimension,
    /// Its weight in the score.
    pub weight: f64,
    /// Its estimate, 0–1000.
    pub estimate: f64,
    /// Decayed evidence for and against.
    pub masses: Masses,
}

/// Why a subject has the score it has.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Whom.
    pub subject: Did,
    /// The final score.
    pub score: Score,
    /// Its tier.
    pub tier: Tier,
    /// Starting point and cap.
    pub policy: AgentPolicy,
    /// Direct score (0–1000) from this node's own evidence.
    pub direct_score: f64,
    /// Decayed direct evidence mass `n`.
    pub direct_evidence: f64,
    /// β: the direct score's share in the blend.
    pub direct_weight: f64,
    /// The per-dimension breakdown of the direct score.
    pub dimensions: Vec<DimensionBreakdown>,
    /// The reported side.
    pub global: GlobalScore,
    /// Did the ceiling lower the blend?
    pub capped_by_ceiling: bool,
    /// A severe finding holding the score at 0.
    pub severe: Option<SevereMark>,
    /// The latest evidence, oldest first.
    pub recent_evidence: Vec<Evidence>,
    /// [`TrustEngine::is_proven`].
    pub proven: bool,
}

/// One node's trust state. See the module docs for the formulas.
#[derive(Debug, Clone)]
pub struct TrustEngine {
    config: TrustConfig,
    local: Did,
    /// Shared with a running [`Aggregation`] (copied on write).
    policies: Arc<BTreeMap<Did, AgentPolicy>>,
    direct: BTreeMap<Did, DirectRecord>,
    /// Each reporter's latest report, with what this node believes of it.
    reports: BTreeMap<Did, HeldReport>,
    pre_trusted: BTreeSet<Did>,
    /// The last aggregation's result, shared with a running one (its
    /// warm start).
    global: Arc<GlobalView>,
}

impl TrustEngine {
    /// An engine for the node `local`, with a validated config. `local` and
    /// the config's anchors are pre-trusted.
    pub fn new(local: Did, config: TrustConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut pre_trusted: BTreeSet<Did> = config.anchors.iter().cloned().collect();
        pre_trusted.insert(local.clone());
        Ok(TrustEngine {
            config,
            local,
            policies: Arc::default(),
            direct: BTreeMap::new(),
            reports: BTreeMap::new(),
            pre_trusted,
            global: Arc::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &TrustConfig {
        &self.config
    }

    /// Set an agent's initial score and ceiling (from its org's policy in
    /// the trust bundle, or a spawn certificate's ceiling). The initial is
    /// clamped to the ceiling.
    pub fn register_agent(&mut self, agent: Did, initial: Score, ceiling: Score) {
        Arc::make_mut(&mut self.policies).insert(
            agent,
            AgentPolicy {
                initial: initial.min(ceiling),
                ceiling,
            },
        );
    }

    /// [`TrustEngine::register_agent`] from a bundle's org policy.
    pub fn register_from_policy(&mut self, agent: Did, policy: &OrgPolicy) {
        self.register_agent(agent, policy.initial_trust, policy.trust_ceiling);
    }

    /// Add a pre-trusted peer (e.g. an agent of this node's own org).
    pub fn add_pre_trusted(&mut self, peer: Did) {
        self.pre_trusted.insert(peer);
    }

    /// The policy used for `agent`.
    pub fn policy(&self, agent: &Did) -> AgentPolicy {
        self.policies
            .get(agent)
            .copied()
            .unwrap_or(self.unknown_policy())
    }

    /// The policy of an agent nothing was registered for.
    fn unknown_policy(&self) -> AgentPolicy {
        AgentPolicy {
            initial: Score::saturating(self.config.unknown_initial),
            ceiling: Score::saturating(self.config.unknown_ceiling),
        }
    }

    /// Record one item of direct evidence.
    pub fn record(&mut self, evidence: Evidence) {
        let at = evidence.at;
        self.direct
            .entry(evidence.subject.clone())
            .or_insert_with(|| DirectRecord::new(at))
            .apply(evidence, &self.config);
    }

    /// Lift the severe mark on `subject` (an explicit operator decision).
    pub fn clear_severe(&mut self, subject: &Did) -> Option<SevereMark> {
        self.direct.get_mut(subject)?.clear_severe()
    }

    /// Verify and store a received trust report.
    pub fn receive_report(
        &mut self,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<ReportOutcome, ReportError> {
        self.receive_report_from(bytes, now)
            .map(|(outcome, _)| outcome)
    }

    /// [`TrustEngine::receive_report`], also naming the verified reporter.
    pub fn receive_report_from(
        &mut self,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<(ReportOutcome, Did), ReportError> {
        let agg = &self.config.aggregation;
        let report = report::verify_report_shared(
            bytes,
            agg.max_report_entries,
            now,
            agg.max_clock_skew_secs,
        )?;
        if let Some(held) = self.reports.get(&report.reporter).map(|h| &h.report) {
            if report.position < held.position {
                return Err(ReportError::Stale {
                    have: held.position,
                    got: report.position,
                });
            }
            if report.position == held.position {
                return if held.bytes == report.bytes {
                    Ok((ReportOutcome::Duplicate, report.reporter.clone()))
                } else {
                    Err(ReportError::Conflicting {
                        reporter: report.reporter.clone(),
                        position: report.position,
                    })
                };
            }
        }
        let reporter = report.reporter.clone();
        if !self.reports.contains_key(&reporter) {
            if self.unproven(&reporter) {
                let held = self.reports.keys().filter(|d| self.unproven(d)).count();
                if held >= agg.max_unproven_reporters {
                    return Err(ReportError::Crowded { reporter, held });
                }
            }
            if self.reports.len() >= agg.max_reporters {
                self.make_room_for(&reporter)?;
            }
        }
        let held = HeldReport::new(
            report,
            self.reports.get(&reporter),
            &self.config.aggregation,
        );
        self.reports.insert(reporter.clone(), held);
        Ok((ReportOutcome::Accepted, reporter))
    }

    /// A reporter no aggregation has given any credibility (and not
    /// pre-trusted): its report weighs nothing yet.
    fn unproven(&self, reporter: &Did) -> bool {
        self.credibility(reporter) == 0.0 && !self.pre_trusted.contains(reporter)
    }

    /// The store is full: the least credible reporter held (never a
    /// pre-trusted one) gives way to `newcomer` if it is no more credible.
    fn make_room_for(&mut self, newcomer: &Did) -> Result<(), ReportError> {
        let least = self
            .reports
            .keys()
            .filter(|d| !self.pre_trusted.contains(*d))
            .map(|d| (self.credibility(d), d))
            .min_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        match least {
            Some((c, d)) if c <= self.credibility(newcomer) => {
                let d = d.clone();
                self.reports.remove(&d);
                Ok(())
            }
            _ => Err(ReportError::Crowded {
                reporter: newcomer.clone(),
                held: self.reports.len(),
            }),
        }
    }

    /// How many reporters' reports are held.
    pub fn reporters(&self) -> usize {
        self.reports.len()
    }

    /// Whether a report from `reporter` is held.
    pub fn holds_report_from(&self, reporter: &Did) -> bool {
        self.reports.contains_key(reporter)
    }

    /// The (epoch, sequence) of the report held from `reporter`.
    pub fn held_report_position(&self, reporter: &Did) -> Option<(u64, u64)> {
        self.reports.get(reporter).map(|h| h.report.position)
    }

    /// The entries this node's report would carry now: its direct opinions
    /// backed by work (task outcomes), and bad news of any kind, bad news
    /// first, then the most-evidenced ([`scoring::report_order`]),
    /// at most `max_report_entries`.
    pub fn opinions(&self, now: Timestamp) -> Vec<ReportEntry> {
        let mut opinions: Vec<(f64, &Did, f64, f64)> = self
            .direct
            .iter()
            .filter(|(subject, _)| **subject != self.local)
            .map(|(subject, record)| {
                let initial = f64::from(self.policy(subject).initial.get());
                let (score, mass) = record.score(now, initial / 1000.0, &self.config);
                let masses = record.masses_at(now, self.config.half_life_secs);
                // An opinion backed by work, or bad news: a handshake
                // alone says nothing of how an agent behaves.
                let said = mass > 0.0 && (scoring::has_worked(&masses) || score < initial);
                (mass, subject, score, initial, said)
            })
            .filter(|o| o.4)
            .map(|(mass, subject, score, initial, _)| (mass, subject, score, initial))
            .collect();
        opinions.sort_by(|a, b| {
            scoring::report_order((a.2, a.0, a.3), (b.2, b.0, b.3)).then_with(|| a.1.cmp(b.1))
        });
        opinions.truncate(self.config.aggregation.max_report_entries);
        opinions
            .into_iter()
            .map(|(mass, subject, score, _)| {
                let (score, evidence) = scoring::report_entry(score, mass);
                ReportEntry {
                    subject: subject.to_string(),
                    score: Score::saturating(score),
                    evidence,
                }
            })
            .collect()
    }

    /// This node's direct opinions as a signed report ([`Self::opinions`]).
    pub fn make_report(
        &self,
        identity: &Identity,
        epoch: u64,
        sequence: u64,
        now: Timestamp,
    ) -> Result<Vec<u8>, mesh_iatp::EnvelopeError> {
        let entries = self.opinions(now);
        report::seal_report(
            &TrustReport {
                reporter: identity.did().clone(),
                epoch,
                sequence,
                issued: now,
                entries,
            },
            identity,
        )
    }

    fn confidence(&self, evidence: f64) -> f64 {
        scoring::confidence(evidence, self.config.blend_evidence)
    }

    /// A snapshot of what the next aggregation weighs: the fresh reports
    /// held and this node's own opinions. Cheap (shared pointers and the
    /// node's own opinions); [`Aggregation::run`] does the work, anywhere,
    /// and [`TrustEngine::install`] puts its result in force.
    pub fn aggregation(&self, now: Timestamp) -> Aggregation {
        let agg = &self.config.aggregation;
        let oldest = now.minus_secs(agg.report_ttl_secs);
        // This node's own direct opinions count as its report.
        let own = self
            .direct
            .iter()
            .filter(|(subject, _)| **subject != self.local)
            .filter_map(|(subject, record)| {
                let prior = f64::from(self.policy(subject).initial.get()) / 1000.0;
                let (score, mass) = record.score(now, prior, &self.config);
                (mass > 0.0 || record.severe().is_some())
                    .then(|| (subject.clone(), score, self.confidence(mass.max(1.0))))
            })
            .collect();
        let fresh = self
            .reports
            .values()
            .filter(|h| h.report.issued >= oldest && h.report.reporter != self.local)
            .cloned()
            .collect();
        Aggregation {
            local: self.local.clone(),
            own,
            fresh,
            pre_trusted: self.pre_trusted.iter().cloned().collect(),
            previous: Arc::clone(&self.global),
            policies: Arc::clone(&self.policies),
            unknown: self.unknown_policy(),
            config: agg.clone(),
            blend_evidence: self.config.blend_evidence,
        }
    }

    /// Put a finished aggregation in force. Reports that arrived while it
    /// ran count from the next one.
    pub fn install(&mut self, done: Aggregated) -> AggregationStats {
        self.global = Arc::new(done.view);
        done.stats
    }

    /// Recompute global trust from the reports held (fresh ones only) and
    /// this node's own opinions, in place. Warm-starts from the previous
    /// result, which makes a refresh after one changed report cheap.
    pub fn refresh(&mut self, now: Timestamp) -> AggregationStats {
        let done = self.aggregation(now).run();
        self.install(done)
    }

    /// A peer's credibility as a reporter in the last aggregation (0–1, all sum to 1).
    pub fn credibility(&self, peer: &Did) -> f64 {
        self.global.credibility.get(peer).copied().unwrap_or(0.0)
    }

    fn global_score(&self, subject: &Did, policy: AgentPolicy) -> GlobalScore {
        self.global
            .scores
            .get(subject)
            .copied()
            .unwrap_or(GlobalScore {
                score: f64::from(policy.initial.get()),
                reporters: 0,
                weight: 0.0,
            })
    }

    fn blend(
        &self,
        subject: &Did,
        policy: AgentPolicy,
        now: Timestamp,
    ) -> (f64, f64, f64, f64, bool) {
        let prior = f64::from(policy.initial.get()) / 1000.0;
        let (direct, mass, severe) = match self.direct.get(subject) {
            Some(r) => {
                let (s, m) = r.score(now, prior, &self.config);
                (s, m, r.severe().is_some())
            }
            None => (f64::from(policy.initial.get()), 0.0, false),
        };
        let beta = self.confidence(mass);
        let global = self.global_score(subject, policy).score;
        let blended = if severe {
            0.0
        } else {
            scoring::blend(direct, mass, global, &self.config)
        };
        (blended, direct, mass, beta, severe)
    }

    fn finish(blended: f64, policy: AgentPolicy) -> (Score, bool) {
        let ceiling = f64::from(policy.ceiling.get());
        let capped = blended > ceiling;
        (
            Score::saturating(scoring::final_score(blended, ceiling).round() as u16),
            capped,
        )
    }

    /// The subject's score now (with the last aggregation's global view).
    pub fn score(&self, subject: &Did, now: Timestamp) -> Score {
        let policy = self.policy(subject);
        Self::finish(self.blend(subject, policy, now).0, policy).0
    }

    /// Whether `subject` has shown how it works: this node's own task
    /// outcomes with it (or a severe mark), or credible reports speaking
    /// well of it (a global score with weight, at or above its initial
    /// trust). A fresh identity is unproven however many handshakes it
    /// made, and so is one known only for misbehaving (rate-limit strikes,
    /// bad reports); a delegator gives either work only by exploring
    /// ([`crate::select`]).
    pub fn is_proven(&self, subject: &Did, now: Timestamp) -> bool {
        let seen = self.direct.get(subject).is_some_and(|r| {
            r.severe().is_some()
                || scoring::has_worked(&r.masses_at(now, self.config.half_life_secs))
        });
        let initial = f64::from(self.policy(subject).initial.get());
        seen || self
            .global
            .scores
            .get(subject)
            .is_some_and(|g| scoring::spoken_well(g.weight, g.score, initial))
    }

    /// The subject's tier now.
    pub fn tier(&self, subject: &Did, now: Timestamp) -> Tier {
        self.config.tiers.tier_of(self.score(subject, now))
    }

    /// Everything behind the subject's score.
    pub fn explain(&self, subject: &Did, now: Timestamp) -> Explanation {
        let policy = self.policy(subject);
        let (blended, direct_score, direct_evidence, direct_weight, _) =
            self.blend(subject, policy, now);
        let (score, capped_by_ceiling) = Self::finish(blended, policy);
        let prior = f64::from(policy.initial.get()) / 1000.0;
        let record = self.direct.get(subject);
        let (estimates, masses) = match record {
            Some(r) => (
                r.estimate(now, prior, &self.config).0,
                r.masses_at(now, self.config.half_life_secs),
            ),
            None => ([prior; 5], [Masses::default(); 5]),
        };
        Explanation {
            subject: subject.clone(),
            score,
            tier: self.config.tiers.tier_of(score),
            policy,
            direct_score,
            direct_evidence,
            direct_weight,
            dimensions: Dimension::ALL
                .iter()
                .map(|d| DimensionBreakdown {
                    dimension: *d,
                    weight: self.config.dimensions.weight(*d),
                    estimate: 1000.0 * estimates[*d as usize],
                    masses: masses[*d as usize],
                })
                .collect(),
            global: self.global_score(subject, policy),
            capped_by_ceiling,
            severe: record.and_then(|r| r.severe().cloned()),
            recent_evidence: record
                .map(|r| r.recent().cloned().collect())
                .unwrap_or_default(),
            proven: self.is_proven(subject, now),
        }
    }

    /// A view at a fixed time, usable as the handshake's trust source.
    pub fn view(&self, now: Timestamp) -> TrustView<'_> {
        TrustView { engine: self, now }
    }
}

/// The engine frozen at one instant; implements the handshake's [`PeerTrust`].
#[derive(Debug, Clone, Copy)]
pub struct TrustView<'a> {
    engine: &'a TrustEngine,
    now: Timestamp,
}

impl PeerTrust for TrustView<'_> {
    fn score(&self, peer: &Did, policy: &OrgPolicy) -> Score {
        let known = self
            .engine
            .policies
            .get(peer)
            .copied()
            .unwrap_or(AgentPolicy {
                initial: policy.initial_trust.min(policy.trust_ceiling),
                ceiling: policy.trust_ceiling,
            });
        let (blended, ..) = self.engine.blend(peer, known, self.now);
        TrustEngine::finish(blended, known).0
    }
}
