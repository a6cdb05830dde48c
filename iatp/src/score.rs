//! Trust scores, 0–1000.
//!
//! Defined here (not in `mesh-trust`) because trust bundles and the
//! handshake's trust floor already speak in scores; `mesh-trust` re-exports it.

use serde::{Deserialize, Serialize};

/// An integer trust score in `0..=1000`. The type cannot hold anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct Score(u16);

/// A number outside `0..=1000` offered as a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("trust score {0} is out of range (scores are 0 to 1000)")]
pub struct ScoreOutOfRange(pub u64);

impl Score {
    /// The lowest score: no trust at all.
    pub const MIN: Score = Score(0);
    /// The highest score.
    pub const MAX: Score = Score(1000);

    /// A score, if `value` is in range.
    pub const fn new(value: u16) -> Result<Score, ScoreOutOfRange> {
        if value <= 1000 {
            Ok(Score(value))
        } else {
            Err(ScoreOutOfRange(value as u64))
        }
    }

    /// The nearest score to `value` (clamped into range).
    pub const fn saturating(value: u16) -> Score {
        if value > 1000 {
            Score(1000)
        } else {
            Score(value)
        }
    }

    /// The number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for Score {
    type Error = ScoreOutOfRange;
    fn try_from(value: u16) -> Result<Self, Self::Error> {
        Score::new(value)
    }
}

impl From<Score> for u16 {
    fn from(s: Score) -> u16 {
        s.0
    }
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
