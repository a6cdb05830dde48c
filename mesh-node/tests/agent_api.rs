//! The local agent API over real HTTP, on real nodes in two organisations:
//! a task delegated through one agent's API, taken from the other's inbox
//! and answered there; the best candidate; a crashed agent's lease; a
//! cancellation; refusals carrying their rule; grants, revocations,
//! records and proofs; the token, Host and Origin rules; a Unix socket.
//! Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestNode, eventually, start};
use mesh_iatp::testing::Federation;
use mesh_node::agent_api::{self, AgentApi, AgentApiConfig, ApiAddr};
use mesh_node::node::Inbox;
use serde_json::{Value, json};

const TOKEN: &str = "0123456789abcdef-test-token";

struct Agent {
    node: TestNode,
    api: AgentApi,
    url: String,
}

/// A node of `org` offering `caps`, its inbox served by its API when
/// `serves`.
async fn agent(
    fed: &Federation,
    org: &mesh_iatp::Identity,
    name: &str,
    caps: &[&str],
    serves: bool,
    dir: &std::path::Path,
    seed: u8,
) -> Agent {
    let inbox = serves.then(|| Arc::new(Inbox::new()));
    let mut builder =
        common::without_handler(fed, fed.agent(org, name, caps), &dir.join(name), seed);
    if let Some(inbox) = &inbox {
        builder = builder.task_inbox(inbox.clone());
    }
    let node = start(builder).await;
    let api = agent_api::serve(
        &node.node,
        inbox,
        AgentApiConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            token: TOKEN.into(),
            limits: Default::default(),
        },
    )
    .await
    .unwrap();
    let url = api.addr().to_string();
    Agent { node, api, url }
}

fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(70)))
        .build()
        .into()
}

/// A request with `headers`; the status and the JSON body (null if none).
async fn request(
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let agent = client();
        let mut response = match (method, body) {
            ("GET", _) => {
                let mut r = agent.get(&url);
                for (k, v) in &headers {
                    r = r.header(*k, v);
                }
                r.call().unwrap()
            }
            (_, body) => {
                let mut r = agent.post(&url);
                for (k, v) in &headers {
                    r = r.header(*k, v);
                }
                r.send_json(body.unwrap_or(json!({}))).unwrap()
            }
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

fn auth() -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {TOKEN}"))]
}

async fn get(a: &Agent, path: &str) -> (u16, Value) {
    request("GET", format!("{}{path}", a.url), auth(), None).await
}

async fn post(a: &Agent, path: &str, body: Value) -> (u16, Value) {
    request("POST", format!("{}{path}", a.url), auth(), Some(body)).await
}

async fn pair(dir: &std::path::Path) -> (Federation, Agent, Agent) {
    let fed = Federation::new();
    let alice = agent(&fed, &fed.acme, "alice", &[], false, dir, 41).await;
    let bob = agent(&fed, &fed.globex, "bob", &["search"], true, dir, 42).await;
    alice
        .node
        .node
        .connect(bob.node.addr.clone())
        .await
        .unwrap();
    (fed, alice, bob)
}

/// Across organisations: alice delegates through her API (to the best
/// candidate: bob offers `search`), bob's agent process takes the
/// task from his inbox, reports progress and answers; alice's task shows
/// the answer, and both logs hold both records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_round_trip_through_two_agent_apis() {
    let dir = tempfile::tempdir().unwrap();
    let (_fed, alice, bob) = pair(dir.path()).await;
    let (status, task) = post(
        &alice,
        "/v1/tasks",
        json!({"resource": "search", "action": "read", "input": "rust sans-io"}),
    )
    .await;
    assert_eq!(status, 201, "{task}");
    assert_eq!(task["state"], "running");
    assert_eq!(task["to"], bob.node.node.did().to_string());
    let id = task["id"].as_str().unwrap().to_string();

    let (status, taken) = post(
        &bob,
        "/v1/inbox/next",
        json!({"wait_secs": 10, "lease_secs": 30}),
    )
    .await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(taken["id"], id.as_str());
    assert_eq!(taken["input"], "rust sans-io");
    assert_eq!(taken["from"], alice.node.node.did().to_string());
    let (status, p) = post(
        &bob,
        &format!("/v1/inbox/{id}/progress"),
        json!({"note": "searching", "lease_secs": 30}),
    )
    .await;
    assert_eq!((status, &p["progress"]), (200, &json!("searching")));
    let (status, _) = post(
        &bob,
        &format!("/v1/inbox/{id}/result"),
        json!({"success": true, "output": "3 results"}),
    )
    .await;
    assert_eq!(status, 200);

    let (status, done) = get(&alice, &format!("/v1/tasks/{id}?wait_secs=20")).await;
    assert_eq!(status, 200);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["output"], "3 results");
    let (_, list) = get(&alice, "/v1/tasks").await;
    assert_eq!(list["tasks"][0]["id"], id.as_str());
    eventually("both records in both logs", || async {
        alice.node.node.log_info().await.unwrap().size == 2
            && bob.node.node.log_info().await.unwrap().size == 2
    })
    .await;
    // The result record is proven from alice's log.
    let index = done["result_record"].as_u64().unwrap();
    let (status, proof) = get(&alice, &format!("/v1/records/{index}/proof")).await;
    assert_eq!((status, &proof["verified"]), (200, &json!(true)));
    // Bob's trust in alice's eyes counts the success.
    let (_, trust) = get(&alice, &format!("/v1/trust/{}", bob.node.node.did())).await;
    assert!(
        trust["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "task_success"),
        "{trust}"
    );
    alice.api.shutdown().await;
    bob.api.shutdown().await;
}

