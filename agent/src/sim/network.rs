//! The simulated network: links between agents, messages in flight with
//! their delivery times, and the faults a seeded RNG injects — loss,
//! latency jitter (which reorders), duplication — plus partitions that cut
//! links until healed.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;

use crate::io::{Request, RequestId, Response};
use crate::time::Millis;
use crate::topic::Topic;

/// How the network behaves.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Fastest delivery.
    pub min_latency: Duration,
    /// Slowest delivery (uniform in between; different latencies reorder).
    pub max_latency: Duration,
    /// Probability a message is lost.
    pub drop: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// How long a request waits for its answer before it fails.
    pub request_timeout: Duration,
    /// How often every agent ticks.
    pub tick: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            min_latency: Duration::from_millis(1),
            max_latency: Duration::from_millis(5),
            drop: 0.0,
            duplicate: 0.0,
            request_timeout: Duration::from_secs(10),
            tick: Duration::from_millis(250),
        }
    }
}

impl NetConfig {
    /// A hostile network: 5% loss, 2% duplicates, 1–200 ms latency.
    pub fn lossy() -> Self {
        NetConfig {
            min_latency: Duration::from_millis(1),
            max_latency: Duration::from_millis(200),
            drop: 0.05,
            duplicate: 0.02,
            ..NetConfig::default()
        }
    }
}

/// Something in flight from one agent to another.
#[derive(Debug, Clone)]
pub(crate) enum Message {
    // Requests and answers are boxed so the queue's entries stay small:
    // most of what is in flight is gossip.
    Request {
        id: RequestId,
        request: Box<Request>,
    },
    Response {
        id: RequestId,
        response: Box<Response>,
    },
    Gossip {
        author: usize,
        topic: Topic,
        /// SHA-256 of `data`: the gossip message id.
        id: [u8; 32],
        /// Shared by every copy in flight.
        data: std::rc::Rc<[u8]>,
    },
}

/// A scheduled happening.
#[derive(Debug, Clone)]
pub(crate) enum Due {
    /// A message arrives (if the link still stands).
    Deliver {
        from: usize,
        to: usize,
        message: Message,
    },
    /// A request of `node` times out unless answered.
    Timeout { node: usize, id: RequestId },
    /// An input for `node` (a task's outcome).
    Input {
        node: usize,
        input: Box<crate::io::Input>,
    },
    /// A link closes (a refusal's grace period ended, a ban).
    Close { a: usize, b: usize },
}

/// Gossip message ids an agent has seen, forgotten after between one and
/// two [`SeenCache::TTL`]s (gossipsub's duplicate cache forgets too), so a
/// long run's memory does not grow with every message ever sent.
#[derive(Debug, Default)]
pub(crate) struct SeenCache {
    current: IdSet,
    previous: IdSet,
    since: Millis,
}

/// Message ids are SHA-256 digests: their first eight bytes are already a
/// good hash (and an outsider cannot aim them: a harness agent's own
/// messages are what is hashed).
type IdSet = std::collections::HashSet<[u8; 32], std::hash::BuildHasherDefault<IdHasher>>;

/// A hasher that keeps the first eight bytes it is given.
#[derive(Debug, Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Some(head) = bytes.first_chunk::<8>() {
            self.0 = u64::from_le_bytes(*head);
        }
    }

    // The slice's length prefix carries nothing.
    fn write_usize(&mut self, _: usize) {}
}

impl SeenCache {
    /// How long an id is surely remembered (virtual time).
    pub(crate) const TTL: Duration = Duration::from_secs(120);

    /// Note `id` at `now`; false if it was seen already.
    pub(crate) fn insert(&mut self, id: [u8; 32], now: Millis) -> bool {
        if now.since(self.since) >= Self::TTL {
            self.previous = std::mem::take(&mut self.current);
            self.since = now;
        }
        !self.previous.contains(&id) && self.current.insert(id)
    }

    /// Whether `id` is remembered.
    pub(crate) fn contains(&self, id: &[u8; 32]) -> bool {
        self.current.contains(id) || self.previous.contains(id)
    }
}

