//! What the node knows, shared by the swarm task, the handle and the tasks
//! that serve requests: trust, the gate, revocations, sessions, the grants
//! it issued and holds, and its witness. Behind one `std::sync::Mutex`,
//! held only for pure, short work (never across an `.await`).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use mesh_delegation::{Gate, LinkHash, Peers, RevocationSet, SignedGrant, TargetKind};
use mesh_iatp::handshake::Session;
use mesh_iatp::{Did, OrgPolicy, Score, Timestamp};
use mesh_ledger::witness::{MemoryWitnessStore, Witness};
use mesh_trust::TrustEngine;
use rand_chacha::ChaCha20Rng;

/// How many recent co-signed record hashes are remembered (replay guard).
const REMEMBERED_RECORDS: usize = 65_536;
/// How many checkpoint notes per followed log are kept to prove
/// equivocation.
const NOTES_PER_LOG: usize = 64;
/// How many task outcomes may wait for their `result` record.
const PENDING_OUTCOMES: usize = 4096;

/// A link this node issued (a grant or a spawn certificate): what revoking
/// it needs.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Grant or certificate.
    pub kind: TargetKind,
    /// Root first, ending with the link.
    pub chain: Vec<Vec<u8>>,
    /// To whom.
    pub audience: Did,
    /// Until when (a spawn's children count while alive).
    pub expires: Timestamp,
}

/// Checkpoint notes of one log by size: (root, note).
pub type SeenNotes = BTreeMap<u64, ([u8; 32], Vec<u8>)>;

/// The node's knowledge.
pub struct State {
    pub trust: TrustEngine,
    pub gate: Gate,
    pub revocations: RevocationSet,
    /// Authenticated peers, by libp2p PeerId.
    pub sessions: HashMap<libp2p::PeerId, Session>,
    /// Org policy of every agent met (by handshake), for the gate.
    pub orgs: HashMap<Did, OrgPolicy>,
    /// Links this node issued, by hash.
    pub issued: HashMap<LinkHash, Issued>,
    /// Grant chains given to this node, by the hash of their last link.
    pub held: HashMap<LinkHash, Vec<SignedGrant>>,
    /// Recently co-signed record leaf hashes (refuses a replayed request).
    recent_records: VecDeque<[u8; 32]>,
    recent_set: HashSet<[u8; 32]>,
    /// Outcomes this node returned, waiting for the delegator's `result`
    /// record: outcome digest → delegator.
    pending_outcomes: VecDeque<([u8; 32], Did)>,
    /// The witness of peers' logs.
    pub witness: Witness<MemoryWitnessStore>,
    /// Checkpoint notes seen per origin, by size (equivocation evidence).
    pub seen_notes: HashMap<String, SeenNotes>,
    /// Nonces for records and grants.
    pub rng: ChaCha20Rng,
    /// Trust report numbering: epoch (start time) and sequence.
    pub report_epoch: u64,
    pub report_sequence: u64,
    /// A significant change happened: publish a report soon.
    pub report_due: bool,
}

impl State {
    pub fn new(
        trust: TrustEngine,
        gate: Gate,
        witness: Witness<MemoryWitnessStore>,
        rng: ChaCha20Rng,
        epoch: u64,
    ) -> Self {
        State {
            trust,
            gate,
            revocations: RevocationSet::default(),
            sessions: HashMap::new(),
            orgs: HashMap::new(),
            issued: HashMap::new(),
            held: HashMap::new(),
            recent_records: VecDeque::new(),
            recent_set: HashSet::new(),
            pending_outcomes: VecDeque::new(),
            witness,
            seen_notes: HashMap::new(),
            rng,
            report_epoch: epoch,
            report_sequence: 0,
            report_due: false,
        }
    }

    /// The session with the agent `did`, if any.
    pub fn session_of(&self, did: &Did) -> Option<(&libp2p::PeerId, &Session)> {
        self.sessions.iter().find(|(_, s)| &s.remote == did)
    }

    /// Remember a co-signed record; false if it was seen before.
    pub fn remember_record(&mut self, leaf: [u8; 32]) -> bool {
        if !self.recent_set.insert(leaf) {
            return false;
        }
        self.recent_records.push_back(leaf);
        if self.recent_records.len() > REMEMBERED_RECORDS
            && let Some(old) = self.recent_records.pop_front()
        {
            self.recent_set.remove(&old);
        }
        true
    }

    /// Expect a `result` record from `delegator` for this outcome.
    pub fn expect_outcome(&mut self, digest: [u8; 32], delegator: Did) {
        self.pending_outcomes.push_back((digest, delegator));
        if self.pending_outcomes.len() > PENDING_OUTCOMES {
            self.pending_outcomes.pop_front();
        }
    }

    /// Take the expectation for this outcome from `delegator`, if any.
    pub fn take_outcome(&mut self, digest: &[u8; 32], delegator: &Did) -> bool {
        match self
            .pending_outcomes
            .iter()
            .position(|(d, who)| d == digest && who == delegator)
        {
            Some(i) => {
                self.pending_outcomes.remove(i);
                true
            }
            None => false,
        }
    }

    /// Keep a checkpoint note seen for `origin` at `size` with `root`;
    /// returns the note already held at that size if its root differs (an
    /// equivocation). Notes of one checkpoint with different cosignatures
    /// are the same checkpoint.
    pub fn see_note(
        &mut self,
        origin: &str,
        size: u64,
        root: [u8; 32],
        note: &[u8],
    ) -> Option<Vec<u8>> {
        let notes = self.seen_notes.entry(origin.to_string()).or_default();
        if let Some((held_root, held)) = notes.get(&size) {
            return (*held_root != root).then(|| held.clone());
        }
        notes.insert(size, (root, note.to_vec()));
        while notes.len() > NOTES_PER_LOG {
            notes.pop_first();
        }
        None
    }

    /// Children spawned by this node that are alive (unexpired, unrevoked).
    pub fn children_alive(&self, now: Timestamp) -> u32 {
        let n = self
            .issued
            .iter()
            .filter(|(h, i)| {
                i.kind == TargetKind::SpawnCertificate
                    && i.expires > now
                    && !self.revocations.is_revoked(h)
            })
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// The gate's view of agents: live trust scores and the org policies the
/// handshakes established.
pub struct GateView<'a> {
    pub trust: &'a TrustEngine,
    pub orgs: &'a HashMap<Did, OrgPolicy>,
    pub now: Timestamp,
}

impl Peers for GateView<'_> {
    fn trust(&self, agent: &Did) -> Score {
        self.trust.score(agent, self.now)
    }

    fn org(&self, agent: &Did) -> Option<&OrgPolicy> {
        self.orgs.get(agent)
    }

    fn lineage(&self, _agent: &Did) -> &[LinkHash] {
        // Cards do not carry spawn lineages yet: a spawned agent's own
        // certificate is checked when its parent spawns it, and revoking
        // it voids the grants it received through the chain checks.
        &[]
    }
}
