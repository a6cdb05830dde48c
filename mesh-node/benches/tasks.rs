//! Delegated tasks per second between two nodes on loopback TCP, both
//! ledgers durable SQLite files, a no-op task handler: each task is two
//! co-signed records (`delegate` and `result`) in both logs. Measured with
//! group commit (the default: every input ready is taken through the agent
//! before one commit) and without it (a commit after every input), with 64
//! tasks in flight. Printed as tasks/s over three runs of 2,000 tasks.
//!
//! `cargo bench -p mesh-node --bench tasks`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use mesh_iatp::Score;
use mesh_iatp::testing::{FIXTURE_NOW, Federation};
use mesh_node::node::{DelegateOptions, FixedClock, Limits, Node, Task, TaskOutcome};
use serde_bytes::ByteBuf;

const TASKS: usize = 2_000;
const IN_FLIGHT: usize = 64;

async fn node(fed: &Federation, name: &str, dir: &std::path::Path, batch: usize) -> Node {
    let org = if name.ends_with('a') {
        &fed.acme
    } else {
        &fed.globex
    };
    Node::builder()
        .agent(fed.agent(org, name, &[]))
        .bundle(fed.bundle.clone())
        .data_dir(dir.join(name))
        .clock(FixedClock(FIXTURE_NOW))
        .kademlia(false)
        .commit_batch(batch)
        // The no-op handler: succeed with no output.
        .task_handler(|_: &mesh_iatp::Did, _: &Task| TaskOutcome {
            success: true,
            output: ByteBuf::new(),
            stopped: None,
        })
        .limits(Limits {
            requests_per_sec: 1e9,
            request_burst: 1e9,
            ..Limits::default()
        })
        .build()
        .await
        .unwrap()
}

async fn run(batch: usize) -> f64 {
    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let a = node(&fed, "bench-tasks-a", dir.path(), batch).await;
    let b = node(&fed, "bench-tasks-b", dir.path(), batch).await;
    let addr = b
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .await
        .unwrap();
    let b_did = a.connect(addr).await.unwrap();
    let task = Task {
        resource: "search".into(),
        action: "query".into(),
        input: ByteBuf::new(),
    };
    let options = DelegateOptions {
        min_trust: Score::saturating(0),
        lifetime_secs: 3600,
        authority: None,
        ..DelegateOptions::default()
    };
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut sent = 0;
    let mut done = 0;
    while done < TASKS {
        while sent < TASKS && in_flight.len() < IN_FLIGHT {
            let (a, b_did, task, options) =
                (a.clone(), b_did.clone(), task.clone(), options.clone());
            in_flight.push(async move { a.delegate_task(&b_did, task, options).await });
            sent += 1;
        }
        if let Some(r) = in_flight.next().await {
            if let Err(e) = r {
                panic!("task {done} of {TASKS} (commit batch {batch}) failed: {e}");
            }
            done += 1;
        }
    }
    let rate = TASKS as f64 / started.elapsed().as_secs_f64();
    assert_eq!(
        a.log_info().await.unwrap().size,
        2 * TASKS as u64,
        "the delegator's log after {TASKS} tasks"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    rate
}

/// Microseconds per signature and per strict verification on one core.
fn signature_floor() -> (f64, f64) {
    let id = mesh_iatp::testing::identity("bench floor");
    let msg = [7u8; 200];
    let n = 2_000;
    let started = Instant::now();
    let mut sig = id.sign(&msg);
    for i in 0..n {
        sig = id.sign(&[&msg[..], &[i as u8]].concat());
    }
    let sign = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let signed = [&msg[..], &[(n - 1) as u8]].concat();
    let started = Instant::now();
    for _ in 0..n {
        assert!(
            id.did()
                .verifying_key()
                .verify_strict(&signed, &sig)
                .is_ok()
        );
    }
    let verify = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    (sign, verify)
}

fn main() {
    let (sign, verify) = signature_floor();
    let per_task = 5.0 * (sign + verify);
    println!(
        "signature floor: sign {sign:.1} µs, verify {verify:.1} µs; 5 signs + 5 verifies = \
         {per_task:.0} µs a task = {:.0} tasks/s on one core, {:.0} on two",
        1e6 / per_task,
        2e6 / per_task
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for (label, batch) in [("group commit (256)", 256), ("a commit per record", 1)] {
        let rates: Vec<f64> = (0..3).map(|_| rt.block_on(run(batch))).collect();
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(0.0, f64::max);
        println!(
            "tasks/s, {label}: {lo:.0}–{hi:.0} over 3 runs of {TASKS} ({})",
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
