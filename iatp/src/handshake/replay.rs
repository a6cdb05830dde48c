//! Memory of recent Hello nonces, so a recorded Hello cannot be replayed.

use std::collections::{HashMap, VecDeque};

use super::Refusal;
use crate::{Did, Timestamp};

/// Hello nonces seen in the last `window_secs`, per initiator.
///
/// A Hello is accepted only within the clock-skew window of its timestamp,
/// so a replay must arrive within `2 × skew` of the original: that is the
/// window to remember. A replayed Hello carries its initiator's key, so
/// nonces are kept per initiator (whose signature and credential were
/// checked before the nonce is): one initiator may have at most
/// `per_initiator` Hellos in the window (beyond that it is refused
/// [`Refusal::ReplayCacheFull`]), and when all initiators together reach
/// `capacity` the initiator holding the most gives up its oldest nonce.
/// So one member — or many — flooding Hellos never gets another agent
/// refused; the worst it buys is forgetting its own oldest nonces.
#[derive(Debug, Clone)]
pub struct NonceCache {
    capacity: usize,
    per_initiator: usize,
    window_secs: u64,
    by_initiator: HashMap<[u8; 32], VecDeque<([u8; 32], Timestamp)>>,
    len: usize,
}

/// Hellos one initiator may have in the window by default: far more than
/// an honest agent reconnecting makes in two minutes.
pub const HELLOS_PER_INITIATOR: usize = 256;

impl NonceCache {
    /// A cache for handshakes checked with `max_skew_secs` of skew, holding
    /// at most `capacity` nonces ([`HELLOS_PER_INITIATOR`] per initiator).
    pub fn new(capacity: usize, max_skew_secs: u64) -> Self {
        NonceCache {
            capacity: capacity.max(1),
            per_initiator: HELLOS_PER_INITIATOR.min(capacity.max(1)),
            window_secs: max_skew_secs.saturating_mul(2).saturating_add(1),
            by_initiator: HashMap::new(),
            len: 0,
        }
    }

    /// The same, allowing each initiator `n` Hellos in the window.
    pub fn with_per_initiator(mut self, n: usize) -> Self {
        self.per_initiator = n.clamp(1, self.capacity);
        self
    }

    /// Record `initiator`'s `nonce` at `now`; refuse it if already seen in
    /// the window, or if the initiator has used up its share.
    pub fn check_and_insert(
        &mut self,
        initiator: &Did,
        nonce: [u8; 32],
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let key = *initiator.public_key_bytes();
        let horizon = now.minus_secs(self.window_secs);
        if let Some(seen) = self.by_initiator.get_mut(&key) {
            self.len -= expire(seen, horizon);
            if seen.iter().any(|(n, _)| *n == nonce) {
                return Err(Refusal::ReplayedNonce);
            }
            if seen.len() >= self.per_initiator {
                return Err(Refusal::ReplayCacheFull);
            }
        }
        if self.len >= self.capacity {
            self.make_room(horizon);
        }
        self.by_initiator
            .entry(key)
            .or_default()
            .push_back((nonce, now));
        self.len += 1;
        Ok(())
    }

    /// Forget everything expired; if still full, the initiator holding the
    /// most nonces forgets its oldest.
    fn make_room(&mut self, horizon: Timestamp) {
        let mut freed = 0;
        self.by_initiator.retain(|_, seen| {
            freed += expire(seen, horizon);
            !seen.is_empty()
        });
        self.len -= freed;
        if self.len < self.capacity {
            return;
        }
        let fullest = self
            .by_initiator
            .iter()
            .max_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| b.0.cmp(a.0)))
            .map(|(k, _)| *k);
        if let Some(seen) = fullest.and_then(|k| self.by_initiator.get_mut(&k)) {
            seen.pop_front();
            self.len -= 1;
        }
    }

    /// Nonces currently remembered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Is the cache empty?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Drop the nonces older than `horizon` (kept in arrival order); how many.
fn expire(seen: &mut VecDeque<([u8; 32], Timestamp)>, horizon: Timestamp) -> usize {
    let before = seen.len();
    while seen.front().is_some_and(|(_, at)| *at < horizon) {
        seen.pop_front();
    }
    before - seen.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::identity;

    fn did(name: &str) -> Did {
        identity(name).did().clone()
    }

    #[test]
    fn remembers_within_window_and_forgets_after() {
        let (alice, bob) = (did("alice"), did("bob"));
        let mut c = NonceCache::new(10, 60);
        c.check_and_insert(&alice, [1; 32], Timestamp(1000))
            .expect("fresh");
        assert_eq!(
            c.check_and_insert(&alice, [1; 32], Timestamp(1120)),
            Err(Refusal::ReplayedNonce)
        );
        // A replay carries its initiator's key: another key is another Hello.
        c.check_and_insert(&bob, [1; 32], Timestamp(1120))
            .expect("bob's own nonce");
        c.check_and_insert(&alice, [1; 32], Timestamp(1122))
            .expect("expired from window");
    }

    #[test]
    fn one_initiator_cannot_use_more_than_its_share() {
        let (flooder, honest) = (did("flooder"), did("honest"));
        let mut c = NonceCache::new(100, 60).with_per_initiator(3);
        for i in 0..3 {
            c.check_and_insert(&flooder, [i; 32], Timestamp(0))
                .expect("within its share");
        }
        assert_eq!(
            c.check_and_insert(&flooder, [9; 32], Timestamp(1)),
            Err(Refusal::ReplayCacheFull)
        );
        c.check_and_insert(&honest, [9; 32], Timestamp(1))
            .expect("someone else's flood costs the honest nothing");
        c.check_and_insert(&flooder, [9; 32], Timestamp(200))
            .expect("its old ones expired");
    }

    #[test]
    fn a_full_cache_makes_the_biggest_holder_forget_never_the_honest() {
        let honest = did("honest");
        let flooders: Vec<Did> = (0..4).map(|i| did(&format!("flooder {i}"))).collect();
        let mut c = NonceCache::new(10, 60).with_per_initiator(4);
        c.check_and_insert(&honest, [0xaa; 32], Timestamp(0))
            .expect("first");
        // Four flooders fill the rest, and more.
        let mut refused = 0;
        for (i, f) in flooders.iter().enumerate() {
            for j in 0..4u8 {
                if c.check_and_insert(f, [i as u8 * 16 + j; 32], Timestamp(1))
                    .is_err()
                {
                    refused += 1;
                }
            }
        }
        assert_eq!(refused, 0, "each flooder stays within its own share");
        assert_eq!(c.len(), 10, "never more than the capacity");
        // The honest agent still gets in, and its nonce is still remembered.
        c.check_and_insert(&honest, [0xbb; 32], Timestamp(2))
            .expect("the honest are never refused for others' traffic");
        assert_eq!(
            c.check_and_insert(&honest, [0xaa; 32], Timestamp(3)),
            Err(Refusal::ReplayedNonce)
        );
        assert_eq!(c.len(), 10);
    }
}
