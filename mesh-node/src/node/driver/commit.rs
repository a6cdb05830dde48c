//! Group commit, pipelined: the log's appends run on a thread of their own
//! while the driver goes on taking inputs through the agent, and records
//! that arrive while a commit runs go into the next one. Whatever the agent
//! emitted after a record — an answer relying on it, an event, a proof —
//! waits until that record is on disk, and everything leaves in the order
//! the agent emitted it; only requests that say nothing of our log (a
//! countersignature asked, a cancel) leave at once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mesh_agent::wire::ActionRequest;
use mesh_agent::{Effect, Request};
use mesh_ledger::record::CoSignedRecord;
use mesh_ledger::store::StoreError;
use tokio::task::JoinHandle;

use super::super::ledger::NodeLedger;

/// Where the log is: with the driver, or in a commit.
enum Slot {
    Home(NodeLedger),
    Away(JoinHandle<Committed>),
    /// A commit task died (it panicked): nothing can be appended any more.
    Lost,
}

/// A commit that finished, and the log coming back from it.
pub struct Committed {
    ledger: NodeLedger,
    result: Result<u64, StoreError>,
    records: usize,
    took: Duration,
}

/// Whether `effect` may say anything about our log, and so must wait for
/// the records emitted before it. Asking a peer to countersign a record, or
/// to cancel a task, says nothing of our log (the record is appended only
/// once co-signed, and names no position in it), and on another stream it
/// has no order with our other messages anyway; it leaves at once, so a
/// busy log does not hold up new tasks and answers. Everything else waits.
fn relies_on_the_log(effect: &Effect) -> bool {
    !matches!(
        effect,
        Effect::Send {
            request: Request::Action(ActionRequest::CoSign { .. } | ActionRequest::Cancel { .. }),
            ..
        }
    )
}

/// The log, the records waiting for it and the effects waiting on them.
pub(super) struct GroupCommit {
    slot: Slot,
    /// Records emitted and not yet handed to a commit.
    pending: Vec<CoSignedRecord>,
    /// Effects in emission order, each with the number of records that had
    /// been emitted before it.
    held: VecDeque<(u64, Effect)>,
    emitted: u64,
    committed: u64,
    /// Most records in one transaction.
    max_batch: usize,
}

impl GroupCommit {
    pub(super) fn new(ledger: NodeLedger, max_batch: usize) -> GroupCommit {
        GroupCommit {
            slot: Slot::Home(ledger),
            pending: Vec::new(),
            held: VecDeque::new(),
            emitted: 0,
            committed: 0,
            max_batch: max_batch.max(1),
        }
    }

    /// Take the agent's next effect. An append joins the next commit; any
    /// other effect comes back to be carried out now if every record
    /// emitted before it is on disk (the log is then at home), or waits.
    pub(super) fn admit(&mut self, effect: Effect) -> Option<Effect> {
        match effect {
            Effect::Append { record, .. } => {
                self.pending.push(record);
                self.emitted += 1;
                None
            }
            effect if self.held.is_empty() && self.is_idle() => Some(effect),
            effect if !relies_on_the_log(&effect) => Some(effect),
            effect => {
                self.held.push_back((self.emitted, effect));
                None
            }
        }
    }

    /// Nothing being committed and nothing waiting to be.
    pub(super) fn is_idle(&self) -> bool {
        matches!(self.slot, Slot::Home(_)) && self.committed == self.emitted
    }

    /// Anything still to be committed or carried out.
    pub(super) fn is_busy(&self) -> bool {
        !self.is_idle() || !self.held.is_empty()
    }

