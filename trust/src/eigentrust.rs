//! EigenTrust (Kamvar, Schlosser, Garcia-Molina, WWW 2003), §4.5's
//! "basic EigenTrust with pre-trusted peers", over a sparse matrix.
//!
//! Peer `i`'s local trust in `j` is `c_ij ≥ 0`, normalised so each row sums
//! to 1; a peer that trusts nobody (an empty or all-zero row) is treated as
//! trusting the pre-trusted distribution `p`. Credibility is the fixed point
//!
//! ```text
//! t = (1 − a) · Cᵀ t + a · p,      t₀ = p (or a previous t: warm start)
//! ```
//!
//! iterated until `‖t_{k+1} − t_k‖₁ < ε` or `max_iterations`. Since `t`
//! only flows along positive local trust and `p` is honest, a clique with no
//! trusted edge pointing into it gets credibility exactly 0, however much
//! its members praise each other.

/// Local trust of one peer: `(peer index, weight ≥ 0)`, unnormalised.
pub type Row = Vec<(usize, f64)>;

/// Result of one aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct Credibility {
    /// `t`, summing to 1 over all peers.
    pub trust: Vec<f64>,
    /// Iterations run.
    pub iterations: u32,
    /// Did it meet ε before the iteration cap?
    pub converged: bool,
}

/// Parameters of one run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Damping `a` in (0, 1].
    pub damping: f64,
    /// Convergence threshold on the L1 change.
    pub epsilon: f64,
    /// Iteration cap.
    pub max_iterations: u32,
}

/// Compute credibility for `n` peers. `rows[i]` is peer `i`'s local trust
/// (missing rows are empty); `pre_trusted` must be non-empty; `start`, if
/// given, is a previous `t` to warm-start from (its length must be `n`).
pub fn credibility(
    n: usize,
    rows: &[Row],
    pre_trusted: &[usize],
    params: Params,
    start: Option<&[f64]>,
) -> Credibility {
    let mut p = vec![0.0; n];
    if n == 0 || pre_trusted.is_empty() {
        return Credibility {
            trust: p,
            iterations: 0,
            converged: true,
        };
    }
    let share = 1.0 / pre_trusted.len() as f64;
    for &i in pre_trusted {
        p[i] += share;
    }
    // Normalised rows; an empty row means "defers to p".
    let normalised: Vec<Row> = (0..n)
        .map(|i| {
            let row = rows.get(i).map(Vec::as_slice).unwrap_or(&[]);
            let sum: f64 = row.iter().map(|(_, w)| w.max(0.0)).sum();
            if sum > 0.0 {
                row.iter()
                    .filter(|(_, w)| *w > 0.0)
                    .map(|&(j, w)| (j, w / sum))
                    .collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut t = match start {
        Some(s) if s.len() == n && s.iter().sum::<f64>() > 0.0 => {
            let total: f64 = s.iter().sum();
            s.iter().map(|x| x / total).collect()
        }
        _ => p.clone(),
    };
    let a = params.damping;
    let mut next = vec![0.0; n];
    for iteration in 1..=params.max_iterations {
        next.iter_mut().for_each(|x| *x = 0.0);
        let mut deferred = 0.0;
        for (ti, row) in t.iter().zip(&normalised) {
            if row.is_empty() {
                deferred += ti;
            } else {
                for &(j, c) in row {
                    next[j] += ti * c;
                }
            }
        }
        let mut change = 0.0;
        for j in 0..n {
            let v = (1.0 - a) * (next[j] + deferred * p[j]) + a * p[j];
            change += (v - t[j]).abs();
            next[j] = v;
        }
        std::mem::swap(&mut t, &mut next);
        if change < params.epsilon {
            return Credibility {
                trust: t,
                iterations: iteration,
                converged: true,
            };
        }
    }
    Credibility {
        trust: t,
        iterations: params.max_iterations,
        converged: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Params = Params {
        damping: 0.15,
        epsilon: 1e-12,
        max_iterations: 1000,
    };

    #[test]
    fn mass_is_conserved_and_a_closed_clique_gets_nothing() {
        // 0,1 honest (0 pre-trusted) trust each other; 2,3 trust each other only.
        let rows = vec![
            vec![(1, 1.0)],
            vec![(0, 1.0)],
            vec![(3, 1.0)],
            vec![(2, 1.0)],
        ];
        let c = credibility(4, &rows, &[0], P, None);
        assert!(c.converged);
        assert!((c.trust.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(c.trust[2], 0.0);
        assert_eq!(c.trust[3], 0.0);
        assert!(c.trust[1] > 0.4);
    }

    #[test]
    fn warm_start_reaches_the_same_point_in_fewer_iterations() {
        let n = 200;
        let rows: Vec<Row> = (0..n)
            .map(|i| vec![((i + 1) % n, 1.0), ((i * 7 + 3) % n, 0.5)])
            .collect();
        let cold = credibility(n, &rows, &[0, 1, 2], P, None);
        let mut changed = rows.clone();
        changed[17] = vec![(5, 1.0)];
        let cold2 = credibility(n, &changed, &[0, 1, 2], P, None);
        let warm2 = credibility(n, &changed, &[0, 1, 2], P, Some(&cold.trust));
        let diff: f64 = cold2
            .trust
            .iter()
            .zip(&warm2.trust)
            .map(|(a, b)| (a - b).abs())
            .sum();
        assert!(diff < 1e-9, "{diff}");
        assert!(
            warm2.iterations < cold2.iterations,
            "{} vs {}",
            warm2.iterations,
            cold2.iterations
        );
    }

    #[test]
    fn peers_trusting_nobody_defer_to_the_pre_trusted() {
        let rows = vec![vec![], vec![], vec![]];
        let c = credibility(3, &rows, &[2], P, None);
        assert!((c.trust[2] - 1.0).abs() < 1e-12);
    }
}
