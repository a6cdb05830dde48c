//! This project's side of `benchmarks/compare/compare.py`: times the five
//! operations of the side-by-side comparison when the driver asks.
//!
//! The driver speaks a line protocol on stdin/stdout (benchmarks/compare/
//! README.md): this program first prints one JSON line naming what each
//! operation checks, then answers every `OP N` line with one JSON line of N
//! timed samples in microseconds. Set-up (keys, the 10,000-record ledger)
//! happens untimed on an operation's first request.
//!
//! Run by the driver: `python3 benchmarks/compare/compare.py`. By hand:
//! `cargo run --release -p mesh-node --example compare_side`, then type
//! `handshake 100`.

// Benchmark code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::time::Instant;

use mesh_delegation::{Capability, Grant, SignedGrant, verify_chain};
use mesh_iatp::handshake::{Initiator, NonceCache, Responder};
use mesh_iatp::testing::{FIXTURE_NOW, Handshakers, identity};
use mesh_iatp::{Did, Score};
use mesh_ledger::LogStore;
use mesh_ledger::store::{Log, Store};
use mesh_ledger::testing::{agents, record};
use mesh_ledger::verify::verify_log;
use mesh_trust::{Evidence, EvidenceKind, TrustConfig, TrustEngine};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::json;

const NOW: mesh_iatp::Timestamp = FIXTURE_NOW;

/// What each operation checks, printed first so the table can say it.
fn checks() -> serde_json::Value {
    json!({
        "side": "mesh (this project)",
        "checks": {
            "handshake": "IATP first contact, both sides in one process, nothing cached: \
                each org credential verified against the trust bundle (signature, \
                validity window, revocation list), each agent's signature over the \
                transcript (both nonces, DIDs and transport peer IDs), replay cache, \
                version and capability overlap; 3 Ed25519 signs + 5 strict verifies",
            "append": "one co-signed record appended to the SQLite ledger and committed \
                (WAL, synchronous=FULL: on disk when the call returns)",
            "verify_10k": "10,000 co-signed records read from SQLite: 20,000 Ed25519 \
                signatures (both parties of every record), the chain of record hashes \
                and the Merkle tree rebuilt against the stored root",
            "delegation_depth3": "a 3-link grant chain, DIDs not cached: 3 strict Ed25519 \
                verifies, each link's parent hash, issuer = previous audience, \
                capability narrowing, depth, validity windows, a root the gate accepts",
            "trust_update_lookup": "one piece of evidence recorded (time-decayed Beta \
                masses) and the subject's blended score read back",
        }
    })
}

struct Handshake {
    world: Handshakers,
    rng: ChaCha20Rng,
}

impl Handshake {
    fn new() -> Self {
        Handshake {
            world: Handshakers::new(),
            rng: ChaCha20Rng::seed_from_u64(5),
        }
    }

    fn once(&mut self) {
        // First contact: no DID or credential remembered from before.
        mesh_iatp::clear_parse_cache();
        let w = &self.world;
        let mut rng = self.rng.clone();
        let mut nonces = NonceCache::new(8, 60);
        let (waiting, hello) =
            Initiator::start(w.ctx(&w.alice), w.bob.peer_id(), NOW, &mut rng).unwrap();
        let (pending, response) = Responder::on_hello(
            w.ctx(&w.bob),
            w.alice.peer_id(),
            &hello,
            NOW,
            &mut nonces,
            &mut rng,
        )
        .unwrap();
        let (_, confirm) = waiting
            .on_response(w.ctx(&w.alice), &response, NOW)
            .unwrap();
        pending.on_confirm(w.ctx(&w.bob), &confirm, NOW).unwrap();
        self.rng = rng;
    }
}

struct Ledgers {
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    appending: Log,
    fresh: Vec<mesh_ledger::CoSignedRecord>,
    verifying: Store,
}

