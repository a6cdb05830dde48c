//! One function per fuzz target. Each feeds the bytes to the decoder a
//! peer or a file reaches, the way the node calls it, and asserts what
//! must hold of anything accepted; libFuzzer adds the rest (no panic, no
//! hang, no allocation past its limit).
//!
//! Signed objects are fuzzed two ways, chosen by the first byte: the raw
//! envelope (what the wire carries: nearly every change stops at the
//! signature), or a body the target signs itself with the key the seed
//! used, so mutations reach every check after the signature.

use std::io::Cursor;
use std::path::Path;

use mesh_agent::Fact;
use mesh_agent::wire::{
    ActionRequest, ActionResponse, IatpRequest, IatpResponse, MAX_ACTION_FRAME, MAX_IATP_FRAME,
    SyncDigest, SyncItems,
};
use mesh_delegation::{
    Revocation, SignedGrant, SignedSpawnCertificate, verify_chain, verify_lineage,
    verify_revocation,
};
use mesh_iatp::cbor;
use mesh_iatp::credential::{OrgCredential, SignedCredential};
use mesh_iatp::envelope::{self, Envelope, SignedMessage};
use mesh_iatp::handshake::{Confirm, Hello, Response};
use mesh_iatp::{Identity, TrustBundle};
use mesh_ledger::checkpoint::{Checkpoint, verify_cosignature, witness_verifier};
use mesh_ledger::equivocation::EquivocationProof;
use mesh_ledger::export::{read_export, verify_export};
use mesh_ledger::note::Note;
use mesh_ledger::{ActorSigned, CoSignedRecord};
use mesh_trust::{TrustConfig, TrustEngine, TrustReport};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::world::{NOW, WITNESS_NAME, world};

/// The first byte of a signed-object input: sign the rest as a body.
pub const RESIGN: u8 = 1;

/// The bytes to hand the decoder: `data[1..]` as is, or (mode
/// [`RESIGN`]) decoded as an `M` body and sealed by `key`. `None` when a
/// body to re-sign does not decode.
fn signed<M: SignedMessage>(data: &[u8], key: &Identity) -> Option<Vec<u8>> {
    let (&mode, rest) = data.split_first()?;
    if mode != RESIGN {
        return Some(rest.to_vec());
    }
    let body: M = cbor::from_canonical_slice(rest, M::MAX_BYTES).ok()?;
    envelope::seal(&body, key).ok()
}

/// A frame type: whatever decodes encodes back to the same bytes.
fn frame<T: Serialize + DeserializeOwned>(data: &[u8], max: u64) -> bool {
    let bound = usize::try_from(max).unwrap_or(usize::MAX);
    let Ok(value) = cbor::from_canonical_slice::<T>(data, bound) else {
        return false;
    };
    let again = cbor::to_canonical_vec(&value).unwrap_or_default();
    assert_eq!(again, data, "a decoded frame re-encodes differently");
    true
}

/// Opened (signature unchecked) as an `M`.
fn opens<M: SignedMessage>(data: &[u8]) -> bool {
    envelope::open::<M>(data)
        .map(|claimed| cbor::to_canonical_vec(claimed.claimed()).is_ok())
        .unwrap_or(false)
}

/// The envelope, and the opening of every message type from it.
pub fn envelope(data: &[u8]) -> bool {
    let decoded = match Envelope::decode(data, 1 << 20) {
        Ok(env) => !env.msg_type().is_empty(),
        Err(_) => false,
    };
    let opened = [
        opens::<Hello>(data),
        opens::<Response>(data),
        opens::<Confirm>(data),
        opens::<OrgCredential>(data),
        opens::<TrustReport>(data),
        opens::<Revocation>(data),
        opens::<mesh_delegation::Grant>(data),
        opens::<mesh_delegation::SpawnCertificate>(data),
    ];
    let one = opened.iter().filter(|o| **o).count();
    assert!(one <= 1, "one envelope opened as {one} message types");
    assert!(one == 0 || decoded, "a message opened from a bad envelope");
    decoded
}