/// An agent process that takes a task and dies: its lease runs out and
/// the task ends as failed — in the delegator's view too — instead of
/// hanging until the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_agents_lease_runs_out_and_the_task_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (_fed, alice, bob) = pair(dir.path()).await;
    let to = bob.node.node.did().to_string();
    let (_, task) = post(
        &alice,
        "/v1/tasks",
        json!({"to": to, "resource": "search", "action": "read"}),
    )
    .await;
    let id = task["id"].as_str().unwrap().to_string();
    let (status, _) = post(
        &bob,
        "/v1/inbox/next",
        json!({"wait_secs": 10, "lease_secs": 1}),
    )
    .await;
    assert_eq!(status, 200);
    // No answer, no progress: the process "crashed".
    let (_, done) = get(&alice, &format!("/v1/tasks/{id}?wait_secs=20")).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(done["output"].as_str().unwrap().contains("lease"), "{done}");
    // Its late answer is refused: the task left the inbox.
    let (status, e) = post(
        &bob,
        &format!("/v1/inbox/{id}/result"),
        json!({"success": true, "output": "late"}),
    )
    .await;
    assert_eq!((status, &e["error"]), (404, &json!("not_found")));
}

/// The delegator cancels through its API: the task leaves the delegatee's
/// inbox and shows `cancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_cancelled_through_the_api_leaves_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let (_fed, alice, bob) = pair(dir.path()).await;
    let to = bob.node.node.did().to_string();
    let (_, task) = post(
        &alice,
        "/v1/tasks",
        json!({"to": to, "resource": "search", "action": "read"}),
    )
    .await;
    let id = task["id"].as_str().unwrap().to_string();
    let (_, inbox) = get(&bob, "/v1/inbox").await;
    assert_eq!(inbox["tasks"][0]["id"], id.as_str());
    let (status, cancelled) = post(&alice, &format!("/v1/tasks/{id}/cancel"), json!({})).await;
    assert_eq!(status, 202, "{cancelled}");
    let (_, done) = get(&alice, &format!("/v1/tasks/{id}?wait_secs=20")).await;
    assert_eq!(done["state"], "cancelled", "{done}");
    let (_, inbox) = get(&bob, "/v1/inbox").await;
    assert_eq!(inbox["tasks"], json!([]));
}

