//! The dashboard server over a small in-memory view: the documented routes
//! are the served routes, the read-only default, token rules, bounded
//! memory, the live stream and its end at shutdown. (The same server over a
//! real node is tested in mesh-node's `dashboard` and `browser` tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_dashboards::server::{API_ROUTES, DashboardConfig, DashboardError, MAX_LIVE_STREAMS};
use mesh_dashboards::view::*;
use mesh_iatp::{Did, Identity, Score, Timestamp};
use mesh_trust::{Explanation, Tier, TrustEngine};
use serde_json::Value;
use tokio::sync::broadcast;

const REVOCABLE: [u8; 32] = [0xab; 32];

struct Fake {
    me: Identity,
    peer: Identity,
    activity: broadcast::Sender<Activity>,
}

impl Fake {
    fn new() -> Arc<Fake> {
        Arc::new(Fake {
            me: Identity::from_secret_bytes(&[1; 32]),
            peer: Identity::from_secret_bytes(&[2; 32]),
            activity: broadcast::channel(16).0,
        })
    }
}

impl MeshView for Fake {
    fn identity(&self) -> NodeIdentity {
        NodeIdentity {
            did: self.me.did().to_string(),
            peer_id: "12D3KooWfake".into(),
            name: "fake".into(),
            org: "acme".into(),
            listen: vec![],
        }
    }
    async fn peers(&self) -> Vec<Peer> {
        vec![Peer {
            did: self.peer.did().clone(),
            name: "peer".into(),
            org: "globex".into(),
            score: Score::saturating(640),
            tier: Tier::Standard,
        }]
    }
    async fn explain(&self, agent: &Did) -> Result<Explanation, ViewError> {
        Ok(TrustEngine::new(self.me.did().clone(), Default::default())
            .unwrap()
            .explain(agent, Timestamp(1_000)))
    }
    async fn links(&self) -> Vec<Link> {
        vec![Link {
            hash: hex::encode(REVOCABLE),
            kind: "grant",
            issuer: self.me.did().to_string(),
            audience: self.peer.did().to_string(),
            capabilities: vec!["search:query".into()],
            expires: 2_000,
            revoked: false,
            issued_here: true,
        }]
    }
    async fn ledger(&self) -> Result<LedgerStatus, ViewError> {
        Ok(LedgerStatus {
            origin: self.me.did().to_string(),
            size: 0,
            root: "00".repeat(32),
            checkpoint: None,
            witnessing: vec![],
        })
    }
    async fn records(&self, _: u64, _: u64) -> Result<Vec<RecordEntry>, ViewError> {
        Ok(vec![])
    }
    async fn prove(&self, index: u64) -> Result<InclusionProof, ViewError> {
        Err(ViewError::NotFound(format!("record {index}")))
    }
    async fn verify(&self) -> Result<Verification, ViewError> {
        Err(ViewError::Unavailable("no log".into()))
    }
    async fn metrics(&self) -> String {
        "# EOF\n".into()
    }
    fn activity(&self) -> broadcast::Receiver<Activity> {
        self.activity.subscribe()
    }
}

impl MeshControl for Fake {
    async fn revoke(&self, link: [u8; 32], _: &str) -> Result<RevokeOutcome, ViewError> {
        if link == REVOCABLE {
            Ok(RevokeOutcome {
                link: hex::encode(link),
                record: Some(7),
            })
        } else {
            Err(ViewError::NotFound(hex::encode(link)))
        }
    }
}

