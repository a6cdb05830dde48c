//! The agent CLI against two real `mesh-node run` daemons of two
//! organisations, each serving its agent API on a Unix socket from its
//! node.toml: `task send|list|show|cancel`, `grant`, `revoke`, `spawn`
//! (plain and `--json`), with bob's "agent process" answering from his
//! inbox through the same API. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{Daemon, bundle, provision, start, terminate};
use mesh_iatp::testing::identity;
use mesh_node::agent_api::client::ApiClient;
use serde_json::{Value, json};

/// `mesh-node ARGS --config CONFIG`: status, stdout, stderr.
fn cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mesh-node"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn cli_json(config: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out, err) = cli(config, &all);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// Start a daemon whose config also has `extra`, and wait for its API.
fn daemon(config: &Path, extra: &str, log: &Path) -> Daemon {
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(extra);
    std::fs::write(config, text).unwrap();
    let d = start(config, log);
    let socket = config.parent().unwrap().join("api.sock");
    let deadline = Instant::now() + common::WAIT;
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "no API socket: see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_delegates_follows_cancels_grants_and_revokes_through_a_daemons_api() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let acme = identity("org acme (cli)");
    let globex = identity("org globex (cli)");
    std::fs::write(root.join("bundle.toml"), bundle(&acme, &globex)).unwrap();
    let (a_cfg, _) = provision(&root.join("a"), &acme, "alice", None);
    let mut a = daemon(&a_cfg, "api = \"unix:api.sock\"\n", &root.join("a.log"));
    let (b_cfg, b_id) = provision(&root.join("b"), &globex, "bob", Some(&a.addr));
    let mut b = daemon(
        &b_cfg,
        "api = \"unix:api.sock\"\nserve_tasks = true\ncapabilities = [\"search\"]\n",
        &root.join("b.log"),
    );
    let bob = b_id.did().to_string();
    let alice_api = ApiClient::from_config(&a_cfg).unwrap();
    let bob_api = ApiClient::from_config(&b_cfg).unwrap();
    let deadline = Instant::now() + common::WAIT;
    while alice_api.get("/v1/peers").await.unwrap()["peers"] == json!([]) {
        assert!(Instant::now() < deadline, "bob never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // alice → the best candidate (bob), answered by bob's agent process.
    let task = cli_json(
        &a_cfg,
        &[
            "task",
            "send",
            "--resource",
            "search",
            "--action",
            "read",
            "--input",
            "hi",
        ],
    );
    assert_eq!(
        (&task["state"], &task["to"]),
        (&json!("running"), &json!(bob))
    );
    let id = task["id"].as_str().unwrap().to_string();
    let (status, taken) = bob_api
        .post("/v1/inbox/next", &json!({"wait_secs": 10}))
        .await
        .unwrap();
    assert_eq!((status, &taken["id"]), (200, &json!(id)));
    bob_api
        .post(
            &format!("/v1/inbox/{id}/result"),
            &json!({"success": true, "output": "found it"}),
        )
        .await
        .unwrap();
    let done = cli_json(&a_cfg, &["task", "show", &id, "--wait", "20"]);
    assert_eq!(
        (&done["state"], &done["output"]),
        (&json!("succeeded"), &json!("found it"))
    );
    let (ok, list, _) = cli(&a_cfg, &["task", "list"]);
    assert!(
        ok && list.contains(&id) && list.contains("succeeded"),
        "{list}"
    );

    // A second task, cancelled from the CLI.
    let task = cli_json(
        &a_cfg,
        &[
            "task",
            "send",
            "--to",
            &bob,
            "--resource",
            "search",
            "--action",
            "read",
        ],
    );
    let id = task["id"].as_str().unwrap().to_string();
    let (ok, _, err) = cli(&a_cfg, &["task", "cancel", &id]);
    assert!(ok, "{err}");
    let done = cli_json(&a_cfg, &["task", "show", &id, "--wait", "20"]);
    assert_eq!(done["state"], "cancelled", "{done}");

    // Grant and revoke.
    let grant = cli_json(
        &a_cfg,
        &[
            "grant",
            "--to",
            &bob,
            "--capability",
            "search:read",
            "--lifetime",
            "600",
        ],
    );
    let link = grant["grant"].as_str().unwrap().to_string();
    let revoked = cli_json(&a_cfg, &["revoke", &link, "--reason", "done"]);
    assert_eq!(revoked["link"], json!(link));

    // A child needs the parent's own trust at the spawn threshold (700;
    // alice stands at acme's 600): refused with the gate's rule, and no key
    // file is left behind.
    let key = root.join("child.key");
    let key_arg = key.display().to_string();
    let (ok, _, err) = cli(
        &a_cfg,
        &[
            "spawn",
            "--capability",
            "search:read",
            "--key-out",
            &key_arg,
        ],
    );
    assert!(!ok && err.contains("rule spawn_below_threshold"), "{err}");
    assert!(!key.exists());

    // A bad input is refused, naming the field, once.
    let (ok, _, err) = cli(
        &a_cfg,
        &[
            "task",
            "send",
            "--to",
            "did:web:x",
            "--resource",
            "search",
            "--action",
            "read",
        ],
    );
    assert!(!ok);
    assert!(err.contains("to: ") && err.contains("(invalid)"), "{err}");
    assert_eq!(err.matches("not a did:key identifier").count(), 1, "{err}");
    // A node without `api`.
    let plain = root.join("plain.toml");
    std::fs::write(
        &plain,
        std::fs::read_to_string(root.join("a/node.toml"))
            .unwrap()
            .replace("api = \"unix:api.sock\"\n", ""),
    )
    .unwrap();
    let (ok, _, err) = cli(&plain, &["task", "list"]);
    assert!(!ok && err.contains("sets no `api`"), "{err}");

    terminate(&mut b);
    terminate(&mut a);
}
