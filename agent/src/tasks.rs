//! A delegated task's life, on both sides (PROTOCOL.md §10.2).
//!
//! The delegatee accepts a task at once (the `delegate` record is
//! co-signed), runs it, and answers with its own `result` record — when the
//! task ends, when the delegator cancels it, or at its deadline (`expired`),
//! whichever comes first. An answer that cannot reach the delegator is kept
//! and sent again when its session is back. The delegator takes the answer
//! whenever it comes — also after its command was told the task expired —
//! so both logs end up with the same `result` record. Both sides keep their
//! tasks in flight as facts, so a restart loses none.

use mesh_delegation::LinkHash;
use mesh_iatp::{Did, Timestamp};
use mesh_ledger::record::{ActionKind, ActionRecord};
use mesh_trust::{Evidence, EvidenceKind, Proof};
use serde_bytes::ByteBuf;

use crate::agent::Agent;
use crate::api::{Delegated, Outcome, Recorded};
use crate::conversation::{Answer, Awaited, NO_OP, Pending, RunningTask, Step, Waiter};
use crate::cosign::digest_of;
use crate::durable::Fact;
use crate::error::AgentError;
use crate::io::{Effect, Event, OpId, Request, TaskId};
use crate::wire::{
    ActionContext, ActionRefusal, ActionRequest, ActionResponse, MAX_PAYLOAD, Stopped, Task,
    TaskOutcome,
};

/// Answers kept for delegators out of reach, at most.
const MAX_ANSWERS_DUE: usize = 4096;

/// How long past a task's deadline (beyond the clock skew allowed) the
/// delegator's command waits before it is told the task expired: the
/// delegatee's `expired` answer needs a moment to arrive.
pub const ANSWER_GRACE_SECS: u64 = 30;

/// How long past its deadline a delegated task's answer is still taken
/// (a delegatee out of reach sends it when it is back).
pub const KEEP_AWAITED_SECS: u64 = 24 * 3600;

