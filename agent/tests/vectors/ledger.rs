//! Ledger records, Merkle proofs, checkpoints, cosignatures and
//! equivocation proofs (LEDGER.md §1–§6).

use ciborium::Value;
use mesh_iatp::cbor::{value_from_canonical_slice, value_to_canonical_vec};
use mesh_iatp::testing::FIXTURE_NOW;
use mesh_iatp::{Identity, Timestamp};
use mesh_ledger::checkpoint::{
    Checkpoint, cosign, log_verifier, open_checkpoint, verify_cosignature, witness_verifier,
};
use mesh_ledger::equivocation::EquivocationProof;
use mesh_ledger::merkle::{
    Hash, MemoryTree, consistency_proof, inclusion_proof, infallible, verify_consistency,
    verify_inclusion,
};
use mesh_ledger::note::Note;
use mesh_ledger::{ActionKind, ActionRecord, ActorSigned, CoSignedRecord};
use serde_bytes::ByteArray;
use serde_json::json;

use crate::envelope::{Entries, entry, set_path, with_trailing_byte};
use crate::{Case, Refused, VectorFile, Verdict, hex};

const NOW: Timestamp = FIXTURE_NOW;

fn record(kind: ActionKind, actor: &Identity, counterparty: &Identity, n: u8) -> ActionRecord {
    ActionRecord {
        kind,
        actor: actor.did().clone(),
        counterparty: counterparty.did().clone(),
        grant: (kind == ActionKind::Delegate).then_some([0x11; 32]),
        payload_digest: [0x22 + n; 32],
        timestamp: NOW.plus_secs(u64::from(n)),
        nonce: [n; 16],
    }
}

/// Three co-signed records between alice (actor) and bob.
fn log_records(alice: &Identity, bob: &Identity) -> Vec<CoSignedRecord> {
    [ActionKind::Delegate, ActionKind::Invoke, ActionKind::Result]
        .into_iter()
        .zip(0u8..)
        .map(|(kind, n)| {
            record(kind, alice, bob, n)
                .sign(alice)
                .unwrap()
                .countersign(bob)
                .unwrap()
        })
        .collect()
}

/// Decode a CBOR map, let `edit` change it, encode it again (no re-signing).
fn edit_map(bytes: &[u8], edit: impl FnOnce(&mut Entries)) -> Vec<u8> {
    let Value::Map(mut entries) = value_from_canonical_slice(bytes, usize::MAX).unwrap() else {
        panic!("not a map");
    };
    edit(&mut entries);
    value_to_canonical_vec(Value::Map(entries)).unwrap()
}

/// Flip the lowest bit of the first byte of the byte string at `key`.
fn flip_in(entries: &mut Entries, key: &str) {
    if let Value::Bytes(b) = entry(entries, key) {
        b[0] ^= 1;
    }
}

fn cosigned_verdict(bytes: &[u8]) -> Verdict {
    let r = CoSignedRecord::from_bytes(bytes).map_err(|e| Refused::named(&e))?;
    Ok(
        json!({ "leaf_hash": hex(&r.leaf_hash()), "kind": format!("{:?}", r.record().kind).to_lowercase() }),
    )
}

fn countersign_verdict(bytes: &[u8], counterparty: &Identity) -> Verdict {
    let signed = ActorSigned::from_bytes(bytes).map_err(|e| Refused::named(&e))?;
    let cosigned = signed
        .countersign(counterparty)
        .map_err(|e| Refused::named(&e))?;
    Ok(json!({ "cosigned": hex(cosigned.bytes()), "leaf_hash": hex(&cosigned.leaf_hash()) }))
}

