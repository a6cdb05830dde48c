//! Keeping the bootstrap peers: each address is dialled again while we have
//! no connection to it — a peer that was down when we started, or lost in
//! a partition, is not lost for good (and a node cut off from every peer
//! has no DHT to walk). Failing dials back off (5 s, doubling, at most
//! 5 min) so a peer that refuses us is not hammered; a session with the
//! peer resets the wait.

use std::time::Duration;

use tokio::time::Instant;

use libp2p::{Multiaddr, PeerId};

/// The first wait before a bootstrap peer is dialled again.
pub const FIRST_WAIT: Duration = Duration::from_secs(5);
/// The longest wait between two dials of one bootstrap peer.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

struct Entry {
    addr: Multiaddr,
    /// Who the address turned out to be, once dialled.
    peer: Option<PeerId>,
    next: Instant,
    wait: Duration,
    /// When it was last dialled.
    dialled_at: Option<Instant>,
}

/// The bootstrap peers and when each is next dialled.
#[derive(Default)]
pub struct BootstrapPeers(Vec<Entry>);

/// An address without its `/p2p/…` suffix (how a connection reports it).
fn without_peer(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect()
}

impl BootstrapPeers {
    /// `addrs`, dialled at start (by the builder); first redials after
    /// [`FIRST_WAIT`].
    pub fn new(addrs: Vec<Multiaddr>, now: Instant) -> Self {
        BootstrapPeers(
            addrs
                .into_iter()
                .map(|addr| Entry {
                    addr,
                    peer: None,
                    next: now + FIRST_WAIT,
                    wait: FIRST_WAIT,
                    dialled_at: None,
                })
                .collect(),
        )
    }

    /// A connection we dialled to `address` reached `peer`.
    pub fn dialled(&mut self, address: &Multiaddr, peer: PeerId) {
        let address = without_peer(address);
        for e in &mut self.0 {
            if without_peer(&e.addr) == address {
                e.peer = Some(peer);
            }
        }
    }

    /// Whether `peer` is one of the bootstrap peers.
    pub fn is_bootstrap(&self, peer: &PeerId) -> bool {
        self.0.iter().any(|e| e.peer.as_ref() == Some(peer))
    }

    /// The addresses to dial now. `connected` says whether a connection to
    /// a peer stands, `session` whether it is authenticated. With `enough`
    /// sessions elsewhere (half the discovery target), a lost bootstrap peer is
    /// dialled at most every [`MAX_WAIT`]: it most likely closed the
    /// session to stay within its own session limit, and redialling it at
    /// once would only be closed again; the slow redial still heals a
    /// partition.
    pub fn due(
        &mut self,
        now: Instant,
        enough: bool,
        connected: impl Fn(&PeerId) -> bool,
        session: impl Fn(&PeerId) -> bool,
    ) -> Vec<Multiaddr> {
        let mut out = Vec::new();
        for e in &mut self.0 {
            if let Some(peer) = e.peer {
                if session(&peer) {
                    e.wait = FIRST_WAIT;
                    e.next = now + FIRST_WAIT;
                    continue;
                }
                if connected(&peer) {
                    continue;
                }
            }
            let recently = e
                .dialled_at
                .is_some_and(|at| now.saturating_duration_since(at) < MAX_WAIT);
            if now >= e.next && !(enough && recently) {
                e.dialled_at = Some(now);
                out.push(e.addr.clone());
                e.next = now + e.wait;
                e.wait = (e.wait * 2).min(MAX_WAIT);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_peers_are_redialled_with_backoff_and_a_session_resets_it() {
        let start = Instant::now();
        let addr: Multiaddr = "/ip4/10.0.0.2/tcp/4001"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let peer = PeerId::random();
        let mut b = BootstrapPeers::new(vec![addr.clone()], start);
        let never = |_: &PeerId| false;
        // Not before the first wait; then 5, 10, 20 … s apart, capped.
        assert!(b.due(start, false, never, never).is_empty());
        let mut at = start + FIRST_WAIT;
        let mut dials = Vec::new();
        for _ in 0..2000 {
            if !b.due(at, false, never, never).is_empty() {
                dials.push(at.duration_since(start).as_secs());
            }
            at += Duration::from_secs(1);
        }
        assert_eq!(&dials[..6], &[5, 10, 20, 40, 80, 160]);
        assert!(dials.windows(2).all(|w| w[1] - w[0] <= MAX_WAIT.as_secs()));
        assert_eq!(dials[7] - dials[6], MAX_WAIT.as_secs());
        // A dial that reached the peer: while connected, nothing is dialled;
        // a session resets the wait, so a later loss is redialled soon.
        b.dialled(
            &format!("{addr}/p2p/{peer}")
                .parse()
                .unwrap_or_else(|e| panic!("{e}")),
            peer,
        );
        let yes = |p: &PeerId| *p == peer;
        assert!(b.due(at, false, yes, never).is_empty());
        assert!(b.due(at, false, yes, yes).is_empty());
        assert!(
            b.due(
                at + FIRST_WAIT - Duration::from_secs(1),
                false,
                never,
                never
            )
            .is_empty()
        );
        assert_eq!(b.due(at + FIRST_WAIT, false, never, never), vec![addr]);
    }

    /// A node with enough sessions elsewhere redials a lost bootstrap peer
    /// at most every MAX_WAIT (the peer most likely trimmed it), but does
    /// redial it (a partition heals); without enough, as soon as it is due.
    #[test]
    fn with_enough_sessions_a_lost_bootstrap_peer_is_redialled_slowly() {
        let start = Instant::now();
        let addr: Multiaddr = "/ip4/10.0.0.2/tcp/4001"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let peer = PeerId::random();
        let mut b = BootstrapPeers::new(vec![addr.clone()], start);
        let never = |_: &PeerId| false;
        let t1 = start + FIRST_WAIT;
        assert_eq!(b.due(t1, true, never, never), vec![addr.clone()]);
        b.dialled(&addr, peer);
        // A session, then the peer closes it.
        let yes = |p: &PeerId| *p == peer;
        assert!(
            b.due(t1 + Duration::from_secs(1), true, yes, yes)
                .is_empty()
        );
        let lost = t1 + Duration::from_secs(30);
        assert!(b.due(lost + FIRST_WAIT, true, never, never).is_empty());
        assert!(
            b.due(t1 + MAX_WAIT - Duration::from_secs(1), true, never, never)
                .is_empty()
        );
        assert_eq!(b.due(t1 + MAX_WAIT, true, never, never), vec![addr.clone()]);
        // Without enough sessions the same loss is redialled when due.
        let mut b = BootstrapPeers::new(vec![addr.clone()], start);
        assert_eq!(b.due(t1, false, never, never), vec![addr.clone()]);
        b.dialled(&addr, peer);
        assert!(
            b.due(t1 + Duration::from_secs(1), false, yes, yes)
                .is_empty()
        );
        assert_eq!(b.due(lost + FIRST_WAIT, false, never, never), vec![addr]);
    }
}
