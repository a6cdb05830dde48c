//! What the local agent API adds to a delegated task: two nodes on
//! loopback TCP (durable SQLite logs, a no-op handler at the delegatee),
//! one task at a time, delegated alternately through the embedding API
//! (`Node::delegate_task`: the p2p path, the floor) and through the agent
//! API (`POST /v1/tasks` with `wait_secs`, over loopback HTTP, a new
//! connection per request as the CLI makes them). Also the bare HTTP round
//! trip (`GET /v1/healthz`). Printed: p50 and p99 of each, and the p50
//! difference, over three runs of 300 tasks each way.
//!
//! `cargo bench -p mesh-node --bench agent_api`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use mesh_iatp::Score;
use mesh_iatp::testing::{FIXTURE_NOW, Federation};
use mesh_node::agent_api::client::ApiClient;
use mesh_node::agent_api::{self, AgentApiConfig};
use mesh_node::node::{DelegateOptions, FixedClock, Limits, Node, Task, TaskOutcome};
use serde_bytes::ByteBuf;
use serde_json::json;

const TASKS: usize = 300;
const TOKEN: &str = "bench-token-0123456789";

async fn node(
    fed: &Federation,
    name: &str,
    org: &mesh_iatp::Identity,
    dir: &std::path::Path,
) -> Node {
    Node::builder()
        .agent(fed.agent(org, name, &["search"]))
        .bundle(fed.bundle.clone())
        .data_dir(dir.join(name))
        .clock(FixedClock(FIXTURE_NOW))
        .kademlia(false)
        .task_handler(|_: &mesh_iatp::Did, _: &Task| TaskOutcome::succeeded(Vec::new()))
        .limits(Limits {
            requests_per_sec: 1e9,
            request_burst: 1e9,
            ..Limits::default()
        })
        .build()
        .await
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn run() -> (Vec<Duration>, Vec<Duration>, Vec<Duration>) {
    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    let a = node(&fed, "bench-api-a", &fed.acme, dir.path()).await;
    let b = node(&fed, "bench-api-b", &fed.acme, dir.path()).await;
    let addr = b
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .await
        .unwrap();
    let b_did = a.connect(addr).await.unwrap();
    let api = agent_api::serve(
        &a,
        None,
        AgentApiConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            token: TOKEN.into(),
            limits: Default::default(),
        },
    )
    .await
    .unwrap();
    let client = ApiClient::new(api.addr().clone(), TOKEN.into());
    let task = || Task {
        resource: "search".into(),
        action: "read".into(),
        input: ByteBuf::new(),
    };
    let options = DelegateOptions {
        min_trust: Score::saturating(0),
        ..DelegateOptions::default()
    };
    let body = json!({"to": b_did.to_string(), "resource": "search", "action": "read",
                      "min_trust": 0, "wait_secs": 10});
    let (mut direct, mut through_api, mut http) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..TASKS {
        let t = Instant::now();
        let d = a
            .delegate_task(&b_did, task(), options.clone())
            .await
            .unwrap();
        direct.push(t.elapsed());
        assert!(d.outcome.success);

        let t = Instant::now();
        let (_, done) = client.post("/v1/tasks", &body).await.unwrap();
        through_api.push(t.elapsed());
        assert_eq!(done["state"], "succeeded", "{done}");

        let t = Instant::now();
        client.get("/v1/healthz").await.unwrap();
        http.push(t.elapsed());
    }
    api.shutdown().await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    (direct, through_api, http)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("{TASKS} no-op tasks each way, one at a time, interleaved");
    for round in 1..=3 {
        let (mut direct, mut api, mut http) = rt.block_on(run());
        direct.sort();
        api.sort();
        http.sort();
        println!(
            "run {round}: p2p (floor) p50 {:.0} µs p99 {:.0} µs | agent API p50 {:.0} µs p99 {:.0} µs | \
             added p50 {:.0} µs | HTTP round trip p50 {:.0} µs",
            us(percentile(&direct, 0.5)),
            us(percentile(&direct, 0.99)),
            us(percentile(&api, 0.5)),
            us(percentile(&api, 0.99)),
            us(percentile(&api, 0.5)) - us(percentile(&direct, 0.5)),
            us(percentile(&http, 0.5)),
        );
    }
}