fn concat(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

fn split(bytes: &[u8]) -> Vec<Hash> {
    bytes.chunks(32).map(|c| c.try_into().unwrap()).collect()
}

/// Records and the Merkle log (LEDGER.md §1, §2).
pub fn records() -> VectorFile {
    let mut f = VectorFile::new(
        "ledger-record.json",
        "Action records and the Merkle log. `ledger/actor-signed-record`: bob, the \
         counterparty, decodes it and countersigns (output: the co-signed record). \
         `ledger/record`: a co-signed record decoded with both signatures verified \
         (output: its RFC 9162 leaf hash). `ledger/inclusion-proof` and \
         `ledger/consistency-proof`: the bytes are the proof's hashes concatenated, \
         checked against `input` (RFC 9162 §2.1.3.2, §2.1.4.2) over the log of the three \
         `ledger/record` cases in order.",
        "docs/LEDGER.md §1, §2",
    );
    let alice = f.key("agent alice");
    let bob = f.key("agent bob");
    let carol = f.key("agent carol");
    let actor_signed = record(ActionKind::Invoke, &alice, &bob, 1)
        .sign(&alice)
        .unwrap()
        .to_bytes()
        .unwrap();
    let input = json!({ "counterparty": "agent bob" });
    f.accepted(
        Case::new(
            "ledger/actor-signed-record",
            "to countersign",
            "alice's invoke record, signed by her, sent to bob",
            input.clone(),
            &actor_signed,
        ),
        countersign_verdict(&actor_signed, &bob),
    );
    let spoiled = edit_map(&actor_signed, |e| flip_in(e, "actor_sig"));
    f.refused(
        Case::new(
            "ledger/actor-signed-record",
            "unsigned by its actor",
            "the actor_sig's first bit flipped",
            input.clone(),
            &spoiled,
        ),
        countersign_verdict(&spoiled, &bob),
        Refused::error("bad_actor_signature"),
    );
    f.refused(
        Case::new(
            "ledger/actor-signed-record",
            "not the counterparty",
            "carol is asked to countersign a record naming bob",
            json!({ "counterparty": "agent carol" }),
            &actor_signed,
        ),
        countersign_verdict(&actor_signed, &carol),
        Refused::error("wrong_signer"),
    );

    let log = log_records(&alice, &bob);
    for (leaf, (r, name)) in log.iter().zip(["delegate", "invoke", "result"]).enumerate() {
        let about = format!(
            "a co-signed {name} record, actor alice, counterparty bob; leaf {leaf} of the log"
        );
        f.accepted(
            Case::new("ledger/record", name, &about, json!({}), r.bytes()),
            cosigned_verdict(r.bytes()),
        );
    }
    let good = log[1].bytes();
    let text = |s: &str| Value::Text(s.into());
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("actor signature spoiled", "record invoke with the actor_sig's first bit flipped", edit_map(good, |e| flip_in(e, "actor_sig")), "bad_actor_signature"),
        ("countersignature spoiled", "record invoke with the counterparty_sig's first bit flipped", edit_map(good, |e| flip_in(e, "counterparty_sig")), "bad_countersignature"),
        ("self dealing", "counterparty = actor", edit_map(good, |e| set_path(e, &["record", "counterparty"], text(alice.did().as_str()))), "self_dealing"),
        ("one signature", "the counterparty_sig entry removed", edit_map(good, |e| { e.retain(|(k, _)| k.as_text() != Some("counterparty_sig")) }), "malformed/schema"),
        ("trailing byte", "one byte after the record", with_trailing_byte(good), "malformed/trailing_bytes"),
    ];
    for (name, about, bytes, error) in cases {
        let v = cosigned_verdict(&bytes);
        f.refused(
            Case::new("ledger/record", name, about, json!({}), &bytes),
            v,
            Refused::error(error),
        );
    }

    let mut tree = MemoryTree::new();
    for r in &log {
        tree.append(r.leaf_hash());
    }
    let root = tree.root();
    let root2 = infallible(mesh_ledger::merkle::root(&tree, 2));
    let inclusion = infallible(inclusion_proof(&tree, 1, 3));
    let inclusion_input = |index: u64| json!({ "index": index, "size": 3, "leaf_hash": hex(&log[1].leaf_hash()), "root": hex(&root) });
    let check_inclusion = |index: u64, proof: &[u8]| {
        verify_inclusion(index, 3, &log[1].leaf_hash(), &split(proof), &root)
            .map(|()| json!(null))
            .map_err(|e| Refused::named(&e))
    };
    let bytes = concat(&inclusion);
    f.accepted(
        Case::new(
            "ledger/inclusion-proof",
            "leaf 1 of 3",
            "record invoke is leaf 1 of the 3-record log",
            inclusion_input(1),
            &bytes,
        ),
        check_inclusion(1, &bytes),
    );
    f.refused(
        Case::new(
            "ledger/inclusion-proof",
            "wrong index",
            "the same proof for index 0",
            inclusion_input(0),
            &bytes,
        ),
        check_inclusion(0, &bytes),
        Refused::error("root_mismatch"),
    );
    let short = concat(&inclusion[..1]);
    f.refused(
        Case::new(
            "ledger/inclusion-proof",
            "proof cut short",
            "the proof without its last hash",
            inclusion_input(1),
            &short,
        ),
        check_inclusion(1, &short),
        Refused::error("wrong_length"),
    );
    let consistency = concat(&infallible(consistency_proof(&tree, 2, 3)));
    let consistency_input =
        json!({ "old": 2, "new": 3, "old_root": hex(&root2), "new_root": hex(&root) });
    let check_consistency = |old_root: &Hash, proof: &[u8]| {
        verify_consistency(2, 3, &split(proof), old_root, &root)
            .map(|()| json!(null))
            .map_err(|e| Refused::named(&e))
    };
    f.accepted(
        Case::new(
            "ledger/consistency-proof",
            "2 to 3",
            "the log at size 2 is a prefix of the log at size 3",
            consistency_input.clone(),
            &consistency,
        ),
        check_consistency(&root2, &consistency),
    );
    let mut forked = consistency_input;
    forked["old_root"] = json!(hex(&[0x33; 32]));
    f.refused(
        Case::new(
            "ledger/consistency-proof",
            "other old root",
            "the same proof against old_root = 32 × 33",
            forked,
            &consistency,
        ),
        check_consistency(&[0x33; 32], &consistency),
        Refused::error("root_mismatch"),
    );
    f
}

