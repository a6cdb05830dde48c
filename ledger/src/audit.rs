//! The storage-independent half of verification: records are fed in index
//! order (from a database, an export file, anywhere) and checked as they
//! pass; checkpoints are checked against the roots the records give.
//! Memory stays flat: a few chunks of records for the signature workers
//! (`batch.rs`), the tree's right edge, the roots at checkpoint sizes
//! and the few nodes the consistency proofs between successive checkpoints
//! need.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::Receiver;

use mesh_iatp::Did;

use crate::batch::{self, CHUNK, Found, Leaves, Pool};
use crate::checkpoint::{
    Checkpoint, log_verifier, open_checkpoint, verify_cosignature, witness_verifier,
};
use crate::merkle::{
    self, CompactRange, Hash, NodeMap, NodeRecorder, leaf_hash, verify_consistency,
};
use crate::note::{Note, NoteVerifier};

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Where: `record 17`, `node level 2 index 5`, `checkpoint at size 40`, …
    pub location: String,
    /// What failed.
    pub what: String,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.what)
    }
}

/// The outcome of verifying one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// The log.
    pub origin: String,
    /// Records read.
    pub records: u64,
    /// Recomputed root over them.
    pub root: Hash,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// Cosignatures verified against known witnesses.
    pub cosignatures: usize,
    /// Cosignature lines from witnesses not given to the verifier (a
    /// DID-named one among them still had to verify, or it is a fault).
    pub unknown_cosigners: usize,
    /// The size of the latest checkpoint that opened, and the names of the
    /// given witnesses whose cosignatures on it verified: what
    /// [`LogReport::require`] checks.
    pub latest: Option<(u64, Vec<String>)>,
    /// Everything wrong, in the order found.
    pub faults: Vec<Fault>,
}

impl LogReport {
    /// No faults?
    pub fn is_sound(&self) -> bool {
        self.faults.is_empty()
    }

    /// Add a fault unless the latest checkpoint carries the cosignatures
    /// `required` asks for. Only the latest need carry them: every earlier
    /// checkpoint was checked to be consistent with it.
    pub fn require(&mut self, required: &Required) {
        if required.names.is_empty() && required.count == 0 {
            return;
        }
        let Some((size, cosigners)) = &self.latest else {
            self.faults.push(fault(
                "log",
                "no checkpoint to carry the required witness cosignatures",
            ));
            return;
        };
        let at = format!("checkpoint at size {size} (the latest)");
        for name in &required.names {
            if !cosigners.contains(name) {
                self.faults.push(fault(
                    &at,
                    format!("no valid cosignature by required witness {name}"),
                ));
            }
        }
        if cosigners.len() < required.count {
            self.faults.push(fault(
                &at,
                format!(
                    "cosigned by {} of the given witnesses, {} required",
                    cosigners.len(),
                    required.count
                ),
            ));
        }
    }
}

/// Witness cosignatures a verification insists on, on each log's latest
/// checkpoint: by these witnesses (named as given to the verifier), and by
/// at least `count` distinct given witnesses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Required {
    /// Witnesses that must have cosigned.
    pub names: Vec<String>,
    /// How many given witnesses at least.
    pub count: usize,
}

/// A fault at `location`.
pub fn fault(location: impl Into<String>, what: impl Into<String>) -> Fault {
    Fault {
        location: location.into(),
        what: what.into(),
    }
}

/// What the signature workers found, as faults named by record.
fn record_faults(found: Vec<Found>) -> impl Iterator<Item = Fault> {
    found
        .into_iter()
        .map(|(idx, what)| fault(format!("record {idx}"), what))
}

/// A checkpoint note as stored, keyed by the size it was stored under.
enum Opened {
    /// Signed by the log key, of the size it was stored under.
    Good(Checkpoint, Note),
    /// Not openable, or stored under another size: the fault's text.
    Bad(String),
}

