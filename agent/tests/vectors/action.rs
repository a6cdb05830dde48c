//! The frames of `/mesh/iatp/1` and `/mesh/action/1` (PROTOCOL.md §8.1,
//! §10, §12) and the task digests a `delegate` and a `result` record sign
//! (§10.2).

use ciborium::Value;
use mesh_agent::digest_of;
use mesh_agent::wire::{
    ActionContext, ActionRefusal, ActionRequest, ActionResponse, IatpRequest, IatpResponse,
    MAX_ACTION_FRAME, MAX_IATP_FRAME, Stopped, SyncDigest, SyncItems, Task, TaskOrder, TaskOutcome,
};
use mesh_iatp::cbor::{from_canonical_slice, to_canonical_vec, value_to_canonical_vec};
use mesh_iatp::testing::FIXTURE_NOW;
use mesh_iatp::{Identity, Timestamp};
use mesh_ledger::{ActionKind, ActionRecord};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{Case, Refused, VectorFile, Verdict, hex};

const NOW: Timestamp = FIXTURE_NOW;

/// The variant a frame decodes as, or why it does not.
fn frame_verdict<T: DeserializeOwned + Serialize + std::fmt::Debug>(
    bytes: &[u8],
    max: u64,
) -> Verdict {
    let max = usize::try_from(max).unwrap();
    let frame: T = from_canonical_slice(bytes, max).map_err(|e| Refused::named(&e))?;
    let debug = format!("{frame:?}");
    let variant: String = debug
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    Ok(json!({ "message": variant }))
}

fn bytes(b: &[u8]) -> ByteBuf {
    ByteBuf::from(b.to_vec())
}

fn actor_signed(alice: &Identity, bob: &Identity, payload: &[u8]) -> Vec<u8> {
    ActionRecord {
        kind: ActionKind::Invoke,
        actor: alice.did().clone(),
        counterparty: bob.did().clone(),
        grant: None,
        payload_digest: Sha256::digest(payload).into(),
        timestamp: NOW,
        nonce: [5; 16],
    }
    .sign(alice)
    .unwrap()
    .to_bytes()
    .unwrap()
}

