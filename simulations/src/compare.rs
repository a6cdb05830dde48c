//! Model mode against protocol mode on the same scenarios
//! (docs/SIMULATIONS.md §3b): `mesh-sim compare` runs each scenario in
//! both modes, with and without the gate, and says where the fractions of
//! tasks delegated to malicious agents, or failed there, differ by more
//! than a tolerance. Runs share the machine's cores (each run is one
//! thread and deterministic, so the result does not depend on how many).

use std::sync::Mutex;

use crate::harness;
use crate::model;
use crate::scenario::{Scenario, ScenarioError};

/// `(to malicious, inauthentic)` of one run.
pub type Fractions = (f64, f64);

/// One scenario with the gate on or off, in both modes.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The scenario's name.
    pub scenario: String,
    /// Gate on?
    pub gate: bool,
    /// Model mode's.
    pub model: Fractions,
    /// Protocol mode's.
    pub protocol: Fractions,
}

impl Cell {
    /// The larger of the two differences.
    pub fn gap(&self) -> f64 {
        (self.model.0 - self.protocol.0)
            .abs()
            .max((self.model.1 - self.protocol.1).abs())
    }
}

/// Run every scenario (`(name for errors, TOML text)`, with the `sets`
/// overrides) in both modes and both gate settings; `done()` after each
/// of the runs (four per scenario). Every scenario is validated before
/// anything runs.
pub fn compare(
    scenarios: &[(String, String)],
    sets: &[(&str, &str)],
    done: impl Fn() + Sync,
) -> Result<Vec<Cell>, (String, ScenarioError)> {
    let mut jobs: Vec<(bool, Scenario)> = Vec::new();
    for (name, text) in scenarios {
        for gate in [true, false] {
            let gate_value = gate.to_string();
            let mut all = sets.to_vec();
            all.push(("gate.enabled", gate_value.as_str()));
            let s = Scenario::from_toml_str_with(text, &all).map_err(|e| (name.clone(), e))?;
            jobs.push((gate, s));
        }
    }
    // Each job twice: model and protocol mode.
    let queue: Mutex<Vec<(usize, bool)>> = Mutex::new(
        (0..jobs.len())
            .flat_map(|j| [(j, false), (j, true)])
            .collect(),
    );
    let results: Mutex<Vec<[Option<Fractions>; 2]>> = Mutex::new(vec![[None, None]; jobs.len()]);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some((j, protocol)) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    let s = &jobs[j].1;
                    let r = if protocol {
                        harness::run(s, |_| {}).results
                    } else {
                        model::run(s, |_| {}).results
                    };
                    if let Ok(mut all) = results.lock() {
                        all[j][usize::from(protocol)] =
                            Some((r.fraction_to_malicious, r.fraction_inauthentic));
                    }
                    done();
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(jobs
        .iter()
        .zip(results)
        .map(|((gate, s), [m, p])| Cell {
            scenario: s.name.clone(),
            gate: *gate,
            model: m.unwrap_or((f64::NAN, f64::NAN)),
            protocol: p.unwrap_or((f64::NAN, f64::NAN)),
        })
        .collect())
}

/// The cells as a markdown table, model / protocol, a gap over
/// `tolerance` in bold.
pub fn markdown(cells: &[Cell], tolerance: f64) -> String {
    let mut out = String::from(
        "| scenario | gate | to malicious (model / protocol) | inauthentic (model / protocol) | gap |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for c in cells {
        let gap = c.gap();
        let mark = if gap > tolerance || gap.is_nan() {
            "**"
        } else {
            ""
        };
        out.push_str(&format!(
            "| {} | {} | {:.3} / {:.3} | {:.3} / {:.3} | {mark}{gap:.3}{mark} |\n",
            c.scenario,
            if c.gate { "on" } else { "off" },
            c.model.0,
            c.protocol.0,
            c.model.1,
            c.protocol.1,
        ));
    }
    out
}
