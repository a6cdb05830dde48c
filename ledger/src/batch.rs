//! Record signatures checked in batches, on every core.
//!
//! An [`crate::audit::Audit`] hands over its records in chunks, in index
//! order; a bounded pool of worker threads (one per core) decodes each
//! chunk, makes strict verification's pre-checks and verifies the chunk's
//! signatures as one batch. Each chunk's faults come back through its own
//! channel and the audit takes them in the order it handed the chunks over,
//! so a report does not depend on the number of cores or on which worker
//! finished first. The job queue holds at most one chunk per worker, so
//! memory stays flat however long the log is.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use mesh_iatp::Did;
use sha2::{Digest, Sha512};

use crate::record::{ACTOR_DOMAIN, COUNTERPARTY_DOMAIN, CoSignedRecord, RecordParts};

/// Records per chunk: one batch verification of 4,000 signatures, past the
/// size where batching stops getting cheaper per signature, and a divisor
/// of the 10,000-record pages the verifiers read.
pub(crate) const CHUNK: usize = 2_000;

/// The most worker threads a pool starts, whatever the machine says.
const MAX_WORKERS: usize = 32;

/// Records `(index, leaf bytes)` to check, in index order.
pub(crate) type Leaves = Vec<(u64, Vec<u8>)>;

/// Something wrong with a record: `(its index, what)`.
pub(crate) type Found = (u64, String);

/// Check one chunk of records: each decodes, involves the log's `agent`
/// (when its origin names one) and carries two signatures that verify.
/// Returns what is wrong, by record index, in record order (per record:
/// decoding, the agent, the pre-checks), then the signatures that fail
/// strict verification.
pub(crate) fn check(agent: Option<&Did>, leaves: &[(u64, Vec<u8>)]) -> Vec<Found> {
    let mut faults = Vec::new();
    let mut batch = SignatureBatch::default();
    let mut queued = Vec::with_capacity(leaves.len());
    for (idx, leaf) in leaves {
        let parts = match RecordParts::decode(leaf) {
            Ok(parts) => parts,
            Err(e) => {
                faults.push((*idx, e.to_string()));
                continue;
            }
        };
        let r = &parts.record;
        if let Some(agent) = agent
            && r.actor != *agent
            && r.counterparty != *agent
        {
            faults.push((
                *idx,
                format!(
                    "between {} and {}: not an action of the log's agent",
                    r.actor, r.counterparty
                ),
            ));
        }
        match batch.add(&parts) {
            Err(why) => faults.push((*idx, why)),
            Ok(()) => queued.push((*idx, leaf)),
        }
    }
    if !batch.verify() {
        // Name the faulty ones: each record strictly, one by one.
        for (idx, leaf) in queued {
            if let Err(e) = CoSignedRecord::from_bytes(leaf) {
                faults.push((idx, e.to_string()));
            }
        }
    }
    faults
}

/// A chunk handed to the pool.
struct Job {
    leaves: Leaves,
    reply: mpsc::Sender<Vec<Found>>,
}

