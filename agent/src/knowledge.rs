//! What the agent knows about the mesh: trust, the gate, revocations, the
//! org policy of every agent met, links it issued and holds, recent records
//! (replay guard), outcomes awaiting their `result` record, checkpoint notes
//! seen (equivocation evidence) and its witness of peers' logs. Every
//! collection an outsider can grow is bounded.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use mesh_delegation::{
    Decision, Gate, LinkHash, Peers, Request, RevocationSet, SignedGrant, TargetKind,
};
use mesh_iatp::{Did, OrgPolicy, Score, Timestamp};
use mesh_ledger::witness::{MemoryWitnessStore, Witness};
use mesh_trust::TrustEngine;

/// How many recent co-signed record hashes are remembered (replay guard).
const REMEMBERED_RECORDS: usize = 65_536;
/// How many checkpoint notes per followed log are kept to prove
/// equivocation.
const NOTES_PER_LOG: usize = 64;
/// How many equivocation proofs are kept to pass on.
const MAX_PROOFS: usize = 256;
/// For how many peers the latest shared records are kept.
const SHARED_PEERS: usize = 1024;

/// A link this agent issued (a grant or a spawn certificate): what revoking
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

/// Logs whose anchor is kept; past this the oldest anchor is dropped.
pub const MAX_ANCHORS: usize = 1024;

/// The last leaf of a cosigned checkpoint, proven under its root.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The owner's signed checkpoint note.
    pub note: Vec<u8>,
    /// Its size.
    pub size: u64,
    /// The leaf's index (`size - 1`).
    pub index: u64,
    /// The leaf's hash.
    pub leaf: mesh_ledger::merkle::Hash,
    /// Its inclusion proof under the note's root.
    pub proof: Vec<mesh_ledger::merkle::Hash>,
}

/// The agent's knowledge.
pub struct Knowledge {
    /// Direct and gossiped trust.
    pub trust: TrustEngine,
    /// The delegation gate (with its verified-chain cache).
    pub gate: Gate,
    /// Revocations learned.
    pub revocations: RevocationSet,
    /// Org policy of every agent met (by handshake), for the gate; a
    /// spawned agent's narrowed to its certificate.
    pub orgs: HashMap<Did, OrgPolicy>,
    /// Spawned agents' lineages (certificate hashes, first spawn first),
    /// this agent's own included, for the gate.
    pub lineages: HashMap<Did, Vec<LinkHash>>,
    /// Links this agent issued, by hash.
    pub issued: HashMap<LinkHash, Issued>,
    /// Grant chains given to this agent, by the hash of their last link.
    pub held: HashMap<LinkHash, Vec<SignedGrant>>,
    recent_records: VecDeque<[u8; 32]>,
    recent_set: HashSet<[u8; 32]>,
    /// The witness of peers' logs.
    pub witness: Witness<MemoryWitnessStore>,
    /// Checkpoint notes seen per origin, by size.
    pub seen_notes: HashMap<String, SeenNotes>,
    /// The last leaf of each log's cosigned checkpoint, proven
    /// (`fork.rs`), oldest first.
    pub anchors: HashMap<String, Anchor>,
    anchor_order: VecDeque<String>,
    /// Equivocation proofs held, by offender (to pass on at sync).
    pub proofs: BTreeMap<Did, Vec<u8>>,
    /// The latest records shared with each peer (to offer at sync).
    pub shared: BTreeMap<Did, VecDeque<mesh_ledger::record::CoSignedRecord>>,
}

impl Knowledge {
    /// Knowledge starting from a trust engine, a gate and a witness.
    pub fn new(trust: TrustEngine, gate: Gate, witness: Witness<MemoryWitnessStore>) -> Self {
        Knowledge {
            trust,
            gate,
            revocations: RevocationSet::default(),
            orgs: HashMap::new(),
            lineages: HashMap::new(),
            issued: HashMap::new(),
            held: HashMap::new(),
            recent_records: VecDeque::new(),
            recent_set: HashSet::new(),
            witness,
            seen_notes: HashMap::new(),
            anchors: HashMap::new(),
            anchor_order: VecDeque::new(),
            proofs: BTreeMap::new(),
            shared: BTreeMap::new(),
        }
    }

    /// Keep an equivocation proof against `offender` (the first
    /// 256 offenders: `MAX_PROOFS`).
    pub fn keep_proof(&mut self, offender: Did, proof: Vec<u8>) {
        if self.proofs.len() < MAX_PROOFS {
            self.proofs.entry(offender).or_insert(proof);
        }
    }

    /// Keep `origin`'s anchor, replacing its last; at most
    /// [`MAX_ANCHORS`] logs, the oldest dropped first.
    pub fn keep_anchor(&mut self, origin: String, anchor: Anchor) {
        if self.anchors.insert(origin.clone(), anchor).is_none() {
            self.anchor_order.push_back(origin);
        }
        while self.anchors.len() > MAX_ANCHORS {
            match self.anchor_order.pop_front() {
                Some(old) => self.anchors.remove(&old),
                None => break,
            };
        }
    }

    /// Remember a record shared with `peer`, to offer it at the next sync.
    pub fn share(&mut self, peer: &Did, record: mesh_ledger::record::CoSignedRecord) {
        if !self.shared.contains_key(peer)
            && self.shared.len() >= SHARED_PEERS
            && let Some(first) = self.shared.keys().next().cloned()
        {
            self.shared.remove(&first);
        }
        let window = self.shared.entry(peer.clone()).or_default();
        window.push_back(record);
        while window.len() > crate::wire::MAX_SYNC_RECORDS {
            window.pop_front();
        }
    }

    /// Whether a record was co-signed here lately.
    pub fn knows_record(&self, leaf: &[u8; 32]) -> bool {
        self.recent_set.contains(leaf)
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

    /// Children spawned by this agent that are alive (unexpired, unrevoked).
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

    /// The gate's decision on `request` at `now`, with live trust, the
    /// org policies met and the revocations known.
    pub fn decide(&mut self, request: Request<'_>, now: Timestamp) -> Decision {
        let view = GateView {
            trust: &self.trust,
            orgs: &self.orgs,
            lineages: &self.lineages,
            now,
        };
        self.gate.decide(request, &view, &self.revocations, now)
    }
}

/// The gate's view of agents: live trust scores, and the org policies and
/// lineages the handshakes established.
struct GateView<'a> {
    trust: &'a TrustEngine,
    orgs: &'a HashMap<Did, OrgPolicy>,
    lineages: &'a HashMap<Did, Vec<LinkHash>>,
    now: Timestamp,
}

impl Peers for GateView<'_> {
    fn trust(&self, agent: &Did) -> Score {
        self.trust.score(agent, self.now)
    }

    fn org(&self, agent: &Did) -> Option<&OrgPolicy> {
        self.orgs.get(agent)
    }

    fn lineage(&self, agent: &Did) -> &[LinkHash] {
        self.lineages.get(agent).map_or(&[], Vec::as_slice)
    }
}
