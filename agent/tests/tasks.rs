//! A delegated task's life on the deterministic harness: its deadline,
//! cancellation, expiry, restarts on either side — each ending with the
//! same `result` record in both logs — and the attacks on each rule.

use std::time::Duration;

use mesh_agent::sim::{Mesh, NetConfig};
use mesh_agent::wire::{
    ActionContext, ActionRequest, ActionResponse, Stopped, Task, TaskOrder, TaskOutcome,
};
use mesh_agent::{
    ActionRefusal, AgentError, Command, DelegateOptions, Effect, Event, InboundId, Input, OpId,
    Outcome, Request, Response,
};
use mesh_iatp::Timestamp;
use mesh_ledger::record::{ActionRecord, ActorSigned};
use mesh_trust::EvidenceKind;
use serde_bytes::ByteBuf;

const LIMIT: Duration = Duration::from_secs(30);
const HOUR: Duration = Duration::from_secs(3600);

fn task() -> Task {
    Task {
        resource: "tools/search".into(),
        action: "read".into(),
        input: ByteBuf::from(b"hello".to_vec()),
    }
}

/// Agents 0 and 1 of one org in session; agent 1 takes `delay` per task.
/// Agent 2 (same org) is added but not connected.
fn pair(seed: u64, delay: Duration) -> Mesh {
    let mut mesh = Mesh::new(seed, NetConfig::default());
    let acme = mesh.add_org("acme");
    for name in ["a", "b", "c"] {
        mesh.add_agent(acme, name);
    }
    mesh.set_handler(1, delay, |_, t| TaskOutcome::succeeded(t.input.to_vec()));
    mesh.record_events(true);
    mesh.connect(0, 1);
    assert!(mesh.run_until(LIMIT, |m| m.agent(0).session(m.did(1)).is_some()));
    mesh
}

fn delegate(mesh: &mut Mesh, deadline_secs: Option<u64>) -> OpId {
    let delegatee = mesh.did(1).clone();
    mesh.command(
        0,
        Command::Delegate {
            delegatee,
            task: task(),
            options: DelegateOptions {
                deadline_secs,
                ..DelegateOptions::default()
            },
        },
    )
}

/// The grant of the task agent 0 delegated as `op`, once accepted.
fn accepted(mesh: &mut Mesh, op: OpId) -> [u8; 32] {
    let found = |m: &Mesh| {
        m.events().iter().find_map(|(_, n, e)| match e {
            Event::TaskAccepted { op: o, grant, .. } if *n == 0 && *o == op => Some(*grant),
            _ => None,
        })
    };
    assert!(
        mesh.run_until(LIMIT, |m| found(m).is_some()),
        "not accepted"
    );
    found(mesh).unwrap_or_default()
}

/// Both logs hold the same records, `n` of them.
fn logs_agree(mesh: &Mesh, n: usize) {
    let leaves = |a: usize| -> Vec<_> {
        let records = mesh.store(a).records();
        records.iter().map(|r| r.leaf_hash()).collect()
    };
    assert_eq!(leaves(0).len(), n);
    assert_eq!(leaves(0), leaves(1));
}

/// What the `result` record in agent `a`'s log says.
fn stored_kinds(mesh: &Mesh, a: usize) -> Vec<&'static str> {
    mesh.store(a)
        .facts()
        .iter()
        .map(mesh_agent::Fact::kind)
        .filter(|k| matches!(*k, "running" | "awaited"))
        .collect()
}

fn task_evidence(mesh: &Mesh) -> Vec<EvidenceKind> {
    let now = mesh.agent_now().wall;
    mesh.agent(0)
        .explain(mesh.did(1), now)
        .recent_evidence
        .iter()
        .map(|e| e.kind)
        .filter(|k| matches!(k, EvidenceKind::TaskSuccess | EvidenceKind::TaskFailure))
        .collect()
}

/// A task still running at its deadline is stopped and answered
/// `expired`: the same `result` record in both logs, counted as a failure,
/// and nothing about it left stored on either side.
#[test]
fn a_task_past_its_deadline_is_answered_expired_in_both_logs() {
    let mut mesh = pair(31, HOUR);
    let start = mesh.agent_now().wall;
    let op = delegate(&mut mesh, Some(60));
    assert!(mesh.run_until(Duration::from_secs(120), |m| m.is_done(0, op)));
    let Some(Ok(Outcome::Delegated(d))) = mesh.result(0, op) else {
        panic!("no outcome");
    };
    assert_eq!(d.outcome.stopped, Some(Stopped::Expired));
    assert!(!d.outcome.success);
    assert!(
        mesh.agent_now().wall >= start.plus_secs(60),
        "not before the deadline"
    );
    mesh.run_for(Duration::from_secs(1));
    logs_agree(&mesh, 2);
    assert_eq!(task_evidence(&mesh), vec![EvidenceKind::TaskFailure]);
    assert!(mesh.events().iter().any(|(_, n, e)| *n == 1
        && matches!(
            e,
            Event::TaskDone {
                stopped: Some(Stopped::Expired),
                ..
            }
        )));
    assert!(stored_kinds(&mesh, 0).is_empty() && stored_kinds(&mesh, 1).is_empty());
    assert!(mesh.faults().is_empty(), "{:?}", mesh.faults());
}

