//! Members that join or change other than by an org's credential: a
//! spawned child, and a node that lost its database.

use mesh_iatp::handshake::LocalAgent;

use crate::api::Spawned;

use super::{MemoryStore, Mesh};

impl Mesh {
    /// Add a child another agent spawned, as its own agent: its card
    /// carries the parent's root credential and its lineage, not a
    /// credential of its own. `None` if the card is invalid.
    pub fn add_spawned(&mut self, name: &str, spawned: &Spawned) -> Option<usize> {
        let local = spawned.local_agent(name).ok()?;
        Some(self.add_local(local, name, |_| {}))
    }

    /// Add an agent with any key and card (e.g. one a test made up).
    pub fn add_local_agent(&mut self, local: LocalAgent, name: &str) -> usize {
        self.add_local(local, name, |_| {})
    }

    /// Crash agent `n` and lose its store, as a node whose database was
    /// deleted: restarted, it begins a new log under the same key.
    pub fn lose_store(&mut self, n: usize) {
        self.crash(n);
        let did = self.did(n).clone();
        self.nodes[n].store = MemoryStore::new(&did);
    }
}
