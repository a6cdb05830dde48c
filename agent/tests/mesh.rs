//! Protocol behaviour on the deterministic harness: handshakes, delegated
//! tasks, grants and revocations, witnessing, equivocation, partitions,
//! restarts — each with its attack, without sockets or real time.

use std::time::Duration;

use mesh_agent::sim::{Mesh, NetConfig, OrgOptions};
use mesh_agent::wire::{Task, TaskOutcome};
use mesh_agent::{AgentError, Command, DelegateOptions, Event, GrantOptions, Outcome, Topic};
use mesh_delegation::Capability;
use mesh_iatp::Score;
use mesh_iatp::handshake::Refusal;
use mesh_ledger::checkpoint::Checkpoint;
use mesh_ledger::record::ActionKind;
use serde_bytes::ByteBuf;

const LIMIT: Duration = Duration::from_secs(30);

fn task(resource: &str) -> Task {
    Task {
        resource: resource.into(),
        action: "read".into(),
        input: ByteBuf::from(b"hello".to_vec()),
    }
}

/// Three agents of one org, all connected, sessions established.
fn trio(seed: u64) -> Mesh {
    let mut mesh = Mesh::new(seed, NetConfig::default());
    let acme = mesh.add_org("acme");
    for name in ["a", "b", "c"] {
        mesh.add_agent(acme, name);
    }
    mesh.connect(0, 1);
    mesh.connect(0, 2);
    mesh.connect(1, 2);
    assert!(mesh.run_until(LIMIT, |m| {
        (0..3).all(|i| m.agent(i).sessions().count() == 2)
    }));
    mesh
}

/// Start delegating a `tools/search` task from `from` to `to`; the op to
/// wait on.
fn start_delegation(mesh: &mut Mesh, from: usize, to: usize) -> mesh_agent::OpId {
    let delegatee = mesh.did(to).clone();
    mesh.command(
        from,
        Command::Delegate {
            delegatee,
            task: task("tools/search"),
            options: DelegateOptions::default(),
        },
    )
}

fn delegate(mesh: &mut Mesh, from: usize, to: usize, t: Task) -> Result<Outcome, AgentError> {
    let delegatee = mesh.did(to).clone();
    mesh.run_command(
        from,
        Command::Delegate {
            delegatee,
            task: t,
            options: DelegateOptions::default(),
        },
        LIMIT,
    )
    .unwrap_or_else(|| panic!("the delegation did not finish"))
}

#[test]
fn agents_of_listed_orgs_establish_sessions_and_strangers_are_refused() {
    let mut mesh = Mesh::new(1, NetConfig::default());
    let acme = mesh.add_org("acme");
    let rogue = mesh.add_org_with(
        "rogue",
        OrgOptions {
            listed: false,
            ..OrgOptions::default()
        },
    );
    let a = mesh.add_agent(acme, "a");
    let b = mesh.add_agent(acme, "b");
    let r = mesh.add_agent(rogue, "r");
    mesh.connect(a, b);
    mesh.connect(r, a);
    mesh.run_for(Duration::from_secs(2));
    assert!(mesh.agent(a).session(mesh.did(b)).is_some());
    assert!(mesh.agent(b).session(mesh.did(a)).is_some());
    assert!(mesh.agent(a).session(mesh.did(r)).is_none());
    let refused = mesh.events().iter().any(|(_, n, e)| {
        *n == a
            && matches!(e, Event::RefusedPeer { peer, refusal: Refusal::OrgNotInBundle { .. } }
                if peer == mesh.did(r))
    });
    assert!(refused, "a refuses the rogue agent with org_not_in_bundle");
    let told = mesh.events().iter().any(|(_, n, e)| {
        *n == r && matches!(e, Event::RefusedByPeer { code, .. } if *code == Refusal::OrgNotInBundle { org: mesh.did(r).clone() }.code())
    });
    assert!(told, "the rogue agent is told why");
    assert!(mesh.faults().is_empty(), "{:?}", mesh.faults());
}

