//! The agent's only notion of time: milliseconds since the Unix epoch,
//! handed in with every input. Wall-clock seconds (what signed messages
//! carry) are derived from it, so a harness that advances virtual time
//! drives every timer and every signature timestamp alike.

use std::time::Duration;

use mesh_iatp::Timestamp;

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// The whole seconds signed messages carry.
    pub fn timestamp(self) -> Timestamp {
        Timestamp(self.0 / 1000)
    }

    /// `self + d` (saturating).
    pub fn plus(self, d: Duration) -> Millis {
        Millis(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// How long after `earlier` this is (zero if it is not after).
    pub fn since(self, earlier: Millis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The time at the start of the Unix second `t`.
    pub fn from_timestamp(t: Timestamp) -> Millis {
        Millis(t.0.saturating_mul(1000))
    }
}

/// What the driver says the time is, with every input: `wall` for what is
/// signed and for trust decay (it may be a fixed or simulated clock), and
/// `mono` for timers and rate limits (it only moves forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Unix seconds, as signed into messages.
    pub wall: Timestamp,
    /// A monotonic clock in milliseconds.
    pub mono: Millis,
}

impl Now {
    /// Both clocks from one virtual time (harnesses): `wall` is its second.
    pub fn virtual_at(t: Millis) -> Now {
        Now {
            wall: t.timestamp(),
            mono: t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_truncate_and_durations_saturate() {
        let t = Millis(1_700_000_000_999);
        assert_eq!(t.timestamp(), Timestamp(1_700_000_000));
        assert_eq!(
            t.plus(Duration::from_millis(1)).timestamp().0,
            1_700_000_001
        );
        assert_eq!(Millis(5).since(Millis(9)), Duration::ZERO);
        assert_eq!(
            Millis(u64::MAX).plus(Duration::from_secs(1)),
            Millis(u64::MAX)
        );
        assert_eq!(Millis::from_timestamp(Timestamp(2)), Millis(2000));
    }
}
