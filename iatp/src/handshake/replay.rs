//! Memory of recent Hello nonces, so a recorded Hello cannot be replayed.

use std::collections::{HashSet, VecDeque};

use super::Refusal;
use crate::Timestamp;

/// Nonces seen in the last `window_secs`, at most `capacity` of them.
///
/// A Hello is accepted only within the clock-skew window of its timestamp,
/// so a replay must arrive within `2 × skew` of the original: that is the
/// window to remember. When full of unexpired nonces the cache refuses new
/// handshakes ([`Refusal::ReplayCacheFull`]) rather than forget and allow
/// a replay.
#[derive(Debug, Clone)]
pub struct NonceCache {
    capacity: usize,
    window_secs: u64,
    seen: HashSet<[u8; 32]>,
    order: VecDeque<([u8; 32], Timestamp)>,
}

impl NonceCache {
    /// A cache for handshakes checked with `max_skew_secs` of skew.
    pub fn new(capacity: usize, max_skew_secs: u64) -> Self {
        NonceCache {
            capacity,
            window_secs: max_skew_secs.saturating_mul(2).saturating_add(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Record `nonce` at `now`; refuse it if already seen in the window.
    pub fn check_and_insert(&mut self, nonce: [u8; 32], now: Timestamp) -> Result<(), Refusal> {
        while let Some(&(old, at)) = self.order.front() {
            if now.minus_secs(self.window_secs) <= at {
                break;
            }
            self.seen.remove(&old);
            self.order.pop_front();
        }
        if self.seen.contains(&nonce) {
            return Err(Refusal::ReplayedNonce);
        }
        if self.seen.len() >= self.capacity {
            return Err(Refusal::ReplayCacheFull);
        }
        self.seen.insert(nonce);
        self.order.push_back((nonce, now));
        Ok(())
    }

    /// Nonces currently remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Is the cache empty?
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_window_and_forgets_after() {
        let mut c = NonceCache::new(10, 60);
        c.check_and_insert([1; 32], Timestamp(1000)).expect("fresh");
        assert_eq!(
            c.check_and_insert([1; 32], Timestamp(1120)),
            Err(Refusal::ReplayedNonce)
        );
        c.check_and_insert([1; 32], Timestamp(1122))
            .expect("expired from window");
    }

    #[test]
    fn full_cache_refuses_instead_of_forgetting() {
        let mut c = NonceCache::new(2, 60);
        c.check_and_insert([1; 32], Timestamp(0)).expect("1");
        c.check_and_insert([2; 32], Timestamp(0)).expect("2");
        assert_eq!(
            c.check_and_insert([3; 32], Timestamp(1)),
            Err(Refusal::ReplayCacheFull)
        );
        c.check_and_insert([3; 32], Timestamp(200))
            .expect("old ones expired");
        assert_eq!(c.len(), 1);
    }
}