fn config(token: Option<&str>) -> DashboardConfig {
    DashboardConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        token: token.map(String::from),
        sample_every: Duration::from_millis(50),
        samples_kept: 5,
        connections: mesh_dashboards::ConnLimits::default(),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// GET or POST (blocking, off the runtime); status and JSON body.
async fn call(
    method: &'static str,
    url: String,
    auth: Option<String>,
    body: Value,
) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let mut r = if method == "POST" {
            let mut req = agent().post(&url);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send_json(&body).unwrap()
        } else {
            agent().get(&url).call().unwrap()
        };
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_routes_are_exactly_the_served_routes() {
    let openapi: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
    let mut documented: Vec<(String, String)> = openapi["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut served: Vec<(String, String)> = API_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);

    // And every one is routed (not the fallback), with a JSON error body
    // whenever it fails.
    let view = Fake::new();
    let peer = view.peer.did().to_string();
    let d = mesh_dashboards::serve(view, config(Some("a-long-enough-token")))
        .await
        .unwrap();
    for (method, path) in API_ROUTES {
        if *path == "/api/v1/events" {
            continue; // a stream: tested below
        }
        let path = path.replace("{did}", &peer).replace("{index}", "0");
        let (status, body) = call(
            method,
            format!("http://{}{path}", d.local_addr()),
            None,
            Value::Null,
        )
        .await;
        assert_ne!(
            body.get("message").and_then(Value::as_str),
            Some("no such page or endpoint"),
            "{method} {path} is not routed"
        );
        if status >= 400 {
            assert!(
                body["error"].is_string(),
                "{method} {path}: {status} {body}"
            );
        }
    }
    let (status, body) = call("GET", format!("{}nowhere", d.url()), None, Value::Null).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_dashboard_is_read_only() {
    let d = mesh_dashboards::serve(Fake::new(), config(None))
        .await
        .unwrap();
    let url = format!("{}api/v1/revocations", d.url());
    let body = serde_json::json!({ "link": hex::encode(REVOCABLE) });
    let (status, e) = call(
        "POST",
        url.clone(),
        Some("Bearer anything-at-all-here".into()),
        body.clone(),
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (403, Some("read_only")));
    let (_, node) = call("GET", format!("{}api/v1/node", d.url()), None, Value::Null).await;
    assert_eq!(node["writes_enabled"], false);
    d.shutdown().await;

    // With a token, the same request works only with it.
    let d = mesh_dashboards::serve(Fake::new(), config(Some("0123456789abcdef")))
        .await
        .unwrap();
    let url = format!("{}api/v1/revocations", d.url());
    let (status, _) = call(
        "POST",
        url.clone(),
        Some("Bearer 0123456789abcdeX".into()),
        body.clone(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        "POST",
        url.clone(),
        Some("Basic 0123456789abcdef".into()),
        body.clone(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, out) = call(
        "POST",
        url.clone(),
        Some("Bearer 0123456789abcdef".into()),
        body,
    )
    .await;
    assert_eq!((status, out["record"].as_u64()), (201, Some(7)));
    // An oversized body is refused before it is read.
    let huge = serde_json::json!({ "link": hex::encode(REVOCABLE), "reason": "x".repeat(10_000) });
    let (status, _) = call("POST", url, Some("Bearer 0123456789abcdef".into()), huge).await;
    assert_eq!(status, 413);
    d.shutdown().await;
}

#[tokio::test]
async fn weak_tokens_and_busy_addresses_are_refused_at_start() {
    match mesh_dashboards::serve(Fake::new(), config(Some("short"))).await {
        Err(DashboardError::WeakToken { len: 5 }) => {}
        other => panic!("{:?}", other.map(|d| d.url())),
    }
    let first = mesh_dashboards::serve(Fake::new(), config(None))
        .await
        .unwrap();
    let mut busy = config(None);
    busy.addr = first.local_addr();
    let e = mesh_dashboards::serve(Fake::new(), busy)
        .await
        .err()
        .unwrap();
    assert!(
        e.to_string().contains(&first.local_addr().to_string()),
        "{e}"
    );
    first.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_streams_live_and_memory_stays_bounded() {
    let view = Fake::new();
    let d = mesh_dashboards::serve(view.clone(), config(None))
        .await
        .unwrap();
    let url = format!("{}api/v1/events", d.url());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let r = agent().get(&url).call().unwrap();
        let mut lines = BufReader::new(r.into_body().into_reader());
        loop {
            let mut line = String::new();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => return, // the stream ended
                Ok(_) => {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
        }
    });
    // Send activity until the stream shows it (the subscription races the
    // first sends).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = false;
    while !seen && Instant::now() < deadline {
        let _ = view.activity.send(Activity::Refusal(Refusal {
            at: 5,
            kind: "gate_denied",
            subject: "task to someone".into(),
            rule: "trust_below_link_minimum".into(),
            reason: "too low".into(),
        }));
        // Read for a bounded slice (samples arrive every 50 ms, so the
        // stream is never quiet), then send again.
        let slice = Instant::now() + Duration::from_millis(200);
        while !seen && Instant::now() < slice {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => seen |= line.contains("trust_below_link_minimum"),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    }
    assert!(seen, "the refusal never arrived on the stream");
    let (_, refusals) = call(
        "GET",
        format!("{}api/v1/refusals", d.url()),
        None,
        Value::Null,
    )
    .await;
    assert_eq!(refusals[0]["rule"], "trust_below_link_minimum");
    // Samples every 50 ms, at most 5 kept; the peer is in them.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, history) = call(
        "GET",
        format!("{}api/v1/trust/history", d.url()),
        None,
        Value::Null,
    )
    .await;
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 5);
    assert_eq!(history[4]["scores"][view.peer.did().as_str()], 640);
    // Shutting down ends the stream (the reader sees its end).
    d.shutdown().await;
    let ended = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        reader.is_finished()
    })
    .await
    .unwrap();
    assert!(ended, "the live stream outlived the dashboard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_bounded_and_a_closed_one_frees_its_place() {
    let d = mesh_dashboards::serve(Fake::new(), config(None))
        .await
        .unwrap();
    let url = format!("{}api/v1/events", d.url());
    let (open, refused) = tokio::task::spawn_blocking(move || {
        let open: Vec<_> = (0..MAX_LIVE_STREAMS)
            .map(|_| {
                let r = agent().get(&url).call().unwrap();
                assert_eq!(r.status().as_u16(), 200);
                r
            })
            .collect();
        let mut refused = agent().get(&url).call().unwrap();
        let status = refused.status().as_u16();
        let body: Value = refused.body_mut().read_json().unwrap();
        (open, (status, body, url))
    })
    .await
    .unwrap();
    let (status, body, url) = refused;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&MAX_LIVE_STREAMS.to_string())
    );
    // Closing one: the server notices at its next event (samples every
    // 50 ms) and a new stream is served.
    let mut open = open;
    drop(open.pop());
    let served = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = agent().get(&url).call().unwrap().status().as_u16();
            if status == 200 || Instant::now() > deadline {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert_eq!(served, 200);
    drop(open);
    d.shutdown().await;
}

/// Requests whose header never ends, held open from one address: the
/// connections past that address's share are closed at once, the rest at
/// the header deadline, and a client from another address is served
/// throughout (issue 14: 1,100 of them starved the server before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_half_open_requests_cannot_keep_others_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let limits = mesh_dashboards::ConnLimits {
        max_connections: 64,
        per_ip: 16,
        header_timeout: Duration::from_secs(1),
    };
    let d = mesh_dashboards::serve(
        Fake::new(),
        DashboardConfig {
            connections: limits,
            ..config(None)
        },
    )
    .await
    .unwrap();
    let addr = d.local_addr();
    let mut held = Vec::new();
    for _ in 0..1_100 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut s = socket.connect(addr).await.unwrap();
        // A write to a connection the server already closed may fail.
        let _ = s
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await;
        held.push(s);
    }
    let (status, _) = call("GET", format!("http://{addr}/healthz"), None, Value::Null).await;
    assert_eq!(status, 200, "another client is served while they are held");
    // Every held connection ends: most at once, the admitted 16 at the
    // header deadline; none is still open 8 s on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    let reads = held.into_iter().map(|mut s| async move {
        let mut buf = [0u8; 512];
        tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .is_ok()
    });
    let ended = futures::future::join_all(reads).await;
    let still_open = ended.iter().filter(|e| !**e).count();
    assert_eq!(still_open, 0, "every half-open request was closed");
    let (status, _) = call("GET", format!("http://{addr}/healthz"), None, Value::Null).await;
    assert_eq!(status, 200);
    d.shutdown().await;
}