/// Worker threads checking one log's chunks.
pub(crate) struct Pool {
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool with one worker per core (at most [`MAX_WORKERS`]) for the
    /// log of `agent`. Workers that cannot be started are done without; with
    /// none, [`Pool::submit`] checks on the caller's thread.
    pub(crate) fn new(agent: Option<Did>) -> Pool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let wanted = cores.min(MAX_WORKERS);
        let (send, receive) = mpsc::sync_channel::<Job>(wanted);
        let receive = Arc::new(Mutex::new(receive));
        let mut workers = Vec::with_capacity(wanted);
        for i in 0..wanted {
            let receive = Arc::clone(&receive);
            let agent = agent.clone();
            let started = std::thread::Builder::new()
                .name(format!("ledger-verify-{i}"))
                .spawn(move || work(&receive, agent.as_ref()));
            if let Ok(handle) = started {
                workers.push(handle);
            }
        }
        Pool {
            jobs: (!workers.is_empty()).then_some(send),
            workers,
        }
    }

    /// Queue `leaves` (waiting while every worker is busy and the queue is
    /// full); their faults arrive on the returned channel. `agent` is only
    /// used when the pool has no worker and the chunk is checked here.
    pub(crate) fn submit(&self, agent: Option<&Did>, leaves: Leaves) -> Receiver<Vec<Found>> {
        let (reply, answer) = mpsc::channel();
        let job = Job { leaves, reply };
        let unsent = match &self.jobs {
            Some(jobs) => jobs.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = unsent {
            let _ = job.reply.send(check(agent, &job.leaves));
        }
        answer
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends each worker after its current chunk.
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// A worker: check chunks until the queue closes.
fn work(jobs: &Mutex<Receiver<Job>>, agent: Option<&Did>) {
    loop {
        // The lock is held only while waiting for the next job.
        let next = match jobs.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else { return };
        // The audit may have stopped waiting (it was dropped): nothing to do.
        let _ = job.reply.send(check(agent, &job.leaves));
    }
}

/// A chunk's signatures, verified together: one multiscalar
/// multiplication checks `Σ zᵢ·(Rᵢ + kᵢ·Aᵢ − sᵢ·B) = 0` for coefficients
/// `zᵢ` derived from every signature in the batch, each distinct key `A`
/// entering once with the sum of its signatures' `zᵢkᵢ`.
///
/// This is ed25519-dalek's batch equation (cofactorless, like single
/// verification), written out so that each `R` is decompressed once: the
/// strict pre-checks need it decompressed anyway, and `verify_batch` would
/// decompress it again (a third of the work). With those pre-checks — no
/// small-order public key, no small-order `R`, canonical `s` — every record
/// that strict one-by-one verification accepts passes the batch. The
/// converse is not exact: a signer can give its own signature an `R` with a
/// small torsion component, which strict verification refuses but a batch
/// accepts when that signature's coefficient is a multiple of the
/// component's order (1 in 2 to 1 in 8, and the coefficients are derived
/// from the batch's contents). It cannot forge anyone else's signature.
/// LEDGER.md §8 "How signatures are checked" says so.
struct SignatureBatch {
    /// Per signature: `s`, `R`, the challenge `k` and its key's slot.
    s: Vec<Scalar>,
    r: Vec<EdwardsPoint>,
    k: Vec<Scalar>,
    signer: Vec<usize>,
    /// Each distinct key once: a log's records involve few agents, and
    /// `Σ zᵢkᵢ·A` over one key is one point of the multiplication, not one
    /// per signature (which nearly halves its size).
    keys: Vec<EdwardsPoint>,
    slots: HashMap<[u8; 32], usize>,
    /// Absorbs each signature's challenge hash and `s`: the seed of the
    /// coefficients, so they depend on everything in the batch.
    transcript: Sha512,
    /// A signature whose `s` is not canonical: strict verification refuses
    /// it, so the batch fails and each record is checked on its own.
    poisoned: bool,
}

impl Default for SignatureBatch {
    fn default() -> Self {
        let mut transcript = Sha512::new();
        transcript.update(COEFFICIENTS_DOMAIN);
        SignatureBatch {
            s: Vec::new(),
            r: Vec::new(),
            k: Vec::new(),
            signer: Vec::new(),
            keys: Vec::new(),
            slots: HashMap::new(),
            transcript,
            poisoned: false,
        }
    }
}

/// Domain of the batch coefficients' seed.
const COEFFICIENTS_DOMAIN: &[u8] = b"mesh-ledger batch coefficients v1\0";

impl SignatureBatch {
    /// Queue a record's two signatures, after the strict pre-checks.
    fn add(&mut self, parts: &RecordParts<'_>) -> Result<(), String> {
        // Each message is its domain tag and the record's signed bytes,
        // hashed in place rather than concatenated.
        let signatures = [
            (
                "actor",
                parts.record.actor.verifying_key(),
                &parts.actor_sig,
                ACTOR_DOMAIN,
            ),
            (
                "counterparty",
                parts.record.counterparty.verifying_key(),
                &parts.counterparty_sig,
                COUNTERPARTY_DOMAIN,
            ),
        ];
        let mut points = [ED25519_BASEPOINT_POINT; 2];
        for ((who, key, sig, _), point) in signatures.iter().zip(&mut points) {
            if key.is_weak() {
                return Err(format!("{who} key is a small-order point"));
            }
            match CompressedEdwardsY(*sig.r_bytes()).decompress() {
                None => return Err(format!("{who} signature's R is not a curve point")),
                Some(p) if p.is_small_order() => {
                    return Err(format!("{who} signature's R is a small-order point"));
                }
                Some(p) => *point = p,
            }
        }
        for ((_, key, sig, domain), r) in signatures.into_iter().zip(points) {
            let challenge: [u8; 64] = Sha512::new()
                .chain_update(sig.r_bytes())
                .chain_update(key.as_bytes())
                .chain_update(domain)
                .chain_update(parts.signed)
                .finalize()
                .into();
            self.transcript.update(challenge);
            self.transcript.update(sig.s_bytes());
            match Option::<Scalar>::from(Scalar::from_canonical_bytes(*sig.s_bytes())) {
                Some(s) => self.s.push(s),
                None => {
                    self.poisoned = true;
                    self.s.push(Scalar::ZERO);
                }
            }
            self.r.push(r);
            let keys = &mut self.keys;
            let slot = *self.slots.entry(*key.as_bytes()).or_insert_with(|| {
                keys.push(key.to_edwards());
                keys.len() - 1
            });
            self.signer.push(slot);
            self.k.push(Scalar::from_bytes_mod_order_wide(&challenge));
        }
        Ok(())
    }

    fn verify(self) -> bool {
        if self.poisoned {
            return false;
        }
        if self.s.is_empty() {
            return true;
        }
        let n = self.s.len();
        let seed = self
            .transcript
            .chain_update((n as u64).to_le_bytes())
            .finalize();
        // 128-bit coefficients, four from each hash of the seed and a counter.
        let mut z = Vec::with_capacity(n);
        for block in 0..n.div_ceil(4) {
            let bytes = Sha512::new()
                .chain_update(seed)
                .chain_update((block as u64).to_le_bytes())
                .finalize();
            for quarter in bytes.chunks_exact(16).take(n - z.len()) {
                let mut wide = [0u8; 16];
                wide.copy_from_slice(quarter);
                z.push(Scalar::from(u128::from_le_bytes(wide)));
            }
        }
        let b: Scalar = self.s.iter().zip(&z).map(|(s, z)| s * z).sum();
        let mut per_key = vec![Scalar::ZERO; self.keys.len()];
        for ((k, z), slot) in self.k.iter().zip(&z).zip(&self.signer) {
            per_key[*slot] += k * z;
        }
        let scalars = std::iter::once(-b).chain(z.iter().copied()).chain(per_key);
        let points = std::iter::once(ED25519_BASEPOINT_POINT)
            .chain(self.r)
            .chain(self.keys);
        EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::testing::{agents, record};

    fn batch_of(leaves: &[Vec<u8>]) -> SignatureBatch {
        let mut batch = SignatureBatch::default();
        for leaf in leaves {
            batch.add(&RecordParts::decode(leaf).unwrap()).unwrap();
        }
        batch
    }

    fn leaves(n: u64) -> Vec<Vec<u8>> {
        let people = agents(5);
        (0..n)
            .map(|i| record(i, &people).bytes().to_vec())
            .collect()
    }

    #[test]
    fn sound_signatures_pass_and_any_altered_one_fails_the_batch() {
        let good = leaves(40);
        assert!(batch_of(&good).verify());
        assert!(SignatureBatch::default().verify());
        // Flip one bit of each signature's s in turn (a record's last 64
        // bytes are its countersignature, the 83 before end with the actor's).
        for (i, from_end) in [(0usize, 1usize), (17, 1), (39, 1), (5, 84), (22, 84)] {
            let mut bad = good.clone();
            let at = bad[i].len() - from_end;
            bad[i][at] ^= 0x01;
            assert!(!batch_of(&bad).verify(), "record {i}, byte -{from_end}");
        }
    }

    #[test]
    fn a_non_canonical_s_fails_though_it_is_the_same_scalar() {
        let mut bad = leaves(3);
        // s + l encodes the same scalar mod l: strict verification refuses it.
        let last = bad[1].len();
        let s: [u8; 32] = bad[1][last - 32..].try_into().unwrap();
        let sum = Scalar::from_canonical_bytes(s).unwrap();
        let mut carry = 0u16;
        let mut plus_l = [0u8; 32];
        let order: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        for j in 0..32 {
            let v = u16::from(s[j]) + u16::from(order[j]) + carry;
            plus_l[j] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0, "s + l fits 256 bits for this fixture");
        assert_eq!(Scalar::from_bytes_mod_order(plus_l), sum);
        bad[1][last - 32..].copy_from_slice(&plus_l);
        assert!(!batch_of(&bad).verify());
        assert!(CoSignedRecord::from_bytes(&bad[1]).is_err());
    }

    #[test]
    fn the_batch_agrees_with_strict_verification_on_every_record() {
        // Records of a chunk checked as a batch report exactly the records
        // strict verification refuses.
        let mut chunk: Leaves = leaves(30)
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i as u64, l))
            .collect();
        for i in [3usize, 11, 29] {
            let last = chunk[i].1.len() - 1;
            chunk[i].1[last] ^= 0x80;
        }
        let faults = check(None, &chunk);
        let named: Vec<String> = faults.iter().map(|(i, _)| format!("record {i}")).collect();
        let strict: Vec<String> = chunk
            .iter()
            .filter(|(_, leaf)| CoSignedRecord::from_bytes(leaf).is_err())
            .map(|(i, _)| format!("record {i}"))
            .collect();
        assert_eq!(named, strict);
        assert_eq!(strict.len(), 3);
    }
}
