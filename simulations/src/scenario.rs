//! The scenario format (docs/SIMULATIONS.md §1): what a simulation runs.
//!
//! Parsing is strict: unknown keys, wrong types and impossible values are
//! errors naming the dotted field and, where the text has it, its line and
//! column. A sweep overrides single values by dotted path
//! ([`Scenario::from_toml_str_with`]) before validation, so an override is
//! checked exactly like a value written in the file.

use std::ops::Range;

use mesh_iatp::toml_location::line_col;
use mesh_iatp::{CapabilityPattern, Score};
use serde::Deserialize;
use toml::Spanned;

mod adversary;

pub use adversary::{Adversary, DEFAULT_TRUSTED_AT, Strategy};
use adversary::{RawAdversary, validate_adversary};

/// Most agents a scenario may ask for.
pub const MAX_AGENTS: u64 = 1_000_000;
/// Most rounds.
pub const MAX_ROUNDS: u64 = 1_000_000;
/// Most organisations.
pub const MAX_ORGS: usize = 64;

/// Why a scenario is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// Not TOML of the scenario's shape.
    #[error("line {line}, column {column}: {message}")]
    Toml {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What toml says (names the unknown or missing key).
        message: String,
    },
    /// A value is impossible.
    #[error("`{field}`{}: {reason}", location.map(|(l, c)| format!(" (line {l}, column {c})")).unwrap_or_default())]
    Invalid {
        /// The dotted field, e.g. `adversary.fraction` or `org[1].share`.
        field: String,
        /// Where, if the value is in the text.
        location: Option<(usize, usize)>,
        /// Why.
        reason: String,
    },
    /// A `--param` override is not `path=value` with a known path.
    #[error("override `{path}`: {reason}")]
    Override {
        /// The dotted path.
        path: String,
        /// Why.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    seed: u64,
    agents: Spanned<u64>,
    rounds: Spanned<u64>,
    #[serde(default = "default_round_secs")]
    round_secs: Spanned<u64>,
    org: Vec<RawOrg>,
    workload: RawWorkload,
    #[serde(default)]
    trust: RawTrust,
    #[serde(default)]
    gate: RawGate,
    adversary: Option<RawAdversary>,
}

fn default_round_secs() -> Spanned<u64> {
    Spanned::new(0..0, 60)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrg {
    name: Spanned<String>,
    share: Spanned<f64>,
    initial_trust: Spanned<u16>,
    trust_ceiling: Spanned<u16>,
    #[serde(default)]
    capabilities: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    #[serde(default = "one")]
    tasks_per_agent: Spanned<f64>,
    capabilities: Vec<Spanned<String>>,
    #[serde(default = "one_u8")]
    delegation_depth: Spanned<u8>,
    #[serde(default = "five")]
    candidates: Spanned<u32>,
}

fn one() -> Spanned<f64> {
    Spanned::new(0..0, 1.0)
}
fn one_u8() -> Spanned<u8> {
    Spanned::new(0..0, 1)
}
fn five() -> Spanned<u32> {
    Spanned::new(0..0, 5)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTrust {
    report_every: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "four_hundred")]
    min_trust: Spanned<u16>,
}

impl Default for RawGate {
    fn default() -> Self {
        RawGate {
            enabled: true,
            min_trust: four_hundred(),
        }
    }
}

fn yes() -> bool {
    true
}
fn four_hundred() -> Spanned<u16> {
    Spanned::new(0..0, 400)
}

/// An organisation and its trust-bundle policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    /// Name.
    pub name: String,
    /// Fraction of the agents in it.
    pub share: f64,
    /// A new agent's score.
    pub initial_trust: Score,
    /// The most any of its agents can score.
    pub trust_ceiling: Score,
    /// What its agents may offer.
    pub capabilities: Vec<CapabilityPattern>,
}

/// What agents ask of each other.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Mean tasks each agent delegates per round.
    pub tasks_per_agent: f64,
    /// `resource:action` pairs, drawn uniformly.
    pub capabilities: Vec<(String, String)>,
    /// How many times a task may be re-delegated.
    pub delegation_depth: u8,
    /// Delegatees considered per task.
    pub candidates: u32,
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name (for reports).
    pub name: String,
    /// Reproduces the run.
    pub seed: u64,
    /// Agents (adversaries included).
    pub agents: u64,
    /// Simulated rounds.
    pub rounds: u64,
    /// Simulated seconds per round (trust decay runs on simulated time).
    pub round_secs: u64,
    /// Organisations.
    pub orgs: Vec<Org>,
    /// Workload.
    pub workload: Workload,
    /// Rounds between trust reports.
    pub report_every: u64,
    /// Whether the gate uses trust (off: the baseline without gating).
    pub gate_enabled: bool,
    /// The trust a delegatee needs.
    pub min_trust: Score,
    /// The adversaries, if any.
    pub adversary: Option<Adversary>,
}

