//! Delegated tasks per second between two nodes on loopback TCP, both
//! ledgers durable SQLite files, a no-op task handler: each task is two
//! co-signed records (`delegate` and `result`) in both logs. Measured with
//! group commit (the default: every input ready is taken through the agent
//! before one commit) and without it (a commit after every input), with 64
//! tasks in flight. Printed as tasks/s over three runs of 2,000 tasks, with
//! the CPU time the whole process spent per task (all threads: both nodes,
//! their connections and databases).
//!
//! Floors measured in the same run, each the CPU one part of a task costs
//! with nothing else around it:
//! - the signatures a task needs (5 signs and 5 verifies);
//! - the messaging: bare request-response round trips over the same
//!   transport (TCP, Noise, Yamux, the IATP codec), 64 in flight, nothing
//!   checked or stored; a task needs two (the `delegate` record co-signed,
//!   then the `result`);
//! - the storage: its four records (two in each node's log) appended to
//!   two durable SQLite stores in commits of 16, as group commit does
//!   (the agent's facts not included).
//!
//! `cargo bench -p mesh-node --bench tasks`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::request_response::{Event, Message};
use libp2p::swarm::SwarmEvent;
use mesh_iatp::Score;
use mesh_iatp::testing::{FIXTURE_NOW, Federation};
use mesh_node::node::{
    DelegateOptions, FixedClock, IatpRequest, IatpResponse, Limits, Node, Task, TaskOutcome,
};
use serde_bytes::ByteBuf;

mod common;

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

/// CPU seconds this process has used, all threads (user and system).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the line, in clock ticks (100 a second).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// Tasks per second and CPU microseconds per task for one run.
async fn run(batch: usize) -> (f64, f64) {
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
    let cpu = cpu_secs();
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
    let cpu_per_task = (cpu_secs() - cpu) * 1e6 / TASKS as f64;
    assert_eq!(
        a.log_info().await.unwrap().size,
        2 * TASKS as u64,
        "the delegator's log after {TASKS} tasks"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    (rate, cpu_per_task)
}

/// Bare request-response round trips per second, and CPU microseconds
/// each, over the nodes' transport: two swarms on their own tasks (as the
/// nodes' drivers are), `IN_FLIGHT` requests of 1 KiB outstanding, each
/// answered with 256 bytes, nothing checked or stored.
async fn messaging_floor() -> (f64, f64) {
    const ROUND_TRIPS: usize = 2 * TASKS;
    let fed = Federation::new();
    let mut a = common::swarm(&fed.agent(&fed.acme, "floor-a", &[]));
    let mut b = common::swarm(&fed.agent(&fed.globex, "floor-b", &[]));
    common::connect(&mut a, &mut b).await;
    let b_peer = *b.local_peer_id();
    let answering = tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(Event::Message {
                message: Message::Request { channel, .. },
                ..
            }) = b.select_next_some().await
            {
                let answer = IatpResponse::Response(ByteBuf::from(vec![1; 256]));
                b.behaviour_mut()
                    .send_response(channel, Ok(answer))
                    .unwrap();
            }
        }
    });
    let asking = tokio::spawn(async move {
        let started = Instant::now();
        let cpu = cpu_secs();
        let (mut sent, mut done) = (0, 0);
        while done < ROUND_TRIPS {
            while sent < ROUND_TRIPS && sent - done < IN_FLIGHT {
                let request = IatpRequest::Hello(ByteBuf::from(vec![7; 1024]));
                a.behaviour_mut().send_request(&b_peer, Ok(request));
                sent += 1;
            }
            match a.select_next_some().await {
                SwarmEvent::Behaviour(Event::Message {
                    message: Message::Response { .. },
                    ..
                }) => done += 1,
                SwarmEvent::Behaviour(Event::OutboundFailure { error, .. }) => {
                    panic!("round trip {done} of {ROUND_TRIPS} failed: {error}")
                }
                _ => {}
            }
        }
        (
            ROUND_TRIPS as f64 / started.elapsed().as_secs_f64(),
            (cpu_secs() - cpu) * 1e6 / ROUND_TRIPS as f64,
        )
    });
    let floor = asking.await.unwrap();
    answering.abort();
    floor
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

/// CPU microseconds per task of appending its records: two SQLite files,
/// each log taking 2 records a task in commits of 16.
async fn storage_floor() -> f64 {
    use mesh_ledger::LogStore;
    let people = mesh_ledger::testing::agents(5);
    let records: Vec<_> = (0..2 * TASKS as u64)
        .map(|i| mesh_ledger::testing::record(i, &people))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &'static str| {
        let path = dir.path().join(format!("{name}.db"));
        async move {
            let store = mesh_ledger::store::Store::open(path.to_str().unwrap())
                .await
                .unwrap();
            let key = mesh_iatp::testing::identity(&format!("floor log {name}"));
            store.create_log(name, key.did()).await.unwrap()
        }
    };
    let (mut a, mut b) = (open("a").await, open("b").await);
    let cpu = cpu_secs();
    for chunk in records.chunks(16) {
        let (x, y) = futures::join!(a.append(chunk), b.append(chunk));
        x.unwrap();
        y.unwrap();
    }
    (cpu_secs() - cpu) * 1e6 / TASKS as f64
}

/// `lo–hi` of `values`, rounded.
fn range(values: impl Iterator<Item = f64> + Clone) -> String {
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(0.0, f64::max);
    format!("{lo:.0}–{hi:.0}")
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
    let floors: Vec<(f64, f64)> = (0..3).map(|_| rt.block_on(messaging_floor())).collect();
    println!(
        "messaging floor: {} bare round trips/s ({} µs of CPU each) = {} tasks/s at two a \
         task, over 3 runs of {}",
        range(floors.iter().map(|f| f.0)),
        range(floors.iter().map(|f| f.1)),
        range(floors.iter().map(|f| f.0 / 2.0)),
        2 * TASKS
    );
    let storage: Vec<f64> = (0..3).map(|_| rt.block_on(storage_floor())).collect();
    println!(
        "storage floor: {} µs of CPU a task (4 records, 2 durable SQLite logs, commits of 16), \
         over 3 runs of {TASKS}",
        range(storage.iter().copied())
    );
    for (label, batch) in [("group commit (256)", 256), ("a commit per record", 1)] {
        let runs: Vec<(f64, f64)> = (0..3).map(|_| rt.block_on(run(batch))).collect();
        println!(
            "tasks/s, {label}: {} over 3 runs of {TASKS} ({}); CPU per task {} µs",
            range(runs.iter().map(|r| r.0)),
            runs.iter()
                .map(|r| format!("{:.0}", r.0))
                .collect::<Vec<_>>()
                .join(", "),
            range(runs.iter().map(|r| r.1)),
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