/// Refusals come back as errors carrying the rule: an agent serving no
/// tasks (`no_handler`), no candidate above the trust asked for, and bad
/// input naming its field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_bad_input_name_the_rule_or_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (fed, alice, _bob) = pair(dir.path()).await;
    let idle = agent(
        &fed,
        &fed.acme,
        "idle",
        &["tools/search"],
        false,
        dir.path(),
        43,
    )
    .await;
    alice
        .node
        .node
        .connect(idle.node.addr.clone())
        .await
        .unwrap();
    let to = idle.node.node.did().to_string();
    let (status, e) = post(
        &alice,
        "/v1/tasks",
        json!({"to": to, "resource": "tools/search", "action": "read"}),
    )
    .await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(
        (&e["error"], &e["rule"]),
        (&json!("refused"), &json!("no_handler"))
    );
    assert_eq!(e["refusal_code"], 21);

    let (status, e) = post(
        &alice,
        "/v1/tasks",
        json!({"resource": "tools/search", "action": "read", "min_trust": 990}),
    )
    .await;
    assert_eq!((status, &e["error"]), (409, &json!("no_candidate")), "{e}");

    for (body, field) in [
        (
            json!({"to": "did:web:x", "resource": "a/b", "action": "read"}),
            "to",
        ),
        (json!({"resource": "a/*", "action": "read"}), "resource"),
        (
            json!({"resource": "a/b", "action": "read", "input": "x".repeat(16_385)}),
            "input",
        ),
        (
            json!({"resource": "a/b", "action": "read", "deadline_secs": 0}),
            "deadline_secs",
        ),
        (
            json!({"resource": "a/b", "action": "read", "min_trust": 1001}),
            "min_trust",
        ),
    ] {
        let (status, e) = post(&alice, "/v1/tasks", body).await;
        assert_eq!((status, &e["field"]), (400, &json!(field)), "{e}");
    }
    let (status, e) = post(
        &alice,
        "/v1/tasks",
        json!({"resource": "a/b", "action": "read", "urgent": true}),
    )
    .await;
    assert_eq!((status, &e["error"]), (422, &json!("bad_body")));
    assert!(e["message"].as_str().unwrap().contains("urgent"), "{e}");
    let (status, e) = get(&alice, "/v1/tasks/nothex").await;
    assert_eq!((status, &e["field"]), (400, &json!("id")));
    // An agent without an inbox says so.
    let (status, e) = post(&idle, "/v1/inbox/next", json!({"wait_secs": 0})).await;
    assert_eq!((status, &e["error"]), (409, &json!("no_inbox")));
}

/// Grants, revocations and records through the API, in both logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_revocations_and_records_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (_fed, alice, bob) = pair(dir.path()).await;
    let bob_did = bob.node.node.did().to_string();
    let (status, g) = post(
        &alice,
        "/v1/grants",
        json!({"to": bob_did, "capabilities": ["search:read"], "lifetime_secs": 600}),
    )
    .await;
    assert_eq!(status, 201, "{g}");
    let link = g["grant"].as_str().unwrap().to_string();
    let (status, r) = post(
        &alice,
        "/v1/revocations",
        json!({"link": link, "reason": "done"}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let (status, e) = post(&alice, "/v1/revocations", json!({"link": "00".repeat(32)})).await;
    assert_eq!((status, &e["error"]), (404, &json!("not_found")));
    let (status, rec) = post(
        &alice,
        "/v1/records",
        json!({"counterparty": bob_did, "kind": "invoke", "payload": "hello"}),
    )
    .await;
    assert_eq!(status, 201, "{rec}");
    let (status, e) = post(
        &alice,
        "/v1/records",
        json!({"counterparty": bob_did, "kind": "delegate", "payload": "x"}),
    )
    .await;
    assert_eq!((status, &e["field"]), (400, &json!("kind")));
    let (_, peers) = get(&alice, "/v1/peers").await;
    assert_eq!(peers["peers"][0]["did"], bob_did.as_str());
    assert_eq!(peers["peers"][0]["capabilities"], json!(["search"]));
    let (_, me) = get(&alice, "/v1/agent").await;
    assert_eq!((&me["name"], &me["org"]), (&json!("alice"), &json!("acme")));
    eventually("grant, revocation and invoke in bob's log", || async {
        bob.node.node.log_info().await.unwrap().size == 3
    })
    .await;
}

/// The door: the token on every route but health, loopback `Host` only,
/// no web page's `Origin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_host_and_origin_rules_hold_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let fed = Federation::new();
    let a = agent(&fed, &fed.acme, "alice", &[], true, dir.path(), 44).await;
    let (status, _) = request("GET", format!("{}/v1/healthz", a.url), vec![], None).await;
    assert_eq!(status, 200);
    for (method, path) in [
        ("GET", "/v1/agent"),
        ("GET", "/v1/peers"),
        ("GET", "/v1/tasks"),
        ("POST", "/v1/tasks"),
        ("GET", "/v1/inbox"),
        ("POST", "/v1/inbox/next"),
        ("POST", "/v1/grants"),
        ("POST", "/v1/revocations"),
        ("POST", "/v1/records"),
    ] {
        let url = format!("{}{path}", a.url);
        let (status, e) = request(method, url.clone(), vec![], None).await;
        assert_eq!(
            (status, &e["error"]),
            (401, &json!("unauthorized")),
            "{path}"
        );
        let wrong = vec![("Authorization", "Bearer not-the-token-at-all".to_string())];
        let (status, _) = request(method, url, wrong, None).await;
        assert_eq!(status, 401, "{path}");
    }
    let mut rebinding = auth();
    rebinding.push(("Host", "evil.example:80".into()));
    let (status, e) = request("GET", format!("{}/v1/agent", a.url), rebinding, None).await;
    assert_eq!((status, &e["error"]), (421, &json!("bad_host")));
    let mut page = auth();
    page.push(("Origin", a.url.clone()));
    let (status, e) = request("GET", format!("{}/v1/agent", a.url), page, None).await;
    assert_eq!((status, &e["error"]), (403, &json!("cross_origin")));
    // A weak token is refused at start.
    let weak = agent_api::serve(
        &a.node.node,
        None,
        AgentApiConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            token: "short".into(),
            limits: Default::default(),
        },
    )
    .await;
    assert!(matches!(weak, Err(agent_api::AgentApiError::WeakToken)));
}

