//! The storage-independent half of verification: records are fed in index
//! order (from a database, an export file, anywhere) and checked as they
//! pass; checkpoints are checked against the roots the records give.
//! Memory stays flat: one page of signatures, the tree's right edge, the
//! roots at checkpoint sizes and the few nodes the consistency proofs
//! between successive checkpoints need.

use std::collections::{BTreeMap, BTreeSet};

use mesh_iatp::Did;

use crate::checkpoint::{
    Checkpoint, log_verifier, open_checkpoint, verify_cosignature, witness_verifier,
};
use crate::merkle::{
    self, CompactRange, Hash, NodeMap, NodeRecorder, leaf_hash, verify_consistency,
};
use crate::note::{Note, NoteVerifier};
use crate::record::{CoSignedRecord, RecordParts};

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
    batch: SignatureBatch,
    faults: Vec<Fault>,
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
            batch: SignatureBatch::default(),
            faults,
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
        self.faults.push(f);
    }

    /// Feed the next record's stored bytes; returns the tree nodes it
    /// completes, `(level, index, hash)`, for a store to compare with what
    /// it holds.
    pub fn record(&mut self, leaf: &[u8]) -> Vec<(u32, u64, Hash)> {
        let idx = self.range.size();
        match RecordParts::decode(leaf) {
            Err(e) => self
                .faults
                .push(fault(format!("record {idx}"), e.to_string())),
            Ok(parts) => {
                let r = &parts.record;
                if let Some(agent) = self.agent.as_ref()
                    && r.actor != *agent
                    && r.counterparty != *agent
                {
                    self.faults.push(fault(
                        format!("record {idx}"),
                        format!(
                            "between {} and {}: not an action of the log's agent",
                            r.actor, r.counterparty
                        ),
                    ));
                }
                match self.batch.add(&parts) {
                    Err(why) => self.faults.push(fault(format!("record {idx}"), why)),
                    Ok(()) => self.batch.records.push((idx, leaf.to_vec())),
                }
            }
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

    /// Verify the signatures fed since the last page (in one batch; if it
    /// fails, each record strictly, so the faulty ones are named).
    pub fn end_page(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        if !batch.verify() {
            for (idx, leaf) in &batch.records {
                if let Err(e) = CoSignedRecord::from_bytes(leaf) {
                    self.faults
                        .push(fault(format!("record {idx}"), e.to_string()));
                }
            }
        }
    }

    /// Check the checkpoints against the records read, with `witnesses`'
    /// cosignatures; `claimed` is the size the log says it has.
    pub fn finish(mut self, claimed: u64, witnesses: &[NoteVerifier]) -> LogReport {
        self.end_page();
        if self.range.size() != claimed {
            let read = self.range.size();
            self.faults.push(fault(
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
                    self.faults.push(fault(at, why));
                    continue;
                }
                Opened::Good(cp, parsed) => (cp, parsed),
            };
            match self.roots_at.get(&cp.size) {
                Some(root) if *root == cp.root => {}
                Some(_) => self
                    .faults
                    .push(fault(&at, "signed root does not match the records")),
                None => self
                    .faults
                    .push(fault(&at, "beyond the records that could be read")),
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
                    Err(e) => self.faults.push(fault(
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
                    self.faults.push(fault(
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
            faults: self.faults,
        }
    }
}

/// A page's signatures, verified together.
///
/// ed25519-dalek's batch equation is cofactorless, like single
/// verification, so with the two extra checks `verify_strict` makes — no
/// small-order public key, no small-order `R` — a batch accepts exactly what
/// strict one-by-one verification accepts (up to the negligible chance of
/// the random coefficients cancelling).
#[derive(Default)]
struct SignatureBatch {
    messages: Vec<Vec<u8>>,
    signatures: Vec<ed25519_dalek::Signature>,
    keys: Vec<ed25519_dalek::VerifyingKey>,
    records: Vec<(u64, Vec<u8>)>,
}
impl SignatureBatch {
    /// Queue a record's two signatures, after the strict pre-checks.
    fn add(&mut self, parts: &RecordParts<'_>) -> Result<(), String> {
        let (actor_msg, counter_msg) = parts.messages();
        for (who, key, sig) in [
            (
                "actor",
                parts.record.actor.verifying_key(),
                &parts.actor_sig,
            ),
            (
                "counterparty",
                parts.record.counterparty.verifying_key(),
                &parts.counterparty_sig,
            ),
        ] {
            if key.is_weak() {
                return Err(format!("{who} key is a small-order point"));
            }
            let r = curve25519_dalek::edwards::CompressedEdwardsY(sig.r_bytes().to_owned());
            match r.decompress() {
                None => return Err(format!("{who} signature's R is not a curve point")),
                Some(p) if p.is_small_order() => {
                    return Err(format!("{who} signature's R is a small-order point"));
                }
                Some(_) => {}
            }
        }
        self.messages.push(actor_msg);
        self.messages.push(counter_msg);
        self.signatures.push(parts.actor_sig);
        self.signatures.push(parts.counterparty_sig);
        self.keys.push(*parts.record.actor.verifying_key());
        self.keys.push(*parts.record.counterparty.verifying_key());
        Ok(())
    }

    fn verify(&self) -> bool {
        if self.signatures.is_empty() {
            return true;
        }
        let refs: Vec<&[u8]> = self.messages.iter().map(Vec::as_slice).collect();
        ed25519_dalek::verify_batch(&refs, &self.signatures, &self.keys).is_ok()
    }
}