/// One log's verification in progress.
pub struct Audit {
    origin: String,
    /// The agent whose log this is, when the origin is a DID (a mesh
    /// agent's log is named by its DID): every record must involve it.
    agent: Option<Did>,
    range: CompactRange,
    /// Checkpoint notes by the size they were stored under, opened.
    checkpoints: Vec<(u64, Opened)>,
    /// Sizes whose roots to capture, ascending.
    wanted: Vec<u64>,
    roots_at: BTreeMap<u64, Hash>,
    /// Nodes the consistency proofs between successive good checkpoints need.
    keep: BTreeSet<(u32, u64)>,
    kept: NodeMap,
    /// Records not yet handed to the signature workers.
    chunk: Leaves,
    /// The workers, started with the first full chunk.
    pool: Option<Pool>,
    /// Faults in the order they are reported: the walker's as they come,
    /// each chunk's where it was handed over.
    faults: Vec<Segment>,
}

/// A stretch of the fault list.
enum Segment {
    Found(Vec<Fault>),
    /// A chunk's, once its worker is done.
    Awaited(Receiver<Vec<Found>>),
}

impl Audit {
    /// Start verifying the log `origin` (key `key`) whose checkpoint notes
    /// are `checkpoints`, each with the size it was stored under, ascending.
    pub fn new(origin: &str, key: &Did, checkpoints: Vec<(u64, Vec<u8>)>) -> Audit {
        let verifier = log_verifier(origin, key.clone());
        let opened: Vec<(u64, Opened)> = checkpoints
            .into_iter()
            .map(|(size, note)| {
                let opened = match &verifier {
                    Err(e) => Opened::Bad(e.to_string()),
                    Ok(v) => match open_checkpoint(&note, v) {
                        Err(e) => Opened::Bad(e.to_string()),
                        Ok((cp, _)) if cp.size != size => {
                            Opened::Bad(format!("note says size {}", cp.size))
                        }
                        Ok((cp, parsed)) => Opened::Good(cp, parsed),
                    },
                };
                (size, opened)
            })
            .collect();
        let wanted: Vec<u64> = opened.iter().map(|(s, _)| *s).collect();
        // The proofs between successive good checkpoints, to be answered
        // from the tree the records give (nothing stored is trusted).
        let recorder = NodeRecorder::default();
        let mut previous = None;
        for (_, o) in &opened {
            if let Opened::Good(cp, _) = o {
                if let Some(old) = previous {
                    let _ = merkle::consistency_proof(&recorder, old, cp.size);
                }
                previous = Some(cp.size);
            }
        }
        let agent = Did::parse(origin).ok();
        let mut faults = Vec::new();
        if agent.as_ref().is_some_and(|a| a != key) {
            faults.push(fault(
                "log key",
                format!("the log is signed by {key}, not by the agent its origin names"),
            ));
        }
        let mut audit = Audit {
            origin: origin.into(),
            agent,
            range: CompactRange::new(),
            checkpoints: opened,
            wanted,
            roots_at: BTreeMap::new(),
            keep: recorder.positions().into_iter().collect(),
            kept: NodeMap::default(),
            chunk: Vec::with_capacity(CHUNK),
            pool: None,
            faults: vec![Segment::Found(faults)],
        };
        audit.capture_root();
        audit
    }

    /// Records fed so far (the next record's index).
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// Note a fault found by the storage walking the log.
    pub fn push_fault(&mut self, f: Fault) {
        match self.faults.last_mut() {
            Some(Segment::Found(found)) => found.push(f),
            _ => self.faults.push(Segment::Found(vec![f])),
        }
    }

    /// Feed the next record's stored bytes; returns the tree nodes it
    /// completes, `(level, index, hash)`, for a store to compare with what
    /// it holds.
    pub fn record(&mut self, leaf: &[u8]) -> Vec<(u32, u64, Hash)> {
        self.chunk.push((self.range.size(), leaf.to_vec()));
        if self.chunk.len() >= CHUNK {
            self.hand_over();
        }
        let created = self.range.append(leaf_hash(leaf));
        for (level, index, hash) in &created {
            if self.keep.contains(&(*level, *index)) {
                self.kept.0.insert((*level, *index), *hash);
            }
        }
        self.capture_root();
        created
    }

    fn capture_root(&mut self) {
        let n = self.range.size();
        if self.wanted.binary_search(&n).is_ok() {
            self.roots_at.insert(n, self.range.root());
        }
    }

    /// Hand the records fed since the last chunk to the signature workers
    /// (a page boundary of the walker). Their faults are reported here, in
    /// order, whichever worker finishes first.
    pub fn end_page(&mut self) {
        if !self.chunk.is_empty() {
            self.hand_over();
        }
    }

