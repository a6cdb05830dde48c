//! The `mesh-node` CLI on good and bad input, including key interop with
//! OpenSSL in both directions (`.ci/run` installs openssl).

// Test code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn mesh_node(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mesh-node"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs mesh-node")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn openssl(args: &[&str], dir: &Path) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (bash .ci/run installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    out
}

fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no `{key}` in {text}"))
        .to_owned()
}

#[test]
fn identity_new_then_show() {
    let dir = tempfile::tempdir().expect("tempdir");
    let new = mesh_node(&["identity", "new", "--out", "a.pem"], dir.path());
    assert!(new.status.success(), "{}", stderr(&new));
    let did = stdout(&new).trim().to_owned();
    assert!(did.starts_with("did:key:z6Mk"), "{did}");
    let mode = fs::metadata(dir.path().join("a.pem"))
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let show = mesh_node(&["identity", "show", "a.pem"], dir.path());
    assert!(show.status.success(), "{}", stderr(&show));
    let text = stdout(&show);
    assert_eq!(field(&text, "did"), did);
    assert!(field(&text, "peer_id").starts_with("12D3KooW"));
    assert_eq!(field(&text, "public_key_hex").len(), 64);
    assert_eq!(text.lines().count(), 3);

    let json = mesh_node(&["identity", "show", "a.pem", "--json"], dir.path());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["did"], did.as_str());
    assert_eq!(
        v["peer_id"].as_str(),
        Some(field(&text, "peer_id").as_str())
    );
}

#[test]
fn identity_new_never_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(
        mesh_node(&["identity", "new", "--out", "a.pem"], dir.path())
            .status
            .success()
    );
    let before = fs::read(dir.path().join("a.pem")).expect("key");
    let again = mesh_node(&["identity", "new", "--out", "a.pem"], dir.path());
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(fs::read(dir.path().join("a.pem")).expect("key"), before);
}

#[test]
fn readable_key_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(
        mesh_node(&["identity", "new", "--out", "a.pem"], dir.path())
            .status
            .success()
    );
    fs::set_permissions(dir.path().join("a.pem"), fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let show = mesh_node(&["identity", "show", "a.pem"], dir.path());
    assert_eq!(show.status.code(), Some(1));
    let err = stderr(&show);
    assert!(err.contains("a.pem") && err.contains("chmod 600"), "{err}");
}

#[test]
fn errors_say_each_cause_once_and_what_a_file_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = mesh_node(&["identity", "show", "nope.pem"], dir.path());
    assert_eq!(missing.status.code(), Some(1));
    let err = stderr(&missing);
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    fs::write(dir.path().join("notes.md"), "# Notes\n").expect("write");
    let notes = mesh_node(&["identity", "show", "notes.md"], dir.path());
    let err = stderr(&notes);
    assert!(
        err.contains("notes.md is not a private key") && !err.contains("chmod"),
        "{err}"
    );
}

