//! The `[adversary]` table of a scenario (docs/SIMULATIONS.md §1–2): the
//! strategies, their keys, and the rule that a strategy's own key given
//! with another strategy is refused.

use std::ops::Range;

use mesh_iatp::Score;
use serde::Deserialize;
use toml::Spanned;

use super::ScenarioError;

/// How malicious agents behave (docs/SIMULATIONS.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Fail or abuse every task.
    AlwaysBad,
    /// Behave well a fraction of the time (`good_fraction`).
    Camouflaged,
    /// Fail tasks, praise each other in trust reports, slander others.
    Collective,
    /// Behave well to earn trust, then vouch for always-bad agents.
    Spy,
    /// Fail tasks and spawn children (`sybils_per_agent`) that vote for
    /// their parent.
    Sybil,
    /// Behave on tasks but sign two histories of their ledger.
    Equivocating,
    /// Do no work and flood peers with requests (`flood_per_round`).
    FreeRider,
    /// Behave while their reputation is under `trusted_at`, fail every task
    /// while it is at or above: earn trust, spend it, earn it back.
    Adaptive,
    /// Fail every task; once their reputation falls under `min_trust`
    /// (caught), come back under a new identity with none of the history.
    Whitewashing,
}

impl Strategy {
    /// Every strategy, in table order.
    pub const ALL: [Strategy; 9] = [
        Strategy::AlwaysBad,
        Strategy::Camouflaged,
        Strategy::Collective,
        Strategy::Spy,
        Strategy::Sybil,
        Strategy::Equivocating,
        Strategy::FreeRider,
        Strategy::Adaptive,
        Strategy::Whitewashing,
    ];

    /// The name used in scenarios and reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::AlwaysBad => "always_bad",
            Strategy::Camouflaged => "camouflaged",
            Strategy::Collective => "collective",
            Strategy::Spy => "spy",
            Strategy::Sybil => "sybil",
            Strategy::Equivocating => "equivocating",
            Strategy::FreeRider => "free_rider",
            Strategy::Adaptive => "adaptive",
            Strategy::Whitewashing => "whitewashing",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdversary {
    strategy: Spanned<Strategy>,
    fraction: Spanned<f64>,
    good_fraction: Option<Spanned<f64>>,
    collusion: Option<Spanned<bool>>,
    sybils_per_agent: Option<Spanned<u32>>,
    flood_per_round: Option<Spanned<u32>>,
    padding: Option<Spanned<bool>>,
    trusted_at: Option<Spanned<u16>>,
}

/// The adversaries.
#[derive(Debug, Clone, PartialEq)]
pub struct Adversary {
    /// How they behave.
    pub strategy: Strategy,
    /// Fraction of the agents, in [0, 1).
    pub fraction: f64,
    /// Camouflaged: how often they behave.
    pub good_fraction: f64,
    /// Camouflaged: whether they also report as a collective (praise each
    /// other, slander the honest), EigenTrust's threat model C.
    pub collusion: bool,
    /// Sybil: children each spawns.
    pub sybils_per_agent: u32,
    /// Free-rider: requests each sends per round.
    pub flood_per_round: u32,
    /// Spy: whether its reports also echo its org's anchor's opinions of
    /// everyone else (read off the gossip), to look like an honest reporter.
    pub padding: bool,
    /// Adaptive: the reputation at which it starts to defect.
    pub trusted_at: Score,
}

pub(super) fn validate_adversary(
    a: &RawAdversary,
    agents: u64,
    invalid: &dyn Fn(&str, Range<usize>, String) -> ScenarioError,
) -> Result<Adversary, ScenarioError> {
    let strategy = *a.strategy.get_ref();
    let fraction = *a.fraction.get_ref();
    if !(0.0..1.0).contains(&fraction) {
        return Err(invalid(
            "adversary.fraction",
            a.fraction.span(),
            format!(
                "{fraction} is impossible: must be at least 0 and below 1 (someone must be honest)"
            ),
        ));
    }
    let _ = agents;
    // Each strategy's own knob is required for it and refused for others,
    // so a typo'd scenario does not silently run something else.
    let owned: [(Option<Range<usize>>, &str, Strategy); 6] = [
        (
            given(&a.good_fraction),
            "good_fraction",
            Strategy::Camouflaged,
        ),
        (given(&a.collusion), "collusion", Strategy::Camouflaged),
        (
            given(&a.sybils_per_agent),
            "sybils_per_agent",
            Strategy::Sybil,
        ),
        (
            given(&a.flood_per_round),
            "flood_per_round",
            Strategy::FreeRider,
        ),
        (given(&a.padding), "padding", Strategy::Spy),
        (given(&a.trusted_at), "trusted_at", Strategy::Adaptive),
    ];
    for (span, key, owner) in owned {
        if let Some(span) = span.filter(|_| strategy != owner) {
            return Err(invalid(
                &format!("adversary.{key}"),
                span,
                format!("only applies to strategy `{}`", owner.name()),
            ));
        }
    }
    let trusted_at = match &a.trusted_at {
        Some(v) => Score::new(*v.get_ref()).map_err(|_| {
            invalid(
                "adversary.trusted_at",
                v.span(),
                format!("= {} must be at most 1000", v.get_ref()),
            )
        })?,
        None => Score::saturating(DEFAULT_TRUSTED_AT),
    };
    let good_fraction = match (&a.good_fraction, strategy) {
        (Some(v), _) if !(0.0..=1.0).contains(v.get_ref()) => {
            return Err(invalid(
                "adversary.good_fraction",
                v.span(),
                "must be in [0, 1]".into(),
            ));
        }
        (Some(v), _) => *v.get_ref(),
        (None, Strategy::Camouflaged) => {
            return Err(invalid(
                "adversary.good_fraction",
                a.strategy.span(),
                "strategy `camouflaged` needs good_fraction".into(),
            ));
        }
        (None, _) => 0.0,
    };
    // A strategy's count: 1 to `max` when given, `default` otherwise.
    let count = |key: &str, v: &Option<Spanned<u32>>, max: u32, default: u32| match v {
        Some(v) if !(1..=max).contains(v.get_ref()) => Err(invalid(
            &format!("adversary.{key}"),
            v.span(),
            format!("must be 1 to {max}"),
        )),
        Some(v) => Ok(*v.get_ref()),
        None => Ok(default),
    };
    let sybils_per_agent = count(
        "sybils_per_agent",
        &a.sybils_per_agent,
        1000,
        if strategy == Strategy::Sybil { 10 } else { 0 },
    )?;
    let flood_per_round = count(
        "flood_per_round",
        &a.flood_per_round,
        100_000,
        if strategy == Strategy::FreeRider {
            100
        } else {
            0
        },
    )?;
    Ok(Adversary {
        strategy,
        fraction,
        good_fraction,
        collusion: a.collusion.as_ref().is_some_and(|v| *v.get_ref()),
        sybils_per_agent,
        flood_per_round,
        padding: a.padding.as_ref().is_some_and(|v| *v.get_ref()),
        trusted_at,
    })
}

/// Where an adaptive adversary starts to defect unless the scenario says
/// otherwise: above a typical gate (400) and an org's initial trust
/// (450–500), below where honest agents settle (≈ 690 in the shipped
/// 100-agent scenarios).
pub const DEFAULT_TRUSTED_AT: u16 = 600;

/// Where a key was given, if it was.
fn given<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
    v.as_ref().map(Spanned::span)
}
