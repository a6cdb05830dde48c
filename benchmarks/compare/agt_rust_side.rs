//! The Agent Governance Toolkit's Rust side of the comparison (`agentmesh`
//! 4.0.0 from crates.io). compare.py copies this file into a scratch crate
//! as its `main.rs` and builds it there, so the crate never enters this
//! repository's build. Line protocol as in README.md.

use std::io::BufRead;
use std::time::Instant;

use agentmesh::trust::TrustManager;
use agentmesh::{AgentIdentity, AuditLogger};

fn checks() -> String {
    let handshake = "no handshake type: TrustManager::verify_peer in both directions over \
        a caller-made 32-byte challenge (DID string = identity's DID, one Ed25519 verify); \
        per direction 1 sign + 1 verify; no credential, expiry, replay or trust check";
    let append = "AuditLogger::log: SHA-256 over the entry and previous hash, pushed to a \
        Vec behind a mutex; in memory only (the crate has no durable audit store)";
    let verify = "AuditLogger::verify over 10,000 in-memory entries: each SHA-256 \
        recomputed and the previous-hash links; no signatures";
    let trust = "TrustManager::record_success (decay, +reward, clamp; persistence off) \
        and get_trust_score";
    format!(
        r#"{{"side":"AGT Rust agentmesh 4.0.0","checks":{{"handshake":"{handshake}","append":"{append}","verify_10k":"{verify}","delegation_depth3":null,"trust_update_lookup":"{trust}"}}}}"#
    )
}

struct Sides {
    alice: AgentIdentity,
    bob: AgentIdentity,
    manager: TrustManager,
    appending: AuditLogger,
    big: Option<AuditLogger>,
    counter: u64,
}

impl Sides {
    fn new() -> Self {
        Sides {
            alice: AgentIdentity::generate("alice", vec!["tools:github".into()]).unwrap(),
            bob: AgentIdentity::generate("bob", vec!["search".into()]).unwrap(),
            manager: TrustManager::with_defaults(),
            appending: AuditLogger::new(),
            big: None,
            counter: 0,
        }
    }

    /// A fresh 32-byte challenge (the caller's job in this crate).
    fn challenge(&mut self) -> [u8; 32] {
        self.counter += 1;
        let mut c = [0u8; 32];
        c[..8].copy_from_slice(&self.counter.to_le_bytes());
        c
    }

    fn time(&mut self, op: &str) -> Option<f64> {
        let start;
        match op {
            "handshake" => {
                let (ca, cb) = (self.challenge(), self.challenge());
                start = Instant::now();
                let sb = self.bob.sign(&ca);
                let sa = self.alice.sign(&cb);
                let ok = self.manager.verify_peer(&self.bob.did, &self.bob, &ca, &sb)
                    && self.manager.verify_peer(&self.alice.did, &self.alice, &cb, &sa);
                assert!(ok);
            }
            "append" => {
                start = Instant::now();
                std::hint::black_box(self.appending.log("did:agentmesh:alice", "read", "allow"));
            }
            "verify_10k" => {
                let big = self.big.get_or_insert_with(|| {
                    let l = AuditLogger::new();
                    for i in 0..10_000 {
                        l.log("did:agentmesh:alice", &format!("read {i}"), "allow");
                    }
                    l
                });
                start = Instant::now();
                assert!(big.verify());
            }
            "trust_update_lookup" => {
                start = Instant::now();
                self.manager.record_success("did:agentmesh:bob");
                std::hint::black_box(self.manager.get_trust_score("did:agentmesh:bob"));
            }
            _ => return None,
        }
        Some(start.elapsed().as_secs_f64() * 1e6)
    }
}

fn main() {
    println!("{}", checks());
    let mut sides = Sides::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        let (Some(op), Some(n)) = (words.next(), words.next()) else {
            continue;
        };
        let n: usize = n.parse().unwrap();
        let samples: Vec<String> = (0..n)
            .map_while(|_| sides.time(op))
            .map(|us| format!("{us:.3}"))
            .collect();
        if samples.is_empty() {
            println!(r#"{{"op":"{op}","error":"not in this crate"}}"#);
        } else {
            println!(r#"{{"op":"{op}","samples_us":[{}]}}"#, samples.join(","));
        }
    }
}
