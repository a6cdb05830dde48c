//! Keeping a node's sessions few: once more peers than
//! `Limits::max_sessions` hold a session, sessions are closed down to the
//! low watermark ([`low_watermark`]). Every session costs a node pings,
//! gossip and DHT upkeep for as long as it stands, and without a bound
//! every node of a DHT-connected mesh ends up a neighbour of every other
//! (docs/PERFORMANCE.md, "A hundred real nodes").
//!
//! Never closed: a session younger than [`GRACE`] (its peer may have come
//! to ask something), a bootstrap peer, a peer the embedder connected to,
//! and a peer with work in flight either way (a request awaiting its
//! answer, a task it delegated here, a task delegated to it). Of the
//! others, peers trusted below the handshake's floor go first; then the
//! order is a hash of the two agents' keys, the same number at both ends.
//! Both ends of a link trim at once, each by its own choice: ranked by
//! trust or age the choices are unrelated, a link survives only if both
//! keep it, and a node keeping a fraction f of its links ends with about
//! f² of them (below the walk threshold, so it walks the DHT, reconnects
//! to everyone it asks, and trims again). Ranked by a number both ends
//! share, a link one end keeps the other most likely keeps too.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::PeerId;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// A session this young is never trimmed.
pub const GRACE: Duration = Duration::from_secs(30);

/// Sessions are trimmed down to this many: three quarters of the high
/// watermark, but never below the discovery target (the other end trims
/// too, so a node ends somewhat below this; it walks the DHT for more only
/// under half the target).
pub fn low_watermark(max_sessions: u32, discovery_target: u32) -> usize {
    (max_sessions as usize * 3 / 4).max(discovery_target as usize)
}

/// One peer holding a session, as the trimmer sees it.
pub struct Held {
    pub peer: PeerId,
    /// Trusted below the handshake's floor: the first to go.
    pub untrusted: bool,
    /// When its first connection opened.
    pub since: Instant,
    /// Bootstrap, chosen by the embedder, or busy.
    pub protected: bool,
}

/// The rank of the link between `a` and `b`, the same from either end:
/// SHA-256 of the two PeerIds' bytes, the lower first.
pub fn link_rank(a: &PeerId, b: &PeerId) -> [u8; 32] {
    let (a, b) = (a.to_bytes(), b.to_bytes());
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Sha256::new()
        .chain_update(&lo)
        .chain_update(&hi)
        .finalize()
        .into()
}

/// The peers `me` should disconnect so that at most `low` sessions remain,
/// given the `held` ones; none while they are at most `high`. The highest
/// ranks go first ([`link_rank`]).
pub fn victims(
    me: &PeerId,
    mut held: Vec<Held>,
    high: usize,
    low: usize,
    now: Instant,
) -> Vec<PeerId> {
    if held.len() <= high {
        return Vec::new();
    }
    let excess = held.len() - low.min(high);
    held.retain(|h| !h.protected && now.saturating_duration_since(h.since) >= GRACE);
    let mut ranked: Vec<_> = held
        .into_iter()
        .map(|h| {
            (
                !h.untrusted,
                std::cmp::Reverse(link_rank(me, &h.peer)),
                h.peer,
            )
        })
        .collect();
    ranked.sort();
    ranked.into_iter().take(excess).map(|(_, _, p)| p).collect()
}

/// What the driver remembers of its connected peers for trimming; entries
/// leave when the peer's last connection closes, so both sets stay within
/// the connection limit.
#[derive(Default)]
pub struct Links {
    since: HashMap<PeerId, Instant>,
    chosen: HashSet<PeerId>,
}

impl Links {
    /// `peer`'s first connection opened at `now`.
    pub fn opened(&mut self, peer: PeerId, now: Instant) {
        self.since.entry(peer).or_insert(now);
    }

    /// The embedder connected to `peer` (`Node::connect`).
    pub fn chose(&mut self, peer: PeerId) {
        if self.since.contains_key(&peer) {
            self.chosen.insert(peer);
        }
    }

    /// `peer`'s last connection closed.
    pub fn closed(&mut self, peer: &PeerId) {
        self.since.remove(peer);
        self.chosen.remove(peer);
    }

    /// When `peer` connected (now if unknown: never trimmed before its
    /// grace).
    pub fn since(&self, peer: &PeerId, now: Instant) -> Instant {
        self.since.get(peer).copied().unwrap_or(now)
    }

