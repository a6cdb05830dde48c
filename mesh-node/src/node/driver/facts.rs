//! The agent's facts (`Effect::Persist`, `Effect::Forget`), saved off the
//! driver. Facts are not on any answer's path: they are gathered and saved
//! together, in one transaction on a thread of their own, after each tick
//! (every 250 ms) or as soon as many are waiting, while the driver goes on
//! taking inputs; at most one save runs at a time. A crash loses at most the
//! last moments of them, which gossip and anti-entropy bring back. A save
//! that fails keeps its facts, ahead of newer ones, for the next tick.

use mesh_ledger::store::{Store, StoreError, StoredFact};
use tokio::task::JoinHandle;

/// Facts waiting beyond this many are saved without waiting for the tick.
const FACTS_PER_SAVE: usize = 1024;

/// One fact as the store takes it: kind, key, body (empty: delete).
type Unsaved = (&'static str, Vec<u8>, Vec<u8>);

/// A save that finished: its facts, and whether they are stored.
pub struct Saved {
    facts: Vec<Unsaved>,
    result: Result<(), StoreError>,
}

/// The facts not yet stored, and the save under way.
pub(super) struct FactSaver {
    store: Store,
    owner: String,
    unsaved: Vec<Unsaved>,
    /// The tick asked for a save.
    due: bool,
    running: Option<JoinHandle<Saved>>,
}

impl FactSaver {
    pub(super) fn new(store: Store, owner: String) -> FactSaver {
        FactSaver {
            store,
            owner,
            unsaved: Vec::new(),
            due: false,
            running: None,
        }
    }

    /// Keep a fact for the next save (an empty body deletes).
    pub(super) fn push(&mut self, kind: &'static str, key: Vec<u8>, body: Vec<u8>) {
        self.unsaved.push((kind, key, body));
    }

    /// The tick: save what is waiting.
    pub(super) fn tick(&mut self) {
        self.due = true;
    }

    /// Start a save if one is due and none runs.
    pub(super) fn start_if_due(&mut self) {
        if self.running.is_some()
            || self.unsaved.is_empty()
            || (!self.due && self.unsaved.len() < FACTS_PER_SAVE)
        {
            return;
        }
        self.due = false;
        let facts = std::mem::take(&mut self.unsaved);
        let (store, owner) = (self.store.clone(), self.owner.clone());
        // On a thread of its own, as a commit is (see `commit`): hundreds
        // of rows are several round trips to the database's thread.
        let runtime = tokio::runtime::Handle::current();
        self.running = Some(tokio::task::spawn_blocking(move || {
            let result = runtime.block_on(save(&store, &owner, &facts));
            Saved { facts, result }
        }));
    }

    /// The running save's end (never, when none runs).
    pub(super) async fn finished(&mut self) -> Saved {
        let Some(job) = &mut self.running else {
            return std::future::pending().await;
        };
        let saved = job.await.unwrap_or_else(|e| Saved {
            // The job panicked before saying which facts it held: they are
            // lost, as in a crash, and come back by gossip and anti-entropy.
            facts: Vec::new(),
            result: Err(StoreError::Corrupt(format!("a facts save failed: {e}"))),
        });
        self.running = None;
        saved
    }

    /// Take a finished save back: failed facts go ahead of newer ones.
    pub(super) fn settle(&mut self, saved: Saved) -> Result<(), StoreError> {
        if saved.result.is_err() {
            let newer = std::mem::replace(&mut self.unsaved, saved.facts);
            self.unsaved.extend(newer);
        }
        saved.result
    }

    /// Save everything now (at shutdown): wait for a running save, then
    /// store the rest on this task.
    pub(super) async fn flush(&mut self) -> Result<(), StoreError> {
        if self.running.is_some() {
            let saved = self.finished().await;
            // Its facts are back among the unsaved if it failed.
            let _ = self.settle(saved);
        }
        let facts = std::mem::take(&mut self.unsaved);
        let result = save(&self.store, &self.owner, &facts).await;
        if result.is_err() {
            self.unsaved = facts;
        }
        result
    }
}

async fn save(store: &Store, owner: &str, facts: &[Unsaved]) -> Result<(), StoreError> {
    let stored: Vec<StoredFact<'_>> = facts
        .iter()
        .map(|(kind, key, body)| StoredFact { kind, key, body })
        .collect();
    store.save_facts(owner, &stored).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn saver(dir: &std::path::Path) -> (FactSaver, Store) {
        let path = dir.join("facts.db");
        let store = Store::open(&path.to_string_lossy()).await.unwrap();
        (FactSaver::new(store.clone(), "me".into()), store)
    }

    async fn stored(store: &Store) -> Vec<Vec<u8>> {
        store.facts("me").await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn facts_are_saved_on_the_tick_or_when_many_wait_and_kept_when_a_save_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (mut facts, store) = saver(dir.path()).await;
        facts.push("evidence", b"a".to_vec(), b"1".to_vec());
        facts.start_if_due();
        assert!(facts.running.is_none(), "one fact, no tick: not yet");
        facts.tick();
        facts.start_if_due();
        let saved = facts.finished().await;
        facts.settle(saved).unwrap();
        assert_eq!(stored(&store).await, vec![b"1".to_vec()]);

        // Many waiting: saved without a tick.
        for i in 0..FACTS_PER_SAVE {
            facts.push("evidence", i.to_be_bytes().to_vec(), b"2".to_vec());
        }
        facts.start_if_due();
        let saved = facts.finished().await;
        facts.settle(saved).unwrap();
        assert_eq!(stored(&store).await.len(), 1 + FACTS_PER_SAVE);

        // The database is closed under a save: its facts come back first.
        facts.push("evidence", b"b".to_vec(), b"3".to_vec());
        facts.tick();
        store.close().await;
        facts.start_if_due();
        facts.push("evidence", b"c".to_vec(), b"4".to_vec());
        let saved = facts.finished().await;
        assert!(facts.settle(saved).is_err());
        assert_eq!(facts.unsaved.len(), 2);
        assert_eq!(facts.unsaved[0].1, b"b".to_vec(), "the failed one first");
        assert!(facts.flush().await.is_err());
        assert_eq!(facts.unsaved.len(), 2, "still kept");
    }
}