/// A delegatee out of reach at the deadline: the command is told the
/// task expired (not hanging), and when the delegatee is back its
/// `expired` answer still lands in both logs.
#[test]
fn a_silent_delegatee_expires_the_command_and_its_late_answer_still_lands() {
    let mut mesh = pair(32, HOUR);
    let op = delegate(&mut mesh, Some(60));
    accepted(&mut mesh, op);
    mesh.disconnect(0, 1);
    assert!(mesh.run_until(Duration::from_secs(600), |m| m.is_done(0, op)));
    match mesh.result(0, op) {
        Some(Err(AgentError::TaskExpired(who))) => assert_eq!(&who, mesh.did(1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(stored_kinds(&mesh, 0), vec!["awaited"]);
    mesh.connect(0, 1);
    let late = |m: &Mesh| {
        m.events().iter().any(|(_, n, e)| {
            *n == 0
                && matches!(e, Event::TaskAnswered { awaited: false, outcome, .. }
                    if outcome.stopped == Some(Stopped::Expired))
        })
    };
    assert!(mesh.run_until(LIMIT, late));
    mesh.run_for(Duration::from_secs(1));
    logs_agree(&mesh, 2);
    assert!(stored_kinds(&mesh, 0).is_empty() && stored_kinds(&mesh, 1).is_empty());
}

/// The delegator cancels: the delegatee stops the task and answers
/// `cancelled`, which the delegation command returns; both logs agree and
/// no trust evidence is drawn from it. Cancelling it again is refused.
#[test]
fn a_cancelled_task_stops_and_both_logs_say_cancelled() {
    let mut mesh = pair(33, HOUR);
    let op = delegate(&mut mesh, None);
    let grant = accepted(&mut mesh, op);
    let cancelled = mesh.run_command(0, Command::Cancel { grant }, LIMIT);
    assert!(
        matches!(cancelled, Some(Ok(Outcome::Done))),
        "{cancelled:?}"
    );
    assert!(mesh.run_until(LIMIT, |m| m.is_done(0, op)));
    let Some(Ok(Outcome::Delegated(d))) = mesh.result(0, op) else {
        panic!("no outcome");
    };
    assert_eq!(d.outcome.stopped, Some(Stopped::Cancelled));
    mesh.run_for(Duration::from_secs(1));
    logs_agree(&mesh, 2);
    assert!(task_evidence(&mesh).is_empty());
    // The handler's late outcome is ignored: still two records.
    mesh.run_for(HOUR);
    logs_agree(&mesh, 2);
    let again = mesh.run_command(0, Command::Cancel { grant }, LIMIT);
    assert!(
        matches!(again, Some(Err(AgentError::UnknownTask(_)))),
        "{again:?}"
    );
}

/// A delegatee restarted mid-task cannot resume the handler's work: it
/// answers the task as failed (from its stored fact) once the delegator
/// is back, and the delegator's command returns that.
#[test]
fn a_delegatee_restarted_mid_task_answers_it_failed() {
    let mut mesh = pair(34, HOUR);
    let op = delegate(&mut mesh, None);
    accepted(&mut mesh, op);
    assert_eq!(stored_kinds(&mesh, 1), vec!["running"]);
    mesh.crash(1);
    mesh.start(1);
    mesh.connect(0, 1);
    assert!(mesh.run_until(LIMIT, |m| m.is_done(0, op)));
    let Some(Ok(Outcome::Delegated(d))) = mesh.result(0, op) else {
        panic!("no outcome");
    };
    assert!(!d.outcome.success && d.outcome.stopped.is_none());
    assert_eq!(
        d.outcome.output.as_slice(),
        b"the agent restarted while running the task"
    );
    mesh.run_for(Duration::from_secs(1));
    logs_agree(&mesh, 2);
    assert!(stored_kinds(&mesh, 1).is_empty());
}

/// A delegator restarted while waiting still takes the answer: it is
/// co-signed into both logs and counted as evidence.
#[test]
fn a_delegator_restarted_while_waiting_still_takes_the_answer() {
    let mut mesh = pair(35, Duration::from_secs(20));
    let op = delegate(&mut mesh, None);
    accepted(&mut mesh, op);
    mesh.crash(0);
    mesh.start(0);
    mesh.connect(0, 1);
    let answered = |m: &Mesh| {
        m.events().iter().any(|(_, n, e)| {
            *n == 0 && matches!(e, Event::TaskAnswered { awaited: false, outcome, .. } if outcome.success)
        })
    };
    assert!(mesh.run_until(Duration::from_secs(60), answered));
    mesh.run_for(Duration::from_secs(1));
    logs_agree(&mesh, 2);
    assert_eq!(task_evidence(&mesh), vec![EvidenceKind::TaskSuccess]);
    assert!(stored_kinds(&mesh, 0).is_empty());
}

/// A deadline past the grant's lifetime is refused before anything is
/// signed.
#[test]
fn a_deadline_past_the_grant_is_refused_locally() {
    let mut mesh = pair(36, HOUR);
    let op = delegate(&mut mesh, Some(10_000));
    mesh.run_for(Duration::from_secs(1));
    assert!(matches!(
        mesh.result(0, op),
        Some(Err(AgentError::Invalid(_)))
    ));
    assert!(mesh.store(0).records().is_empty());
}

fn refusal_of(effects: &[Effect]) -> Option<u16> {
    effects.iter().find_map(|e| match e {
        Effect::Respond {
            response: Response::Action(ActionResponse::Refused { code, .. }),
            ..
        } => Some(*code),
        _ => None,
    })
}

/// The task agent 0 would send agent 1 (captured, not delivered): its
/// record, chain and task.
fn captured_task(mesh: &mut Mesh) -> (ActionRecord, ActionContext) {
    let delegatee = mesh.did(1).clone();
    let effects = mesh.poke(
        0,
        Input::Command {
            op: OpId(9_000),
            command: Command::Delegate {
                delegatee,
                task: task(),
                options: DelegateOptions::default(),
            },
        },
    );
    effects
        .into_iter()
        .find_map(|e| match e {
            Effect::Send {
                request: Request::Action(ActionRequest::CoSign { record, context }),
                ..
            } => ActorSigned::from_bytes(&record)
                .ok()
                .map(|h| (h.record().clone(), context)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no task sent"))
}

/// Hand agent 1 the captured task with `deadline` instead, re-signed by
/// agent 0 so only the deadline is wrong; the refusal code, if any.
fn offer(mesh: &mut Mesh, deadline: Timestamp, nonce: u8) -> Option<u16> {
    let (mut record, context) = captured_task(mesh);
    let ActionContext::Task { chain, task, .. } = context else {
        panic!("not a task");
    };
    let order = TaskOrder {
        task: &task,
        deadline,
    };
    record.payload_digest = mesh_agent::digest_of(&order).unwrap_or_default();
    record.nonce = [nonce; 16];
    let key = mesh.agent(0).local().identity().clone();
    let bytes = record
        .sign(&key)
        .and_then(|h| h.to_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let from = mesh.did(0).clone();
    let effects = mesh.poke(
        1,
        Input::Request {
            from,
            id: InboundId(u64::from(nonce)),
            request: Request::Action(ActionRequest::CoSign {
                record: ByteBuf::from(bytes),
                context: ActionContext::Task {
                    chain,
                    task,
                    deadline,
                },
            }),
        },
    );
    refusal_of(&effects)
}

/// A delegatee refuses a task whose deadline is already past or past its
/// grant's expiry (it could never be answered in time, or would outlive
/// the authority it runs under); a deadline within both is taken.
#[test]
fn a_task_whose_deadline_is_past_or_past_its_grant_is_refused() {
    let mut mesh = pair(37, HOUR);
    let now = mesh.agent_now().wall;
    let bad = Some(ActionRefusal::BadDeadline(String::new()).code());
    assert_eq!(offer(&mut mesh, Timestamp(now.0 - 1), 1), bad);
    // The default grant lives 600 s.
    assert_eq!(offer(&mut mesh, now.plus_secs(601), 2), bad);
    assert_eq!(offer(&mut mesh, now.plus_secs(300), 3), None);
}

/// One delegator cannot take every task slot: past its share, `busy`.
#[test]
fn a_delegator_flooding_tasks_is_refused_busy_past_its_share() {
    let mut mesh = Mesh::new(38, NetConfig::default());
    let acme = mesh.add_org("acme");
    mesh.add_agent(acme, "a");
    mesh.add_agent_with(acme, "b", |c| {
        c.settings.limits.max_running_tasks_per_peer = 2;
    });
    mesh.set_handler(1, HOUR, |_, _| TaskOutcome::succeeded(Vec::new()));
    mesh.connect(0, 1);
    assert!(mesh.run_until(LIMIT, |m| {
        m.agent(1).session(m.did(0)).is_some() && m.agent(0).session(m.did(1)).is_some()
    }));
    let deadline = mesh.agent_now().wall.plus_secs(300);
    assert_eq!(offer(&mut mesh, deadline, 1), None);
    assert_eq!(offer(&mut mesh, deadline, 2), None);
    assert_eq!(
        offer(&mut mesh, deadline, 3),
        Some(ActionRefusal::Busy { limit: 0 }.code())
    );
}

/// The delegatee cannot claim a task was cancelled when it was not, nor
/// that it expired before its deadline (either would excuse work not
/// done); a stopped outcome must be a failure without output.
#[test]
fn a_delegatee_cannot_claim_cancelled_or_early_expiry() {
    let mut mesh = pair(39, HOUR);
    let op = delegate(&mut mesh, None);
    let grant = accepted(&mut mesh, op);
    let claim = |mesh: &mut Mesh, outcome: TaskOutcome, nonce: u8| {
        let record = ActionRecord {
            kind: mesh_ledger::record::ActionKind::Result,
            actor: mesh.did(1).clone(),
            counterparty: mesh.did(0).clone(),
            grant: Some(grant),
            payload_digest: mesh_agent::digest_of(&outcome).unwrap_or_default(),
            timestamp: mesh.agent_now().wall,
            nonce: [nonce; 16],
        };
        let key = mesh.agent(1).local().identity().clone();
        let bytes = record
            .sign(&key)
            .and_then(|h| h.to_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let from = mesh.did(1).clone();
        let effects = mesh.poke(
            0,
            Input::Request {
                from,
                id: InboundId(u64::from(nonce)),
                request: Request::Action(ActionRequest::CoSign {
                    record: ByteBuf::from(bytes),
                    context: ActionContext::Outcome { outcome },
                }),
            },
        );
        refusal_of(&effects)
    };
    let mismatch = Some(ActionRefusal::ContextMismatch(String::new()).code());
    assert_eq!(
        claim(&mut mesh, TaskOutcome::stopped(Stopped::Cancelled), 1),
        mismatch
    );
    assert_eq!(
        claim(&mut mesh, TaskOutcome::stopped(Stopped::Expired), 2),
        mismatch
    );
    let mut odd = TaskOutcome::succeeded(b"done".to_vec());
    odd.stopped = Some(Stopped::Expired);
    assert_eq!(
        claim(&mut mesh, odd, 3),
        Some(ActionRefusal::Malformed(String::new()).code())
    );
    // Nothing went into the delegator's log but the acceptance.
    assert_eq!(mesh.store(0).records().len(), 1);
    // An honest failure is taken.
    assert_eq!(
        claim(&mut mesh, TaskOutcome::failed(b"no".to_vec()), 4),
        None
    );
}

/// While a task is out, both sides are busy with each other (a shell
/// trimming its sessions keeps this one); once it is answered and
/// co-signed, neither stays so, and an unrelated agent never was.
#[test]
fn both_sides_are_busy_with_each_other_while_a_task_is_out() {
    let mut mesh = pair(41, Duration::from_secs(60));
    let (a, b, c) = (
        mesh.did(0).clone(),
        mesh.did(1).clone(),
        mesh.did(2).clone(),
    );
    // Just after the handshake the anti-entropy digests are out: busy
    // until they are answered.
    assert!(mesh.run_until(LIMIT, |m| {
        !m.agent(0).busy_with(&b) && !m.agent(1).busy_with(&a)
    }));
    let op = delegate(&mut mesh, None);
    accepted(&mut mesh, op);
    assert!(
        mesh.agent(0).busy_with(&b),
        "the delegator awaits the answer"
    );
    assert!(
        mesh.agent(1).busy_with(&a),
        "the task runs at the delegatee"
    );
    assert!(!mesh.agent(0).busy_with(&c));
    assert!(mesh.run_until(HOUR, |m| m.is_done(0, op)));
    // Once the answer is co-signed, nothing holds either side (the
    // checkpoint witnessing between them comes and goes on its own).
    assert!(mesh.run_until(LIMIT, |m| {
        !m.agent(0).busy_with(&b) && !m.agent(1).busy_with(&a)
    }));
}