fn checkpoint_verdict(bytes: &[u8], log: &Identity) -> Verdict {
    let verifier = log_verifier(log.did().as_str(), log.did().clone()).unwrap();
    let (cp, _) = open_checkpoint(bytes, &verifier).map_err(|e| Refused::named(&e))?;
    Ok(json!({ "origin": cp.origin, "size": cp.size, "root": hex(&cp.root) }))
}

fn cosignature_verdict(bytes: &[u8], witness: &Identity) -> Verdict {
    let note = Note::parse(bytes).map_err(|e| Refused::named(&e))?;
    let verifier = witness_verifier(witness.did().as_str(), witness.did().clone()).unwrap();
    let time = verify_cosignature(&note, &verifier).map_err(|e| Refused::named(&e))?;
    Ok(json!({ "time": time.0 }))
}

/// alice's checkpoint at size 3 (root 32 × 44), cosigned by bob at now.
pub fn cosigned_checkpoint(alice: &Identity, bob: &Identity) -> Note {
    let mut note = signed_checkpoint(alice, 3, [0x44; 32]);
    note.signatures
        .push(cosign(&note.text, bob.did().as_str(), bob, NOW));
    note
}

fn signed_checkpoint(log: &Identity, size: u64, root: Hash) -> Note {
    Checkpoint {
        origin: log.did().to_string(),
        size,
        root,
    }
    .sign(log)
    .unwrap()
}

