//! Tiers: named score bands, so policies can say "trusted" instead of 700.

use serde::{Deserialize, Serialize};

use mesh_iatp::Score;

/// A named band of scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Default 0–299: no delegation, watched.
    Untrusted,
    /// Default 300–499: new or recovering.
    Probationary,
    /// Default 500–699: ordinary work.
    Standard,
    /// Default 700–899: sensitive work, may spawn.
    Trusted,
    /// Default 900–1000: close partners.
    VerifiedPartner,
}

impl Tier {
    /// Snake-case name, as in config files and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Untrusted => "untrusted",
            Tier::Probationary => "probationary",
            Tier::Standard => "standard",
            Tier::Trusted => "trusted",
            Tier::VerifiedPartner => "verified_partner",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Lowest score of each tier above `untrusted` (which starts at 0).
/// Defaults are the reference toolkit's, so a score means the same there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tiers {
    /// First probationary score (default 300).
    pub probationary: u16,
    /// First standard score (default 500).
    pub standard: u16,
    /// First trusted score (default 700).
    pub trusted: u16,
    /// First verified-partner score (default 900).
    pub verified_partner: u16,
}

impl Default for Tiers {
    fn default() -> Self {
        Tiers {
            probationary: 300,
            standard: 500,
            trusted: 700,
            verified_partner: 900,
        }
    }
}

impl Tiers {
    /// The tier `score` falls in.
    pub fn tier_of(&self, score: Score) -> Tier {
        let s = score.get();
        if s >= self.verified_partner {
            Tier::VerifiedPartner
        } else if s >= self.trusted {
            Tier::Trusted
        } else if s >= self.standard {
            Tier::Standard
        } else if s >= self.probationary {
            Tier::Probationary
        } else {
            Tier::Untrusted
        }
    }

    /// The lowest score in `tier`.
    pub fn floor_of(&self, tier: Tier) -> Score {
        Score::saturating(match tier {
            Tier::Untrusted => 0,
            Tier::Probationary => self.probationary,
            Tier::Standard => self.standard,
            Tier::Trusted => self.trusted,
            Tier::VerifiedPartner => self.verified_partner,
        })
    }

    /// Cut-offs must rise strictly within 1..=1000.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let c = [
            self.probationary,
            self.standard,
            self.trusted,
            self.verified_partner,
        ];
        if c[0] == 0 || c[3] > 1000 || c.windows(2).any(|w| w[0] >= w[1]) {
            return Err("tier cut-offs must rise strictly within 1..=1000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cut_offs_match_the_reference_toolkit() {
        let t = Tiers::default();
        let at = |s| t.tier_of(Score::saturating(s));
        assert_eq!(at(0), Tier::Untrusted);
        assert_eq!(at(299), Tier::Untrusted);
        assert_eq!(at(300), Tier::Probationary);
        assert_eq!(at(499), Tier::Probationary);
        assert_eq!(at(500), Tier::Standard);
        assert_eq!(at(699), Tier::Standard);
        assert_eq!(at(700), Tier::Trusted);
        assert_eq!(at(899), Tier::Trusted);
        assert_eq!(at(900), Tier::VerifiedPartner);
        assert_eq!(at(1000), Tier::VerifiedPartner);
        assert_eq!(t.floor_of(Tier::Trusted).get(), 700);
    }

    #[test]
    fn cut_offs_must_rise() {
        let mut t = Tiers::default();
        assert!(t.check().is_ok());
        t.trusted = 500;
        assert!(t.check().is_err());
    }
}