#[test]
fn agents_that_dial_each_other_at_once_still_establish_one_session() {
    for seed in 0..32 {
        let mut mesh = Mesh::new(40 + seed, NetConfig::default());
        let acme = mesh.add_org("acme");
        let a = mesh.add_agent(acme, "a");
        let b = mesh.add_agent(acme, "b");
        mesh.connect_simultaneously(a, b);
        assert!(
            mesh.run_until(LIMIT, |m| m.agent(a).session(m.did(b)).is_some()
                && m.agent(b).session(m.did(a)).is_some()),
            "seed {seed}"
        );
        let refused = mesh
            .events()
            .iter()
            .any(|(_, _, e)| matches!(e, Event::RefusedPeer { .. } | Event::RefusedByPeer { .. }));
        assert!(
            !refused,
            "seed {seed}: nobody refuses anybody: {:#?}",
            mesh.events()
        );
        assert!(matches!(
            delegate(&mut mesh, a, b, task("search")),
            Ok(Outcome::Delegated(_))
        ));
    }
}

#[test]
fn a_delegated_task_is_cosigned_into_both_logs_and_feeds_trust() {
    let mut mesh = trio(2);
    let before = mesh.agent(0).trust_of(mesh.did(1), mesh.agent_now().wall);
    let outcome = delegate(&mut mesh, 0, 1, task("tools/search"));
    let Ok(Outcome::Delegated(d)) = outcome else {
        panic!("delegation failed: {outcome:?}");
    };
    assert!(d.outcome.success);
    // The delegatee appends the `result` record it signed once the
    // delegator's countersignature is back: a round trip after the
    // delegator's command is answered.
    mesh.run_for(Duration::from_secs(1));
    // Both records in both logs, at the indices reported.
    for n in [0, 1] {
        let records = mesh.store(n).records();
        let kinds: Vec<ActionKind> = records.iter().map(|r| r.record().kind).collect();
        assert_eq!(kinds, vec![ActionKind::Delegate, ActionKind::Result]);
    }
    assert_eq!(
        mesh.store(0).records()[0].leaf_hash(),
        mesh.store(1).records()[0].leaf_hash()
    );
    assert_eq!(d.result.index, 1);
    let after = mesh.agent(0).trust_of(mesh.did(1), mesh.agent_now().wall);
    assert!(
        after > before,
        "success raises trust: {before:?} -> {after:?}"
    );
    assert!(mesh.faults().is_empty(), "{:?}", mesh.faults());
}

/// An agent whose driver runs no tasks refuses a delegated one
/// `no_handler` before anything is recorded: no record in either log, and
/// no trust gained for work nobody did (a daemon without a handler used to
/// answer "success" and gain trust, issue 15).
#[test]
fn an_agent_without_a_task_handler_refuses_tasks_and_gains_nothing() {
    let mut mesh = Mesh::new(3, NetConfig::default());
    let acme = mesh.add_org("acme");
    let a = mesh.add_agent(acme, "a");
    let idle = mesh.add_agent_with(acme, "idle", |c| c.runs_tasks = false);
    mesh.connect(a, idle);
    assert!(mesh.run_until(LIMIT, |m| m.agent(a).session(m.did(idle)).is_some()));
    let now = mesh.agent_now().wall;
    let before = mesh.agent(a).trust_of(mesh.did(idle), now);
    let outcome = delegate(&mut mesh, a, idle, task("tools/search"));
    let Err(AgentError::PeerRefused { code, rule, .. }) = outcome else {
        panic!("the task was not refused: {outcome:?}");
    };
    assert_eq!((code, rule.as_str()), (21, "no_handler"));
    assert!(mesh.store(a).records().is_empty());
    assert!(mesh.store(idle).records().is_empty());
    let after = mesh
        .agent(a)
        .trust_of(mesh.did(idle), mesh.agent_now().wall);
    assert!(after <= before, "{before:?} -> {after:?}");
    assert!(mesh.faults().is_empty(), "{:?}", mesh.faults());
}