/// Checkpoints and cosignatures (LEDGER.md §3, §4).
pub fn checkpoints() -> VectorFile {
    let mut f = VectorFile::new(
        "ledger-checkpoint.json",
        "Signed checkpoints (C2SP tlog-checkpoint as a signed note; the bytes are the \
         note's UTF-8 text) of alice's log, whose origin and key name are her DID, opened \
         under her key; and a cosignature (C2SP tlog-cosignature, cosignature/v1) by \
         witness bob, key name his DID, verified under his key.",
        "docs/LEDGER.md §3, §4",
    );
    let alice = f.key("agent alice");
    let bob = f.key("agent bob");
    let carol = f.key("agent carol");
    let root = [0x44; 32];
    let note = signed_checkpoint(&alice, 3, root);
    let good = note.to_bytes();
    f.accepted(
        Case::new(
            "ledger/checkpoint",
            "valid",
            "alice's log at size 3, root 32 × 44",
            json!({ "log": "agent alice" }),
            &good,
        ),
        checkpoint_verdict(&good, &alice),
    );
    let resized = String::from_utf8(good.clone())
        .unwrap()
        .replacen("\n3\n", "\n4\n", 1)
        .into_bytes();
    let zero_padded = Note::sign(
        &format!(
            "{}\n03\n{}\n",
            alice.did(),
            "RERERERERERERERERERERERERERERERERERERERERERE="
        ),
        alice.did().as_str(),
        &alice,
    )
    .unwrap()
    .to_bytes();
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("size edited", "case valid with its size line changed to 4", resized, "note/invalid_signature"),
        ("another log", "carol's checkpoint, opened as alice's log", signed_checkpoint(&carol, 3, root).to_bytes(), "wrong_origin"),
        ("size with a leading zero", "size line `03`, signed by alice", zero_padded, "body"),
        ("unsigned", "case valid's text with no signature line", String::from_utf8(good.clone()) .unwrap() .split("\n\n") .next() .map(|t| format!("{t}\n\n")) .unwrap() .into_bytes(), "note/malformed"),
    ];
    for (name, about, bytes, error) in cases {
        let v = checkpoint_verdict(&bytes, &alice);
        f.refused(
            Case::new(
                "ledger/checkpoint",
                name,
                about,
                json!({ "log": "agent alice" }),
                &bytes,
            ),
            v,
            Refused::error(error),
        );
    }
    let witness = bob.did().to_string();
    let cosigned = cosigned_checkpoint(&alice, &bob);
    let bytes = cosigned.to_bytes();
    let input = json!({ "witness": "agent bob" });
    f.accepted(
        Case::new(
            "ledger/cosignature",
            "cosigned",
            "case valid with bob's cosignature at time = now",
            input.clone(),
            &bytes,
        ),
        cosignature_verdict(&bytes, &bob),
    );
    let mut spoiled = cosigned.clone();
    spoiled.signatures[1].signature[8] ^= 1;
    let mut wrong_key = note.clone();
    let mut carols = cosign(&note.text, &witness, &carol, NOW);
    carols.key_id = cosigned.signatures[1].key_id;
    wrong_key.signatures.push(carols);
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("cosignature spoiled", "bob's signature's first bit flipped", spoiled.to_bytes(), "note/invalid_signature"),
        ("cosignature missing", "case valid (the checkpoint) without a cosignature", good.clone(), "note/missing_signature"),
        ("cosigned by carol", "a line under bob's name and key id, signed by carol", wrong_key.to_bytes(), "note/invalid_signature"),
    ];
    for (name, about, bytes, error) in cases {
        let v = cosignature_verdict(&bytes, &bob);
        f.refused(
            Case::new("ledger/cosignature", name, about, input.clone(), &bytes),
            v,
            Refused::error(error),
        );
    }
    f
}

fn proof_verdict(bytes: &[u8], log: &Identity) -> Verdict {
    let proof = EquivocationProof::from_bytes(bytes).map_err(|e| Refused::named(&e))?;
    let verifier = log_verifier(log.did().as_str(), log.did().clone()).unwrap();
    let origin = proof.verify(&verifier).map_err(|e| Refused::named(&e))?;
    Ok(json!({ "origin": origin }))
}

