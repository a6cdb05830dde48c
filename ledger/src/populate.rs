//! Fill a ledger with generated co-signed records, checkpoints and
//! cosignatures — for trying the tool, tests and benchmarks. Used by
//! `mesh-ledger populate` and the `populate` example.

use std::io::Write;

use mesh_iatp::Timestamp;
use mesh_iatp::testing::identity;

use crate::checkpoint::{Checkpoint, cosign, witness_verifier};
use crate::log_store::LogStore;
use crate::note::NoteVerifier;
use crate::store::{Store, StoreError};
use crate::testing::{agents, record};

/// The origin of the generated log.
pub const ORIGIN: &str = "mesh.example/log/populate";
/// The generated witness's key name.
pub const WITNESS: &str = "populate.example/witness";

/// The verifier for the generated witness (to pass to `verify`).
pub fn witness() -> NoteVerifier {
    // A fixed, valid name: cannot fail.
    match witness_verifier(WITNESS, identity("populate witness").did().clone()) {
        Ok(v) => v,
        Err(e) => unreachable!("fixed witness name is valid: {e}"),
    }
}

/// Append records until the log has `records`, `batch` per transaction, with
/// a checkpoint and a cosignature after each. Prints `acked <size>` (and
/// flushes) after every durable batch. Resumes an existing log.
pub async fn populate(
    db: &str,
    records: u64,
    agent_count: usize,
    batch: usize,
    out: &mut dyn Write,
) -> Result<u64, StoreError> {
    let log_key = identity("populate log");
    let witness_key = identity("populate witness");
    let store = Store::open(db).await?;
    let mut log = match store.log(ORIGIN).await {
        Ok(log) => log,
        Err(StoreError::UnknownLog(_)) => store.create_log(ORIGIN, log_key.did()).await?,
        Err(e) => return Err(e),
    };
    let people = agents(agent_count.max(2));
    while log.size() < records {
        let start = log.size();
        let end = (start + batch.max(1) as u64).min(records);
        let batch: Vec<_> = (start..end).map(|i| record(i, &people)).collect();
        let size = log.append(&batch).await?;
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: log.root(),
        };
        let mut note = cp
            .sign(&log_key)
            .map_err(|e| StoreError::Checkpoint(e.to_string()))?;
        note.signatures.push(cosign(
            &note.text,
            WITNESS,
            &witness_key,
            Timestamp(1_767_225_600),
        ));
        log.add_checkpoint(&note.to_bytes()).await?;
        // Acknowledge only after the commit returned.
        let _ = writeln!(out, "acked {size}").and_then(|()| out.flush());
    }
    Ok(log.size())
}