/// A task is accepted at once and answered later: one that runs 45 s —
/// far past the 10 s request timeout that used to cap it, and leave a
/// `delegate` record on one side only — ends with both records in both
/// logs.
#[test]
fn a_task_longer_than_the_request_timeout_completes_in_both_logs() {
    let mut mesh = trio(12);
    mesh.set_handler(1, Duration::from_secs(45), |_, t| TaskOutcome {
        success: true,
        output: ByteBuf::from(t.input.to_vec()),
        stopped: None,
    });
    let op = start_delegation(&mut mesh, 0, 1);
    mesh.run_for(Duration::from_secs(20));
    assert!(!mesh.is_done(0, op), "still running");
    for n in [0, 1] {
        let kinds: Vec<ActionKind> = mesh
            .store(n)
            .records()
            .iter()
            .map(|r| r.record().kind)
            .collect();
        assert_eq!(
            kinds,
            vec![ActionKind::Delegate],
            "accepted at once, in agent {n}'s log"
        );
    }
    assert!(mesh.run_until(Duration::from_secs(60), |m| m.is_done(0, op)));
    let Some(Ok(Outcome::Delegated(d))) = mesh.result(0, op) else {
        panic!("the long task failed");
    };
    assert_eq!(d.outcome.output.as_slice(), b"hello");
    mesh.run_for(Duration::from_secs(1));
    for n in [0, 1] {
        let leaves: Vec<_> = mesh
            .store(n)
            .records()
            .iter()
            .map(|r| r.leaf_hash())
            .collect();
        assert_eq!(
            leaves,
            vec![d.delegate.record.leaf_hash(), d.result.record.leaf_hash()]
        );
    }
    // The answer is the delegatee's record: it signed it as actor.
    assert_eq!(&d.result.record.record().actor, mesh.did(1));
    assert!(mesh.faults().is_empty(), "{:?}", mesh.faults());
}

/// The delegatee's answer, lost with a dropped connection, is sent again
/// when the session is back (deadlines and expiry: tests/tasks.rs).
#[test]
fn an_answer_survives_a_dropped_connection() {
    let mut mesh = trio(13);
    mesh.set_handler(1, Duration::from_secs(5), |_, _| TaskOutcome {
        success: true,
        output: ByteBuf::new(),
        stopped: None,
    });
    let op = start_delegation(&mut mesh, 0, 1);
    mesh.run_for(Duration::from_secs(1));
    mesh.disconnect(0, 1);
    mesh.run_for(Duration::from_secs(10));
    assert!(!mesh.is_done(0, op), "the answer could not arrive");
    mesh.connect(0, 1);
    assert!(mesh.run_until(LIMIT, |m| m.is_done(0, op)));
    assert!(matches!(
        mesh.result(0, op),
        Some(Ok(Outcome::Delegated(_)))
    ));
    mesh.run_for(Duration::from_secs(1));
    assert_eq!(mesh.store(0).records().len(), 2);
    assert_eq!(mesh.store(1).records().len(), 2);
}