/// A Hello arriving at alice from bob's connection.
pub fn hello(data: &[u8]) -> bool {
    let w = world();
    let Some(bytes) = signed::<Hello>(data, w.bob.identity()) else {
        return false;
    };
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut nonces = w.nonces();
    let answered = mesh_iatp::handshake::Responder::on_hello(
        w.ctx(&w.alice),
        w.bob.peer_id(),
        &bytes,
        NOW,
        &mut nonces,
        &mut rng,
    );
    let Ok((_, response)) = answered else {
        return false;
    };
    assert!(opens::<Response>(&response), "alice's Response opens");
    true
}

/// A Response arriving at bob, who sent the world's Hello.
pub fn response(data: &[u8]) -> bool {
    let w = world();
    let Some(bytes) = signed::<Response>(data, w.alice.identity()) else {
        return false;
    };
    let answered = w
        .bob_awaiting
        .clone()
        .on_response(w.ctx(&w.bob), &bytes, NOW);
    let Ok((session, confirm)) = answered else {
        return false;
    };
    assert_eq!(&session.remote, w.alice.identity().did());
    assert!(opens::<Confirm>(&confirm), "bob's Confirm opens");
    true
}

/// A Confirm arriving at alice, who sent the world's Response.
pub fn confirm(data: &[u8]) -> bool {
    let w = world();
    let Some(bytes) = signed::<Confirm>(data, w.bob.identity()) else {
        return false;
    };
    match w
        .alice_awaiting
        .clone()
        .on_confirm(w.ctx(&w.alice), &bytes, NOW)
    {
        Ok(session) => {
            assert_eq!(&session.remote, w.bob.identity().did());
            true
        }
        Err(_) => false,
    }
}

/// An org credential (inside every card), signed by acme's root.
pub fn credential(data: &[u8]) -> bool {
    let w = world();
    let Some(bytes) = signed::<OrgCredential>(data, &w.fed.acme) else {
        return false;
    };
    let signed = SignedCredential(bytes);
    let claimed = signed.claimed_org();
    let Ok(cred) = signed.verify_signature() else {
        return false;
    };
    assert_eq!(claimed.as_ref(), Ok(&cred.org));
    cred.check_window(NOW, 60).is_ok()
}

/// A gossiped trust report, into an engine as the node holds one.
pub fn trust_report(data: &[u8]) -> bool {
    let w = world();
    let Some(bytes) = signed::<TrustReport>(data, w.bob.identity()) else {
        return false;
    };
    let me = w.alice.identity().did().clone();
    let Ok(mut engine) = TrustEngine::new(me, TrustConfig::default()) else {
        return false;
    };
    let Ok((_, reporter)) = engine.receive_report_from(&bytes, NOW) else {
        return false;
    };
    assert!(engine.holds_report_from(&reporter));
    engine.refresh(NOW);
    true
}

/// A grant, as a one-link chain rooted in alice.
pub fn grant(data: &[u8]) -> bool {
    let w = world();
    let Some(bytes) = signed::<mesh_delegation::Grant>(data, w.alice.identity()) else {
        return false;
    };
    let grant = SignedGrant(bytes);
    let Ok(g) = grant.open() else {
        return false;
    };
    let root = w.alice.identity().did().clone();
    verify_chain(std::slice::from_ref(&grant), &g.audience, |d| *d == root).is_ok()
}

/// A spawn certificate, as a one-certificate lineage.
pub fn spawn_certificate(data: &[u8]) -> bool {
    let w = world();
    let Some(bytes) = signed::<mesh_delegation::SpawnCertificate>(data, w.alice.identity()) else {
        return false;
    };
    let cert = SignedSpawnCertificate(bytes);
    if cert.open().is_err() {
        return false;
    }
    let caps: Vec<_> = mesh_delegation::Capability::parse("tools/*:*")
        .into_iter()
        .collect();
    verify_lineage(std::slice::from_ref(&cert), &caps).is_ok()
}