impl Scenario {
    /// Parse and validate.
    pub fn from_toml_str(text: &str) -> Result<Scenario, ScenarioError> {
        Self::from_toml_str_with(text, &[])
    }

    /// Parse, apply `overrides` (`("adversary.fraction", "0.4")`; values
    /// are TOML), then validate.
    pub fn from_toml_str_with(
        text: &str,
        overrides: &[(&str, &str)],
    ) -> Result<Scenario, ScenarioError> {
        let text = apply_overrides(text, overrides)?;
        let text = text.as_str();
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let (line, column) = line_col(text, e.span().unwrap_or(0..0));
            ScenarioError::Toml {
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        let invalid = |field: &str, span: Range<usize>, reason: String| ScenarioError::Invalid {
            field: field.into(),
            location: (span != (0..0)).then(|| line_col(text, span)),
            reason,
        };

        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(invalid("name", raw.name.span(), "must not be empty".into()));
        }
        let agents = *raw.agents.get_ref();
        if !(2..=MAX_AGENTS).contains(&agents) {
            return Err(invalid(
                "agents",
                raw.agents.span(),
                format!("must be between 2 and {MAX_AGENTS}"),
            ));
        }
        let rounds = *raw.rounds.get_ref();
        if !(1..=MAX_ROUNDS).contains(&rounds) {
            return Err(invalid(
                "rounds",
                raw.rounds.span(),
                format!("must be between 1 and {MAX_ROUNDS}"),
            ));
        }
        let round_secs = *raw.round_secs.get_ref();
        if round_secs == 0 || round_secs > 86_400 {
            return Err(invalid(
                "round_secs",
                raw.round_secs.span(),
                "must be between 1 and 86400".into(),
            ));
        }

        if raw.org.is_empty() || raw.org.len() > MAX_ORGS {
            return Err(invalid(
                "org",
                0..0,
                format!("give 1 to {MAX_ORGS} [[org]] tables"),
            ));
        }
        let mut orgs = Vec::with_capacity(raw.org.len());
        let mut share_sum = 0.0;
        for (i, o) in raw.org.iter().enumerate() {
            let field = |f: &str| format!("org[{i}].{f}");
            let name = o.name.get_ref().trim().to_string();
            if name.is_empty() || orgs.iter().any(|x: &Org| x.name == name) {
                return Err(invalid(
                    &field("name"),
                    o.name.span(),
                    "must be non-empty and unique".into(),
                ));
            }
            let share = *o.share.get_ref();
            if !(share > 0.0 && share <= 1.0) {
                return Err(invalid(
                    &field("share"),
                    o.share.span(),
                    "must be in (0, 1]".into(),
                ));
            }
            share_sum += share;
            let score = |v: &Spanned<u16>, f: &str| {
                Score::new(*v.get_ref())
                    .map_err(|_| invalid(&field(f), v.span(), "must be 0 to 1000".into()))
            };
            let initial_trust = score(&o.initial_trust, "initial_trust")?;
            let trust_ceiling = score(&o.trust_ceiling, "trust_ceiling")?;
            if initial_trust > trust_ceiling {
                return Err(invalid(
                    &field("initial_trust"),
                    o.initial_trust.span(),
                    "must not exceed trust_ceiling".into(),
                ));
            }
            let capabilities = o
                .capabilities
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    CapabilityPattern::parse(c.get_ref()).map_err(|e| {
                        invalid(
                            &field(&format!("capabilities[{k}]")),
                            c.span(),
                            e.to_string(),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            orgs.push(Org {
                name,
                share,
                initial_trust,
                trust_ceiling,
                capabilities,
            });
        }
        if (share_sum - 1.0).abs() > 1e-9 {
            return Err(invalid(
                "org[].share",
                raw.org[0].share.span(),
                format!("the shares add up to {share_sum}, not 1"),
            ));
        }

        let w = &raw.workload;
        let tasks = *w.tasks_per_agent.get_ref();
        if !(tasks > 0.0 && tasks <= 100.0) {
            return Err(invalid(
                "workload.tasks_per_agent",
                w.tasks_per_agent.span(),
                "must be in (0, 100]".into(),
            ));
        }
        if w.capabilities.is_empty() {
            return Err(invalid(
                "workload.capabilities",
                0..0,
                "give at least one `resource:action`".into(),
            ));
        }
        let mut caps = Vec::with_capacity(w.capabilities.len());
        for (k, c) in w.capabilities.iter().enumerate() {
            let field = format!("workload.capabilities[{k}]");
            let (resource, action) = c
                .get_ref()
                .rsplit_once(':')
                .ok_or_else(|| invalid(&field, c.span(), "must be `resource:action`".into()))?;
            let pattern = CapabilityPattern::parse(resource)
                .map_err(|e| invalid(&field, c.span(), e.to_string()))?;
            if pattern.as_str().ends_with('*') || action.is_empty() {
                return Err(invalid(
                    &field,
                    c.span(),
                    "must name a concrete resource and an action".into(),
                ));
            }
            caps.push((resource.to_string(), action.to_string()));
        }
        let depth = *w.delegation_depth.get_ref();
        if depth > 8 {
            return Err(invalid(
                "workload.delegation_depth",
                w.delegation_depth.span(),
                "must be 0 to 8".into(),
            ));
        }
        let candidates = *w.candidates.get_ref();
        if candidates == 0 || u64::from(candidates) >= agents {
            return Err(invalid(
                "workload.candidates",
                w.candidates.span(),
                "must be at least 1 and fewer than the agents".into(),
            ));
        }

        let report_every = match &raw.trust.report_every {
            Some(v) if *v.get_ref() == 0 => {
                return Err(invalid(
                    "trust.report_every",
                    v.span(),
                    "must be at least 1".into(),
                ));
            }
            Some(v) => *v.get_ref(),
            None => 5,
        };
        let min_trust = Score::new(*raw.gate.min_trust.get_ref()).map_err(|_| {
            invalid(
                "gate.min_trust",
                raw.gate.min_trust.span(),
                "must be 0 to 1000".into(),
            )
        })?;

        let adversary = raw
            .adversary
            .as_ref()
            .map(|a| validate_adversary(a, agents, &invalid))
            .transpose()?;

        Ok(Scenario {
            name,
            seed: raw.seed,
            agents,
            rounds,
            round_secs,
            orgs,
            workload: Workload {
                tasks_per_agent: tasks,
                capabilities: caps,
                delegation_depth: depth,
                candidates,
            },
            report_every,
            gate_enabled: raw.gate.enabled,
            min_trust,
            adversary,
        })
    }

    /// How many agents are malicious.
    pub fn malicious_count(&self) -> u64 {
        self.adversary.as_ref().map_or(0, |a| {
            // Rounded to the nearest agent; at least one honest remains
            // (fraction < 1 is checked).
            ((a.fraction * self.agents as f64).round() as u64).min(self.agents - 1)
        })
    }
}

/// Set dotted `path`s in the TOML text to TOML `value`s (validation then
/// checks them like any value).
fn apply_overrides(text: &str, overrides: &[(&str, &str)]) -> Result<String, ScenarioError> {
    if overrides.is_empty() {
        return Ok(text.to_string());
    }
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| {
        let (line, column) = line_col(text, e.span().unwrap_or(0..0));
        ScenarioError::Toml {
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    for (path, value) in overrides {
        let err = |reason: &str| ScenarioError::Override {
            path: (*path).into(),
            reason: reason.into(),
        };
        let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .ok_or_else(|| err(&format!("`{value}` is not a TOML value")))?;
        let keys: Vec<&str> = path.split('.').collect();
        let (last, parents) = keys.split_last().ok_or_else(|| err("empty path"))?;
        let mut table = &mut doc;
        // Missing tables are created: validation then refuses an unknown
        // one by name, as it would in the file.
        for k in parents {
            table = table
                .entry(*k)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| err(&format!("`{k}` is not a table")))?;
        }
        table.insert((*last).to_string(), parsed);
    }
    toml::to_string(&doc).map_err(|e| ScenarioError::Override {
        path: overrides
            .iter()
            .map(|(p, _)| *p)
            .collect::<Vec<_>>()
            .join(","),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
seed = 1
agents = 50
rounds = 20

[[org]]
name = "acme"
share = 0.5
initial_trust = 500
trust_ceiling = 900
capabilities = ["search"]

[[org]]
name = "globex"
share = 0.5
initial_trust = 400
trust_ceiling = 800

[workload]
capabilities = ["search:query"]

[adversary]
strategy = "always_bad"
fraction = 0.2
"#;

    fn err(text: &str) -> String {
        Scenario::from_toml_str(text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_scenario_gets_its_defaults() {
        let s = Scenario::from_toml_str(GOOD).unwrap();
        assert_eq!(s.round_secs, 60);
        assert_eq!(s.report_every, 5);
        assert!(s.gate_enabled);
        assert_eq!(s.min_trust.get(), 400);
        assert_eq!(s.workload.candidates, 5);
        assert_eq!(s.malicious_count(), 10);
        assert_eq!(s.adversary.unwrap().strategy, Strategy::AlwaysBad);
    }

    #[test]
    fn bad_scenarios_are_refused_with_the_field_named() {
        let cases: Vec<(String, &str)> = vec![
            (format!("{GOOD}colour = 1\n"), "unknown field `colour`"),
            (
                GOOD.replace("fraction = 0.2", "fraction = 1.0"),
                "`adversary.fraction` (line 25, column 12)",
            ),
            (
                GOOD.replace("fraction = 0.2", "fraction = -0.1"),
                "`adversary.fraction`",
            ),
            (
                GOOD.replace(
                    "share = 0.5\ninitial_trust = 400",
                    "share = 0.4\ninitial_trust = 400",
                ),
                "`org[].share`",
            ),
            (
                GOOD.replace("agents = 50", "agents = 1"),
                "`agents` (line 4",
            ),
            (
                GOOD.replace("initial_trust = 400", "initial_trust = 1400"),
                "`org[1].initial_trust`",
            ),
            (
                GOOD.replace("initial_trust = 400", "initial_trust = 850"),
                "must not exceed trust_ceiling",
            ),
            (
                GOOD.replace("\"search:query\"", "\"search\""),
                "`workload.capabilities[0]`",
            ),
            (
                GOOD.replace("\"search:query\"", "\"tools/*:read\""),
                "concrete resource",
            ),
            (
                GOOD.replace("always_bad", "omnipotent"),
                "unknown variant `omnipotent`",
            ),
            (
                GOOD.replace("fraction = 0.2", "fraction = 0.2\ngood_fraction = 0.5"),
                "`adversary.good_fraction`",
            ),
            (
                GOOD.replace("always_bad", "camouflaged"),
                "needs good_fraction",
            ),
            (
                GOOD.replace("fraction = 0.2", "fraction = 0.2\ncollusion = true"),
                "`adversary.collusion`",
            ),
            (
                GOOD.replace("fraction = 0.2", "fraction = 0.2\npadding = true"),
                "`adversary.padding`",
            ),
            (
                GOOD.replace("fraction = 0.2", "fraction = 0.2\ntrusted_at = 600"),
                "`adversary.trusted_at`",
            ),
            (
                GOOD.replace("strategy = \"always_bad\"", "strategy = \"adaptive\"")
                    .replace("fraction = 0.2", "fraction = 0.2\ntrusted_at = 1001"),
                "`adversary.trusted_at`",
            ),
            (GOOD.replace("rounds = 20", "rounds = 0"), "`rounds`"),
            (
                GOOD.replace("name = \"globex\"", "name = \"acme\""),
                "`org[1].name`",
            ),
        ];
        for (text, expected) in cases {
            let e = err(&text);
            assert!(e.contains(expected), "expected {expected:?} in {e:?}");
        }
        assert!(err(&GOOD.replace("seed = 1\n", "")).contains("seed"));
    }

    #[test]
    fn overrides_are_validated_like_file_values() {
        // `[gate]` is not in GOOD: the override creates it.
        let s = Scenario::from_toml_str_with(GOOD, &[("gate.enabled", "false")]).unwrap();
        assert!(!s.gate_enabled);
        let s = Scenario::from_toml_str_with(GOOD, &[("adversary.fraction", "0.6")]).unwrap();
        assert_eq!(s.malicious_count(), 30);
        let e = Scenario::from_toml_str_with(GOOD, &[("adversary.fraction", "0.7x")]).unwrap_err();
        assert!(e.to_string().contains("not a TOML value"), "{e}");
        let e = Scenario::from_toml_str_with(GOOD, &[("adversary.fraction", "1.2")]).unwrap_err();
        assert!(e.to_string().contains("adversary.fraction"), "{e}");
        let e = Scenario::from_toml_str_with(GOOD, &[("nothing.here", "1")]).unwrap_err();
        assert!(e.to_string().contains("unknown field `nothing`"), "{e}");
        let e = Scenario::from_toml_str_with(GOOD, &[("seed.x", "1")]).unwrap_err();
        assert!(e.to_string().contains("`seed` is not a table"), "{e}");
    }
}
