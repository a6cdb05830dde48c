//! Choosing a delegatee among the candidates the gate allows (TRUST.md
//! §5b). Proportional to trust *above the gate's minimum*, not to trust
//! itself: scores of 420 and 800 against a minimum of 400 weigh 20 and 400,
//! so an agent just clearing the gate gets little work until it earns
//! more, where proportional-to-score would give it a third of the best
//! one's share. A bounded share of picks explores (uniform among the
//! allowed), so an honest newcomer at its org's initial trust still gets
//! work and evidence. Pure: the caller passes its random draws.

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
    /// The index (into `scores`) of the candidate to delegate to, or `None`
    /// when no score reaches `min_trust` (the gate refuses them all).
    /// `explore` and `draw` are independent uniform draws in [0, 1).
    pub fn pick(&self, scores: &[f64], min_trust: f64, explore: f64, draw: f64) -> Option<usize> {
        let allowed: Vec<usize> = (0..scores.len())
            .filter(|&k| scores[k] >= min_trust)
            .collect();
        if allowed.is_empty() {
            return None;
        }
        let margin = |k: usize| scores[k] - min_trust;
        let total: f64 = allowed.iter().map(|&k| margin(k)).sum();
        if explore < self.exploration || total <= 0.0 {
            let at = ((draw * allowed.len() as f64) as usize).min(allowed.len() - 1);
            return Some(allowed[at]);
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

    #[test]
    fn below_the_minimum_is_never_picked_and_none_allowed_is_none() {
        let s = Selection::default();
        for i in 0..100 {
            let d = f64::from(i) / 100.0;
            assert_ne!(s.pick(&[399.0, 600.0], 400.0, d, d), Some(0));
        }
        assert_eq!(s.pick(&[100.0, 399.9], 400.0, 0.5, 0.5), None);
        assert_eq!(s.pick(&[], 400.0, 0.5, 0.5), None);
    }

    #[test]
    fn picks_follow_the_margin_above_the_minimum() {
        let s = Selection { exploration: 0.0 };
        // Margins 20 and 380: the first is picked for draws under 5%.
        let scores = [420.0, 780.0];
        let firsts = (0..1000)
            .filter(|i| s.pick(&scores, 400.0, 0.5, f64::from(*i) / 1000.0) == Some(0))
            .count();
        assert_eq!(firsts, 50);
    }

    #[test]
    fn exploration_is_uniform_among_the_allowed() {
        let s = Selection { exploration: 0.1 };
        let scores = [400.0, 900.0, 300.0, 400.0];
        // An exploring pick: both agents at exactly the minimum get work.
        assert_eq!(s.pick(&scores, 400.0, 0.05, 0.0), Some(0));
        assert_eq!(s.pick(&scores, 400.0, 0.05, 0.99), Some(3));
        // Not exploring: margin 0 gets nothing.
        for i in 0..100 {
            assert_eq!(s.pick(&scores, 400.0, 0.5, f64::from(i) / 100.0), Some(1));
        }
        // Everyone exactly at the minimum: uniform, not nothing.
        assert!(s.pick(&[400.0, 400.0], 400.0, 0.9, 0.7).is_some());
    }
}
