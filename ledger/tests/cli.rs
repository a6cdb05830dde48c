//! The `mesh-ledger` tool, as an auditor uses it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_ledger::LogStore;
use std::path::Path;
use std::process::{Command, Output};

fn tool(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mesh-ledger"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = tool(
        &[
            "populate",
            "--db",
            "l.db",
            "--records",
            "300",
            "--agents",
            "4",
            "--batch",
            "100",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().last(), Some("acked 300"));
    dir
}

#[test]
fn a_sound_ledger_verifies_with_its_witness() {
    let dir = populated();
    let vkey = mesh_ledger::populate::witness().to_vkey();
    let out = tool(&["verify", "l.db", "--witness", &vkey], dir.path());
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let s = text(&out.stdout);
    assert!(
        s.contains("300 records")
            && s.contains("3 cosignatures verified")
            && s.contains("0 faults")
            && !s.contains("not checked"),
        "{s}"
    );
    // Without the witness, its cosignatures are counted and the way to
    // check them is named.
    let out = tool(&["verify", "l.db"], dir.path());
    let s = text(&out.stdout);
    assert!(
        out.status.success()
            && s.contains("3 cosignatures are by witnesses not given")
            && s.contains("--witness VKEY"),
        "{s}"
    );
    let out = tool(&["verify", "l.db", "--json"], dir.path());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sound"], true);
    assert_eq!(v["logs"][0]["unknown_cosigners"], 3);
}

#[test]
fn required_witnesses_are_required() {
    let dir = populated();
    let w = mesh_ledger::populate::witness();
    let vkey = w.to_vkey();
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "l.db", "--witness", &vkey];
        args.extend_from_slice(extra);
        tool(&args, dir.path())
    };
    assert!(verify(&["--require-witness", &w.name]).status.success());
    assert!(verify(&["--require-witness", "1"]).status.success());
    // Not given: a usage error, not a verdict on the ledger.
    let out = verify(&["--require-witness", "someone.example"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not the name of a given witness"),
        "{}",
        text(&out.stderr)
    );
    let out = verify(&["--require-witness", "2"]);
    assert!(text(&out.stderr).contains("only 1 witnesses were given"));
    // Without the witness's cosignature lines the ledger is sound only
    // while they are not required.
    let strip = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             rows=c.execute('select origin,size,note from ledger_checkpoints').fetchall(); \
             [c.execute('update ledger_checkpoints set note=? where origin=? and size=?', \
               (b'\\n'.join(l for l in bytes(n).split(b'\\n') if not l.startswith(sys.argv[2].encode())), o, s)) \
              for (o,s,n) in rows]; c.commit()",
        ])
        .arg(dir.path().join("l.db"))
        .arg(format!("\u{2014} {}", w.name))
        .status()
        .unwrap();
    assert!(strip.success());
    assert!(
        tool(&["verify", "l.db", "--witness", &vkey], dir.path())
            .status
            .success()
    );
    let out = verify(&["--require-witness", &w.name]);
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    assert!(
        s.contains(&format!(
            "no valid cosignature by required witness {}",
            w.name
        )),
        "{s}"
    );
}