    /// Whether the embedder chose `peer`.
    pub fn is_chosen(&self, peer: &PeerId) -> bool {
        self.chosen.contains(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(untrusted: bool, age_secs: u64, protected: bool, now: Instant) -> Held {
        Held {
            peer: PeerId::random(),
            untrusted,
            since: now - Duration::from_secs(age_secs),
            protected,
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[test]
    fn nothing_is_trimmed_at_or_below_the_high_watermark() {
        let now = later();
        let h: Vec<_> = (0..4).map(|_| held(false, 600, false, now)).collect();
        assert!(victims(&PeerId::random(), h, 4, 2, now).is_empty());
    }

    #[test]
    fn above_it_the_untrusted_go_first_then_the_highest_ranked_links() {
        let now = later();
        let me = PeerId::random();
        let h: Vec<_> = (0..8).map(|i| held(i == 5, 600, false, now)).collect();
        let untrusted = h[5].peer;
        let mut trusted: Vec<_> = h.iter().filter(|x| !x.untrusted).map(|x| x.peer).collect();
        trusted.sort_by_key(|p| std::cmp::Reverse(link_rank(&me, p)));
        let got = victims(&me, h, 6, 5, now);
        assert_eq!(got, vec![untrusted, trusted[0], trusted[1]]);
    }

    #[test]
    fn protected_and_young_sessions_are_never_trimmed_even_if_that_leaves_more() {
        let now = later();
        let h = vec![
            held(true, 600, true, now),   // busy, bootstrap or chosen
            held(true, 5, false, now),    // inside its grace
            held(false, 600, false, now), // the only one that may go
            held(true, 600, true, now),
        ];
        let only = h[2].peer;
        assert_eq!(victims(&PeerId::random(), h, 3, 1, now), vec![only]);
    }

    #[test]
    fn a_links_rank_is_the_same_from_both_ends() {
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        assert_eq!(link_rank(&a, &b), link_rank(&b, &a));
        assert_ne!(link_rank(&a, &b), link_rank(&a, &c));
    }

    /// The reason for a shared rank: 60 agents all linked, each trimming to
    /// 20 at once. With a shared rank most links one end keeps the other
    /// keeps too, so nodes end near the low watermark; ranked by unrelated
    /// choices (here: each node's own hash of the peer) they end near
    /// 20²/59 ≈ 7, below the DHT walk threshold.
    #[test]
    fn with_a_shared_rank_both_ends_mostly_keep_the_same_links() {
        let now = later();
        let peers: Vec<PeerId> = (0..60).map(|_| PeerId::random()).collect();
        let kept_degree = |shared: bool| {
            let keeps: Vec<std::collections::HashSet<PeerId>> = peers
                .iter()
                .map(|me| {
                    let others: Vec<Held> = peers
                        .iter()
                        .filter(|p| *p != me)
                        .map(|p| Held {
                            peer: *p,
                            untrusted: false,
                            since: now - Duration::from_secs(600),
                            protected: false,
                        })
                        .collect();
                    let gone: HashSet<PeerId> = if shared {
                        victims(me, others, 40, 20, now).into_iter().collect()
                    } else {
                        // Unrelated choices: a hash of (me, peer) in that
                        // order, which the other end computes differently.
                        let own = |p: &PeerId| -> [u8; 32] {
                            Sha256::new()
                                .chain_update(me.to_bytes())
                                .chain_update(p.to_bytes())
                                .finalize()
                                .into()
                        };
                        let mut o: Vec<_> = others.iter().map(|h| h.peer).collect();
                        o.sort_by_key(own);
                        o.into_iter().take(39).collect()
                    };
                    peers
                        .iter()
                        .filter(|p| *p != me && !gone.contains(p))
                        .copied()
                        .collect()
                })
                .collect();
            let mut degrees: Vec<usize> = (0..peers.len())
                .map(|i| {
                    keeps[i]
                        .iter()
                        .filter(|p| {
                            let j = peers.iter().position(|q| q == *p).unwrap_or(0);
                            keeps[j].contains(&peers[i])
                        })
                        .count()
                })
                .collect();
            degrees.sort();
            degrees[degrees.len() / 2]
        };
        let shared = kept_degree(true);
        let unrelated = kept_degree(false);
        assert!(shared >= 14, "median degree with a shared rank: {shared}");
        assert!(
            unrelated <= 10,
            "median degree with unrelated choices: {unrelated}"
        );
    }

    #[test]
    fn the_low_watermark_never_falls_below_the_discovery_target() {
        assert_eq!(low_watermark(64, 16), 48);
        assert_eq!(low_watermark(16, 16), 16);
        assert_eq!(low_watermark(8, 16), 16);
    }
}
