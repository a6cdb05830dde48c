//! Durable state: an agent restarted from its stored facts — at any point,
//! including in the middle of a batch whose facts never reached the store —
//! decides and scores exactly as one that never stopped.

use std::time::Duration;

use mesh_agent::sim::MemoryStore;
use mesh_agent::{Agent, AgentConfig, Command, Effect, Input, Millis, Now, OpId, Outcome};
use mesh_delegation::{Capability, LinkHash, SpawnPolicy};
use mesh_iatp::testing::{FIXTURE_NOW, Federation, identity};
use mesh_iatp::{Did, Score};
use mesh_trust::{Evidence, EvidenceKind};
use proptest::prelude::*;

const KINDS: [EvidenceKind; 6] = [
    EvidenceKind::TaskSuccess,
    EvidenceKind::TaskFailure,
    EvidenceKind::HandshakeCompleted,
    EvidenceKind::ProtocolViolation,
    EvidenceKind::InvalidSignature,
    EvidenceKind::LedgerEquivocation,
];

#[derive(Debug, Clone)]
enum Op {
    Evidence { subject: usize, kind: usize },
    Spawn,
    Revoke(usize),
    Strikes { peer: usize, n: u32 },
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..5usize, 0..KINDS.len()).prop_map(|(subject, kind)| Op::Evidence { subject, kind }),
        1 => Just(Op::Spawn),
        1 => (0..4usize).prop_map(Op::Revoke),
        1 => (0..5usize, 30..60u32).prop_map(|(peer, n)| Op::Strikes { peer, n }),
        2 => Just(Op::Tick),
    ]
}

fn peers() -> Vec<Did> {
    (0..5)
        .map(|i| identity(&format!("durable peer {i}")).did().clone())
        .collect()
}

fn config(seed: u8, store: &MemoryStore) -> AgentConfig {
    let fed = Federation::new();
    let mut c = AgentConfig::new(
        fed.agent(&fed.acme, "x", &[]),
        fed.bundle.clone(),
        [seed; 32],
    );
    c.spawn = SpawnPolicy {
        threshold: Score::saturating(0),
        budgets: vec![(Score::saturating(0), 3)],
        max_depth: 3,
    };
    c.restored = store.facts();
    c.log = store.range().clone();
    c.recent_records = store.recent_leaves(65_536);
    c
}

/// One agent and what it stored.
struct Subject {
    agent: Agent,
    store: MemoryStore,
    /// The certificates it spawned, in order (the embedder's own list).
    spawned: Vec<LinkHash>,
    ops: u64,
}

impl Subject {
    fn new(seed: u8, now: Now) -> Subject {
        let fed = Federation::new();
        let did = fed.agent(&fed.acme, "x", &[]).identity().did().clone();
        let store = MemoryStore::new(&did);
        let agent = Agent::new(config(seed, &store), now).unwrap_or_else(|e| panic!("{e}"));
        Subject {
            agent,
            store,
            spawned: Vec::new(),
            ops: 0,
        }
    }

    /// Feed one input; keep what the agent persists and appends (unless
    /// `lose` — the process dies before the batch is committed).
    fn feed(&mut self, input: Input, now: Now, lose: bool) -> Vec<Effect> {
        let effects = self.agent.handle(input, now);
        if !lose {
            for e in &effects {
                match e {
                    Effect::Persist(f) => self.store.persist(f.clone()),
                    Effect::Append { index, record } => {
                        let _ = self.store.append(*index, record.clone());
                    }
                    _ => {}
                }
            }
        }
        effects
    }

    fn command(&mut self, command: Command, now: Now, lose: bool) -> Option<Outcome> {
        self.ops += 1;
        let op = OpId(self.ops);
        let effects = self.feed(Input::Command { op, command }, now, lose);
        effects.into_iter().find_map(|e| match e {
            Effect::Done { op: o, result } if o == op => result.ok(),
            _ => None,
        })
    }

    fn apply(&mut self, op: &Op, peers: &[Did], now: Now, lose: bool) {
        match op {
            Op::Evidence { subject, kind } => {
                let e = Evidence::new(peers[*subject].clone(), KINDS[*kind], now.wall);
                self.command(Command::RecordEvidence(e), now, lose);
            }
            Op::Spawn => {
                let cap = Capability::parse("tools/x:read").unwrap_or_else(|e| panic!("{e}"));
                let spawn = Command::Spawn(mesh_agent::SpawnOptions {
                    capabilities: vec![cap],
                    trust_ceiling: Score::saturating(500),
                    lifetime_secs: 3600,
                });
                if let Some(Outcome::Spawned(s)) = self.command(spawn, now, lose) {
                    self.spawned.push(s.certificate.hash());
                }
            }
            Op::Revoke(k) => {
                if let Some(target) = self.spawned.get(*k).copied() {
                    let reason = "test".into();
                    self.command(Command::Revoke { target, reason }, now, lose);
                }
            }
            Op::Strikes { peer, n } => {
                for _ in 0..*n {
                    let input = Input::Malformed {
                        from: peers[*peer].clone(),
                        what: "action request",
                        error: "garbage".into(),
                    };
                    self.feed(input, now, lose);
                }
            }
            Op::Tick => {
                self.feed(Input::Tick, now, lose);
            }
        }
    }

