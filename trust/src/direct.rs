//! Direct trust: what this node has itself seen of one subject.
//!
//! Per dimension `d` the node keeps two decayed masses, `P_d` (evidence for)
//! and `N_d` (against). Each item adds its kind's weight to every dimension
//! the kind speaks to; all masses decay as `m · 2^(−Δt / half_life)`. The
//! dimension's estimate is the Beta mean with the org's initial trust `p` as
//! prior of strength `α`:
//!
//! ```text
//! s_d = (P_d + α·p) / (P_d + N_d + α)        direct = 1000 · Σ_d w_d · s_d
//! ```
//!
//! so no evidence means `direct = initial`, old behaviour fades back toward
//! the prior, and because failures weigh more than successes trust is lost
//! faster than it is regained. Severe evidence pins the score to 0 until
//! [`DirectRecord::clear_severe`].

use std::collections::VecDeque;

use mesh_iatp::Timestamp;

use crate::config::TrustConfig;
use crate::evidence::{Evidence, EvidenceKind};
use crate::scoring;
pub use crate::scoring::Masses;

/// A severe finding that holds the score at 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevereMark {
    /// Which severe kind.
    pub kind: EvidenceKind,
    /// When.
    pub at: Timestamp,
    /// The evidence, with its proof.
    pub evidence: Evidence,
}

/// Everything this node has observed about one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectRecord {
    masses: [Masses; 5],
    as_of: Timestamp,
    severe: Option<SevereMark>,
    recent: VecDeque<Evidence>,
    items: u64,
}

/// Multiply factor for decaying a mass over `from → to`.
pub fn decay_factor(from: Timestamp, to: Timestamp, half_life_secs: u64) -> f64 {
    let dt = to.0.saturating_sub(from.0) as f64;
    (-dt / half_life_secs as f64).exp2()
}

impl DirectRecord {
    /// An empty record.
    pub fn new(now: Timestamp) -> Self {
        DirectRecord {
            masses: [Masses::default(); 5],
            as_of: now,
            severe: None,
            recent: VecDeque::new(),
            items: 0,
        }
    }

    /// Fold in one item of evidence. Evidence dated before the record's last
    /// update is decayed from its own date, so arrival order does not matter
    /// for the masses.
    pub fn apply(&mut self, evidence: Evidence, config: &TrustConfig) {
        let kind = evidence.kind;
        if kind.is_severe() {
            if self.severe.is_none() {
                self.severe = Some(SevereMark {
                    kind,
                    at: evidence.at,
                    evidence: evidence.clone(),
                });
            }
        } else {
            let now = self.as_of.max(evidence.at);
            self.decay_to(now, config.half_life_secs);
            let weight = config.evidence.weight(kind)
                * decay_factor(evidence.at, now, config.half_life_secs);
            scoring::add_weight(&mut self.masses, kind, weight);
        }
        self.items += 1;
        if config.recent_evidence_kept > 0 {
            if self.recent.len() == config.recent_evidence_kept {
                self.recent.pop_front();
            }
            self.recent.push_back(evidence);
        }
    }

    fn decay_to(&mut self, now: Timestamp, half_life_secs: u64) {
        if now <= self.as_of {
            return;
        }
        let f = decay_factor(self.as_of, now, half_life_secs);
        for m in &mut self.masses {
            m.positive *= f;
            m.negative *= f;
        }
        self.as_of = now;
    }

    /// The masses of every dimension as of `now` (not stored: reading is pure).
    pub fn masses_at(&self, now: Timestamp, half_life_secs: u64) -> [Masses; 5] {
        let f = decay_factor(self.as_of, now, half_life_secs);
        self.masses.map(|m| Masses {
            positive: m.positive * f,
            negative: m.negative * f,
        })
    }

    /// Per-dimension estimates in [0, 1] and the total evidence mass, as of `now`,
    /// with prior `p` (the subject's initial trust / 1000).
    pub fn estimate(&self, now: Timestamp, prior: f64, config: &TrustConfig) -> ([f64; 5], f64) {
        scoring::estimates(&self.masses_at(now, config.half_life_secs), prior, config)
    }

    /// The direct score in [0, 1000] (0 while a severe mark stands) and the
    /// evidence mass behind it.
    pub fn score(&self, now: Timestamp, prior: f64, config: &TrustConfig) -> (f64, f64) {
        let (score, mass) =
            scoring::direct_score(&self.masses_at(now, config.half_life_secs), prior, config);
        if self.severe.is_some() {
            return (0.0, mass);
        }
        (score, mass)
    }

    /// The standing severe mark, if any.
    pub fn severe(&self) -> Option<&SevereMark> {
        self.severe.as_ref()
    }

    /// Lift a severe mark (an operator's explicit decision); returns it.
    pub fn clear_severe(&mut self) -> Option<SevereMark> {
        self.severe.take()
    }

