//! What `mesh-ledger verify` holds a log to beyond its signatures and tree
//! (issue 14): a log named by an agent's DID is that agent's — signed by
//! its key, every record one of its actions; a witness named by its DID is
//! checked without being given; required witnesses are required; rows of
//! no log are reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_iatp::testing::identity;
use mesh_iatp::{Identity, Timestamp};
use mesh_ledger::LogStore;
use mesh_ledger::audit::{Audit, LogReport, Required};
use mesh_ledger::checkpoint::{Checkpoint, cosign, witness_verifier};
use mesh_ledger::merkle::{MemoryTree, leaf_hash};
use mesh_ledger::note::{Note, NoteVerifier};
use mesh_ledger::record::CoSignedRecord;
use mesh_ledger::testing::record;

/// Records `0..n` between the agents `among`, a checkpoint of all of them
/// signed by `log_key` under `origin`, cosigned by each of `witnesses`
/// (name, key); then the audit of it against the `given` witnesses.
fn audit(
    origin: &str,
    log_key: &Identity,
    among: &[Identity],
    witnesses: &[(&str, &Identity)],
    given: &[NoteVerifier],
    edit: impl FnOnce(&mut Note),
) -> LogReport {
    let records: Vec<CoSignedRecord> = (0..4).map(|i| record(i, among)).collect();
    let mut tree = MemoryTree::new();
    for r in &records {
        tree.append(leaf_hash(r.bytes()));
    }
    let cp = Checkpoint {
        origin: origin.into(),
        size: 4,
        root: mesh_ledger::merkle::infallible(mesh_ledger::merkle::root(&tree, 4)),
    };
    let mut note = cp.sign(log_key).unwrap();
    for (name, key) in witnesses {
        note.signatures
            .push(cosign(&note.text, name, key, Timestamp(5)));
    }
    edit(&mut note);
    let mut audit = Audit::new(origin, log_key.did(), vec![(4, note.to_bytes())]);
    for r in &records {
        audit.record(r.bytes());
    }
    audit.finish(4, given)
}

fn faults(r: &LogReport) -> Vec<String> {
    r.faults.iter().map(ToString::to_string).collect()
}

#[test]
fn an_agents_log_is_signed_by_the_agent() {
    let (a, c) = (identity("agent a"), identity("agent c"));
    let origin = a.did().as_str();
    let own = audit(origin, &a, &[a.clone(), c.clone()], &[], &[], |_| {});
    assert!(own.is_sound(), "{:?}", own.faults);
    // The same records and a checkpoint under A's name, signed by another
    // key: every signature checks, but it is not A's log.
    let forger = identity("forger");
    let forged = audit(origin, &forger, &[a.clone(), c], &[], &[], |_| {});
    assert_eq!(
        faults(&forged),
        [format!(
            "log key: the log is signed by {}, not by the agent its origin names",
            forger.did()
        )]
    );
}

#[test]
fn records_that_are_not_the_agents_actions_are_faults() {
    let a = identity("agent a");
    let others = [identity("agent c"), identity("agent d")];
    let r = audit(a.did().as_str(), &a, &others, &[], &[], |_| {});
    assert_eq!(r.faults.len(), 4, "{:?}", r.faults);
    assert!(
        faults(&r)[0].starts_with("record 0: between did:key:")
            && faults(&r)[0].ends_with("not an action of the log's agent"),
        "{:?}",
        r.faults
    );
    // A log not named by a DID is no agent's: its records are anyone's.
    let unnamed = audit("mesh.example/log/x", &a, &others, &[], &[], |_| {});
    assert!(unnamed.is_sound(), "{:?}", unnamed.faults);
}

