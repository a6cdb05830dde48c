//! The dashboard's API over real HTTP against a running `mesh-node demo`:
//! every endpoint, the live stream, metrics, the security rules, the
//! token-guarded revocation; and a daemon's read-only dashboard.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use common::demo::Demo;
use mesh_ledger::merkle::{Hash, verify_inclusion};
use serde_json::{Value, json};

fn agent() -> ureq::Agent {
    common::demo::http_client(Duration::from_secs(30))
}

fn get(url: &str) -> (u16, Value) {
    let mut r = agent().get(url).call().unwrap();
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, json)
}

fn hash(v: &Value) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(v.as_str().unwrap(), &mut out).unwrap();
    out
}

/// A raw HTTP/1.1 request (to set headers a client library would not);
/// the whole response.
fn raw(url: &str, request: &str) -> String {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_demo_dashboard_serves_its_api_live_and_guards_its_writes() {
    let demo = Demo::start();
    let u = demo.url.clone();

    // Health and the node.
    assert_eq!(get(&format!("{u}healthz")), (200, json!({"status": "ok"})));
    let (s, node) = get(&format!("{u}api/v1/node"));
    assert_eq!(s, 200);
    assert_eq!(node["node"]["name"], "acme-1");
    assert_eq!(node["node"]["org"], "acme");
    assert!(
        node["node"]["did"]
            .as_str()
            .unwrap()
            .starts_with("did:key:z6Mk")
    );
    assert_eq!(node["writes_enabled"], true);
    let me = node["node"]["did"].as_str().unwrap().to_string();

    // Peers: the other three agents and the spawned child, connected.
    let (_, peers) = get(&format!("{u}api/v1/peers"));
    let names: Vec<&str> = peers
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for n in ["acme-2", "globex-1", "globex-2", "acme-1-child"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert!(
        peers
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["connected"] == true)
    );

    // Trust: the failing agent (globex-2) is below everyone else, with the
    // failures as evidence behind its score.
    let (_, trust) = get(&format!("{u}api/v1/trust"));
    let rows = trust.as_array().unwrap();
    let bad = rows.iter().find(|r| r["name"] == "globex-2").unwrap();
    let good = rows.iter().find(|r| r["name"] == "acme-2").unwrap();
    assert!(bad["score"].as_u64() < good["score"].as_u64(), "{trust}");
    let bad_did = bad["did"].as_str().unwrap();
    let (s, detail) = get(&format!("{u}api/v1/trust/{bad_did}"));
    assert_eq!(s, 200);
    assert_eq!(detail["subject"], bad_did);
    assert_eq!(detail["dimensions"].as_array().unwrap().len(), 5);
    let evidence = detail["evidence"].as_array().unwrap();
    assert!(
        evidence.iter().any(|e| e["kind"] == "task_failure"),
        "{detail}"
    );
    let (s, err) = get(&format!("{u}api/v1/trust/did:key:nonsense"));
    assert_eq!((s, err["error"].as_str()), (400, Some("bad_did")));

    // History: samples accumulate every second.
    let (_, history) = get(&format!("{u}api/v1/trust/history"));
    let first = history.as_array().unwrap().len();
    assert!(first >= 1);
    let last = history.as_array().unwrap().last().unwrap();
    assert!(last["scores"].get(bad_did).is_some(), "{last}");

    // The delegation graph: the spawn certificate to the child, the revoked
    // chain grant to acme-2, the task grants.
    let (_, graph) = get(&format!("{u}api/v1/delegations"));
    let links = graph["links"].as_array().unwrap();
    assert!(
        links
            .iter()
            .any(|l| l["kind"] == "spawn" && l["issuer"] == me.as_str())
    );
    assert!(
        links.iter().any(|l| l["kind"] == "grant"
            && l["revoked"] == true
            && l["capabilities"][0] == "tools/github/*:read"),
        "{graph}"
    );
    assert!(
        graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["local"] == true)
    );

    // The ledger: checkpoint with valid witness cosignatures, and the log
    // verifies. The node signs a new checkpoint as its log grows and its
    // witnesses cosign it a round trip later: wait for that.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ledger = loop {
        let (_, ledger) = get(&format!("{u}api/v1/ledger"));
        let cosigned = ledger["checkpoint"]["cosignatures"]
            .as_array()
            .is_some_and(|c| !c.is_empty());
        if cosigned || Instant::now() > deadline {
            break ledger;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ledger["origin"], me.as_str());
    let size = ledger["size"].as_u64().unwrap();
    assert!(size > 10, "{ledger}");
    let cosigs = ledger["checkpoint"]["cosignatures"].as_array().unwrap();
    assert!(!cosigs.is_empty(), "{ledger}");
    assert!(cosigs.iter().all(|c| c["valid"] == true), "{ledger}");
    assert!(!ledger["witnessing"].as_array().unwrap().is_empty());
    let (s, v) = get(&format!("{u}api/v1/ledger/verification"));
    assert_eq!(s, 200);
    assert_eq!(v["sound"], true, "{v}");
    assert!(v["records"].as_u64().unwrap() >= size);
    assert!(v["cosignatures"].as_u64().unwrap() > 0);

    // Records, paged, and an inclusion proof checked here independently.
    let (_, page) = get(&format!("{u}api/v1/ledger/records?from=0&limit=5"));
    assert_eq!(page["records"].as_array().unwrap().len(), 5);
    assert_eq!(page["records"][4]["index"], 4);
    let (_, latest) = get(&format!("{u}api/v1/ledger/records"));
    let n = latest["records"].as_array().unwrap().len() as u64;
    assert_eq!(
        latest["from"].as_u64().unwrap() + n,
        latest["size"].as_u64().unwrap()
    );
    for bad_query in ["limit=0", "limit=501", "from=-1", "colour=blue"] {
        let (s, e) = get(&format!("{u}api/v1/ledger/records?{bad_query}"));
        assert_eq!(
            (s, e["error"].as_str()),
            (400, Some("bad_query")),
            "{bad_query}: {e}"
        );
    }
    let (s, p) = get(&format!("{u}api/v1/ledger/records/3/proof"));
    assert_eq!(s, 200);
    assert_eq!(p["verified"], true);
    let path: Vec<Hash> = p["path"].as_array().unwrap().iter().map(hash).collect();
    let (leaf, root) = (hash(&p["record"]["leaf_hash"]), hash(&p["root"]));
    let proven = p["size"].as_u64().unwrap();
    assert!(verify_inclusion(3, proven, &leaf, &path, &root).is_ok());
    let mut wrong = leaf;
    wrong[0] ^= 1;
    assert!(verify_inclusion(3, proven, &wrong, &path, &root).is_err());
    let (s, _) = get(&format!("{u}api/v1/ledger/records/999999/proof"));
    assert_eq!(s, 404);
    let (s, _) = get(&format!("{u}api/v1/ledger/records/x/proof"));
    assert_eq!(s, 400);

    // Refusals: the outsider's handshake and the gate refusing globex-2.
    let (_, refusals) = get(&format!("{u}api/v1/refusals"));
    let rs = refusals.as_array().unwrap();
    assert!(
        rs.iter()
            .any(|r| r["kind"] == "handshake_refused" && r["rule"] == "org_not_in_bundle"),
        "{refusals}"
    );
    assert!(
        rs.iter()
            .any(|r| r["kind"] == "gate_denied" && r["rule"] == "trust_below_link_minimum"),
        "{refusals}"
    );

    // Metrics in Prometheus text format.
    let mut r = agent().get(&format!("{u}metrics")).call().unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.body_mut().read_to_string().unwrap();
    for family in [
        "mesh_peers 4",
        "mesh_handshakes_total{outcome=\"established\",reason=\"\"}",
        "mesh_handshakes_total{outcome=\"refused\",reason=\"org_not_in_bundle\"} 1",
        "mesh_gate_decisions_total{request=\"delegate\",result=\"allow\",rule=\"\"}",
        "mesh_gate_decisions_total{request=\"delegate\",result=\"deny\",rule=\"trust_below_link_minimum\"}",
        "mesh_trust_reports_total{direction=\"published\"}",
        "mesh_trust_reports_total{direction=\"accepted\"}",
        "mesh_ledger_records ",
        "mesh_ledger_append_seconds_bucket",
        "mesh_ledger_verify_seconds_count{what=\"full_log\"} 1",
        "mesh_ledger_verify_seconds_count{what=\"witness_checkpoint\"}",
    ] {
        assert!(text.contains(family), "no {family:?} in\n{text}");
    }

    // The live stream: score samples and the node's activity as it happens.
    let r = agent().get(&format!("{u}api/v1/events")).call().unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut reader = BufReader::new(r.into_body().into_reader());
    let (mut saw_trust, mut saw_record) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut event = String::new();
    while !(saw_trust && saw_record) && Instant::now() < deadline {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(data).unwrap();
            match event.as_str() {
                "trust" => saw_trust |= v["scores"].get(bad_did).is_some(),
                "activity" => saw_record |= v["type"] == "recorded",
                _ => {}
            }
        }
    }
    assert!(
        saw_trust && saw_record,
        "trust {saw_trust}, record {saw_record}"
    );
    drop(reader);
    let (_, history) = get(&format!("{u}api/v1/trust/history"));
    assert!(history.as_array().unwrap().len() > first);

    // Security: every response carries the headers; no CORS anywhere.
    let r = agent().get(&u).call().unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let host = u.trim_start_matches("http://").trim_end_matches('/');
    let preflight = raw(
        &u,
        &format!(
            "OPTIONS /api/v1/revocations HTTP/1.1\r\nHost: {host}\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(preflight.starts_with("HTTP/1.1 405"), "{preflight}");
    assert!(
        !preflight
            .to_ascii_lowercase()
            .contains("access-control-allow")
    );
    // DNS rebinding: another Host name is refused.
    let rebound = raw(
        &u,
        "GET /api/v1/node HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n",
    );
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
    assert!(rebound.contains("bad_host"));
    // A cross-origin request is refused, even a read.
    let cross = raw(
        &u,
        &format!(
            "GET /api/v1/node HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(cross.starts_with("HTTP/1.1 403"), "{cross}");
    // No page or response carries the token or a key.
    for path in [
        "",
        "app.js",
        "api/v1/node",
        "api/v1/ledger",
        "api/v1/delegations",
    ] {
        let (_, body) = get(&format!("{u}{path}"));
        let body = body.to_string();
        assert!(!body.contains(demo.token.trim()), "{path} shows the token");
        assert!(!body.contains("PRIVATE KEY"), "{path} shows a key");
    }

    // Writes: revoking needs the bearer token.
    let spawn = links
        .iter()
        .find(|l| l["kind"] == "spawn" && l["issued_here"] == true)
        .unwrap();
    let target = spawn["hash"].as_str().unwrap().to_string();
    let revoke = |auth: Option<&str>, body: Value| {
        let mut req = agent().post(&format!("{u}api/v1/revocations"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let mut r = req.send_json(&body).unwrap();
        let status = r.status().as_u16();
        let www = r.headers().get("www-authenticate").is_some();
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        (status, www, v)
    };
    let body = json!({"link": target, "reason": "test: child retired"});
    let (s, www, e) = revoke(None, body.clone());
    assert_eq!(
        (s, www, e["error"].as_str()),
        (401, true, Some("unauthorized"))
    );
    let (s, _, _) = revoke(Some("Bearer not-the-token-at-all"), body.clone());
    assert_eq!(s, 401);
    let good = format!("Bearer {}", demo.token.trim());
    let (s, _, e) = revoke(Some(&good), json!({"link": "00".repeat(32)}));
    assert_eq!((s, e["error"].as_str()), (404, Some("not_found")), "{e}");
    let (s, _, e) = revoke(Some(&good), json!({"link": "abc"}));
    assert_eq!((s, e["error"].as_str()), (400, Some("bad_link")));
    let (s, _, e) = revoke(
        Some(&good),
        json!({"link": target, "reason": "x".repeat(300)}),
    );
    assert_eq!((s, e["error"].as_str()), (400, Some("bad_reason")));
    let (s, _, e) = revoke(Some(&good), json!({"link": target, "colour": "blue"}));
    assert_eq!(s, 422, "{e}");
    let (s, _, out) = revoke(Some(&good), body);
    assert_eq!(s, 201, "{out}");
    assert_eq!(out["link"], target.as_str());
    let (_, graph) = get(&format!("{u}api/v1/delegations"));
    let revoked = graph["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["hash"] == target.as_str())
        .unwrap()
        .clone();
    assert_eq!(revoked["revoked"], true);

    // SIGTERM: the demo stops its dashboard, shuts down and verifies.
    let (ok, output) = demo.stop();
    let text = output.join("\n");
    assert!(ok, "{text}");
    assert!(text.contains("while the mesh kept running"), "{text}");
    // The four agents' ledgers and the spawned child's.
    assert_eq!(
        output
            .iter()
            .filter(|l| l.trim_end().ends_with(": sound"))
            .count(),
        5,
        "{text}"
    );
}
