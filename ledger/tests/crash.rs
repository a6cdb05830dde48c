//! Crash safety: a writer process is killed with SIGKILL at varied points,
//! many times; after each kill every acknowledged record is there and the
//! whole ledger verifies.
//!
//! The writer is `mesh-ledger populate` (the same code as the example).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_ledger::LogStore;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mesh_ledger::store::Store;
use mesh_ledger::verify::verify_log;

#[tokio::test]
async fn killed_writers_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let bin = env!("CARGO_BIN_EXE_mesh-ledger");
    let mut acked_total = 0u64;
    // Kill after a varying number of acknowledged batches (deterministic
    // spread), plus a varying extra delay so some kills land mid-transaction.
    for round in 0..8u64 {
        let target = acked_total + 100 * (1 + round % 3) + 10 * round;
        let mut child = Command::new(bin)
            .args([
                "populate",
                "--db",
                db.to_str().unwrap(),
                "--records",
                "100000",
                "--agents",
                "6",
                "--batch",
                "50",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = acked_total;
        while last < target && Instant::now() < deadline {
            match lines.next() {
                Some(Ok(line)) => last = line.trim_start_matches("acked ").parse().unwrap(),
                _ => break,
            }
        }
        std::thread::sleep(Duration::from_micros(300 * (round % 4)));
        // SIGKILL: no destructors, no flushes.
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            last > acked_total || round == 0 || last == acked_total,
            "the writer made progress"
        );
        acked_total = last;

        let store = Store::open(db.to_str().unwrap()).await.unwrap();
        let log = store.log("mesh.example/log/populate").await.unwrap();
        assert!(
            log.size() >= acked_total,
            "round {round}: acked {acked_total}, found {}",
            log.size()
        );
        let report = verify_log(&store, "mesh.example/log/populate", &[], |_, _| {})
            .await
            .unwrap();
        assert!(report.is_sound(), "round {round}: {:?}", report.faults);
        acked_total = log.size();
    }
    assert!(
        acked_total >= 800,
        "the rounds appended {acked_total} records"
    );
}