fn hex(hash: &LinkHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

impl Agent {
    // The delegatee's side.

    /// Whether a task `delegator` hands us with `deadline` under a grant
    /// expiring at `grant_expires` can be taken: room for it (in all, and
    /// for this delegator), and a deadline ahead within the grant.
    pub(crate) fn check_task(
        &self,
        delegator: &Did,
        deadline: Timestamp,
        grant_expires: Timestamp,
    ) -> Result<(), ActionRefusal> {
        let limits = &self.settings.limits;
        if self.tasks.len() >= limits.max_running_tasks {
            return Err(ActionRefusal::Busy {
                limit: limits.max_running_tasks,
            });
        }
        let theirs = self
            .tasks
            .values()
            .filter(|t| &t.delegator == delegator)
            .count();
        if theirs >= limits.max_running_tasks_per_peer {
            return Err(ActionRefusal::Busy {
                limit: limits.max_running_tasks_per_peer,
            });
        }
        if deadline <= self.now.wall {
            return Err(ActionRefusal::BadDeadline(format!(
                "{} is already past",
                deadline.0
            )));
        }
        if deadline > grant_expires {
            return Err(ActionRefusal::BadDeadline(format!(
                "{} is past the grant's expiry {}",
                deadline.0, grant_expires.0
            )));
        }
        Ok(())
    }

    /// Run a task we accepted (its `delegate` record is co-signed).
    pub(crate) fn run_task(
        &mut self,
        delegator: &Did,
        grant: LinkHash,
        task: Task,
        deadline: Timestamp,
    ) {
        let running = RunningTask {
            delegator: delegator.clone(),
            grant,
            task,
            deadline,
        };
        self.emit(Effect::Persist(running_fact(&running, None)));
        let id = self.next_task_id();
        self.emit(Effect::RunTask {
            id,
            delegator: delegator.clone(),
            grant,
            task: running.task.clone(),
            deadline,
        });
        self.tasks.insert(id, running);
    }

    /// A task we ran finished: its outcome goes to the delegator as our
    /// `result` record.
    pub(crate) fn on_task_done(&mut self, id: TaskId, mut outcome: TaskOutcome) {
        let Some(running) = self.tasks.remove(&id) else {
            return; // stopped already: cancelled or past its deadline
        };
        if outcome.output.len() > MAX_PAYLOAD {
            outcome = TaskOutcome::failed(format!("the task's output is over {MAX_PAYLOAD} bytes"));
        }
        // Only the agent says why a task stopped early.
        outcome.stopped = None;
        self.answer_task(running, outcome);
    }

    /// Stop a running task and answer `why`.
    fn stop_task(&mut self, id: TaskId, why: Stopped) {
        if let Some(running) = self.tasks.remove(&id) {
            self.emit(Effect::StopTask { id });
            self.answer_task(running, TaskOutcome::stopped(why));
        }
    }

    fn answer_task(&mut self, running: RunningTask, outcome: TaskOutcome) {
        self.emit(Effect::Persist(running_fact(&running, Some(&outcome))));
        self.event(Event::TaskDone {
            delegator: running.delegator.clone(),
            task: running.task,
            success: outcome.success,
            stopped: outcome.stopped,
        });
        self.send_answer(Answer {
            delegator: running.delegator,
            grant: running.grant,
            outcome,
        });
    }

    /// The delegator cancels the task it handed us under `grant`.
    pub(crate) fn on_cancel(&mut self, peer: &Did, grant: &[u8]) -> Result<(), ActionRefusal> {
        let grant = LinkHash::try_from(grant)
            .map_err(|_| ActionRefusal::Malformed("a grant hash is 32 bytes".into()))?;
        let id = self
            .tasks
            .iter()
            .find(|(_, t)| t.grant == grant && &t.delegator == peer)
            .map(|(id, _)| *id)
            .ok_or(ActionRefusal::UnknownTask)?;
        self.stop_task(id, Stopped::Cancelled);
        Ok(())
    }

    /// Send the delegator our `result` record of a task we ran.
    pub(crate) fn send_answer(&mut self, answer: Answer) {
        let digest = match digest_of(&answer.outcome) {
            Ok(d) => d,
            Err(_) => return, // an outcome always encodes
        };
        let record = self.new_record(
            ActionKind::Result,
            &answer.delegator,
            Some(answer.grant),
            digest,
        );
        let context = ActionContext::Outcome {
            outcome: answer.outcome.clone(),
        };
        self.send_cosign(NO_OP, record, context, Step::Answer(Box::new(answer)));
    }

    /// Our answer is in both logs: nothing about the task is kept.
    pub(crate) fn answer_delivered(&mut self, answer: &Answer) {
        self.emit(Effect::Forget {
            kind: "running",
            key: answer.grant.to_vec(),
        });
    }

    /// Our answer did not reach the delegator: it goes again when the
    /// session is back, unless the delegator refused it (that is final).
    pub(crate) fn answer_undelivered(&mut self, answer: Answer, refused: bool) {
        if refused {
            return self.answer_delivered(&answer);
        }
        if self.answers_due.len() >= MAX_ANSWERS_DUE {
            let oldest = self.answers_due.remove(0);
            self.answer_delivered(&oldest); // given up
        }
        self.answers_due.push(answer);
    }

    /// Send the answers that did not reach `delegator` again (its session
    /// is back).
    pub(crate) fn resend_answers(&mut self, delegator: &Did) {
        let (due, rest): (Vec<Answer>, Vec<Answer>) = std::mem::take(&mut self.answers_due)
            .into_iter()
            .partition(|a| &a.delegator == delegator);
        self.answers_due = rest;
        for answer in due {
            self.send_answer(answer);
        }
    }

    /// Periodic: stop the tasks we run whose deadline passed, and give up
    /// waiting on the ones we delegated.
    pub(crate) fn tend_tasks(&mut self) {
        let now = self.now.wall;
        let mut overdue: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        overdue.sort();
        for id in overdue {
            self.stop_task(id, Stopped::Expired);
        }
        self.expire_awaited();
    }

    // The delegator's side.

    /// The deadline of our task under `grant`, if it is on its way to
    /// `delegatee`, not yet accepted.
    pub(crate) fn delegating(&self, grant: &LinkHash, delegatee: &Did) -> Option<Timestamp> {
        self.pending.values().find_map(|p| match p {
            Pending::CoSign { to, step, .. } if to == delegatee => match &**step {
                Step::Task { hash, deadline, .. } if hash == grant => Some(*deadline),
                _ => None,
            },
            _ => None,
        })
    }

    /// The delegatee accepted our task: wait for its answer (which may
    /// have overtaken the acceptance).
    pub(crate) fn await_answer(
        &mut self,
        grant: LinkHash,
        delegatee: Did,
        deadline: Timestamp,
        op: OpId,
        delegate: Recorded,
    ) {
        self.emit(Effect::Persist(Fact::Awaited {
            grant: ByteBuf::from(grant.to_vec()),
            delegatee: delegatee.clone(),
            deadline,
            cancelled: false,
        }));
        self.event(Event::TaskAccepted {
            op,
            delegatee: delegatee.clone(),
            grant,
            deadline,
        });
        self.awaited.insert(
            grant,
            Awaited {
                delegatee,
                deadline,
                waiter: Some(Waiter { op, delegate }),
                cancelled: false,
            },
        );
        if let Some((outcome, result)) = self.early_answers.remove(&grant) {
            self.answered(grant, outcome, result);
        }
    }

    /// Whether `record` with `outcome` answers a task we delegated (its
    /// grant, if it does): accepted from that delegatee, or on its way to
    /// it; `cancelled` only once we asked; `expired` only from the
    /// deadline on (give or take the clock skew allowed).
    pub(crate) fn check_answer(
        &self,
        record: &ActionRecord,
        outcome: &TaskOutcome,
    ) -> Result<LinkHash, ActionRefusal> {
        let grant = record.grant.ok_or(ActionRefusal::UnexpectedOutcome)?;
        let (deadline, cancelled) = match self.awaited.get(&grant) {
            Some(a) if a.delegatee == record.actor => (a.deadline, a.cancelled),
            _ => (
                self.delegating(&grant, &record.actor)
                    .ok_or(ActionRefusal::UnexpectedOutcome)?,
                false,
            ),
        };
        let Some(stopped) = outcome.stopped else {
            return Ok(grant);
        };
        if outcome.success || !outcome.output.is_empty() {
            return Err(ActionRefusal::Malformed(
                "a stopped task's outcome is a failure with no output".into(),
            ));
        }
        let skew = self.handshake.max_skew_secs;
        match stopped {
            Stopped::Cancelled if !cancelled => Err(ActionRefusal::ContextMismatch(
                "a cancelled outcome for a task not cancelled".into(),
            )),
            Stopped::Expired if self.now.wall.plus_secs(skew) < deadline => {
                Err(ActionRefusal::ContextMismatch(format!(
                    "an expired outcome before the task's deadline {}",
                    deadline.0
                )))
            }
            _ => Ok(grant),
        }
    }

    /// The delegatee's answer to a task we delegated, co-signed into both
    /// logs: trust evidence (none for a task we cancelled), and the
    /// embedder's command answered if one still waits.
    pub(crate) fn answered(&mut self, grant: LinkHash, outcome: TaskOutcome, result: Recorded) {
        let Some(awaited) = self.awaited.remove(&grant) else {
            self.early_answers.insert(grant, (outcome, result));
            return;
        };
        self.emit(Effect::Forget {
            kind: "awaited",
            key: grant.to_vec(),
        });
        let kind = match (outcome.success, outcome.stopped) {
            (_, Some(Stopped::Cancelled)) => None,
            (true, None) => Some(EvidenceKind::TaskSuccess),
            _ => Some(EvidenceKind::TaskFailure),
        };
        if let Some(kind) = kind {
            self.record(
                Evidence::new(awaited.delegatee.clone(), kind, self.now.wall).with_proof(Proof {
                    kind: "ledger/record".into(),
                    bytes: result.record.bytes().to_vec(),
                }),
            );
        }
        self.event(Event::TaskAnswered {
            delegatee: awaited.delegatee,
            grant,
            outcome: outcome.clone(),
            awaited: awaited.waiter.is_some(),
        });
        if let Some(waiter) = awaited.waiter {
            self.done(
                waiter.op,
                Ok(Outcome::Delegated(Box::new(Delegated {
                    outcome,
                    grant,
                    delegate: waiter.delegate,
                    result,
                }))),
            );
        }
    }

    /// Tell the commands whose task is overdue that it expired (its
    /// answer is still taken), and forget tasks a day past their deadline.
    fn expire_awaited(&mut self) {
        let now = self.now.wall;
        let grace = self.handshake.max_skew_secs + ANSWER_GRACE_SECS;
        let mut overdue: Vec<LinkHash> = self
            .awaited
            .iter()
            .filter(|(_, a)| a.deadline.plus_secs(grace) <= now)
            .map(|(h, _)| *h)
            .collect();
        overdue.sort();
        for grant in overdue {
            let Some(a) = self.awaited.get_mut(&grant) else {
                continue;
            };
            let (delegatee, waiter, deadline) = (a.delegatee.clone(), a.waiter.take(), a.deadline);
            if let Some(waiter) = waiter {
                self.done(waiter.op, Err(AgentError::TaskExpired(delegatee)));
            }
            if deadline.plus_secs(KEEP_AWAITED_SECS) <= now {
                self.awaited.remove(&grant);
                self.emit(Effect::Forget {
                    kind: "awaited",
                    key: grant.to_vec(),
                });
            }
        }
    }

    /// Ask the delegatee to cancel our task under `grant`; its `cancelled`
    /// answer completes the delegation command.
    pub(crate) fn cancel(&mut self, op: OpId, grant: LinkHash) {
        let Some(to) = self.awaited.get(&grant).map(|a| a.delegatee.clone()) else {
            return self.done(op, Err(AgentError::UnknownTask(hex(&grant))));
        };
        if !self.usable(&to) {
            return self.done(op, Err(AgentError::NoSession(to)));
        }
        let Some(awaited) = self.awaited.get_mut(&grant) else {
            return;
        };
        // Set before asking: the `cancelled` answer may arrive before the
        // acknowledgement (and kept across a restart).
        awaited.cancelled = true;
        let fact = Fact::Awaited {
            grant: ByteBuf::from(grant.to_vec()),
            delegatee: to.clone(),
            deadline: awaited.deadline,
            cancelled: true,
        };
        self.emit(Effect::Persist(fact));
        let id = self.next_request_id();
        self.pending.insert(
            id,
            Pending::Cancel {
                to: to.clone(),
                op,
                grant,
            },
        );
        self.emit(Effect::Send {
            to,
            id,
            request: Request::Action(ActionRequest::Cancel {
                grant: ByteBuf::from(grant.to_vec()),
            }),
        });
    }

    /// The delegatee's answer to our cancellation.
    pub(crate) fn on_cancel_answer(&mut self, op: OpId, grant: LinkHash, answer: ActionResponse) {
        let result = match answer {
            ActionResponse::Done => Ok(Outcome::Done),
            ActionResponse::Refused { code, rule, reason } => {
                // Not cancelled (most often: finished already).
                if let Some(a) = self.awaited.get_mut(&grant) {
                    a.cancelled = false;
                }
                Err(AgentError::PeerRefused { code, rule, reason })
            }
            other => Err(AgentError::BadResponse(format!(
                "unexpected answer to a cancellation {other:?}"
            ))),
        };
        self.done(op, result);
    }

    // After a restart.

    /// A task we ran, from its fact: its answer goes again; a task still
    /// running when we stopped cannot be resumed (its handler's work is
    /// gone), so it is answered as failed — or expired, past its deadline.
    pub(crate) fn restore_running(
        &mut self,
        grant: LinkHash,
        delegator: Did,
        task: Task,
        deadline: Timestamp,
        outcome: Option<TaskOutcome>,
    ) {
        let outcome = outcome.unwrap_or_else(|| {
            let outcome = if deadline <= self.now.wall {
                TaskOutcome::stopped(Stopped::Expired)
            } else {
                TaskOutcome::failed("the agent restarted while running the task")
            };
            let running = RunningTask {
                delegator: delegator.clone(),
                grant,
                task,
                deadline,
            };
            self.emit(Effect::Persist(running_fact(&running, Some(&outcome))));
            outcome
        });
        self.answer_undelivered(
            Answer {
                delegator,
                grant,
                outcome,
            },
            false,
        );
    }

    /// A task we delegated, from its fact: its answer is still taken (no
    /// command waits for it any more).
    pub(crate) fn restore_awaited(
        &mut self,
        grant: LinkHash,
        delegatee: Did,
        deadline: Timestamp,
        cancelled: bool,
    ) {
        self.awaited.insert(
            grant,
            Awaited {
                delegatee,
                deadline,
                waiter: None,
                cancelled,
            },
        );
    }
}

fn running_fact(running: &RunningTask, outcome: Option<&TaskOutcome>) -> Fact {
    Fact::Running {
        grant: ByteBuf::from(running.grant.to_vec()),
        delegator: running.delegator.clone(),
        task: running.task.clone(),
        deadline: running.deadline,
        outcome: outcome.cloned(),
    }
}
