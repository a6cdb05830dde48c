//! Who the agents are and how the adversaries act (docs/SIMULATIONS.md
//! §2): the population, the orgs allowed each capability, whether a task
//! goes well, the adversaries' crafted reports and their epoch decisions.
//! Shared by every mode, so the modes differ only in what they simulate.

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;

use mesh_iatp::{Did, Identity, Score, Timestamp};
use mesh_trust::TrustConfig;
use mesh_trust::report::{ReportEntry, TrustReport, seal_report};

use crate::class::Class;
use crate::scenario::{Scenario, Strategy};

/// How often an honest agent fails a task anyway.
pub const HONEST_ERROR: f64 = 0.02;
/// Evidence claimed by a crafted (praising or slandering) report entry.
pub const CRAFTED_EVIDENCE: u32 = 100;
/// Entries in an adversary's crafted report (honest reports hold the
/// engine's `max_report_entries`, most-evidenced first).
pub const REPORT_ENTRIES: usize = 20;

/// Uniform in [0, 1).
pub fn unit(rng: &mut ChaCha20Rng) -> f64 {
    mesh_trust::select::unit(rng.next_u64())
}

/// Uniform in 0..n (n > 0).
pub fn below(rng: &mut ChaCha20Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Whether an agent of `class` does a task well this time (`good_fraction`
/// is the camouflaged agents'; `defecting`, whether an adaptive agent is
/// trusted enough to spend it). Shared by every mode.
pub fn behaves(class: Class, good_fraction: f64, defecting: bool, rng: &mut ChaCha20Rng) -> bool {
    match class {
        Class::Honest => unit(rng) >= HONEST_ERROR,
        Class::Adaptive => !defecting && unit(rng) >= HONEST_ERROR,
        Class::Camouflaged => unit(rng) < good_fraction,
        Class::Spy | Class::Equivocating => true,
        Class::AlwaysBad
        | Class::Collective
        | Class::Sybil
        | Class::SybilChild
        | Class::FreeRider
        | Class::Whitewasher => false,
    }
}

/// Whether an adaptive agent with this reputation (the mean score others
/// hold of it) spends its trust until the next epoch. Shared by every mode.
pub fn defects(reputation: f64, s: &Scenario) -> bool {
    s.adversary
        .as_ref()
        .is_some_and(|a| reputation >= f64::from(a.trusted_at.get()))
}

/// Whether a whitewasher with this reputation has been caught (it would
/// get no more work past the gate) and takes a new identity. Shared by
/// every mode.
pub fn caught(reputation: f64, s: &Scenario) -> bool {
    reputation < f64::from(s.min_trust.get())
}

/// The agents of each class, by index, gathered once per reporting epoch
/// for [`crafted`] (which would otherwise scan every agent for every
/// adversary: quadratic at model mode's 100,000 agents).
#[derive(Debug, Clone, Default)]
pub struct Cast(std::collections::BTreeMap<Class, Vec<usize>>);

impl Cast {
    /// Group `classes` (index = agent).
    pub fn new(classes: &[Class]) -> Self {
        let mut by = std::collections::BTreeMap::<Class, Vec<usize>>::new();
        for (j, c) in classes.iter().enumerate() {
            by.entry(*c).or_default().push(j);
        }
        Cast(by)
    }

    /// The agents of `class`.
    pub fn of(&self, class: Class) -> &[usize] {
        self.0.get(&class).map_or(&[], Vec::as_slice)
    }
}

/// Whether the scenario's camouflaged agents collude (report as a
/// collective).
pub fn colluding(s: &Scenario) -> bool {
    s.adversary.as_ref().is_some_and(|a| a.collusion)
}

/// What an adversary at index `i` puts in its report instead of its real
/// opinions, as `(subject index, score)`, each subject once; `None` for an
/// agent that reports honestly. Collectives (and camouflaged agents when
/// `colluding`) praise their own kind and slander honest agents; spies
/// praise the always-bad protégés; a sybil's child praises its parent.
/// Every entry claims [`CRAFTED_EVIDENCE`]. Shared by every mode.
pub fn crafted(
    i: usize,
    class: Class,
    parent: Option<usize>,
    cast: &Cast,
    colluding: bool,
    rng: &mut ChaCha20Rng,
) -> Option<Vec<(usize, u16)>> {
    let mut entries: Vec<(usize, u16)> = Vec::new();
    match class {
        Class::Collective | Class::Camouflaged if class == Class::Collective || colluding => {
            let (members, honest) = (cast.of(class), cast.of(Class::Honest));
            for _ in 0..REPORT_ENTRIES / 2 {
                let j = members[below(rng, members.len())];
                if j != i {
                    entries.push((j, 1000));
                }
                if !honest.is_empty() {
                    entries.push((honest[below(rng, honest.len())], 0));
                }
            }
        }
        Class::Spy if !cast.of(Class::AlwaysBad).is_empty() => {
            let proteges = cast.of(Class::AlwaysBad);
            for _ in 0..REPORT_ENTRIES {
                entries.push((proteges[below(rng, proteges.len())], 1000));
            }
        }
        Class::SybilChild => entries.extend(parent.map(|p| (p, 1000))),
        _ => return None,
    }
    // A report names each subject once (the engine refuses duplicates):
    // keep the first of any repeated random pick.
    let mut seen = std::collections::BTreeSet::new();
    entries.retain(|(j, _)| seen.insert(*j));
    entries.sort_by_key(|(j, _)| *j);
    Some(entries)
}

/// The scenario's agents before any spawning: each one's class and org
/// index. Orgs take consecutive ids by share (the last takes the rounding
/// remainder); malicious agents are spread evenly over the ids, so over the
/// orgs. Shared by both modes.
pub fn population(s: &Scenario) -> Vec<(Class, usize)> {
    let n = s.agents as usize;
    let n_bad = s.malicious_count() as usize;
    let mut org_of = Vec::with_capacity(n);
    for (k, o) in s.orgs.iter().enumerate() {
        let count = if k + 1 == s.orgs.len() {
            n - org_of.len()
        } else {
            ((o.share * n as f64).round() as usize).min(n - org_of.len())
        };
        org_of.extend(std::iter::repeat_n(k, count));
    }
    let mut class = vec![Class::Honest; n];
    let strategy = s.adversary.as_ref().map(|a| a.strategy);
    for k in 0..n_bad {
        let id = k * n / n_bad.max(1);
        class[id] = match strategy {
            Some(Strategy::AlwaysBad) => Class::AlwaysBad,
            Some(Strategy::Camouflaged) => Class::Camouflaged,
            Some(Strategy::Collective) => Class::Collective,
            // Half spies, half the always-bad agents they vouch for.
            Some(Strategy::Spy) if k % 2 == 0 => Class::Spy,
            Some(Strategy::Spy) => Class::AlwaysBad,
            Some(Strategy::Sybil) => Class::Sybil,
            Some(Strategy::Equivocating) => Class::Equivocating,
            Some(Strategy::FreeRider) => Class::FreeRider,
            Some(Strategy::Adaptive) => Class::Adaptive,
            Some(Strategy::Whitewashing) => Class::Whitewasher,
            None => Class::Honest,
        };
    }
    class.into_iter().zip(org_of).collect()
}

/// For each workload capability, the orgs whose policy allows its
/// resource (the gate's cross-org rule). Shared by both modes.
pub fn capable_orgs(s: &Scenario) -> Vec<Vec<usize>> {
    s.workload
        .capabilities
        .iter()
        .map(|(resource, _)| {
            let r = mesh_iatp::CapabilityPattern::parse(resource).ok();
            (0..s.orgs.len())
                .filter(|&k| {
                    r.as_ref()
                        .is_some_and(|r| s.orgs[k].capabilities.iter().any(|p| p.contains(r)))
                })
                .collect()
        })
        .collect()
}

/// Epoch of crafted reports: above any node's own, so they replace them.
pub const CRAFTED_EPOCH: u64 = 1 << 40;

/// A crafted report by `identity`: `entries` as (subject, score), each
/// claiming [`CRAFTED_EVIDENCE`], then `padding` (a padding spy's
/// echoed honest opinions) for subjects not already named, up to the engine's
/// entry bound.
pub fn crafted_report(
    identity: &Identity,
    entries: &[(Did, u16)],
    padding: Vec<ReportEntry>,
    round: u64,
    now: Timestamp,
) -> Option<Vec<u8>> {
    let mut all: Vec<ReportEntry> = entries
        .iter()
        .map(|(d, s)| ReportEntry {
            subject: d.as_str().to_string(),
            score: Score::saturating(*s),
            evidence: CRAFTED_EVIDENCE,
        })
        .collect();
    let room = TrustConfig::default()
        .aggregation
        .max_report_entries
        .saturating_sub(all.len());
    let named: std::collections::HashSet<String> = all.iter().map(|e| e.subject.clone()).collect();
    all.extend(
        padding
            .into_iter()
            .filter(|e| !named.contains(&e.subject))
            .take(room),
    );
    let report = TrustReport {
        reporter: identity.did().clone(),
        epoch: CRAFTED_EPOCH,
        sequence: round,
        issued: now,
        entries: all,
    };
    seal_report(&report, identity).ok()
}

/// Whether `class` pads its crafted reports with echoed honest opinions.
pub fn pads(class: Class, s: &Scenario) -> bool {
    class == Class::Spy && s.adversary.as_ref().is_some_and(|a| a.padding)
}

/// An adversary's crafted report entries ([`crafted`]) by DID.
pub fn crafted_entries(
    i: usize,
    class: Class,
    parent: Option<usize>,
    dids: &[Did],
    cast: &Cast,
    colluding: bool,
    rng: &mut ChaCha20Rng,
) -> Option<Vec<(Did, u16)>> {
    let entries = crafted(i, class, parent, cast, colluding, rng)?;
    let mut named: Vec<(Did, u16)> = entries
        .into_iter()
        .map(|(j, score)| (dids[j].clone(), score))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Some(named)
}