/// A queued happening, ordered by when it is due, then by when it was
/// scheduled (so equal times keep their order, deterministically).
struct Queued {
    at: Millis,
    seq: u64,
    due: Due,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Links, partitions and the queue of what is due.
pub(crate) struct Network {
    pub(crate) config: NetConfig,
    rng: ChaCha20Rng,
    /// Earliest first; each entry carries what is due (no side table to
    /// keep in step: with millions of entries in flight, inserts into that
    /// table and into the seen-id sets were the profile's largest item).
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    links: BTreeSet<(usize, usize)>,
    /// The same links by end: each agent's neighbours.
    /// Sorted, indexed by agent (gossip walks these for every copy).
    adjacent: Vec<Vec<usize>>,
    /// Each agent's side of the current partition.
    side: Option<Vec<u8>>,
}

fn key(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Network {
    pub(crate) fn new(config: NetConfig, rng: ChaCha20Rng) -> Self {
        Network {
            config,
            rng,
            queue: BinaryHeap::new(),
            seq: 0,
            links: BTreeSet::new(),
            adjacent: Vec::new(),
            side: None,
        }
    }

    pub(crate) fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&key(a, b))
    }

    /// Whether a partition separates `a` and `b`.
    pub(crate) fn separated(&self, a: usize, b: usize) -> bool {
        self.side
            .as_ref()
            .is_some_and(|s| s.get(a).copied().unwrap_or(0) != s.get(b).copied().unwrap_or(0))
    }

    pub(crate) fn link(&mut self, a: usize, b: usize) -> bool {
        let new = self.links.insert(key(a, b));
        if new {
            self.adjoin(a, b);
            self.adjoin(b, a);
        }
        new
    }

    pub(crate) fn unlink(&mut self, a: usize, b: usize) -> bool {
        let had = self.links.remove(&key(a, b));
        if had {
            for (x, y) in [(a, b), (b, a)] {
                if let Some(list) = self.adjacent.get_mut(x)
                    && let Ok(at) = list.binary_search(&y)
                {
                    list.remove(at);
                }
            }
        }
        had
    }

    fn adjoin(&mut self, a: usize, b: usize) {
        if self.adjacent.len() <= a {
            self.adjacent.resize_with(a + 1, Vec::new);
        }
        let list = &mut self.adjacent[a];
        if let Err(at) = list.binary_search(&b) {
            list.insert(at, b);
        }
    }

    /// Every link of `a`, as the other end, in order.
    pub(crate) fn neighbours(&self, a: usize) -> &[usize] {
        self.adjacent.get(a).map_or(&[], Vec::as_slice)
    }

    /// Split agents by `side`; the links crossing it are cut (returned).
    pub(crate) fn partition(&mut self, side: Vec<u8>) -> Vec<(usize, usize)> {
        self.side = Some(side);
        let crossing: Vec<(usize, usize)> = self
            .links
            .iter()
            .copied()
            .filter(|&(a, b)| self.separated(a, b))
            .collect();
        for &(a, b) in &crossing {
            self.unlink(a, b);
        }
        crossing
    }

    /// End the partition.
    pub(crate) fn heal(&mut self) {
        self.side = None;
    }

    pub(crate) fn schedule(&mut self, at: Millis, due: Due) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            due,
        }));
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = (
            self.config.min_latency.as_millis() as u64,
            self.config.max_latency.as_millis() as u64,
        );
        let span = hi.saturating_sub(lo);
        let jitter = if span == 0 {
            0
        } else {
            self.rng.next_u64() % (span + 1)
        };
        Duration::from_millis(lo + jitter)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    /// Put a message on the wire at `now`: maybe lost, after a random
    /// latency; gossip maybe twice (streams never duplicate, gossip paths
    /// do).
    pub(crate) fn send(&mut self, now: Millis, from: usize, to: usize, message: Message) {
        if self.chance(self.config.drop) {
            return;
        }
        let gossip = matches!(message, Message::Gossip { .. });
        let copies = if gossip && self.chance(self.config.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = now.plus(self.latency());
            self.schedule(
                at,
                Due::Deliver {
                    from,
                    to,
                    message: message.clone(),
                },
            );
        }
    }

    /// When the next thing is due.
    pub(crate) fn next_at(&self) -> Option<Millis> {
        self.queue.peek().map(|Reverse(q)| q.at)
    }

    /// Take the next due thing if it is due by `now`.
    pub(crate) fn pop_due(&mut self, now: Millis) -> Option<Due> {
        match self.queue.peek() {
            Some(Reverse(q)) if q.at <= now => self.queue.pop().map(|Reverse(q)| q.due),
            _ => None,
        }
    }

    /// How many things are scheduled.
    pub(crate) fn pending(&self) -> usize {
        self.queue.len()
    }
}