/// Every key node.toml accepts is in `run --help`, and every doc any help
/// names exists.
#[test]
fn help_lists_every_config_key_and_names_only_docs_that_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let help = |args: &[&str]| stdout(&mesh_node(args, dir.path()));
    let run = help(&["run", "--help"]);
    for key in [
        "identity",
        "credential",
        "name",
        "capabilities",
        "trust_bundle",
        "data_dir",
        "listen",
        "bootstrap",
        "mdns",
        "max_sessions",
        "http",
        "http_token",
        "revoked_credentials",
        "api",
        "api_token_file",
        "serve_tasks",
    ] {
        assert!(
            run.contains(&format!("\n  {key} = ")),
            "{key} missing:\n{run}"
        );
    }
    // The help's own example is a config the node accepts, key for key.
    let example: String = run
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| l.contains(" = "))
        .map(|l| l.split("  ").next().unwrap_or(l).trim().to_owned() + "\n")
        .collect();
    let parsed: Result<toml::Table, _> = example.parse();
    assert!(parsed.is_ok(), "{example}: {parsed:?}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut all = help(&["--help"]);
    for sub in [
        "run", "demo", "identity", "org", "bundle", "task", "grant", "revoke", "mcp", "spawn",
    ] {
        all += &help(&[sub, "--help"]);
    }
    assert!(!all.contains("for now"), "{all}");
    for doc in all.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',') {
        let doc = doc.trim_end_matches(['.', ';', ':']);
        if doc.ends_with(".md") {
            assert!(
                root.join(doc).exists(),
                "help names {doc}, which does not exist"
            );
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["identity"][..],
        &["identity", "bogus"],
        &["identity", "new"],
        &[
            "org", "issue", "--org", "k", "--agent", "d", "--role", "r", "--days", "0", "--out",
            "x",
        ],
        &[
            "org", "issue", "--org", "k", "--agent", "d", "--days", "3", "--out", "x",
        ],
    ] {
        let out = mesh_node(args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    for args in [
        &["--help"][..],
        &["identity", "new", "--help"],
        &["org", "issue", "--help"],
    ] {
        let out = mesh_node(args, dir.path());
        assert!(
            out.status.success() && stdout(&out).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn openssl_keys_load_and_our_keys_load_in_openssl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // openssl → mesh-node
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", "o.pem"], d);
    fs::set_permissions(d.join("o.pem"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let theirs = openssl(&["pkey", "-in", "o.pem", "-pubout", "-outform", "DER"], d).stdout;
    let show = mesh_node(&["identity", "show", "o.pem"], d);
    assert!(show.status.success(), "{}", stderr(&show));
    assert_eq!(
        field(&stdout(&show), "public_key_hex"),
        hex::encode(&theirs[theirs.len() - 32..])
    );
    // mesh-node → openssl
    assert!(
        mesh_node(&["identity", "new", "--out", "m.pem"], d)
            .status
            .success()
    );
    let ours = openssl(&["pkey", "-in", "m.pem", "-pubout", "-outform", "DER"], d).stdout;
    let show = mesh_node(&["identity", "show", "m.pem"], d);
    assert_eq!(
        field(&stdout(&show), "public_key_hex"),
        hex::encode(&ours[ours.len() - 32..])
    );
}

#[test]
fn org_issue_and_show_a_credential() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let org_did = stdout(&mesh_node(&["org", "new", "--out", "org.pem"], d))
        .trim()
        .to_owned();
    let agent_did = stdout(&mesh_node(&["identity", "new", "--out", "a.pem"], d))
        .trim()
        .to_owned();
    let issue = mesh_node(
        &[
            "org", "issue", "--org", "org.pem", "--agent", &agent_did, "--role", "worker",
            "--role", "reviewer", "--days", "30", "--out", "a.cred",
        ],
        d,
    );
    assert!(issue.status.success(), "{}", stderr(&issue));
    let digest = stdout(&issue).trim().to_owned();
    assert_eq!(digest.len(), 64);

    let show = mesh_node(&["org", "show", "a.cred"], d);
    assert!(show.status.success(), "{}", stderr(&show));
    let text = stdout(&show);
    assert_eq!(field(&text, "org"), org_did);
    assert_eq!(field(&text, "agent"), agent_did);
    assert_eq!(field(&text, "roles"), "worker,reviewer");
    assert_eq!(field(&text, "digest"), digest);
    let nb: u64 = field(&text, "not_before").parse().expect("number");
    let ex: u64 = field(&text, "expires").parse().expect("number");
    assert_eq!(ex - nb, 30 * 86_400);
    assert!(
        field(&text, "status").starts_with("valid, expires "),
        "{text}"
    );
    // JSON keeps the types: times are numbers, roles a list.
    let json = mesh_node(&["org", "show", "a.cred", "--json"], d);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["roles"], serde_json::json!(["worker", "reviewer"]));
    assert_eq!(v["not_before"].as_u64(), Some(nb));
    assert_eq!(v["expires"].as_u64(), Some(ex));
    assert_eq!(v["valid"], true);

    // A tampered credential file is refused.
    let mut bytes = fs::read(d.join("a.cred")).expect("cred");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(d.join("bad.cred"), bytes).expect("write");
    let bad = mesh_node(&["org", "show", "bad.cred"], d);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("not a valid org credential"),
        "{}",
        stderr(&bad)
    );

    // A bad agent DID is refused with the reason.
    let bad = mesh_node(
        &[
            "org",
            "issue",
            "--org",
            "org.pem",
            "--agent",
            "did:web:x",
            "--role",
            "r",
            "--days",
            "1",
            "--out",
            "b.cred",
        ],
        d,
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("did:key"), "{}", stderr(&bad));
    assert!(!d.join("b.cred").exists());
}

#[test]
fn bundle_check_lists_orgs_or_names_the_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let root = stdout(&mesh_node(&["org", "new", "--out", "org.pem"], d))
        .trim()
        .to_owned();
    let good = format!(
        "[[org]]\nname = \"acme\"\nroot = \"{root}\"\ninitial_trust = 500\ntrust_ceiling = 900\ncapabilities = [\"tools/*\"]\n"
    );
    fs::write(d.join("good.toml"), &good).expect("write");
    let ok = mesh_node(&["bundle", "check", "good.toml"], d);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).contains(&format!("acme: root {root} initial_trust 500")),
        "{}",
        stdout(&ok)
    );

    fs::write(
        d.join("bad.toml"),
        good.replace("trust_ceiling = 900", "trust_ceiling = 9000"),
    )
    .expect("write");
    let bad = mesh_node(&["bundle", "check", "bad.toml"], d);
    assert_eq!(bad.status.code(), Some(1));
    let err = stderr(&bad);
    assert!(
        err.contains("line 5") && err.contains("org[0].trust_ceiling"),
        "{err}"
    );

    // A bundle of no organisation would refuse every peer.
    fs::write(d.join("empty.toml"), "# nobody\n").expect("write");
    let empty = mesh_node(&["bundle", "check", "empty.toml"], d);
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        stderr(&empty).contains("accepts no organisation"),
        "{}",
        stderr(&empty)
    );

    // `[org]` for `[[org]]`: the fix is named.
    fs::write(d.join("single.toml"), good.replace("[[org]]", "[org]")).expect("write");
    let single = mesh_node(&["bundle", "check", "single.toml"], d);
    assert_eq!(single.status.code(), Some(1));
    assert!(stderr(&single).contains("`[[org]]`"), "{}", stderr(&single));
}