#[test]
fn a_failing_agent_loses_trust_until_the_gate_stops_delegating_to_it() {
    let mut mesh = trio(3);
    mesh.set_handler(1, Duration::from_millis(50), |_, _| TaskOutcome {
        success: false,
        output: ByteBuf::from(b"no".to_vec()),
        stopped: None,
    });
    let start = mesh.agent(0).trust_of(mesh.did(1), mesh.agent_now().wall);
    let mut denied = None;
    for i in 0..40 {
        match delegate(&mut mesh, 0, 1, task("tools/search")) {
            Ok(Outcome::Delegated(d)) => assert!(!d.outcome.success),
            Err(AgentError::Denied(denial)) => {
                denied = Some((i, denial));
                break;
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
    let (i, denial) = denied.unwrap_or_else(|| panic!("the gate never denied"));
    assert!(i > 0);
    assert_eq!(denial.rule(), "trust_below_link_minimum");
    let end = mesh.agent(0).trust_of(mesh.did(1), mesh.agent_now().wall);
    assert!(end < Score::saturating(400) && end < start);
    // Every failed task is on both ledgers: delegate + result each.
    mesh.run_for(Duration::from_secs(1));
    for n in [0, 1] {
        assert_eq!(mesh.store(n).records().len(), 2 * i, "agent {n}'s log");
    }
}

#[test]
fn a_revocation_reaches_every_agent_and_voids_the_chain_everywhere() {
    let mut mesh = trio(4);
    mesh.set_handler(2, Duration::from_millis(10), |_, t| TaskOutcome {
        success: true,
        output: ByteBuf::from(format!("did {} on {}", t.action, t.resource).into_bytes()),
        stopped: None,
    });
    let cap = Capability::parse("tools/*:read").unwrap_or_else(|e| panic!("{e}"));
    let mut options = GrantOptions::new(vec![cap]);
    options.depth = 1;
    let granted = mesh.run_command(
        0,
        Command::Grant {
            audience: mesh.did(1).clone(),
            options,
        },
        LIMIT,
    );
    let Some(Ok(Outcome::Granted(grant))) = granted else {
        panic!("grant failed: {granted:?}");
    };
    assert!(mesh.agent(1).held().contains_key(&grant.hash));
    // b re-delegates a task to c under the grant: allowed.
    let under = |mesh: &mut Mesh, action: &str| {
        let delegatee = mesh.did(2).clone();
        let mut t = task("tools/x");
        t.action = action.into();
        mesh.run_command(
            1,
            Command::Delegate {
                delegatee,
                task: t,
                options: DelegateOptions {
                    authority: Some(grant.chain.clone()),
                    ..DelegateOptions::default()
                },
            },
            LIMIT,
        )
    };
    match under(&mut mesh, "read") {
        Some(Ok(Outcome::Delegated(d))) => {
            assert_eq!(d.outcome.output.as_slice(), b"did read on tools/x");
        }
        other => panic!("the delegation under the grant failed: {other:?}"),
    }
    // delegate + result in b's and c's logs; the grant in a's and b's.
    mesh.run_for(Duration::from_secs(1));
    let sizes: Vec<usize> = (0..3).map(|i| mesh.store(i).records().len()).collect();
    assert_eq!(sizes, [1, 3, 2]);
    // Writing is not in the chain: b's own gate refuses before asking c.
    match under(&mut mesh, "write") {
        Some(Err(AgentError::Denied(_))) => {}
        other => panic!("expected b's gate to refuse a write, got {other:?}"),
    }
    assert_eq!(mesh.store(2).records().len(), 2, "c was never asked");
    let revoked = mesh.run_command(
        0,
        Command::Revoke {
            target: grant.hash,
            reason: "done".into(),
        },
        LIMIT,
    );
    let Some(Ok(Outcome::Revoked(r))) = revoked else {
        panic!("revoke failed: {revoked:?}");
    };
    assert!(
        r.record.is_some(),
        "b was connected: the revoke record is co-signed"
    );
    assert!(mesh.run_until(LIMIT, |m| {
        (0..3).all(|i| m.agent(i).is_revoked(&grant.hash))
    }));
    // b's own gate now refuses to delegate under the revoked chain.
    match under(&mut mesh, "read") {
        Some(Err(AgentError::Denied(d))) => assert_eq!(d.rule(), "revoked"),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn a_task_under_a_revoked_chain_is_refused_by_the_delegatee() {
    let mut mesh = trio(5);
    let cap = Capability::parse("tools/*:read").unwrap_or_else(|e| panic!("{e}"));
    let mut options = GrantOptions::new(vec![cap]);
    options.depth = 1;
    let audience = mesh.did(1).clone();
    let Some(Ok(Outcome::Granted(grant))) =
        mesh.run_command(0, Command::Grant { audience, options }, LIMIT)
    else {
        panic!("grant failed");
    };
    // c (not b) learns of the revocation; b does not, so b's gate allows
    // and c's refuses.
    mesh.disconnect(1, 2);
    mesh.disconnect(0, 1);
    mesh.run_for(Duration::from_secs(1));
    let _ = mesh.run_command(
        0,
        Command::Revoke {
            target: grant.hash,
            reason: "compromised".into(),
        },
        LIMIT,
    );
    mesh.run_for(Duration::from_secs(1));
    assert!(mesh.agent(2).is_revoked(&grant.hash));
    assert!(!mesh.agent(1).is_revoked(&grant.hash));
    mesh.connect(1, 2);
    assert!(mesh.run_until(LIMIT, |m| m.agent(1).session(m.did(2)).is_some()));
    let delegatee = mesh.did(2).clone();
    let result = mesh.run_command(
        1,
        Command::Delegate {
            delegatee,
            task: task("tools/x"),
            options: DelegateOptions {
                authority: Some(grant.chain.clone()),
                ..DelegateOptions::default()
            },
        },
        LIMIT,
    );
    match result {
        Some(Err(AgentError::PeerRefused { rule, reason, .. })) => {
            assert_eq!(rule, "gate_denied");
            assert!(reason.starts_with("revoked"), "{reason}");
        }
        other => panic!("expected c to refuse, got {other:?}"),
    }
    assert!(mesh.store(2).records().is_empty(), "nothing was co-signed");
}

#[test]
fn witnesses_cosign_checkpoints_and_persist_what_they_vouched_for() {
    let mut mesh = trio(6);
    for _ in 0..3 {
        assert!(delegate(&mut mesh, 0, 1, task("search")).is_ok());
    }
    // Checkpoints every 5 s; witnesses answer within the next second.
    mesh.run_for(Duration::from_secs(7));
    let note = mesh
        .store(0)
        .checkpoint()
        .unwrap_or_else(|| panic!("no checkpoint"));
    let parsed = mesh_ledger::note::Note::parse(note).unwrap_or_else(|e| panic!("{e}"));
    let cp = Checkpoint::parse_body(&parsed.text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cp.size, 6);
    assert!(
        parsed.signatures.len() >= 3,
        "signed by a, cosigned by b and c"
    );
    let origin = mesh.did(0).as_str().to_string();
    for w in [1, 2] {
        let held = mesh.store(w).witnessed();
        assert!(
            held.iter().any(|(o, size, _)| o == &origin && *size == 6),
            "{held:?}"
        );
    }
}

#[test]
fn an_equivocating_log_is_caught_and_zeroed_by_every_agent() {
    let mut mesh = trio(7);
    assert!(delegate(&mut mesh, 0, 1, task("search")).is_ok());
    let _ = mesh.run_command(0, Command::Checkpoint { force: true }, LIMIT);
    mesh.run_for(Duration::from_secs(1));
    // Agent 0 signs a second checkpoint of the same size with another root.
    let forged = Checkpoint {
        origin: mesh.did(0).as_str().to_string(),
        size: 2,
        root: [7u8; 32],
    }
    .sign(mesh.agent(0).local().identity())
    .unwrap_or_else(|e| panic!("{e}"))
    .to_bytes();
    let _ = mesh.run_command(
        0,
        Command::PublishRaw {
            topic: Topic::Checkpoint,
            data: forged,
        },
        LIMIT,
    );
    assert!(mesh.run_until(LIMIT, |m| [1, 2].iter().all(|&i| {
        m.agent(i).trust_of(m.did(0), m.agent_now().wall) == Score::saturating(0)
    })));
    let offender = mesh.did(0).clone();
    assert!(
        mesh.events().iter().any(|(_, n, e)| *n == 1
            && matches!(e, Event::Equivocation { offender: o } if o == &offender))
    );
}

#[test]
fn a_partition_splits_the_mesh_and_healing_restores_sessions() {
    let mut mesh = trio(8);
    mesh.partition(vec![0, 0, 1]);
    mesh.run_for(Duration::from_secs(1));
    assert!(mesh.agent(0).session(mesh.did(2)).is_none());
    assert!(matches!(
        delegate(&mut mesh, 0, 2, task("search")),
        Err(AgentError::NoSession(_))
    ));
    assert!(delegate(&mut mesh, 0, 1, task("search")).is_ok());
    mesh.heal();
    assert!(mesh.run_until(LIMIT, |m| {
        (0..3).all(|i| m.agent(i).sessions().count() == 2)
    }));
    assert!(delegate(&mut mesh, 0, 2, task("search")).is_ok());
    assert!(mesh.faults().is_empty(), "{:?}", mesh.faults());
}

#[test]
fn a_restarted_agent_keeps_its_log_and_rejoins() {
    let mut mesh = trio(9);
    assert!(delegate(&mut mesh, 1, 0, task("search")).is_ok());
    let log_before = mesh.store(1).records().len();
    mesh.crash(1);
    mesh.run_for(Duration::from_secs(1));
    assert!(mesh.agent(0).session(mesh.did(1)).is_none());
    mesh.start(1);
    assert!(mesh.run_until(LIMIT, |m| m.agent(1).sessions().count() == 2));
    assert_eq!(mesh.agent(1).log_size(), log_before as u64);
    assert!(delegate(&mut mesh, 1, 2, task("search")).is_ok());
    assert_eq!(mesh.store(1).records().len(), log_before + 2);
    assert!(mesh.faults().is_empty(), "{:?}", mesh.faults());
}

/// Everything observable about a run, for comparing two runs.
fn fingerprint(mesh: &Mesh) -> Vec<String> {
    let mut out: Vec<String> = mesh
        .events()
        .iter()
        .map(|(t, n, e)| format!("{} {n} {e:?}", t.0))
        .collect();
    for n in 0..mesh.len() {
        for r in mesh.store(n).records() {
            out.push(format!("{n} {:?}", r.leaf_hash()));
        }
        out.push(format!("{n} {:?}", mesh.store(n).checkpoint()));
    }
    out
}

fn lossy_run(seed: u64) -> Mesh {
    let mut mesh = Mesh::new(seed, NetConfig::lossy());
    let acme = mesh.add_org("acme");
    for i in 0..5 {
        mesh.add_agent(acme, &format!("agent-{i}"));
    }
    for a in 0..5 {
        for b in a + 1..5 {
            mesh.connect(a, b);
        }
    }
    mesh.run_for(Duration::from_secs(3));
    for round in 0..20usize {
        let from = round % 5;
        let to = (round * 3 + 1) % 5;
        if from != to {
            let _ = mesh.command(
                from,
                Command::Delegate {
                    delegatee: mesh.did(to).clone(),
                    task: task("search"),
                    options: DelegateOptions::default(),
                },
            );
        }
        mesh.run_for(Duration::from_millis(700));
    }
    mesh.run_for(Duration::from_secs(20));
    mesh
}

#[test]
fn the_same_seed_gives_the_same_run_even_on_a_lossy_network() {
    let first = fingerprint(&lossy_run(11));
    let second = fingerprint(&lossy_run(11));
    assert!(first.len() > 100);
    assert_eq!(first, second);
    assert_ne!(first, fingerprint(&lossy_run(12)));
}

#[test]
fn seed_sweep_on_a_lossy_network_keeps_every_log_sound() {
    for seed in 0..8 {
        let mesh = lossy_run(100 + seed);
        assert!(mesh.faults().is_empty(), "seed {seed}: {:?}", mesh.faults());
        for n in 0..mesh.len() {
            let me = mesh.did(n);
            let mut tree = mesh_ledger::merkle::CompactRange::new();
            for r in mesh.store(n).records() {
                // Every record names this agent as a party and verifies.
                let rec = r.record();
                assert!(&rec.actor == me || &rec.counterparty == me, "seed {seed}");
                assert!(
                    mesh_ledger::record::CoSignedRecord::from_bytes(r.bytes()).is_ok(),
                    "seed {seed}"
                );
                tree.append(r.leaf_hash());
            }
            if let Some(note) = mesh.store(n).checkpoint() {
                let (origin, cp) = mesh_agent::open_log_checkpoint(note)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                assert_eq!(&origin, me);
                assert!(cp.size <= tree.size());
            }
            // No honest agent is accused of equivocation.
            for m in 0..mesh.len() {
                let now = mesh.agent_now().wall;
                assert!(
                    mesh.agent(n).explain(mesh.did(m), now).severe.is_none(),
                    "seed {seed}: {n} marks {m}"
                );
            }
        }
    }
}
