//! Per-peer rate limits: a token bucket per peer and kind of traffic, and a
//! strike count that decides when a flooding peer is cut off. Buckets run on
//! the agent's injected time.

use std::collections::HashMap;
use std::time::Duration;

use crate::time::Millis;

/// The node's limits (all per peer unless said otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Action requests per second, sustained.
    pub requests_per_sec: f64,
    /// Action requests allowed in a burst.
    pub request_burst: f64,
    /// Hellos per second one agent may send us, sustained, across all its
    /// connections (a Hello costs us signature checks and a nonce slot).
    pub hellos_per_sec: f64,
    /// Hellos in a burst.
    pub hello_burst: f64,
    /// Gossip messages per second a peer may forward us, sustained.
    pub gossip_per_sec: f64,
    /// Gossip messages in a burst.
    pub gossip_burst: f64,
    /// Refused (over-limit or malformed) messages before the peer is
    /// disconnected and banned.
    pub strikes_before_ban: u32,
    /// How long a banned peer's connections are refused.
    pub ban: Duration,
    /// Established connections, all peers together.
    pub max_connections: u32,
    /// Established connections per peer.
    pub max_connections_per_peer: u32,
    /// Incoming connections still negotiating.
    pub max_pending_incoming: u32,
    /// Peers connected without a session at any one time: a new incoming
    /// connection beyond it closes the one that has waited longest, so
    /// idle strangers can neither pile up nor hold the door shut.
    pub max_strangers: u32,
    /// Of those, from one IP address: a flood from one host displaces only
    /// its own connections.
    pub max_strangers_per_ip: u32,
    /// A connection whose handshake has not completed this long after it
    /// opened is closed: a peer that never sends its Hello (or never
    /// confirms) cannot keep a connection slot.
    pub handshake_deadline: Duration,
    /// Peers found by mDNS or the DHT are dialled only while the node has
    /// fewer connected peers than this (a node needs a few good links, not
    /// the whole mesh).
    pub discovery_target: u32,
    /// Sessions held at most (the high watermark): beyond it the node's
    /// shell closes idle sessions down to three quarters of it (never below
    /// `discovery_target`), untrusted peers first (PROTOCOL.md §8.1). A session younger than 30 s,
    /// with a bootstrap peer, with a peer the embedder connected to, or
    /// with work in flight ([`Agent::busy_with`](crate::Agent::busy_with))
    /// is kept.
    pub max_sessions: u32,
    /// Delegated tasks run at once, all delegators together; one more is
    /// refused `busy` (a task costs a handler's run and a stored fact).
    pub max_running_tasks: usize,
    /// Of those, for one delegator: one member cannot take every slot.
    pub max_running_tasks_per_peer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests_per_sec: 50.0,
            request_burst: 100.0,
            hellos_per_sec: 1.0,
            hello_burst: 10.0,
            gossip_per_sec: 50.0,
            gossip_burst: 200.0,
            strikes_before_ban: 50,
            ban: Duration::from_secs(60),
            max_connections: 512,
            max_connections_per_peer: 2,
            max_pending_incoming: 128,
            max_strangers: 64,
            max_strangers_per_ip: 16,
            handshake_deadline: Duration::from_secs(10),
            discovery_target: 16,
            max_sessions: 64,
            max_running_tasks: 1024,
            max_running_tasks_per_peer: 256,
        }
    }
}

/// A token bucket.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    at: Millis,
}

/// Buckets for many peers with one rate.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: HashMap<K, Bucket>,
}

impl<K: std::hash::Hash + Eq + Clone> RateLimiter<K> {
    /// `rate` per second sustained, `burst` at once.
    pub fn new(rate: f64, burst: f64) -> Self {
        RateLimiter {
            rate,
            burst,
            buckets: HashMap::new(),
        }
    }

    /// Take one token for `key` at `now`; false if its bucket is empty.
    pub fn allow(&mut self, key: &K, now: Millis) -> bool {
        let (rate, burst) = (self.rate, self.burst);
        let b = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forget a key (its peer disconnected).
    pub fn forget(&mut self, key: &K) {
        self.buckets.remove(key);
    }

    /// Forget every bucket that would be full again at `now`: its key has
    /// been quiet long enough to start afresh, so only keys active within
    /// the last `burst / rate` seconds are held.
    pub fn prune(&mut self, now: Millis) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets
            .retain(|_, b| b.tokens + now.since(b.at).as_secs_f64() * rate < burst);
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// No keys held?
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_keys_are_pruned_and_busy_ones_kept() {
        let mut limiter = RateLimiter::new(1.0, 10.0);
        let t0 = Millis(1_000_000);
        for _ in 0..10 {
            assert!(limiter.allow(&1, t0));
        }
        assert!(!limiter.allow(&1, t0), "key 1's burst is spent");
        assert!(limiter.allow(&2, t0));
        // 5 s on: key 1 has 5 tokens, key 2 is full again.
        limiter.prune(Millis(1_005_000));
        assert_eq!(limiter.len(), 1);
        // Kept, so reconnecting does not refill it.
        let five = (0..10)
            .filter(|_| limiter.allow(&1, Millis(1_005_000)))
            .count();
        assert_eq!(five, 5);
        limiter.prune(Millis(1_100_000));
        assert!(limiter.is_empty());
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut limiter = RateLimiter::new(10.0, 5.0);
        let t0 = Millis(1_000_000);
        let allowed = (0..20).filter(|_| limiter.allow(&1, t0)).count();
        assert_eq!(allowed, 5);
        // 0.5 s later: 5 more tokens at 10/s.
        let t1 = t0.plus(Duration::from_millis(500));
        let allowed = (0..20).filter(|_| limiter.allow(&1, t1)).count();
        assert_eq!(allowed, 5);
        // Another key has its own bucket.
        assert!(limiter.allow(&2, t1));
        // Tokens never exceed the burst however long the pause.
        let t2 = t1.plus(Duration::from_secs(3600));
        let allowed = (0..20).filter(|_| limiter.allow(&1, t2)).count();
        assert_eq!(allowed, 5);
    }
}