/// Equivocation proofs (LEDGER.md §6).
pub fn equivocation_proofs() -> VectorFile {
    let mut f = VectorFile::new(
        "ledger-equivocation.json",
        "Equivocation proofs against alice's log, verified under her key (origin = her \
         DID). The divergent-leaf cases use two logs of two records each that differ at \
         index 1.",
        "docs/LEDGER.md §6, docs/PROTOCOL.md §11.1",
    );
    let alice = f.key("agent alice");
    let carol = f.key("agent carol");
    let input = json!({ "log": "agent alice" });
    let note = |size, root| signed_checkpoint(&alice, size, root).to_bytes();
    let encode = |p: &EquivocationProof| p.to_bytes().unwrap();
    let same = EquivocationProof::SameSize {
        first: note(3, [0x44; 32]),
        second: note(3, [0x55; 32]),
    };
    f.accepted(
        Case::new(
            "ledger/equivocation",
            "same size",
            "two checkpoints of size 3, roots 32 × 44 and 32 × 55",
            input.clone(),
            &encode(&same),
        ),
        proof_verdict(&encode(&same), &alice),
    );

    let (mut one, mut two) = (MemoryTree::new(), MemoryTree::new());
    for (tree, last) in [(&mut one, [1u8; 32]), (&mut two, [2u8; 32])] {
        tree.append([0; 32]);
        tree.append(last);
    }
    let path = |t: &MemoryTree| {
        infallible(inclusion_proof(t, 1, 2))
            .into_iter()
            .map(ByteArray::new)
            .collect::<Vec<_>>()
    };
    let divergent = EquivocationProof::DivergentLeaf {
        first: note(2, one.root()),
        second: note(2, two.root()),
        index: 1,
        first_leaf: [1; 32],
        first_proof: path(&one),
        second_leaf: [2; 32],
        second_proof: path(&two),
    };
    f.accepted(
        Case::new(
            "ledger/equivocation",
            "divergent leaf",
            "leaf 1 is 32 × 01 under one checkpoint and 32 × 02 under another",
            input.clone(),
            &encode(&divergent),
        ),
        proof_verdict(&encode(&divergent), &alice),
    );

    let EquivocationProof::DivergentLeaf {
        first,
        second,
        first_proof,
        second_proof,
        ..
    } = divergent.clone()
    else {
        unreachable!()
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, EquivocationProof, &str)> = vec![
        ("equal roots", "the same checkpoint twice", EquivocationProof::SameSize { first: note(3, [0x44; 32]), second: note(3, [0x44; 32]), }, "no_conflict"),
        ("sizes differ", "sizes 3 and 4", EquivocationProof::SameSize { first: note(3, [0x44; 32]), second: note(4, [0x55; 32]), }, "no_conflict"),
        ("signed by another", "the second checkpoint is carol's", EquivocationProof::SameSize { first: note(3, [0x44; 32]), second: signed_checkpoint(&carol, 3, [0x55; 32]).to_bytes(), }, "checkpoint/wrong_origin"),
        ("proof does not verify", "the second leaf's proof is [32 × 09]", EquivocationProof::DivergentLeaf { first: first.clone(), second: second.clone(), index: 1, first_leaf: [1; 32], first_proof: first_proof.clone(), second_leaf: [2; 32], second_proof: vec![ByteArray::new([9; 32])], }, "inclusion/root_mismatch"),
        ("equal leaves", "both leaves 32 × 01", EquivocationProof::DivergentLeaf { first, second, index: 1, first_leaf: [1; 32], first_proof, second_leaf: [1; 32], second_proof, }, "no_conflict"),
    ];
    for (name, about, proof, error) in cases {
        let bytes = encode(&proof);
        let v = proof_verdict(&bytes, &alice);
        f.refused(
            Case::new("ledger/equivocation", name, about, input.clone(), &bytes),
            v,
            Refused::error(error),
        );
    }
    let unknown = edit_map(&encode(&same), |e| {
        *entry(e, "kind") = Value::Text("different_size".into());
    });
    f.refused(
        Case::new(
            "ledger/equivocation",
            "unknown kind",
            "kind = different_size",
            input,
            &unknown,
        ),
        proof_verdict(&unknown, &alice),
        Refused::error("malformed/schema"),
    );
    f
}