/// The API on a Unix socket (owner-only), spoken to with plain HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_a_unix_socket_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let fed = Federation::new();
    let node = start(common::builder(
        &fed,
        fed.agent(&fed.acme, "alice", &[]),
        &dir.path().join("n"),
        45,
    ))
    .await;
    let path = dir.path().join("api.sock");
    let api = agent_api::serve(
        &node.node,
        None,
        AgentApiConfig {
            addr: ApiAddr::Unix(path.clone()),
            token: TOKEN.into(),
            limits: Default::default(),
        },
    )
    .await
    .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let request = format!(
        "GET /v1/agent HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(&node.node.did().to_string()));
    api.shutdown().await;
    assert!(!path.exists(), "the socket is removed on shutdown");
}

/// docs/agent-openapi.json documents exactly the routes served (the
/// router is built from `agent_api::ROUTES`), and each answers — an error
/// as JSON with a stable code — rather than falling through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_routes_are_exactly_the_served_routes() {
    let openapi: Value =
        serde_json::from_str(include_str!("../../docs/agent-openapi.json")).unwrap();
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
    let mut served: Vec<(String, String)> = agent_api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);

    let dir = tempfile::tempdir().unwrap();
    let fed = Federation::new();
    let a = agent(&fed, &fed.acme, "alice", &[], true, dir.path(), 46).await;
    let did = a.node.node.did().to_string();
    for (method, path) in agent_api::ROUTES {
        let path = path
            .replace("{did}", &did)
            .replace("{id}", &"ab".repeat(32))
            .replace("{index}", "0");
        // (A take waits 30 s by default; not here.)
        let body = (*method == "POST").then(|| json!({}));
        let body = if path.ends_with("/next") {
            Some(json!({"wait_secs": 0}))
        } else {
            body
        };
        let (status, e) = request(method, format!("{}{path}", a.url), auth(), body).await;
        assert_ne!(
            e["message"].as_str(),
            Some("no such endpoint (the agent API is under /v1)"),
            "{method} {path} is not routed"
        );
        if status >= 400 {
            assert!(e["error"].is_string(), "{method} {path}: {status} {e}");
        }
    }
    let (status, e) = get(&a, "/v1/nowhere").await;
    assert_eq!((status, &e["error"]), (404, &json!("not_found")));
}
