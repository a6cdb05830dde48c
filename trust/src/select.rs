//! Choosing a delegatee among the candidates the gate allows (TRUST.md
//! §5b). Proportional to trust *above the gate's minimum*, not to trust
//! itself: scores of 420 and 800 against a minimum of 400 weigh 20 and 400,
//! so an agent just clearing the gate gets little work until it earns
//! more, where proportional-to-score would give it a third of the best
//! one's share. Only *proven* candidates (that have shown how they work:
//! to the delegator itself, or to credible reporters who speak well of
//! them) take part in that draw;
//! a bounded share of picks explores (uniform among all the allowed), and
//! that is how an unproven one gets work. An honest newcomer at its org's
//! initial trust earns its first evidence that way, and so does a
//! whitewasher back under a fresh identity: it can no longer cash in its
//! org's initial trust once per name. Pure: the caller passes its random
//! draws.

/// A uniform draw in [0, 1) from 64 random bits (the top 53), as
/// [`Selection::pick`] takes them.
pub fn unit(word: u64) -> f64 {
    (word >> 11) as f64 / (1u64 << 53) as f64
}

/// One candidate as the delegator sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Its score, 0–1000.
    pub score: f64,
    /// Whether it has shown how it works (`TrustEngine::is_proven`).
    pub proven: bool,
}

/// How a delegator picks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Selection {
    /// Share of picks made uniformly among the allowed candidates, in [0, 1].
    pub exploration: f64,
}

impl Default for Selection {
    /// 5% exploration.
    fn default() -> Self {
        Selection { exploration: 0.05 }
    }
}

impl Selection {
    /// The index (into `candidates`) of the one to delegate to, or `None`
    /// when no score reaches `min_trust` (the gate refuses them all).
    /// `explore` and `draw` are independent uniform draws in [0, 1). When
    /// no proven candidate has a margin above the minimum (a young mesh,
    /// or only newcomers allowed), every allowed one is drawn by its
    /// margin, and uniformly if none has one.
    pub fn pick(
        &self,
        candidates: &[Candidate],
        min_trust: f64,
        explore: f64,
        draw: f64,
    ) -> Option<usize> {
        let allowed: Vec<usize> = (0..candidates.len())
            .filter(|&k| candidates[k].score >= min_trust)
            .collect();
        if allowed.is_empty() {
            return None;
        }
        let uniform = || {
            let at = ((draw * allowed.len() as f64) as usize).min(allowed.len() - 1);
            Some(allowed[at])
        };
        if explore < self.exploration {
            return uniform();
        }
        // The proven ones, by margin; if none has a margin (a young mesh,
        // or only newcomers allowed), everyone allowed, by margin.
        let proven_only = allowed
            .iter()
            .any(|&k| candidates[k].proven && candidates[k].score > min_trust);
        let margin = |k: usize| {
            if proven_only && !candidates[k].proven {
                0.0
            } else {
                candidates[k].score - min_trust
            }
        };
        let total: f64 = allowed.iter().map(|&k| margin(k)).sum();
        if total <= 0.0 {
            return uniform();
        }
        let mut r = draw * total;
        for &k in &allowed {
            if r < margin(k) {
                return Some(k);
            }
            r -= margin(k);
        }
        allowed.iter().rev().copied().find(|&k| margin(k) > 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(scores: &[f64]) -> Vec<Candidate> {
        scores
            .iter()
            .map(|&score| Candidate {
                score,
                proven: true,
            })
            .collect()
    }

    #[test]
    fn below_the_minimum_is_never_picked_and_none_allowed_is_none() {
        let s = Selection::default();
        for i in 0..100 {
            let d = f64::from(i) / 100.0;
            assert_ne!(s.pick(&known(&[399.0, 600.0]), 400.0, d, d), Some(0));
        }
        assert_eq!(s.pick(&known(&[100.0, 399.9]), 400.0, 0.5, 0.5), None);
        assert_eq!(s.pick(&[], 400.0, 0.5, 0.5), None);
    }

    #[test]
    fn picks_follow_the_margin_above_the_minimum() {
        let s = Selection { exploration: 0.0 };
        // Margins 20 and 380: the first is picked for draws under 5%.
        let scores = known(&[420.0, 780.0]);
        let firsts = (0..1000)
            .filter(|i| s.pick(&scores, 400.0, 0.5, f64::from(*i) / 1000.0) == Some(0))
            .count();
        assert_eq!(firsts, 50);
    }

    #[test]
    fn exploration_is_uniform_among_the_allowed() {
        let s = Selection { exploration: 0.1 };
        let scores = known(&[400.0, 900.0, 300.0, 400.0]);
        // An exploring pick: both agents at exactly the minimum get work.
        assert_eq!(s.pick(&scores, 400.0, 0.05, 0.0), Some(0));
        assert_eq!(s.pick(&scores, 400.0, 0.05, 0.99), Some(3));
        // Not exploring: margin 0 gets nothing.
        for i in 0..100 {
            assert_eq!(s.pick(&scores, 400.0, 0.5, f64::from(i) / 100.0), Some(1));
        }
        // Everyone exactly at the minimum: uniform, not nothing.
        assert!(s.pick(&known(&[400.0, 400.0]), 400.0, 0.9, 0.7).is_some());
    }

    #[test]
    fn an_unproven_candidate_gets_work_only_by_exploring() {
        let s = Selection { exploration: 0.1 };
        // A fresh identity at its org's initial trust (500) beside a proven
        // agent at 700: outside exploration it is never picked.
        let mut c = known(&[500.0, 700.0]);
        c[0].proven = false;
        for i in 0..100 {
            assert_eq!(s.pick(&c, 400.0, 0.5, f64::from(i) / 100.0), Some(1));
        }
        // Exploring, it is picked like anyone allowed.
        assert_eq!(s.pick(&c, 400.0, 0.05, 0.0), Some(0));
        // Nobody proven yet (a young mesh): by margin among all, so work
        // starts (margins 100 and 300).
        c[1].proven = false;
        assert_eq!(s.pick(&c, 400.0, 0.5, 0.2), Some(0));
        assert_eq!(s.pick(&c, 400.0, 0.5, 0.3), Some(1));
        // All at the minimum: uniform.
        let flat = [Candidate {
            score: 400.0,
            proven: false,
        }; 2];
        assert_eq!(s.pick(&flat, 400.0, 0.5, 0.0), Some(0));
        assert_eq!(s.pick(&flat, 400.0, 0.5, 0.99), Some(1));
    }
}