/// Frames, each a deterministic-CBOR item on its own stream.
pub fn frames() -> VectorFile {
    let mut f = VectorFile::new(
        "frames.json",
        "Request and response frames of /mesh/iatp/1 (at most 65,536 bytes) and \
         /mesh/action/1 (at most 131,072 bytes), decoded as the reference \
         implementation's reader does: deterministic CBOR of the expected shape, else the \
         frame is not answered and counts as a strike (`output.message` names the \
         variant). Signed contents inside (envelopes, records, notes) are opaque at this \
         layer and are covered by the other files; here they are cases of those files \
         (the handshake transcript, a record, a grant chain, a revocation, a cosigned \
         checkpoint), and hashes are placeholders. `action/task-order` and \
         `action/outcome` are what a task's `delegate` and `result` records sign: \
         `output.payload_digest` is SHA-256 of the bytes.",
        "docs/PROTOCOL.md §8.1, §10, §12",
    );
    let alice = f.key("agent alice");
    let bob = f.key("agent bob");
    let [hello, response, confirm] = crate::iatp::transcript();
    let iatp_requests = [
        ("hello", IatpRequest::Hello(bytes(&hello))),
        ("confirm", IatpRequest::Confirm(bytes(&confirm))),
    ];
    for (name, frame) in iatp_requests {
        let b = to_canonical_vec(&frame).unwrap();
        let about = format!("case {name} of iatp-handshake.json as a request");
        f.accepted(
            Case::new("iatp/request", name, &about, json!({}), &b),
            frame_verdict::<IatpRequest>(&b, MAX_IATP_FRAME),
        );
    }
    let iatp_responses = [
        ("response", IatpResponse::Response(bytes(&response))),
        ("accepted", IatpResponse::Accepted),
        ("simultaneous open", IatpResponse::SimultaneousOpen),
        (
            "refused below_trust_floor",
            IatpResponse::Refused {
                code: 19,
                reason: "below_trust_floor: 80 is under the floor 100".into(),
            },
        ),
    ];
    for (name, frame) in iatp_responses {
        let b = to_canonical_vec(&frame).unwrap();
        f.accepted(
            Case::new("iatp/response-frame", name, "", json!({}), &b),
            frame_verdict::<IatpResponse>(&b, MAX_IATP_FRAME),
        );
    }
    let text = |s: &str| Value::Text(s.into());
    let map = |entries: Vec<(&str, Value)>| {
        Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
    };
    let hello_as_text = value_to_canonical_vec(map(vec![("Hello", text("a4"))])).unwrap();
    let unknown = value_to_canonical_vec(map(vec![("Goodbye", Value::Bytes(vec![1]))])).unwrap();
    let mut unsorted = vec![0xa2];
    unsorted.extend(to_canonical_vec(&"reason").unwrap());
    unsorted.extend(to_canonical_vec(&"x").unwrap());
    unsorted.extend(to_canonical_vec(&"code").unwrap());
    unsorted.extend(to_canonical_vec(&1u16).unwrap());
    let unsorted_refused = [&[0xa1, 0x67][..], b"Refused", &unsorted].concat();
    let mut indefinite = vec![0xa1, 0x65];
    indefinite.extend_from_slice(b"Hello");
    indefinite.extend_from_slice(&[0x5f, 0x41, 0x01, 0xff]);
    #[rustfmt::skip]
    let iatp_bad: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("hello as text", "{\"Hello\": \"a4\"}: text where bytes belong", hello_as_text, "schema"),
        ("unknown request", "{\"Goodbye\": h'01'}", unknown, "schema"),
        ("indefinite length", "{\"Hello\": (_ h'01')}: an indefinite-length byte string", indefinite, "not_canonical"),
    ];
    for (name, about, b, error) in iatp_bad {
        f.refused(
            Case::new("iatp/request", name, about, json!({}), &b),
            frame_verdict::<IatpRequest>(&b, MAX_IATP_FRAME),
            Refused::error(error),
        );
    }
    f.refused(
        Case::new(
            "iatp/response-frame",
            "keys out of order",
            "Refused with `reason` before `code`",
            json!({}),
            &unsorted_refused,
        ),
        frame_verdict::<IatpResponse>(&unsorted_refused, MAX_IATP_FRAME),
        Refused::error("not_canonical"),
    );

    // /mesh/action/1.
    let record = actor_signed(&alice, &bob, b"ping");
    let task = Task {
        resource: "tools/search".into(),
        action: "read".into(),
        input: bytes(b"hi"),
    };
    let grant_chain = crate::delegation::grant_chain();
    let outcome = TaskOutcome::succeeded(b"ok".to_vec());
    let note = crate::ledger::cosigned_checkpoint(&alice, &bob).to_bytes();
    let revocation = crate::delegation::alice_revokes_bob(&alice)
        .sign(&alice)
        .unwrap();
    #[rustfmt::skip]
    let requests: Vec<(&str, ActionRequest)> = vec![
        ("cosign plain", ActionRequest::CoSign { record: bytes(&record), context: ActionContext::Plain { payload: bytes(b"ping"), }, }),
        ("cosign grant", ActionRequest::CoSign { record: bytes(&record), context: ActionContext::Grant { chain: grant_chain.clone(), }, }),
        ("cosign task", ActionRequest::CoSign { record: bytes(&record), context: ActionContext::Task { chain: grant_chain, task: task.clone(), deadline: NOW.plus_secs(600), }, }),
        ("cosign outcome", ActionRequest::CoSign { record: bytes(&record), context: ActionContext::Outcome { outcome: outcome.clone(), }, }),
        ("cosign revoke", ActionRequest::CoSign { record: bytes(&record), context: ActionContext::Revoke { revocation: bytes(&revocation), }, }),
        ("consistency", ActionRequest::Consistency { old: 2, new: 3 }),
        ("inclusion", ActionRequest::Inclusion { index: 1, size: 3 }),
        ("cosignature", ActionRequest::Cosignature { note: bytes(&note) }),
        ("cancel", ActionRequest::Cancel { grant: bytes(&[0x11; 32]), }),
        ("sync", ActionRequest::Sync(SyncDigest { revocations: vec![bytes(&[0x12; 32])], offenders: vec![bob.did().clone()], records: vec![bytes(&[0x13; 32])], checkpoint: Some(bytes(&note)), })),
    ];
    for (name, frame) in requests {
        let b = to_canonical_vec(&frame).unwrap();
        f.accepted(
            Case::new("action/request", name, "", json!({}), &b),
            frame_verdict::<ActionRequest>(&b, MAX_ACTION_FRAME),
        );
    }
    #[rustfmt::skip]
    let responses: Vec<(&str, ActionResponse)> = vec![
        ("cosigned", ActionResponse::CoSigned { record: bytes(&record), outcome: None, }),
        ("proof", ActionResponse::Proof { hashes: vec![bytes(&[0x21; 32]), bytes(&[0x22; 32])], }),
        ("included", ActionResponse::Included { record: bytes(&record), hashes: vec![bytes(&[0x23; 32])], }),
        ("done", ActionResponse::Done),
        ("synced", ActionResponse::Synced(SyncItems { revocations: vec![], proofs: vec![], records: vec![bytes(&record)], more: false, })),
        ("refused no_session", ActionResponse::refused(&ActionRefusal::NoSession)),
    ];
    for (name, frame) in responses {
        let b = to_canonical_vec(&frame).unwrap();
        f.accepted(
            Case::new("action/response", name, "", json!({}), &b),
            frame_verdict::<ActionResponse>(&b, MAX_ACTION_FRAME),
        );
    }
    let digest_map = |extra: Option<(&str, Value)>| {
        let mut entries = vec![
            ("records", Value::Array(vec![])),
            ("checkpoint", Value::Null),
            ("offenders", Value::Array(vec![])),
            ("revocations", Value::Array(vec![])),
        ];
        entries.extend(extra);
        value_to_canonical_vec(map(vec![("Sync", map(entries))])).unwrap()
    };
    let negative = value_to_canonical_vec(map(vec![(
        "Consistency",
        map(vec![
            ("old", Value::Integer((-1).into())),
            ("new", Value::Integer(3.into())),
        ]),
    )]))
    .unwrap();
    #[rustfmt::skip]
    let action_bad: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("sync with an unknown key", "a Sync digest with an extra key `more`", digest_map(Some(("more", Value::Bool(true)))), "schema"),
        ("negative size", "Consistency with old = −1", negative, "schema"),
        ("trailing byte", "case consistency followed by 00", [ to_canonical_vec(&ActionRequest::Consistency { old: 2, new: 3 }).unwrap(), vec![0], ] .concat(), "trailing_bytes"),
    ];
    for (name, about, b, error) in action_bad {
        f.refused(
            Case::new("action/request", name, about, json!({}), &b),
            frame_verdict::<ActionRequest>(&b, MAX_ACTION_FRAME),
            Refused::error(error),
        );
    }
    let empty_digest = digest_map(None);
    f.accepted(
        Case::new(
            "action/request",
            "sync empty",
            "a Sync digest of an agent that knows nothing",
            json!({}),
            &empty_digest,
        ),
        frame_verdict::<ActionRequest>(&empty_digest, MAX_ACTION_FRAME),
    );

    // What task records sign.
    let order = TaskOrder {
        task: &task,
        deadline: Timestamp(1_800_000_000),
    };
    let digest = |b: &[u8], d: [u8; 32]| -> Verdict {
        assert_eq!(<[u8; 32]>::from(Sha256::digest(b)), d);
        Ok(json!({ "payload_digest": hex(&d) }))
    };
    let b = to_canonical_vec(&order).unwrap();
    f.accepted(
        Case::new(
            "action/task-order",
            "search",
            "tools/search read, input \"hi\", deadline 1,800,000,000",
            json!({}),
            &b,
        ),
        digest(&b, digest_of(&order).unwrap()),
    );
    for (name, o) in [
        ("succeeded", outcome),
        (
            "failed",
            TaskOutcome::failed(b"no such repository".to_vec()),
        ),
        ("cancelled", TaskOutcome::stopped(Stopped::Cancelled)),
        ("expired", TaskOutcome::stopped(Stopped::Expired)),
    ] {
        let b = to_canonical_vec(&o).unwrap();
        f.accepted(
            Case::new("action/outcome", name, "", json!({}), &b),
            digest(&b, digest_of(&o).unwrap()),
        );
    }
    f
}
