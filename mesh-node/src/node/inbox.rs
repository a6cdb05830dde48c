//! Delegated tasks waiting for an agent outside the node — a process in any
//! language, through the local agent API's inbox. The node accepts a task
//! (the agent core co-signs the `delegate` record) and puts it here; the
//! agent process takes it with a **lease**, may renew the lease while it
//! works (progress), and gives the outcome. A lease that runs out — the
//! process crashed or hung — ends the task as failed, so it never hangs
//! until its deadline; a task cancelled or past its deadline leaves the
//! inbox at once (the agent core answered it).
//!
//! Bounded by the agent core: it runs at most `Limits::max_running_tasks`
//! tasks, and every task here is one of them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use mesh_agent::{Input, TaskId};
use mesh_delegation::LinkHash;
use mesh_iatp::{Did, Timestamp};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::protocol::{Task, TaskOutcome};

/// The longest lease given at once (renew it with progress).
pub const MAX_LEASE: Duration = Duration::from_secs(3600);

/// A task in the inbox, as the agent process sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxTask {
    /// The task's grant: its name on both sides (and in the API).
    pub grant: LinkHash,
    /// Who delegated it.
    pub delegator: Did,
    /// The task.
    pub task: Task,
    /// When it must be answered (Unix seconds).
    pub deadline: Timestamp,
    /// Whether a process holds a lease on it now.
    pub leased: bool,
    /// How long the lease has left.
    pub lease_left: Option<Duration>,
    /// The latest progress note, if any.
    pub progress: Option<String>,
}

/// Why an inbox operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    /// No such task in the inbox (answered, cancelled, expired, or never).
    #[error("no task under grant {0} is in the inbox")]
    Unknown(String),
    /// The task is not leased: take it from the inbox first.
    #[error("the task under grant {0} is not leased; take it from the inbox first")]
    NotLeased(String),
    /// The node stopped.
    #[error("the node has stopped")]
    Stopped,
}

struct Entry {
    id: TaskId,
    grant: LinkHash,
    delegator: Did,
    task: Task,
    deadline: Timestamp,
    lease: Option<Instant>,
    progress: Option<String>,
}

impl Entry {
    fn view(&self, now: Instant) -> InboxTask {
        InboxTask {
            grant: self.grant,
            delegator: self.delegator.clone(),
            task: self.task.clone(),
            deadline: self.deadline,
            leased: self.lease.is_some(),
            lease_left: self.lease.map(|until| until.saturating_duration_since(now)),
            progress: self.progress.clone(),
        }
    }
}

#[derive(Default)]
struct State {
    tasks: BTreeMap<TaskId, Entry>,
    /// Not leased yet, oldest first.
    waiting: VecDeque<TaskId>,
}

/// The inbox. Shared by the node's driver (which fills it) and the local
/// agent API (which serves it).
#[derive(Default)]
pub struct Inbox {
    state: Mutex<State>,
    arrived: Notify,
    /// Outcomes go back to the driver as the agent's input.
    answers: OnceLock<mpsc::Sender<Input>>,
}

