//! The kinds of agent a scenario has (docs/SIMULATIONS.md §2), shared by
//! every mode and by the results.

use serde::Serialize;

/// What kind of agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Behaves (and still fails 2% of its tasks, as honest agents do).
    Honest,
    /// Fails every task.
    AlwaysBad,
    /// Behaves `good_fraction` of the time.
    Camouflaged,
    /// Fails; praises members, slanders others.
    Collective,
    /// Behaves; vouches for the always-bad protégés.
    Spy,
    /// A sybil parent: fails; its children praise it.
    Sybil,
    /// A sybil's child: fails; praises its parent.
    SybilChild,
    /// Behaves; signs two ledger histories.
    Equivocating,
    /// Does nothing; floods.
    FreeRider,
    /// Behaves until trusted, then fails until it is not.
    Adaptive,
    /// Fails; comes back under a new identity once caught.
    Whitewasher,
}

impl Class {
    /// Everything but honest is malicious.
    pub fn is_malicious(self) -> bool {
        self != Class::Honest
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Class::Honest => "honest",
            Class::AlwaysBad => "always_bad",
            Class::Camouflaged => "camouflaged",
            Class::Collective => "collective",
            Class::Spy => "spy",
            Class::Sybil => "sybil",
            Class::SybilChild => "sybil_child",
            Class::Equivocating => "equivocating",
            Class::FreeRider => "free_rider",
            Class::Adaptive => "adaptive",
            Class::Whitewasher => "whitewasher",
        }
    }
}