    /// The most recent evidence, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &Evidence> {
        self.recent.iter()
    }

    /// How many items were ever applied.
    pub fn items(&self) -> u64 {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Dimension;
    use mesh_iatp::testing::identity;

    const DAY: u64 = 86_400;

    fn ev(kind: EvidenceKind, at: u64) -> Evidence {
        Evidence::new(identity("subject").did().clone(), kind, Timestamp(at))
    }

    #[test]
    fn no_evidence_sits_at_the_prior() {
        let c = TrustConfig::default();
        let r = DirectRecord::new(Timestamp(0));
        let (score, mass) = r.score(Timestamp(0), 0.5, &c);
        assert!((score - 500.0).abs() < 1e-9);
        assert_eq!(mass, 0.0);
    }

    #[test]
    fn evidence_halves_every_half_life() {
        let c = TrustConfig::default();
        let mut r = DirectRecord::new(Timestamp(0));
        r.apply(ev(EvidenceKind::TaskSuccess, 0), &c);
        let m0 =
            r.masses_at(Timestamp(0), c.half_life_secs)[Dimension::OutputQuality as usize].positive;
        let m1 = r.masses_at(Timestamp(7 * DAY), c.half_life_secs)
            [Dimension::OutputQuality as usize]
            .positive;
        assert!((m0 - 1.0).abs() < 1e-12);
        assert!((m1 - 0.5).abs() < 1e-12);
    }

    #[test]
    fn order_of_arrival_does_not_change_masses() {
        let c = TrustConfig::default();
        let mut a = DirectRecord::new(Timestamp(0));
        let mut b = DirectRecord::new(Timestamp(0));
        a.apply(ev(EvidenceKind::TaskSuccess, 100), &c);
        a.apply(ev(EvidenceKind::TaskFailure, 5000), &c);
        b.apply(ev(EvidenceKind::TaskFailure, 5000), &c);
        b.apply(ev(EvidenceKind::TaskSuccess, 100), &c);
        let now = Timestamp(10_000);
        let (sa, _) = a.score(now, 0.5, &c);
        let (sb, _) = b.score(now, 0.5, &c);
        assert!((sa - sb).abs() < 1e-9, "{sa} vs {sb}");
    }

    #[test]
    fn failures_cost_more_than_successes_earn_and_fade_with_time() {
        let c = TrustConfig::default();
        let mut r = DirectRecord::new(Timestamp(0));
        for i in 0..10 {
            r.apply(ev(EvidenceKind::TaskSuccess, i), &c);
            r.apply(ev(EvidenceKind::TaskFailure, i), &c);
        }
        let (now_score, _) = r.score(Timestamp(10), 0.5, &c);
        assert!(
            now_score < 500.0,
            "equal counts of success and failure end below the prior"
        );
        let (later, _) = r.score(Timestamp(10 + 60 * DAY), 0.5, &c);
        assert!(
            later > now_score && later < 500.0,
            "recovers toward the prior: {now_score} → {later}"
        );
    }

    #[test]
    fn severe_evidence_pins_to_zero_until_cleared() {
        let c = TrustConfig::default();
        let mut r = DirectRecord::new(Timestamp(0));
        for i in 0..50 {
            r.apply(ev(EvidenceKind::TaskSuccess, i), &c);
        }
        r.apply(ev(EvidenceKind::LedgerEquivocation, 60), &c);
        assert_eq!(r.score(Timestamp(60), 0.5, &c).0, 0.0);
        assert_eq!(
            r.score(Timestamp(60 + 365 * DAY), 0.5, &c).0,
            0.0,
            "does not decay away"
        );
        let mark = r.clear_severe().expect("was set");
        assert_eq!(mark.kind, EvidenceKind::LedgerEquivocation);
        assert!(r.score(Timestamp(61), 0.5, &c).0 > 500.0);
    }

    #[test]
    fn recent_evidence_is_bounded() {
        let c = TrustConfig {
            recent_evidence_kept: 3,
            ..TrustConfig::default()
        };
        let mut r = DirectRecord::new(Timestamp(0));
        for i in 0..10 {
            r.apply(ev(EvidenceKind::TaskSuccess, i), &c);
        }
        let kept: Vec<u64> = r.recent().map(|e| e.at.0).collect();
        assert_eq!(kept, vec![7, 8, 9]);
        assert_eq!(r.items(), 10);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn kind() -> impl Strategy<Value = EvidenceKind> {
            prop::sample::select(
                EvidenceKind::ALL
                    .iter()
                    .copied()
                    .filter(|k| !k.is_severe())
                    .collect::<Vec<_>>(),
            )
        }

        proptest! {
            #[test]
            fn one_more_item_moves_the_score_only_its_own_way(
                history in prop::collection::vec((kind(), 0u64..1_000_000), 0..40),
                extra in kind(),
                prior in 0.0f64..=1.0,
            ) {
                let c = TrustConfig::default();
                let mut r = DirectRecord::new(Timestamp(0));
                for (k, at) in &history {
                    r.apply(ev(*k, *at), &c);
                }
                let now = Timestamp(2_000_000);
                let (before, _) = r.score(now, prior, &c);
                r.apply(ev(extra, now.0), &c);
                let (after, _) = r.score(now, prior, &c);
                prop_assert!((0.0..=1000.0).contains(&after));
                if extra.is_positive() {
                    prop_assert!(after >= before - 1e-9, "{extra:?}: {before} -> {after}");
                } else {
                    prop_assert!(after <= before + 1e-9, "{extra:?}: {before} -> {after}");
                }
            }
        }
    }
}
