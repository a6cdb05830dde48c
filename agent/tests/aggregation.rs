//! The periodic trust aggregation leaves the agent as a job for its driver
//! (a node runs it on a worker thread, off the network path) when what it
//! weighs moved: the report does not wait for it, at most one is out at a time, it is in force only
//! once it returns, and one overtaken by an in-place refresh is dropped.

use mesh_agent::{Agent, AgentConfig, Command, Effect, Input, Millis, Now, OpId};
use mesh_iatp::testing::{FIXTURE_NOW, Federation, identity};
use mesh_trust::{Aggregation, Evidence, EvidenceKind};

fn agent() -> Agent {
    let fed = Federation::new();
    let config = AgentConfig::new(fed.agent(&fed.acme, "x", &[]), fed.bundle.clone(), [9; 32]);
    Agent::new(config, at(0)).unwrap_or_else(|e| panic!("{e}"))
}

fn at(secs: u64) -> Now {
    Now {
        wall: FIXTURE_NOW.plus_secs(secs),
        mono: Millis(secs * 1000),
    }
}

/// The aggregations among `effects`, and whether a report was published.
fn jobs(effects: Vec<Effect>) -> (Vec<Aggregation>, bool) {
    let mut jobs = Vec::new();
    let mut published = false;
    for e in effects {
        match e {
            Effect::Aggregate(job) => jobs.push(*job),
            Effect::Publish { .. } => published = true,
            _ => {}
        }
    }
    (jobs, published)
}

/// `n` successes of `peer`'s recorded at `secs`.
fn praise(agent: &mut Agent, peer: &mesh_iatp::Did, n: u64, secs: u64) {
    for i in 0..n {
        let evidence = Evidence::new(
            peer.clone(),
            EvidenceKind::TaskSuccess,
            FIXTURE_NOW.plus_secs(secs),
        );
        let command = Command::RecordEvidence(evidence);
        agent.handle(
            Input::Command {
                op: OpId(secs * 1000 + i),
                command,
            },
            at(secs),
        );
    }
}

fn returned(agent: &mut Agent, job: Aggregation, now: Now) -> Vec<Aggregation> {
    let done = Box::new(job.run());
    jobs(agent.handle(Input::Aggregated(done), now)).0
}

#[test]
fn the_tick_hands_out_one_aggregation_at_a_time_and_installs_it_on_return() {
    let mut agent = agent();
    let peer = identity("aggregation peer").did().clone();
    praise(&mut agent, &peer, 20, 1);
    let (mut out, published) = jobs(agent.handle(Input::Tick, at(11)));
    assert_eq!(out.len(), 1, "the report interval hands out an aggregation");
    assert!(published, "the report does not wait for it");
    assert_eq!(agent.trust().credibility(&peer), 0.0, "not in force yet");

    praise(&mut agent, &peer, 1, 21);
    let (more, published) = jobs(agent.handle(Input::Tick, at(22)));
    assert!(more.is_empty(), "one is out: no second");
    assert!(published);

    let again = returned(&mut agent, out.remove(0), at(23));
    assert!(
        agent.trust().credibility(&peer) > 0.0,
        "in force once it returned"
    );
    assert_eq!(again.len(), 1, "the one asked for meanwhile follows");
    let none = returned(&mut agent, again.into_iter().next().unwrap(), at(24));
    assert!(none.is_empty(), "nothing more was asked for");
}

#[test]
fn an_aggregation_overtaken_by_a_refresh_in_place_is_dropped() {
    let mut agent = agent();
    let peer = identity("aggregation peer").did().clone();
    let other = identity("another peer").did().clone();
    praise(&mut agent, &other, 1, 1);
    let (mut out, _) = jobs(agent.handle(Input::Tick, at(11)));
    let stale = out.remove(0);
    praise(&mut agent, &peer, 20, 12);
    let command = Command::RefreshTrust;
    agent.handle(
        Input::Command {
            op: OpId(99),
            command,
        },
        at(12),
    );
    let fresh = agent.trust().credibility(&peer);
    assert!(fresh > 0.0, "our good opinion passes credibility on");
    let next = returned(&mut agent, stale, at(13));
    assert_eq!(
        agent.trust().credibility(&peer),
        fresh,
        "the stale result did not replace the fresh one"
    );
    assert!(next.is_empty());
    // And the next tick hands out a new one: none is out any more.
    let (out, _) = jobs(agent.handle(Input::Tick, at(30)));
    assert_eq!(out.len(), 1);
}

/// A driver that loses an aggregation (drops the effect, or its worker
/// panics) does not stop aggregation for good: one due after a minute is
/// handed out fresh.
#[test]
fn an_aggregation_that_never_returns_is_replaced_after_a_minute() {
    let mut agent = agent();
    let peer = identity("aggregation peer").did().clone();
    praise(&mut agent, &peer, 1, 1);
    let (lost, _) = jobs(agent.handle(Input::Tick, at(11)));
    assert_eq!(lost.len(), 1);
    drop(lost);
    praise(&mut agent, &peer, 1, 59);
    let (none, _) = jobs(agent.handle(Input::Tick, at(60)));
    assert!(none.is_empty(), "within the minute it is still awaited");
    let (fresh, _) = jobs(agent.handle(Input::Tick, at(72)));
    assert_eq!(fresh.len(), 1, "a fresh one after the minute");
}
