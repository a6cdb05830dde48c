//! Identities (PROTOCOL.md §1), and the tools every signed-message file
//! uses to make its negative cases: re-signing an edited envelope, and
//! spoiling a signature.

use ciborium::Value;
use mesh_iatp::cbor::{value_from_canonical_slice, value_to_canonical_vec};
use mesh_iatp::envelope::SIGNATURE_DOMAIN;
use mesh_iatp::{Did, Identity, PeerId};
use serde_json::json;

use crate::{Case, Refused, VectorFile, Verdict, hex};

/// An envelope's `t`, `v` and `body` entries, as a CBOR map's entries.
pub type Entries = Vec<(Value, Value)>;

/// Decode `bytes` (a signed envelope), let `edit` change its `t`, `v` or
/// `body`, and sign the result as `signer`: a well-signed message with
/// exactly the change under test.
pub fn reseal(bytes: &[u8], signer: &Identity, edit: impl FnOnce(&mut Entries)) -> Vec<u8> {
    let Value::Map(entries) = value_from_canonical_slice(bytes, usize::MAX).unwrap() else {
        panic!("not an envelope");
    };
    let mut unsigned: Entries = entries
        .into_iter()
        .filter(|(k, _)| k.as_text() != Some("sig"))
        .collect();
    edit(&mut unsigned);
    let mut input = SIGNATURE_DOMAIN.to_vec();
    input.extend(value_to_canonical_vec(Value::Map(unsigned.clone())).unwrap());
    let sig = signer.sign(&input).to_bytes().to_vec();
    unsigned.push((Value::Text("sig".into()), Value::Bytes(sig)));
    value_to_canonical_vec(Value::Map(unsigned)).unwrap()
}

/// Set the envelope entry `key` (`t` or `v`).
pub fn set(entries: &mut Entries, key: &str, value: Value) {
    *entry(entries, key) = value;
}

/// Set the body's field at `path` (keys of nested maps below the body).
pub fn set_in_body(entries: &mut Entries, path: &[&str], value: Value) {
    let body = entry(entries, "body");
    let Value::Map(fields) = body else {
        panic!("the body is not a map");
    };
    set_path(fields, path, value);
}

/// The value of `key` in a map's entries.
pub fn entry<'a>(entries: &'a mut Entries, key: &str) -> &'a mut Value {
    entries
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no entry {key}"))
}

/// Set the value at `path` of nested maps.
pub fn set_path(entries: &mut Entries, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("a path");
    let mut map = entries;
    for key in parents {
        let Value::Map(inner) = entry(map, key) else {
            panic!("{key} is not a map");
        };
        map = inner;
    }
    *entry(map, last) = value;
}

/// `bytes` with the first signature byte's lowest bit flipped.
pub fn spoil_signature(bytes: &[u8]) -> Vec<u8> {
    let head = [0x63, b's', b'i', b'g', 0x58, 0x40];
    let at = bytes
        .windows(head.len())
        .position(|w| w == head)
        .expect("an envelope has a sig entry")
        + head.len();
    let mut spoiled = bytes.to_vec();
    spoiled[at] ^= 1;
    spoiled
}

/// `bytes` followed by one more byte (`00`, the integer 0).
pub fn with_trailing_byte(bytes: &[u8]) -> Vec<u8> {
    let mut longer = bytes.to_vec();
    longer.push(0);
    longer
}

fn parse_did(text: &str) -> Verdict {
    let did = Did::parse(text).map_err(|e| Refused::named(&e))?;
    let peer = PeerId::from_did(&did);
    Ok(json!({
        "public": hex(did.public_key_bytes()),
        "peer_id": hex(peer.as_bytes()),
        "peer_id_base58": peer.to_base58(),
    }))
}

fn parse_peer_id(bytes: &[u8]) -> Verdict {
    let peer = PeerId::from_bytes(bytes).map_err(|e| Refused::named(&e))?;
    let did = peer.to_did().map_err(|e| Refused::named(&e))?;
    Ok(json!({ "did": did.as_str() }))
}

/// did:key and PeerId (PROTOCOL.md §1.1, §1.2).
pub fn identities() -> VectorFile {
    let mut f = VectorFile::new(
        "identities.json",
        "did:key strings and PeerIds: each `did:key` case's bytes are the DID's UTF-8 \
         text, each `peer-id` case's the PeerId's bytes.",
        "docs/PROTOCOL.md §1.1, §1.2",
    );
    for label in ["org acme", "agent alice"] {
        let id = f.key(label);
        let did = id.did().as_str().to_string();
        let case = Case::new(
            "did:key",
            &format!("{label} did"),
            "the DID of a key listed in `keys`",
            json!({ "key": label }),
            did.as_bytes(),
        );
        f.accepted(case, parse_did(&did));
        let peer = id.peer_id();
        let case = Case::new(
            "peer-id",
            &format!("{label} peer id"),
            "the PeerId of a key listed in `keys`: 00 24 08 01 12 20 ‖ public key",
            json!({ "key": label }),
            peer.as_bytes(),
        );
        f.accepted(case, parse_peer_id(peer.as_bytes()));
    }
    let alice = f.key("agent alice").did().as_str().to_string();
    // 32 bytes that are no point on the curve: the first such [n; 32].
    let off_curve = (0u8..=255)
        .map(|n| [n; 32])
        .find(|b| Did::from_public_key_bytes(b).is_err())
        .unwrap();
    let bad_dids = [
        (
            "no prefix",
            alice.trim_start_matches("did:key:").to_string(),
            "missing_prefix",
        ),
        (
            "multibase other than z",
            alice.replacen(":z", ":m", 1),
            "not_base58btc",
        ),
        (
            "invalid base58",
            alice.replacen("z6Mk", "z6M0", 1),
            "invalid_base58",
        ),
        (
            "secp256k1 multicodec",
            did_of(&[&[0xe7, 0x01], &[2; 33][..]].concat()),
            "unsupported_multicodec",
        ),
        (
            "padded multicodec varint",
            did_of(&[&[0xed, 0x81, 0x00], &[9; 32][..]].concat()),
            "unsupported_multicodec",
        ),
        (
            "31-byte key",
            did_of(&[&[0xed, 0x01], &[9; 31][..]].concat()),
            "wrong_key_length",
        ),
        (
            "key off the curve",
            did_of(&[&[0xed, 0x01], &off_curve[..]].concat()),
            "invalid_public_key",
        ),
        (
            "over 128 characters",
            format!("{alice}{}", "1".repeat(100)),
            "too_long",
        ),
    ];
    for (name, text, error) in &bad_dids {
        let case = Case::new(
            "did:key",
            name,
            "not a valid Ed25519 did:key",
            json!({}),
            text.as_bytes(),
        );
        f.refused(case, parse_did(text), Refused::error(error));
    }
    let mut short = f.key("agent alice").peer_id().as_bytes().to_vec();
    short.pop();
    let case = Case::new(
        "peer-id",
        "37-byte peer id",
        "one byte short",
        json!({}),
        &short,
    );
    f.refused(case, parse_peer_id(&short), Refused::error("not_ed25519"));
    f
}

/// `did:key:z` ‖ base58btc(`multicodec_and_key`).
fn did_of(multicodec_and_key: &[u8]) -> String {
    format!(
        "did:key:z{}",
        bs58::encode(multicodec_and_key).into_string()
    )
}