#[test]
fn a_witness_named_by_its_did_is_checked_without_being_given() {
    let a = identity("agent a");
    let among = [a.clone(), identity("agent c")];
    let w = identity("witness w");
    let name = w.did().as_str().to_string();
    let fine = audit(a.did().as_str(), &a, &among, &[(&name, &w)], &[], |_| {});
    assert!(fine.is_sound(), "{:?}", fine.faults);
    assert_eq!((fine.cosignatures, fine.unknown_cosigners), (0, 1));
    // The same line with a broken signature is a fault, given or not.
    let broken = audit(a.did().as_str(), &a, &among, &[(&name, &w)], &[], |n| {
        let last = n.signatures[1].signature.len() - 1;
        n.signatures[1].signature[last] ^= 1;
    });
    assert_eq!(broken.faults.len(), 1, "{:?}", broken.faults);
    assert!(faults(&broken)[0].contains(&format!("cosignature by {name}")));
    // Another key's cosignature under W's DID.
    let impostor = audit(
        a.did().as_str(),
        &a,
        &among,
        &[(&name, &identity("impostor"))],
        &[],
        |_| {},
    );
    assert_eq!(impostor.faults.len(), 1, "{:?}", impostor.faults);
}

#[test]
fn required_witnesses_must_have_cosigned_the_latest_checkpoint() {
    let a = identity("agent a");
    let among = [a.clone(), identity("agent c")];
    let (w1, w2) = (identity("witness 1"), identity("witness 2"));
    let given = [
        witness_verifier("w1.example", w1.did().clone()).unwrap(),
        witness_verifier("w2.example", w2.did().clone()).unwrap(),
    ];
    let both = [("w1.example", &w1), ("w2.example", &w2)];
    let require = |names: &[&str], count| Required {
        names: names.iter().map(ToString::to_string).collect(),
        count,
    };
    let mut r = audit(a.did().as_str(), &a, &among, &both, &given, |_| {});
    r.require(&require(&["w1.example", "w2.example"], 2));
    assert!(r.is_sound(), "{:?}", r.faults);
    // Deleting w2's cosignature leaves a sound log, unless it is required.
    let drop_w2 = |n: &mut Note| {
        n.signatures.retain(|l| l.name != "w2.example");
    };
    let mut r = audit(a.did().as_str(), &a, &among, &both, &given, drop_w2);
    assert!(r.is_sound());
    r.require(&require(&["w2.example"], 0));
    assert_eq!(
        faults(&r),
        ["checkpoint at size 4 (the latest): no valid cosignature by required witness w2.example"]
    );
    let mut r = audit(a.did().as_str(), &a, &among, &both, &given, drop_w2);
    r.require(&require(&[], 2));
    assert_eq!(
        faults(&r),
        ["checkpoint at size 4 (the latest): cosigned by 1 of the given witnesses, 2 required"]
    );
}

#[tokio::test]
async fn rows_that_belong_to_no_log_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db").to_string_lossy().into_owned();
    let store = mesh_ledger::store::Store::open(&path).await.unwrap();
    let a = identity("agent a");
    let origin = a.did().as_str();
    let mut log = store.create_log(origin, a.did()).await.unwrap();
    log.append(&[record(0, &[a.clone(), identity("agent c")])])
        .await
        .unwrap();
    let cp = Checkpoint {
        origin: origin.into(),
        size: 1,
        root: log.root(),
    };
    log.add_checkpoint(&cp.sign(&a).unwrap().to_bytes())
        .await
        .unwrap();
    assert!(
        mesh_ledger::verify::orphan_rows(&store)
            .await
            .unwrap()
            .is_empty()
    );
    // The checkpoint row's origin altered: it belongs to no log now, and
    // the log's own verification no longer sees it.
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut raw = sqlx::AnyConnection::connect(&format!("sqlite://{path}"))
        .await
        .unwrap();
    sqlx::query("UPDATE ledger_checkpoints SET origin = 'elsewhere'")
        .execute(&mut raw)
        .await
        .unwrap();
    let orphans = mesh_ledger::verify::orphan_rows(&store).await.unwrap();
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0].origin, "elsewhere");
    assert_eq!(
        faults(&orphans[0]),
        ["ledger_checkpoints: 1 rows for a log the ledger does not have"]
    );
}
