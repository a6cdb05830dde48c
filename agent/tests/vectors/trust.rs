//! Signed trust reports (TRUST.md §4, PROTOCOL.md §11.1).

use ciborium::Value;
use mesh_iatp::testing::FIXTURE_NOW;
use mesh_iatp::{Score, Timestamp};
use mesh_trust::report::{seal_report, verify_report};
use mesh_trust::{ReportEntry, TrustConfig, TrustEngine, TrustReport};
use serde_json::json;

use crate::envelope::{reseal, set_in_body, spoil_signature};
use crate::{Case, Refused, VectorFile, Verdict};

const NOW: Timestamp = FIXTURE_NOW;

fn verdict(bytes: &[u8], max_entries: usize) -> Verdict {
    let r = verify_report(bytes, max_entries, NOW, 60).map_err(|e| Refused::named(&e))?;
    Ok(json!({
        "reporter": r.reporter.as_str(),
        "epoch": r.position.0,
        "sequence": r.position.1,
        "entries": r.entries.iter().map(|(d, s, e)| json!([d.as_str(), s.get(), e])).collect::<Vec<_>>(),
    }))
}

/// `trust/report`.
pub fn reports() -> VectorFile {
    let mut f = VectorFile::new(
        "trust-report.json",
        "Trust reports as gossiped on /mesh/trust/1: verified alone at `input.now` with \
         60 s of skew and at most `input.max_entries` entries; cases with `input.after` \
         are given to a receiver that already holds that case's report (freshness, \
         TRUST.md §4).",
        "docs/TRUST.md §4, docs/PROTOCOL.md §11.1",
    );
    let reporter = f.key("agent alice");
    let bob = f.key("agent bob");
    let carol = f.key("agent carol");
    let entry = |did: &mesh_iatp::Did, score, evidence| ReportEntry {
        subject: did.to_string(),
        score: Score::saturating(score),
        evidence,
    };
    let report = TrustReport {
        reporter: reporter.did().clone(),
        epoch: 3,
        sequence: 7,
        issued: NOW,
        entries: vec![entry(bob.did(), 720, 12), entry(carol.did(), 150, 4)],
    };
    let good = seal_report(&report, &reporter).unwrap();
    let input = |max: usize| json!({ "now": NOW.0, "max_entries": max });
    f.accepted(
        Case::new(
            "trust/report",
            "valid",
            "alice rates bob 720 (12 evidence) and carol 150 (4), epoch 3, sequence 7",
            input(1024),
            &good,
        ),
        verdict(&good, 1024),
    );
    let text = |s: &str| Value::Text(s.into());
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Vec<u8>, usize, &str)> = vec![
        ("signature spoiled", "the first signature bit flipped", spoil_signature(&good), 1024, "envelope/bad_signature"),
        ("signed by a subject", "alice's report, signed by bob", reseal(&good, &bob, |_| {}), 1024, "envelope/bad_signature"),
        ("too many entries", "two entries to a receiver taking one", good.clone(), 1, "too_many_entries"),
        ("from the future", "issued 61 s ahead, signed by alice", reseal(&good, &reporter, |e| { set_in_body(e, &["issued"], Value::Integer(NOW.plus_secs(61).0.into())) }), 1024, "from_the_future"),
        ("self rating", "alice rates herself", seal_report(&TrustReport { entries: vec![entry(reporter.did(), 1000, 1)], ..report.clone() }, &reporter) .unwrap(), 1024, "self_rating"),
        ("duplicate subject", "bob rated twice", seal_report(&TrustReport { entries: vec![entry(bob.did(), 700, 1), entry(bob.did(), 100, 1)], ..report.clone() }, &reporter) .unwrap(), 1024, "duplicate_subject"),
        ("subject not a did", "an entry's subject is `bob`", reseal(&good, &reporter, |e| { set_in_body(e, &["entries"], Value::Array(vec![Value::Map(vec![ (text("score"), Value::Integer(1.into())), (text("subject"), text("bob")), (text("evidence"), Value::Integer(1.into())), ])])) }), 1024, "invalid_subject/missing_prefix"),
    ];
    for (name, about, bytes, max, error) in cases {
        let v = verdict(&bytes, max);
        f.refused(
            Case::new("trust/report", name, about, input(max), &bytes),
            v,
            Refused::error(error),
        );
    }
    // Freshness: a receiver holding case `valid`.
    let held = |bytes: &[u8]| {
        let mut engine = TrustEngine::new(carol.did().clone(), TrustConfig::default()).unwrap();
        engine.receive_report(&good, NOW).unwrap();
        engine
            .receive_report(bytes, NOW)
            .map(|o| json!(format!("{o:?}")))
            .map_err(|e| Refused::named(&e))
    };
    let older = seal_report(
        &TrustReport {
            sequence: 6,
            ..report.clone()
        },
        &reporter,
    )
    .unwrap();
    let conflicting = seal_report(
        &TrustReport {
            entries: vec![entry(bob.did(), 10, 12)],
            ..report.clone()
        },
        &reporter,
    )
    .unwrap();
    let newer = seal_report(
        &TrustReport {
            epoch: 4,
            sequence: 0,
            ..report.clone()
        },
        &reporter,
    )
    .unwrap();
    let mut input = input(1024);
    input["after"] = json!("valid");
    f.accepted(
        Case::new(
            "trust/report",
            "newer epoch",
            "epoch 4, sequence 0: after a restart",
            input.clone(),
            &newer,
        ),
        held(&newer),
    );
    f.refused(
        Case::new(
            "trust/report",
            "older sequence",
            "sequence 6 after 7",
            input.clone(),
            &older,
        ),
        held(&older),
        Refused::error("stale"),
    );
    f.refused(
        Case::new(
            "trust/report",
            "conflicting",
            "a different report at the same epoch and sequence",
            input,
            &conflicting,
        ),
        held(&conflicting),
        Refused::error("conflicting"),
    );
    f
}