/// An org key (`org.pem`) and an agent key (`a.pem`) made with the CLI in
/// `d`; the returned closure writes the org's credential for the agent,
/// valid from `not_before` to `expires`, to a file, and gives the org key.
fn agent_and_org(d: &Path) -> impl Fn(&str, u64, u64) -> mesh_iatp::Identity + '_ {
    use mesh_iatp::{OrgCredential, Timestamp};

    assert!(
        mesh_node(&["org", "new", "--out", "org.pem"], d)
            .status
            .success()
    );
    let agent_did = stdout(&mesh_node(&["identity", "new", "--out", "a.pem"], d))
        .trim()
        .to_owned();
    let org = mesh_node::keyfile::read(&d.join("org.pem")).expect("org key");
    move |name, not_before, expires| {
        let cred = OrgCredential {
            org: org.did().clone(),
            agent: agent_did.parse().expect("did"),
            roles: vec!["worker".into()],
            not_before: Timestamp(not_before),
            expires: Timestamp(expires),
        };
        fs::write(d.join(name), cred.sign(&org).expect("signs").0).expect("write");
        org.clone()
    }
}

/// `org show` states whether a credential is valid now and exits 3 when it
/// is not; `run` refuses to start on one (both used to accept an expired
/// credential silently, and `run` sat with no peers).
#[test]
fn credentials_outside_their_window_are_named_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let write = agent_and_org(d);
    write("old.cred", 1_000_000_000, 1_000_086_400);
    write("future.cred", 4_102_444_800, 4_105_036_800);

    let old = mesh_node(&["org", "show", "old.cred"], d);
    assert_eq!(old.status.code(), Some(3), "{}", stderr(&old));
    assert!(
        field(&stdout(&old), "status").starts_with("EXPIRED at 2001-09-10T01:46:40Z ("),
        "{}",
        stdout(&old)
    );
    assert_eq!(field(&stdout(&old), "expires_utc"), "2001-09-10T01:46:40Z");
    assert!(
        stderr(&old).contains("old.cred: EXPIRED"),
        "{}",
        stderr(&old)
    );
    let json = mesh_node(&["org", "show", "old.cred", "--json"], d);
    assert_eq!(json.status.code(), Some(3));
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert!(
        parsed["status"]
            .as_str()
            .expect("status")
            .starts_with("EXPIRED")
    );

    let future = mesh_node(&["org", "show", "future.cred"], d);
    assert_eq!(future.status.code(), Some(3));
    assert!(
        field(&stdout(&future), "status").starts_with("NOT YET VALID: starts 2100-01-01T00:00:00Z"),
        "{}",
        stdout(&future)
    );

    fs::write(
        d.join("node.toml"),
        "identity = \"a.pem\"\ncredential = \"old.cred\"\nname = \"a\"\ntrust_bundle = \"bundle.toml\"\ndata_dir = \"data\"\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n",
    )
    .expect("config");
    fs::write(d.join("bundle.toml"), "").expect("bundle");
    let run = mesh_node(&["run", "--config", "node.toml"], d);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("old.cred is EXPIRED at 2001-09-10T01:46:40Z"),
        "{}",
        stderr(&run)
    );
    assert!(!d.join("data").exists(), "nothing was started");
}