impl Ledgers {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let people = agents(8);
        let db = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let (appending, verifying) = rt.block_on(async {
            let store = Store::open(&db("append.db")).await.unwrap();
            let appending = store.create_log("append", people[0].did()).await.unwrap();
            let verifying = Store::open(&db("verify.db")).await.unwrap();
            let mut log = verifying
                .create_log("verify", people[0].did())
                .await
                .unwrap();
            let records: Vec<_> = (0..10_000).map(|i| record(i, &people)).collect();
            for chunk in records.chunks(1000) {
                log.append(chunk).await.unwrap();
            }
            (appending, verifying)
        });
        let fresh = (0..20_000).map(|i| record(i, &people)).rev().collect();
        Ledgers {
            rt,
            _dir: dir,
            appending,
            fresh,
            verifying,
        }
    }

    fn append_once(&mut self) {
        let record = self.fresh.pop().expect("at most 20,000 appends");
        self.rt
            .block_on(self.appending.append(std::slice::from_ref(&record)))
            .unwrap();
    }

    fn verify_once(&self) {
        let report = self
            .rt
            .block_on(verify_log(&self.verifying, "verify", &[], |_, _| {}))
            .unwrap();
        assert!(report.is_sound());
    }
}

struct Delegation {
    chain: Vec<SignedGrant>,
    requester: Did,
    root: Did,
}

impl Delegation {
    fn new() -> Self {
        let ids: Vec<_> = ["owner", "alice", "bob", "carol"]
            .iter()
            .map(|n| identity(n))
            .collect();
        let caps = |c: &str| vec![Capability::parse(c).unwrap()];
        let mut chain: Vec<SignedGrant> = Vec::new();
        for (k, cap) in [
            "tools/*:read,write",
            "tools/*:read,write",
            "tools/github/*:read",
        ]
        .iter()
        .enumerate()
        {
            let grant = Grant {
                issuer: ids[k].did().clone(),
                audience: ids[k + 1].did().clone(),
                capabilities: caps(cap),
                not_before: NOW.minus_secs(3600),
                expires: NOW.plus_secs(86_400),
                depth: 3 - k as u8,
                min_trust: Score::saturating(0),
                nonce: [k as u8; 16],
                parent: chain.last().map(SignedGrant::hash),
            };
            chain.push(grant.sign(&ids[k]).unwrap());
        }
        Delegation {
            chain,
            requester: ids[3].did().clone(),
            root: ids[0].did().clone(),
        }
    }

    fn once(&self) {
        mesh_iatp::clear_parse_cache();
        verify_chain(&self.chain, &self.requester, |d| *d == self.root).unwrap();
    }
}

struct Trust {
    engine: TrustEngine,
    subject: Did,
    tick: u64,
}

impl Trust {
    fn new() -> Self {
        let engine =
            TrustEngine::new(identity("me").did().clone(), TrustConfig::default()).unwrap();
        Trust {
            engine,
            subject: identity("subject").did().clone(),
            tick: 0,
        }
    }

    fn once(&mut self) -> Score {
        self.tick += 1;
        let at = NOW.plus_secs(self.tick);
        self.engine.record(Evidence::new(
            self.subject.clone(),
            EvidenceKind::TaskSuccess,
            at,
        ));
        self.engine.score(&self.subject, at)
    }
}

#[derive(Default)]
struct Sides {
    handshake: Option<Handshake>,
    ledgers: Option<Ledgers>,
    delegation: Option<Delegation>,
    trust: Option<Trust>,
}

impl Sides {
    /// One timed run of `op`, in microseconds; `None` for an unknown op.
    fn time(&mut self, op: &str) -> Option<f64> {
        let start;
        match op {
            "handshake" => {
                let h = self.handshake.get_or_insert_with(Handshake::new);
                start = Instant::now();
                h.once();
            }
            "append" => {
                let l = self.ledgers.get_or_insert_with(Ledgers::new);
                start = Instant::now();
                l.append_once();
            }
            "verify_10k" => {
                let l = self.ledgers.get_or_insert_with(Ledgers::new);
                start = Instant::now();
                l.verify_once();
            }
            "delegation_depth3" => {
                let d = self.delegation.get_or_insert_with(Delegation::new);
                start = Instant::now();
                d.once();
            }
            "trust_update_lookup" => {
                let t = self.trust.get_or_insert_with(Trust::new);
                start = Instant::now();
                std::hint::black_box(t.once());
            }
            _ => return None,
        }
        Some(start.elapsed().as_secs_f64() * 1e6)
    }
}

fn main() {
    println!("{}", checks());
    let mut sides = Sides::default();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        let (Some(op), Some(n)) = (words.next(), words.next()) else {
            continue;
        };
        let n: usize = n.parse().expect("a count of samples");
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            match sides.time(op) {
                Some(us) => samples.push(us),
                None => break,
            }
        }
        if samples.is_empty() {
            println!("{}", json!({"op": op, "error": "unknown operation"}));
        } else {
            println!("{}", json!({"op": op, "samples_us": samples}));
        }
    }
}