    fn hand_over(&mut self) {
        let leaves = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        // A log smaller than a chunk is checked here, without threads.
        if self.pool.is_none() && leaves.len() < CHUNK {
            for f in record_faults(batch::check(self.agent.as_ref(), &leaves)) {
                self.push_fault(f);
            }
            return;
        }
        let agent = &self.agent;
        let pool = self.pool.get_or_insert_with(|| Pool::new(agent.clone()));
        let answer = pool.submit(agent.as_ref(), leaves);
        self.faults.push(Segment::Awaited(answer));
    }

    /// Every fault so far, in report order (waiting for the workers).
    fn collect_faults(&mut self) -> Vec<Fault> {
        let mut all = Vec::new();
        for segment in std::mem::take(&mut self.faults) {
            match segment {
                Segment::Found(found) => all.extend(found),
                Segment::Awaited(answer) => match answer.recv() {
                    Ok(found) => all.extend(record_faults(found)),
                    Err(_) => all.push(fault(
                        "signatures",
                        "a verification worker stopped before answering",
                    )),
                },
            }
        }
        all
    }

    /// Check the checkpoints against the records read, with `witnesses`'
    /// cosignatures; `claimed` is the size the log says it has.
    pub fn finish(mut self, claimed: u64, witnesses: &[NoteVerifier]) -> LogReport {
        self.end_page();
        let mut faults = self.collect_faults();
        self.pool = None;
        if self.range.size() != claimed {
            let read = self.range.size();
            faults.push(fault(
                "log size",
                format!("the log claims {claimed} records but {read} were read"),
            ));
        }
        let origin = self.origin.clone();
        let (mut cosignatures, mut unknown) = (0usize, 0usize);
        let mut latest = None;
        let mut previous: Option<(u64, Hash)> = None;
        let count = self.checkpoints.len();
        for (size, opened) in std::mem::take(&mut self.checkpoints) {
            let at = format!("checkpoint at size {size}");
            let (cp, parsed) = match opened {
                Opened::Bad(why) => {
                    faults.push(fault(at, why));
                    continue;
                }
                Opened::Good(cp, parsed) => (cp, parsed),
            };
            match self.roots_at.get(&cp.size) {
                Some(root) if *root == cp.root => {}
                Some(_) => faults.push(fault(&at, "signed root does not match the records")),
                None => faults.push(fault(&at, "beyond the records that could be read")),
            }
            let mut cosigners = Vec::new();
            for line in parsed.signatures.iter().filter(|l| l.name != origin) {
                let given = witnesses
                    .iter()
                    .find(|w| w.name == line.name && w.key_id() == line.key_id);
                // A witness named by its DID carries its key in its name:
                // its cosignature is checked even when it was not given.
                let named = || {
                    let did = Did::parse(&line.name).ok()?;
                    witness_verifier(&line.name, did).ok()
                };
                let (w, trusted) = match given {
                    Some(w) => (w.clone(), true),
                    None => match named() {
                        Some(w) => (w, false),
                        None => {
                            unknown += 1;
                            continue;
                        }
                    },
                };
                match verify_cosignature(&parsed, &w) {
                    Ok(_) if trusted => {
                        cosignatures += 1;
                        cosigners.push(w.name.clone());
                    }
                    Ok(_) => unknown += 1,
                    Err(e) => faults.push(fault(
                        format!("{at}, cosignature by {}", w.name),
                        e.to_string(),
                    )),
                }
            }
            cosigners.sort();
            cosigners.dedup();
            latest = Some((cp.size, cosigners));
            if let Some((old, old_root)) = previous {
                let consistent =
                    merkle::consistency_proof(&self.kept, old, cp.size).is_ok_and(|p| {
                        verify_consistency(old, cp.size, &p, &old_root, &cp.root).is_ok()
                    });
                if !consistent {
                    faults.push(fault(
                        &at,
                        format!("not consistent with the checkpoint at size {old}"),
                    ));
                }
            }
            previous = Some((cp.size, cp.root));
        }
        LogReport {
            origin,
            records: self.range.size(),
            root: self.range.root(),
            checkpoints: count,
            cosignatures,
            unknown_cosigners: unknown,
            latest,
            faults,
        }
    }
}