/// A gossiped revocation.
pub fn revocation(data: &[u8]) -> bool {
    let w = world();
    let Some(bytes) = signed::<Revocation>(data, w.alice.identity()) else {
        return false;
    };
    verify_revocation(&bytes).is_ok()
}

/// A signed note: whatever parses prints back to the same bytes.
pub fn note(data: &[u8]) -> bool {
    let Ok(note) = Note::parse(data) else {
        return false;
    };
    assert_eq!(note.to_bytes(), data, "a parsed note prints differently");
    true
}

/// A gossiped checkpoint, and a checkpoint body on its own.
pub fn checkpoint(data: &[u8]) -> bool {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(cp) = Checkpoint::parse_body(text)
    {
        // Extension lines are allowed and not kept; the three lines are.
        assert!(
            text.starts_with(&cp.body()),
            "a parsed body prints differently"
        );
    }
    mesh_agent::open_log_checkpoint(data).is_ok()
}

/// A cosigned checkpoint, checked against the world's witness.
pub fn cosignature(data: &[u8]) -> bool {
    let w = world();
    let Ok(note) = Note::parse(data) else {
        return false;
    };
    witness_verifier(WITNESS_NAME, w.witness.did().clone())
        .map(|v| verify_cosignature(&note, &v).is_ok())
        .unwrap_or(false)
}

/// A gossiped equivocation proof.
pub fn equivocation(data: &[u8]) -> bool {
    let verified = mesh_agent::verify_equivocation(data).is_ok();
    if verified {
        assert!(
            EquivocationProof::from_bytes(data).is_ok(),
            "a verified proof decodes"
        );
    }
    verified
}

/// Both record forms: the actor's half and the co-signed record.
pub fn record(data: &[u8]) -> bool {
    let half = ActorSigned::from_bytes(data).ok();
    if let Some(h) = &half {
        assert_eq!(h.to_bytes().ok().as_deref(), Some(data));
    }
    let whole = CoSignedRecord::from_bytes(data).ok();
    if let Some(r) = &whole {
        assert_eq!(r.bytes(), data);
    }
    half.is_some() || whole.is_some()
}

/// An export file, by both readers: they agree on whether it loads.
pub fn export(data: &[u8]) -> bool {
    let loaded = read_export(data).is_ok();
    let checked = verify_export(Cursor::new(data), &[], |_, _, _| {}).is_ok();
    assert!(
        !loaded || checked,
        "read_export loads what verify_export refuses"
    );
    loaded
}

/// IATP frames, both directions.
pub fn iatp_frame(data: &[u8]) -> bool {
    let request = frame::<IatpRequest>(data, MAX_IATP_FRAME);
    frame::<IatpResponse>(data, MAX_IATP_FRAME) || request
}

/// Action frames, both directions, and the reconciliation messages.
pub fn action_frame(data: &[u8]) -> bool {
    [
        frame::<ActionRequest>(data, MAX_ACTION_FRAME),
        frame::<ActionResponse>(data, MAX_ACTION_FRAME),
        frame::<SyncDigest>(data, MAX_ACTION_FRAME),
        frame::<SyncItems>(data, MAX_ACTION_FRAME),
    ]
    .contains(&true)
}

/// A durable fact, as read back from the node's database.
pub fn fact(data: &[u8]) -> bool {
    let Ok(f) = Fact::from_bytes(data) else {
        return false;
    };
    assert_eq!(cbor::to_canonical_vec(&f).ok().as_deref(), Some(data));
    true
}

/// `node.toml`.
pub fn node_toml(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| {
        mesh_node::config::NodeConfigFile::parse(text, "node.toml", Path::new("/fuzz")).is_ok()
    })
}

/// A trust bundle file.
pub fn trust_bundle(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| TrustBundle::from_toml_str(text).is_ok())
}

/// A revoked-credentials file.
pub fn revoked_list(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| mesh_node::revoked::parse(text).is_ok())
}

/// A request body of the local agent API (every route's, checked as the
/// route checks it).
pub fn agent_api_body(data: &[u8]) -> bool {
    mesh_node::agent_api::check_request_bodies(data)
}
