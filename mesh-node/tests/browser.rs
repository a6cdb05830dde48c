//! End to end in a real browser: headless Chromium, driven by chromedriver
//! over the WebDriver protocol, loads the dashboard of a running
//! `mesh-node demo`, sees the peers and the trust chart, follows live
//! updates, checks an inclusion proof in the page, and saves screenshots
//! (`target/tmp/dashboard-*.png`).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Without them the test says so and passes, except under CI
//! (`CI` set), where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::demo::Demo;
use serde_json::{Value, json};

/// Chromium's flags: headless, what running as root in a container needs,
/// and no connections of its own (the network here is closed: updates,
/// sync and QUIC probes would only fail). chromedriver gives each session
/// a fresh, empty profile.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1300,1000",
];

/// The bound on every wait in the page.
const PAGE_WAIT: Duration = Duration::from_secs(40);

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn http() -> ureq::Agent {
    common::demo::http_client(Duration::from_secs(60))
}

/// A chromedriver process and one browser session.
struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    fn start(chromedriver: &Path, chromium: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http()
                .get(&format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
        };
        let created = browser.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.to_string_lossy(),
                    "args": CHROMIUM_ARGS,
                }
            }}}),
        );
        browser.session = created["sessionId"].as_str().unwrap().to_string();
        browser
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        match self.try_call(method, path, body) {
            Ok(v) => v,
            Err((status, v)) => panic!("{method} {path}: {status} {v}"),
        }
    }

    /// One WebDriver command: its `value`, or the status and error value.
    fn try_call(&self, method: &str, path: &str, body: Value) -> Result<Value, (u16, Value)> {
        let url = if self.session.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let mut r = match method {
            "POST" => http().post(&url).send_json(&body).unwrap(),
            "DELETE" => http().delete(&url).call().unwrap(),
            _ => http().get(&url).call().unwrap(),
        };
        let status = r.status().as_u16();
        let v: Value = r.body_mut().read_json().unwrap();
        if status == 200 {
            Ok(v["value"].clone())
        } else {
            Err((status, v["value"].clone()))
        }
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    fn script(&self, js: &str) -> Value {
        self.call("POST", "/execute/sync", json!({"script": js, "args": []}))
    }

    /// Wait until `js` (an expression) is truthy; its value.
    fn wait(&self, what: &str, js: &str) -> Value {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let v = self.script(&format!("return ({js});"));
            if !(v.is_null() || v == false || v == 0 || v == "") {
                return v;
            }
            if Instant::now() > deadline {
                let page = self.script("return document.body.innerText;");
                panic!("the page never showed {what}; it shows:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Click the first element matching `css`, as a person would. Live
    /// updates re-render tables, so the element found may be replaced
    /// before the click lands ("stale element reference"): then it is found
    /// again, a bounded number of times.
    fn click(&self, css: &str) {
        for _ in 0..10 {
            let found = self.call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            );
            let id = found
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .unwrap()
                .to_string();
            match self.try_call("POST", &format!("/element/{id}/click"), json!({})) {
                Ok(_) => return,
                Err((_, e)) if e["error"] == "stale element reference" => continue,
                Err((status, e)) => panic!("clicking {css}: {status} {e}"),
            }
        }
        panic!("{css} was re-rendered under every one of 10 clicks");
    }

    /// Save a screenshot; the path.
    fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call("GET", "/screenshot", Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-{name}.png"));
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = http().delete(&url).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn the_dashboard_works_in_headless_chromium() {
    let (Some(chromedriver), Some(chromium)) = (on_path("chromedriver"), on_path("chromium"))
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: .ci/run installs chromium and chromium-driver"
        );
        eprintln!(
            "SKIPPED: the browser test needs Debian's chromium and chromium-driver \
             (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let demo = Demo::start();
    let browser = Browser::start(&chromedriver, &chromium);
    browser.goto(&demo.url);

    // The page loads its data and connects the live stream.
    browser.wait("the page ready", "document.body.dataset.ready === 'yes'");
    browser.wait(
        "the live stream connected",
        "document.querySelector('#live-status').textContent === 'live'",
    );
    assert_eq!(
        browser.script("return document.title;"),
        "mesh node dashboard"
    );
    browser.wait(
        "acme-1 as the node's name",
        "document.querySelector('#node-name').textContent === 'acme-1'",
    );

    // The peers: all four, connected, with tiers.
    let peers = browser.wait(
        "four peers",
        "document.querySelectorAll('#peers-table tbody tr').length >= 4 && \
         document.querySelector('#peers-table').innerText",
    );
    let peers = peers.as_str().unwrap();
    for name in ["acme-2", "globex-1", "globex-2", "acme-1-child"] {
        assert!(peers.contains(name), "{name} not in\n{peers}");
    }
    assert!(peers.contains("connected"));
    browser.screenshot("overview");

    // The trust chart: one line per agent, growing live.
    browser.click("nav a[data-tab=trust]");
    browser.wait(
        "the trust tab",
        "document.querySelector('#tab-trust').classList.contains('active')",
    );
    browser.wait(
        "a line per agent in the chart",
        "document.querySelectorAll('#trust-chart polyline').length >= 4",
    );
    let before =
        browser.script("return Number(document.querySelector('#trust-chart').dataset.samples);");
    let log_before =
        browser.script("return Number(document.querySelector('#log-size').textContent);");
    let before = before.as_u64().unwrap();
    browser.wait(
        "a new live sample in the chart",
        &format!("Number(document.querySelector('#trust-chart').dataset.samples) > {before}"),
    );
    browser.wait(
        "the log size growing live",
        &format!(
            "Number(document.querySelector('#log-size').textContent) > {}",
            log_before.as_u64().unwrap()
        ),
    );
    let feed = browser.wait(
        "live activity in the feed",
        "[...document.querySelectorAll('#activity li')].some(li => /record #\\d+/.test(li.textContent)) && 'yes'",
    );
    assert_eq!(feed, "yes");
    let shot = browser.screenshot("trust");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // Sorting and filtering the table, and the evidence behind a score.
    browser.script("document.querySelector('#trust-filter').value = 'globex'; document.querySelector('#trust-filter').dispatchEvent(new Event('input'));");
    let rows = browser.wait(
        "the filtered table",
        "document.querySelectorAll('#trust-table tbody tr').length === 2 && document.querySelector('#trust-table tbody').innerText",
    );
    assert!(!rows.as_str().unwrap().contains("acme"), "{rows}");
    browser.click("#trust-table tbody tr[data-did]:last-child");
    // Scores sort descending by default; a click on the column flips it.
    let scores = || -> Vec<u64> {
        browser
            .script("return [...document.querySelectorAll('#trust-table tbody tr td:nth-child(3)')].map(td => Number(td.textContent));")
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let order = scores();
    assert!(
        order.windows(2).all(|w| w[0] >= w[1]),
        "descending: {order:?}"
    );
    browser.click("#trust-table th[data-key=score]");
    let order = scores();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "ascending after a click: {order:?}"
    );
    assert!(order[0] < order[1], "two different scores: {order:?}");
    browser.click("#trust-table tbody tr[data-did]");
    let detail = browser.wait(
        "the evidence panel",
        "!document.querySelector('#trust-detail').hidden && document.querySelector('#trust-detail').innerText.includes('Latest evidence') && document.querySelector('#trust-detail').innerText",
    );
    assert!(detail.as_str().unwrap().contains("dimension"), "{detail}");

    // The ledger: verification, cosignatures, and an inclusion proof
    // checked by the browser's own SHA-256.
    browser.click("nav a[data-tab=ledger]");
    browser.wait(
        "the log verified",
        "document.querySelector('#verification').innerText.startsWith('SOUND')",
    );
    browser.wait(
        "valid witness cosignatures",
        "document.querySelectorAll('#cosignatures-table .ok').length >= 1",
    );
    browser.wait(
        "records",
        "document.querySelectorAll('#records-table tbody tr').length >= 10",
    );
    browser.click("#records-table tbody tr:nth-child(5)");
    let verdict = browser.wait(
        "the proof's verdict",
        "document.querySelector('#proof-verdict') && document.querySelector('#proof-verdict').innerText",
    );
    assert_eq!(
        verdict.as_str().unwrap(),
        "the node: verified; this browser (SHA-256 in the page): verified"
    );
    browser.screenshot("ledger");

    // The graph: the spawned child and the revoked chain grant.
    browser.click("nav a[data-tab=delegations]");
    browser.wait(
        "spawn and revoked edges",
        "document.querySelectorAll('#graph line.edge-spawn').length >= 1 && \
         document.querySelectorAll('#graph line.edge-revoked').length >= 1",
    );
    browser.screenshot("delegations");

    // Refusals, with their reasons.
    browser.click("nav a[data-tab=refusals]");
    let refusals = browser.wait(
        "the refusals",
        "document.querySelector('#refusals-table tbody').innerText",
    );
    let refusals = refusals.as_str().unwrap();
    assert!(refusals.contains("org_not_in_bundle"), "{refusals}");
    assert!(refusals.contains("trust_below_link_minimum"), "{refusals}");
    // A denied agent of the demo is named, not shown as a DID, in its
    // column and in the reason.
    let gate = browser.script(
        "return [...document.querySelectorAll('#refusals-table tbody tr')].map(r => r.innerText).find(t => t.includes('trust_below_link_minimum'));",
    );
    let gate = gate.as_str().unwrap();
    assert!(
        !gate.contains("did:key:") && (gate.contains("acme-") || gate.contains("globex-")),
        "{gate}"
    );
    browser.screenshot("refusals");

    drop(browser);
    let (ok, output) = demo.stop();
    assert!(ok, "{}", output.join("\n"));
}