#[test]
fn a_tampered_ledger_fails_naming_the_fault() {
    let dir = populated();
    let db = dir.path().join("l.db");
    let conn = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             b=bytearray(c.execute('select leaf from ledger_records where idx=42').fetchone()[0]); b[-3]^=4; \
             c.execute('update ledger_records set leaf=? where idx=42',(bytes(b),)); c.commit()",
            db.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(conn.status.success(), "{}", text(&conn.stderr));
    let out = tool(&["verify", "l.db"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    assert!(s.contains("FAULT record 42:"), "{s}");
    assert!(s.contains("ledger has faults"), "{s}");
}

#[test]
fn proofs_printed_by_the_tool_verify() {
    let dir = populated();
    let out = tool(&["prove", "l.db", "--index", "123"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = |s: &serde_json::Value| -> [u8; 32] {
        hex::decode(s.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    let proof: Vec<[u8; 32]> = v["proof"].as_array().unwrap().iter().map(h).collect();
    let leaf = hex::decode(v["leaf"].as_str().unwrap()).unwrap();
    assert_eq!(mesh_ledger::merkle::leaf_hash(&leaf), h(&v["leaf_hash"]));
    mesh_ledger::merkle::verify_inclusion(123, 300, &h(&v["leaf_hash"]), &proof, &h(&v["root"]))
        .unwrap();

    let out = tool(
        &["consistency", "l.db", "--from", "100", "--to", "300"],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let proof: Vec<[u8; 32]> = v["proof"].as_array().unwrap().iter().map(h).collect();
    mesh_ledger::merkle::verify_consistency(
        100,
        300,
        &proof,
        &h(&v["from_root"]),
        &h(&v["to_root"]),
    )
    .unwrap();

    let out = tool(&["checkpoint", "l.db"], dir.path());
    assert!(text(&out.stdout).starts_with("mesh.example/log/populate\n300\n"));
    let out = tool(&["inspect", "l.db", "--index", "5"], dir.path());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["actor"].as_str().unwrap().starts_with("did:key:z6Mk"));
}

#[test]
fn auditing_never_creates_or_alters_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = tool(&["verify", "missing.db"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no ledger file at missing.db"));
    assert!(!dir.path().join("missing.db").exists());
    std::fs::write(dir.path().join("notes.txt"), b"not a database").unwrap();
    let out = tool(&["verify", "notes.txt"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read(dir.path().join("notes.txt")).unwrap(),
        b"not a database"
    );
    let out = tool(&["prove", "missing.db", "--index", "0"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn out_of_range_requests_and_usage_errors_are_clear() {
    let dir = populated();
    let out = tool(&["prove", "l.db", "--index", "300"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not covered by the latest checkpoint"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(tool(&["prove", "l.db"], dir.path()).status.code(), Some(2));
    assert_eq!(tool(&["bogus"], dir.path()).status.code(), Some(2));
    assert!(tool(&["verify", "--help"], dir.path()).status.success());
}

#[test]
fn an_export_verifies_like_the_database_and_is_never_overwritten() {
    let dir = populated();
    let out = tool(&["export", "l.db", "--out", "l.export"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let db = text(&tool(&["verify", "l.db"], dir.path()).stdout);
    let ex = tool(&["verify", "l.export"], dir.path());
    assert!(ex.status.success(), "{}", text(&ex.stderr));
    // Same records, root and checkpoints from either form.
    assert_eq!(db.lines().next(), text(&ex.stdout).lines().next());
    // Proofs, checkpoints and records read from the export are the database's.
    for args in [
        &["prove", "--index", "123"][..],
        &["consistency", "--from", "100", "--to", "300"],
        &["checkpoint"],
        &["inspect", "--index", "5"],
        &["inspect"],
    ] {
        let from = |file: &str| {
            let out = tool(&[&[args[0], file], &args[1..]].concat(), dir.path());
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
            text(&out.stdout)
        };
        assert_eq!(from("l.db"), from("l.export"), "{args:?}");
    }
    let files = || {
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let listed = files();
    let again = tool(&["export", "l.export", "--out", "copy.export"], dir.path());
    assert!(text(&again.stderr).contains("already an export"));
    assert_eq!(files(), listed, "auditing an export writes nothing");
    let before = std::fs::read(dir.path().join("l.export")).unwrap();
    let again = tool(&["export", "l.db", "--out", "l.export"], dir.path());
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(std::fs::read(dir.path().join("l.export")).unwrap(), before);
}

#[test]
fn witnesses_named_by_did_are_accepted_from_a_bundle() {
    use mesh_iatp::Timestamp;
    use mesh_iatp::testing::identity;
    use mesh_ledger::checkpoint::{Checkpoint, cosign};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db").to_string_lossy().into_owned();
    let witness = identity("org witness root");
    let did = witness.did().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = mesh_ledger::store::Store::open(&db).await.unwrap();
        let log_key = identity("log w");
        let mut log = store
            .create_log("mesh.example/log/w", log_key.did())
            .await
            .unwrap();
        let people = mesh_ledger::testing::agents(3);
        let recs: Vec<_> = (0..20)
            .map(|i| mesh_ledger::testing::record(i, &people))
            .collect();
        log.append(&recs).await.unwrap();
        let mut note = Checkpoint {
            origin: "mesh.example/log/w".into(),
            size: 20,
            root: log.root(),
        }
        .sign(&log_key)
        .unwrap();
        note.signatures
            .push(cosign(&note.text, &did, &witness, Timestamp(7)));
        log.add_checkpoint(&note.to_bytes()).await.unwrap();
    });
    std::fs::write(
        dir.path().join("bundle.toml"),
        format!(
            "[[org]]\nname = \"w\"\nroot = \"{did}\"\ninitial_trust = 500\ntrust_ceiling = 900\n"
        ),
    )
    .unwrap();
    let out = tool(&["verify", "w.db", "--bundle", "bundle.toml"], dir.path());
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("1 cosignatures verified, 0 from unknown witnesses"),
        "{}",
        text(&out.stdout)
    );
    let out = tool(&["verify", "w.db", "--witness-did", &did], dir.path());
    assert!(
        text(&out.stdout).contains("1 cosignatures verified"),
        "{}",
        text(&out.stdout)
    );
    let out = tool(
        &["verify", "w.db", "--witness-did", "did:key:nope"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--witness-did"),
        "{}",
        text(&out.stderr)
    );
}