/// `run` warns, and starts, when the credential expires within a day.
#[test]
fn run_warns_of_a_credential_that_expires_within_a_day() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let write = agent_and_org(d);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let org = write("a.cred", now - 86_400, now + 3 * 3600 + 600);
    fs::write(
        d.join("bundle.toml"),
        format!(
            "[[org]]\nname = \"acme\"\nroot = \"{}\"\ninitial_trust = 500\ntrust_ceiling = 900\ncapabilities = [\"search\"]\n",
            org.did()
        ),
    )
    .expect("bundle");
    fs::write(
        d.join("node.toml"),
        "identity = \"a.pem\"\ncredential = \"a.cred\"\nname = \"a\"\ntrust_bundle = \"bundle.toml\"\ndata_dir = \"data\"\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n",
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-node"))
        .args(["run", "--config", "node.toml"])
        .current_dir(d)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut warned = None;
    let mut started = false;
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !(warned.is_some() && started) && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            if line.contains("a.cred expires") {
                warned = Some(line.clone());
            } else if line.contains("node started") {
                started = true;
            }
            lines.push(line);
        }
    }
    // A little longer: what a node alone logs once it listens.
    let settle = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    while let Some(left) = settle.checked_duration_since(std::time::Instant::now()) {
        if let Ok(line) = rx.recv_timeout(left) {
            lines.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    for line in &lines {
        assert!(
            !line.contains('\u{1b}'),
            "no colour codes into a pipe: {line:?}"
        );
        assert!(
            !line.contains("Failed to trigger bootstrap"),
            "a node alone is not warned about having no peers: {line}"
        );
    }
    let warned = warned.expect("a warning about the credential");
    assert!(warned.contains("WARN"), "{warned}");
    assert!(warned.contains("(in 3 hours)"), "{warned}");
    assert!(started, "the node started all the same");
}
