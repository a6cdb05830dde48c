//! Deterministic agents and co-signed records for tests, the `populate`
//! example and benchmarks. Never use these keys for anything real.

use mesh_iatp::testing::identity;
use mesh_iatp::{Identity, Timestamp};
use sha2::{Digest, Sha256};

use crate::record::{ActionKind, ActionRecord, CoSignedRecord};

/// `k` agents, named `ledger agent 0…k-1`.
pub fn agents(k: usize) -> Vec<Identity> {
    (0..k)
        .map(|i| identity(&format!("ledger agent {i}")))
        .collect()
}

/// Record number `i` between two of `agents` (at least 2), co-signed.
pub fn record(i: u64, agents: &[Identity]) -> CoSignedRecord {
    let n = agents.len() as u64;
    let a = (i % n) as usize;
    let b = ((i / n + 1 + i) % n) as usize;
    let b = if a == b { (b + 1) % agents.len() } else { b };
    let kinds = [
        ActionKind::Delegate,
        ActionKind::Invoke,
        ActionKind::Result,
        ActionKind::Spawn,
        ActionKind::Revoke,
    ];
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&i.to_be_bytes());
    ActionRecord {
        kind: kinds[(i % 5) as usize],
        actor: agents[a].did().clone(),
        counterparty: agents[b].did().clone(),
        grant: i
            .is_multiple_of(3)
            .then(|| Sha256::digest(i.to_le_bytes()).into()),
        payload_digest: Sha256::digest(i.to_be_bytes()).into(),
        timestamp: Timestamp(1_767_225_600 + i),
        nonce,
    }
    .sign(&agents[a])
    .and_then(|half| half.countersign(&agents[b]))
    .unwrap_or_else(|e| panic!("fixture record {i}: {e}"))
}