    /// Everything a later decision depends on, at `now`.
    fn view(&mut self, peers: &[Did], now: Now) -> Vec<String> {
        self.command(Command::RefreshTrust, now, false);
        let mut out = Vec::new();
        for p in peers {
            let e = self.agent.explain(p, now.wall);
            out.push(format!(
                "{p}: {} {:?} direct {} over {} severe {}; banned {}",
                e.score.get(),
                e.tier,
                e.direct_score,
                e.direct_evidence,
                e.severe.is_some(),
                self.agent.is_banned(p)
            ));
        }
        for (i, h) in self.spawned.iter().enumerate() {
            out.push(format!("child {i} revoked {}", self.agent.is_revoked(h)));
        }
        out.push(format!("issued {}", self.agent.issued().len()));
        // The spawn budget: may it spawn again?
        let cap = Capability::parse("tools/x:read").unwrap_or_else(|e| panic!("{e}"));
        let probe = Command::Spawn(mesh_agent::SpawnOptions {
            capabilities: vec![cap],
            trust_ceiling: Score::saturating(500),
            lifetime_secs: 3600,
        });
        self.ops += 1;
        let op = OpId(self.ops);
        let verdict = self
            .agent
            .handle(Input::Command { op, command: probe }, now)
            .into_iter()
            .find_map(|e| match e {
                Effect::Done { result, .. } => Some(match result {
                    Ok(_) => "spawn allowed".to_string(),
                    Err(e) => format!("spawn refused: {e}"),
                }),
                _ => None,
            });
        out.push(format!("{verdict:?}"));
        out
    }
}

fn at(t: Millis) -> Now {
    Now::virtual_at(t)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn a_restarted_agent_decides_as_one_that_never_stopped(
        ops in prop::collection::vec((op(), 1..120u64), 1..50),
        restarts in prop::collection::vec((0..50usize, any::<bool>()), 0..4),
    ) {
        let peers = peers();
        // Whole seconds, so the wall clock and the monotonic one agree.
        let mut t = Millis::from_timestamp(FIXTURE_NOW);
        let mut steady = Subject::new(1, at(t));
        let mut restarted = Subject::new(1, at(t));
        let mut starts = 1u8;
        for (i, (op, secs)) in ops.iter().enumerate() {
            t = t.plus(Duration::from_secs(*secs));
            steady.apply(op, &peers, at(t), false);
            let crash = restarts.iter().find(|(when, _)| *when == i);
            match crash {
                None => restarted.apply(op, &peers, at(t), false),
                Some((_, mid_batch)) => {
                    // Mid-batch: the op's facts never reach the store; the
                    // input comes again after the restart (as gossip and
                    // retries would bring it).
                    let known = restarted.spawned.len();
                    restarted.apply(op, &peers, at(t), *mid_batch);
                    starts += 1;
                    restarted.agent = Agent::new(config(starts, &restarted.store), at(t))
                        .unwrap_or_else(|e| panic!("{e}"));
                    if *mid_batch {
                        // The embedder never heard of a child whose
                        // spawn was lost with the batch.
                        restarted.spawned.truncate(known);
                        restarted.apply(op, &peers, at(t), false);
                    }
                }
            }
        }
        t = t.plus(Duration::from_secs(1));
        prop_assert_eq!(steady.view(&peers, at(t)), restarted.view(&peers, at(t)));
    }
}

#[test]
fn an_equivocators_zero_and_a_ban_survive_a_restart() {
    let peers = peers();
    let t = Millis::from_timestamp(FIXTURE_NOW);
    let mut s = Subject::new(3, at(t));
    let e = Evidence::new(
        peers[0].clone(),
        EvidenceKind::LedgerEquivocation,
        at(t).wall,
    );
    s.command(Command::RecordEvidence(e), at(t), false);
    for _ in 0..50 {
        let from = peers[1].clone();
        s.feed(
            Input::Malformed {
                from,
                what: "x",
                error: "y".into(),
            },
            at(t),
            false,
        );
    }
    assert!(s.agent.is_banned(&peers[1]));
    s.agent = Agent::new(config(4, &s.store), at(t)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.agent.trust_of(&peers[0], at(t).wall),
        Score::saturating(0)
    );
    assert!(s.agent.explain(&peers[0], at(t).wall).severe.is_some());
    assert!(s.agent.is_banned(&peers[1]));
    // The ban runs out on time, restart or not.
    let later = t.plus(Duration::from_secs(61));
    assert!(!s.agent.is_banned(&peers[1]) || s.agent.now().mono < later);
    s.feed(Input::Tick, at(later), false);
    assert!(!s.agent.is_banned(&peers[1]));
}