impl Inbox {
    /// An empty inbox; the node attaches it when it starts.
    pub fn new() -> Self {
        Inbox::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn attach(&self, answers: mpsc::Sender<Input>) {
        let _ = self.answers.set(answers);
    }

    /// A task the agent core accepted.
    pub(super) fn offer(
        &self,
        id: TaskId,
        grant: LinkHash,
        delegator: Did,
        task: Task,
        deadline: Timestamp,
    ) {
        let mut s = self.state();
        s.tasks.insert(
            id,
            Entry {
                id,
                grant,
                delegator,
                task,
                deadline,
                lease: None,
                progress: None,
            },
        );
        s.waiting.push_back(id);
        drop(s);
        self.arrived.notify_waiters();
    }

    /// The agent core answered the task already (cancelled, expired).
    pub(super) fn stop(&self, id: TaskId) {
        let mut s = self.state();
        s.tasks.remove(&id);
        s.waiting.retain(|w| *w != id);
    }

    /// Tasks whose lease ran out by `now`, taken out of the inbox.
    pub(super) fn lapsed(&self, now: Instant) -> Vec<TaskId> {
        let mut s = self.state();
        let gone: Vec<TaskId> = s
            .tasks
            .values()
            .filter(|e| e.lease.is_some_and(|until| until <= now))
            .map(|e| e.id)
            .collect();
        for id in &gone {
            s.tasks.remove(id);
        }
        gone
    }

    /// The oldest task nobody holds, leased for `lease` (at most
    /// [`MAX_LEASE`]); waits up to `wait` for one to arrive.
    pub async fn take(&self, wait: Duration, lease: Duration) -> Option<InboxTask> {
        let lease = lease.min(MAX_LEASE);
        let until = Instant::now() + wait;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state();
                while let Some(id) = s.waiting.pop_front() {
                    let now = Instant::now();
                    if let Some(e) = s.tasks.get_mut(&id) {
                        e.lease = Some(now + lease);
                        return Some(e.view(now));
                    }
                }
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Renew the lease on a task held (and note progress).
    pub fn progress(
        &self,
        grant: &LinkHash,
        lease: Duration,
        note: Option<String>,
    ) -> Result<InboxTask, InboxError> {
        let mut s = self.state();
        let now = Instant::now();
        let e = s
            .tasks
            .values_mut()
            .find(|e| &e.grant == grant)
            .ok_or_else(|| InboxError::Unknown(hex::encode(grant)))?;
        if e.lease.is_none() {
            return Err(InboxError::NotLeased(hex::encode(grant)));
        }
        e.lease = Some(now + lease.min(MAX_LEASE));
        if note.is_some() {
            e.progress = note;
        }
        Ok(e.view(now))
    }

    /// The outcome of a task held: it leaves the inbox and goes to the
    /// agent core, which answers the delegator.
    pub async fn answer(&self, grant: &LinkHash, outcome: TaskOutcome) -> Result<(), InboxError> {
        let id = {
            let mut s = self.state();
            let (id, leased) = s
                .tasks
                .values()
                .find(|e| &e.grant == grant)
                .map(|e| (e.id, e.lease.is_some()))
                .ok_or_else(|| InboxError::Unknown(hex::encode(grant)))?;
            if !leased {
                return Err(InboxError::NotLeased(hex::encode(grant)));
            }
            s.tasks.remove(&id);
            id
        };
        let answers = self.answers.get().ok_or(InboxError::Stopped)?;
        answers
            .send(Input::TaskDone { id, outcome })
            .await
            .map_err(|_| InboxError::Stopped)
    }

    /// Every task in the inbox, oldest first.
    pub fn list(&self) -> Vec<InboxTask> {
        let now = Instant::now();
        self.state().tasks.values().map(|e| e.view(now)).collect()
    }

    /// One task by its grant.
    pub fn get(&self, grant: &LinkHash) -> Option<InboxTask> {
        let now = Instant::now();
        self.state()
            .tasks
            .values()
            .find(|e| &e.grant == grant)
            .map(|e| e.view(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task {
            resource: "tools/search".into(),
            action: "read".into(),
            input: serde_bytes::ByteBuf::from(b"q".to_vec()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_is_leased_once_renewed_answered_and_a_lapsed_lease_ends_it() {
        let inbox = Inbox::new();
        let (tx, mut rx) = mpsc::channel(4);
        inbox.attach(tx);
        let did = mesh_iatp::testing::identity("d").did().clone();
        assert!(
            inbox
                .take(Duration::from_millis(10), Duration::from_secs(5))
                .await
                .is_none()
        );
        inbox.offer(TaskId(1), [1; 32], did.clone(), task(), Timestamp(9));
        inbox.offer(TaskId(2), [2; 32], did.clone(), task(), Timestamp(9));
        // Not leased yet: no answer, no progress.
        assert_eq!(
            inbox
                .answer(&[1; 32], TaskOutcome::succeeded(Vec::new()))
                .await,
            Err(InboxError::NotLeased(hex::encode([1; 32])))
        );
        let first = inbox.take(Duration::ZERO, Duration::from_secs(5)).await;
        assert_eq!(first.map(|t| t.grant), Some([1; 32]));
        let second = inbox.take(Duration::ZERO, Duration::from_secs(5)).await;
        assert_eq!(second.map(|t| t.grant), Some([2; 32]));
        assert!(
            inbox
                .take(Duration::ZERO, Duration::from_secs(5))
                .await
                .is_none(),
            "each once"
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        inbox
            .progress(&[1; 32], Duration::from_secs(5), Some("half".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::time::advance(Duration::from_secs(2)).await;
        // Task 2's lease ran out; task 1's was renewed.
        assert_eq!(inbox.lapsed(Instant::now()), vec![TaskId(2)]);
        assert_eq!(
            inbox.get(&[1; 32]).and_then(|t| t.progress),
            Some("half".into())
        );
        inbox
            .answer(&[1; 32], TaskOutcome::succeeded(b"r".to_vec()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            rx.recv().await,
            Some(Input::TaskDone { id: TaskId(1), .. })
        ));
        assert!(inbox.list().is_empty());
        assert_eq!(
            inbox
                .answer(&[1; 32], TaskOutcome::succeeded(Vec::new()))
                .await,
            Err(InboxError::Unknown(hex::encode([1; 32])))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_taker_gets_the_task_that_arrives_and_a_stopped_task_is_gone() {
        let inbox = std::sync::Arc::new(Inbox::new());
        let did = mesh_iatp::testing::identity("d").did().clone();
        let taker = {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                inbox
                    .take(Duration::from_secs(30), Duration::from_secs(5))
                    .await
            })
        };
        tokio::time::advance(Duration::from_secs(1)).await;
        inbox.offer(TaskId(7), [7; 32], did.clone(), task(), Timestamp(9));
        let got = taker.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.map(|t| t.grant), Some([7; 32]));
        inbox.offer(TaskId(8), [8; 32], did, task(), Timestamp(9));
        inbox.stop(TaskId(8));
        assert!(
            inbox
                .take(Duration::ZERO, Duration::from_secs(5))
                .await
                .is_none()
        );
        assert!(inbox.get(&[8; 32]).is_none());
    }
}
