//! Wall-clock time as the protocol carries it.
//!
//! The pure crates never read a clock: callers pass `now` in, so tests and
//! simulations control time exactly (sans-IO, as quinn-proto does).

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch (UTC). Encoded as a CBOR unsigned integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// `self + secs`, saturating at the far future instead of wrapping.
    pub fn plus_secs(self, secs: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs))
    }

    /// `self - secs`, saturating at the epoch.
    pub fn minus_secs(self, secs: u64) -> Timestamp {
        Timestamp(self.0.saturating_sub(secs))
    }

    /// Absolute distance between two instants, in seconds.
    pub fn abs_diff(self, other: Timestamp) -> u64 {
        self.0.abs_diff(other.0)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}s", self.0)
    }
}