    /// Start committing what is pending, if the log is at home.
    pub(super) fn start(&mut self) {
        if self.pending.is_empty() || !matches!(self.slot, Slot::Home(_)) {
            return;
        }
        let Slot::Home(mut ledger) = std::mem::replace(&mut self.slot, Slot::Lost) else {
            return;
        };
        let take = self.pending.len().min(self.max_batch);
        let records: Vec<CoSignedRecord> = self.pending.drain(..take).collect();
        // On a thread of its own: a commit is several round trips to the
        // database's worker thread, and on the runtime's workers each one
        // would wait behind whatever the drivers are verifying.
        let runtime = tokio::runtime::Handle::current();
        self.slot = Slot::Away(tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let result = runtime.block_on(ledger.append(&records));
            Committed {
                ledger,
                result,
                records: records.len(),
                took: started.elapsed(),
            }
        }));
    }

    /// The running commit's end (never, when none runs).
    pub(super) async fn finished(&mut self) -> Result<Committed, StoreError> {
        let Slot::Away(task) = &mut self.slot else {
            return std::future::pending().await;
        };
        let done = task.await;
        done.map_err(|e| {
            self.slot = Slot::Lost;
            StoreError::Corrupt(format!("a commit task failed: {e}"))
        })
    }

    /// Take the log back from a finished commit: how many records it
    /// appended and how long that took, or why it failed.
    pub(super) fn settle(&mut self, done: Committed) -> Result<(usize, Duration), StoreError> {
        self.slot = Slot::Home(done.ledger);
        done.result?;
        self.committed += done.records as u64;
        Ok((done.records, done.took))
    }

    /// The next held effect whose records are all on disk, while the log
    /// is at home.
    pub(super) fn released(&mut self) -> Option<Effect> {
        if !matches!(self.slot, Slot::Home(_)) {
            return None;
        }
        match self.held.front() {
            Some((after, _)) if *after <= self.committed => self.held.pop_front().map(|(_, e)| e),
            _ => None,
        }
    }

    /// The log, when no commit has it.
    pub(super) fn ledger(&mut self) -> Result<&mut NodeLedger, StoreError> {
        match &mut self.slot {
            Slot::Home(ledger) => Ok(ledger),
            // `admit` and `released` hand out effects only while the log
            // is at home; this is the guard should that ever change.
            Slot::Away(_) => Err(StoreError::Corrupt(
                "the log was needed while a commit held it".into(),
            )),
            Slot::Lost => Err(StoreError::Corrupt("a commit task failed".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_iatp::Did;
    use mesh_ledger::LogStore;
    use mesh_ledger::testing::{agents, record};

    fn append(i: u64, who: &[mesh_iatp::Identity]) -> Effect {
        Effect::Append {
            index: i,
            record: record(i, who),
        }
    }

    fn marker(who: &mesh_iatp::Identity) -> Effect {
        Effect::Unban {
            peer: who.did().clone(),
        }
    }

    fn is_marker(effect: Option<Effect>, who: &Did) -> bool {
        matches!(effect, Some(Effect::Unban { peer }) if &peer == who)
    }

    async fn wait(commit: &mut GroupCommit) -> (usize, Duration) {
        let done = commit.finished().await.unwrap();
        commit.settle(done).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn effects_wait_for_the_records_before_them_and_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let who = agents(4);
        let ledger = NodeLedger::open(dir.path(), who[0].did()).await.unwrap();
        let mut commit = GroupCommit::new(ledger, 2);
        let (first, second, third) = (who[1].did(), who[2].did(), who[3].did());

        // Nothing pending: carried out at once.
        assert!(is_marker(commit.admit(marker(&who[1])), first));
        // Record 0, then an answer relying on it: the answer waits.
        assert!(commit.admit(append(0, &who)).is_none());
        assert!(commit.admit(marker(&who[1])).is_none());
        commit.start();
        assert!(commit.is_busy());
        // Records arriving while the commit runs go into the next one, and
        // what follows them waits for that one.
        for i in 1..4 {
            assert!(commit.admit(append(i, &who)).is_none());
        }
        assert!(commit.admit(marker(&who[2])).is_none());
        assert!(commit.admit(append(4, &who)).is_none());
        assert!(commit.admit(marker(&who[3])).is_none());
        assert!(commit.ledger().is_err(), "the log is in the commit");

        assert_eq!(wait(&mut commit).await.0, 1);
        assert!(is_marker(commit.released(), first));
        assert!(commit.released().is_none(), "records 1–3 are not on disk");
        commit.start();
        assert_eq!(wait(&mut commit).await.0, 2, "at most two records a commit");
        assert!(commit.released().is_none(), "record 3 is not on disk");
        commit.start();
        assert_eq!(wait(&mut commit).await.0, 2);
        assert!(is_marker(commit.released(), second));
        assert!(is_marker(commit.released(), third));
        assert!(commit.released().is_none());
        assert!(!commit.is_busy());
        assert_eq!(commit.ledger().unwrap().log().size(), 5);
    }

    fn send(to: &Did, request: ActionRequest) -> Effect {
        Effect::Send {
            to: to.clone(),
            id: mesh_agent::RequestId(1),
            request: Request::Action(request),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn asking_a_countersignature_or_a_cancel_does_not_wait_for_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let who = agents(3);
        let ledger = NodeLedger::open(dir.path(), who[0].did()).await.unwrap();
        let mut commit = GroupCommit::new(ledger, 8);
        let peer = who[1].did();
        assert!(commit.admit(append(0, &who)).is_none());
        commit.start();
        assert!(commit.admit(append(1, &who)).is_none());
        // Neither says anything of our log: out at once, ahead of the
        // records and of what waits on them.
        assert!(commit.admit(marker(&who[1])).is_none());
        let cosign = send(
            peer,
            ActionRequest::CoSign {
                record: serde_bytes::ByteBuf::from(vec![1, 2, 3]),
                context: mesh_agent::wire::ActionContext::Plain {
                    payload: serde_bytes::ByteBuf::new(),
                },
            },
        );
        assert!(matches!(commit.admit(cosign), Some(Effect::Send { .. })));
        let cancel = send(
            peer,
            ActionRequest::Cancel {
                grant: serde_bytes::ByteBuf::from(vec![0; 32]),
            },
        );
        assert!(matches!(commit.admit(cancel), Some(Effect::Send { .. })));
        // Any other request waits, as every other effect does.
        let proof = send(peer, ActionRequest::Consistency { old: 1, new: 2 });
        assert!(commit.admit(proof).is_none());
        assert_eq!(wait(&mut commit).await.0, 1);
        assert!(commit.released().is_none(), "record 1 is not on disk");
        commit.start();
        assert_eq!(wait(&mut commit).await.0, 1);
        assert!(is_marker(commit.released(), peer));
        assert!(matches!(
            commit.released(),
            Some(Effect::Send {
                request: Request::Action(ActionRequest::Consistency { .. }),
                ..
            })
        ));
        assert!(!commit.is_busy());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_releases_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let who = agents(3);
        let ledger = NodeLedger::open(dir.path(), who[0].did()).await.unwrap();
        let mut commit = GroupCommit::new(ledger, 8);
        // The database is gone (closed) by the time the commit runs.
        commit.ledger().unwrap().close().await;
        assert!(commit.admit(append(0, &who)).is_none());
        assert!(commit.admit(marker(&who[1])).is_none());
        commit.start();
        let done = commit.finished().await.unwrap();
        assert!(commit.settle(done).is_err());
        assert!(commit.released().is_none());
        assert!(commit.is_busy());
    }
}
