//! Seed inputs for every target: valid objects made the way the tests make
//! them, in the world the targets run in, so the fuzzer starts from what a
//! real peer or file sends. `examples/seeds.rs` writes them to
//! `fuzz/corpus/TARGET/`.

use mesh_agent::Fact;
use mesh_agent::wire::{ActionRequest, ActionResponse, IatpRequest, IatpResponse, SyncDigest};
use mesh_delegation::{Capability, Grant, Revocation, SpawnCertificate, TargetKind};
use mesh_iatp::cbor;
use mesh_iatp::envelope::{self, SignedMessage};
use mesh_iatp::{Did, Score};
use mesh_ledger::checkpoint::{Checkpoint, cosign};
use mesh_ledger::equivocation::EquivocationProof;
use mesh_ledger::note::Note;
use mesh_trust::{ReportEntry, TrustReport};
use serde_bytes::ByteBuf;

use crate::targets::RESIGN;
use crate::world::{NOW, WITNESS_NAME, World, world};

/// Every target's name with its seeds.
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let w = world();
    let grant = grant(w);
    let cert = spawn_certificate(w);
    let revocation = revocation(w, &grant);
    let report = trust_report(w);
    let credential = w.alice.card().credential.0.clone();
    let note = checkpoint_note(w, 1, [7; 32]);
    let other = checkpoint_note(w, 1, [8; 32]);
    let cosigned = cosigned(w, &note);
    let proof = EquivocationProof::SameSize {
        first: note.clone(),
        second: other,
    }
    .to_bytes()
    .unwrap_or_default();
    let agents = mesh_ledger::testing::agents(3);
    let record = mesh_ledger::testing::record(0, &agents);
    let half = record
        .record()
        .clone()
        .sign(&agents[0])
        .and_then(|h| h.to_bytes());
    vec![
        (
            "envelope",
            vec![
                w.hello.clone(),
                w.response.clone(),
                w.confirm.clone(),
                credential.clone(),
                report.clone(),
                grant.clone(),
                cert.clone(),
                revocation.clone(),
            ],
        ),
        ("hello", both::<mesh_iatp::handshake::Hello>(&w.hello)),
        (
            "response",
            both::<mesh_iatp::handshake::Response>(&w.response),
        ),
        ("confirm", both::<mesh_iatp::handshake::Confirm>(&w.confirm)),
        (
            "credential",
            both::<mesh_iatp::credential::OrgCredential>(&credential),
        ),
        ("trust_report", both::<TrustReport>(&report)),
        ("grant", both::<Grant>(&grant)),
        ("spawn_certificate", both::<SpawnCertificate>(&cert)),
        ("revocation", both::<Revocation>(&revocation)),
        ("note", vec![note.clone(), cosigned.clone()]),
        ("checkpoint", vec![note.clone(), body_of(&note)]),
        ("cosignature", vec![cosigned]),
        ("equivocation", vec![proof]),
        (
            "record",
            [Ok(record.bytes().to_vec()), half]
                .into_iter()
                .flatten()
                .collect(),
        ),
        ("export", vec![export()]),
        ("iatp_frame", iatp_frames(w)),
        ("action_frame", action_frames(&record, &note)),
        ("fact", facts(w, &grant)),
        ("node_toml", vec![NODE_TOML.as_bytes().to_vec()]),
        ("trust_bundle", vec![bundle_toml(w).into_bytes()]),
        ("revoked_list", vec![revoked_list(&credential).into_bytes()]),
        ("agent_api_body", agent_api_bodies(w)),
    ]
}

/// A signed object as both target modes take it: the envelope as is, and
/// its body to be signed by the target.
fn both<M: SignedMessage>(signed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![[&[0u8][..], signed].concat()];
    if let Ok(opened) = envelope::open::<M>(signed)
        && let Ok(body) = cbor::to_canonical_vec(opened.claimed())
    {
        out.push([&[RESIGN][..], &body].concat());
    }
    out
}

fn capability(s: &str) -> Vec<Capability> {
    Capability::parse(s).into_iter().collect()
}

/// Alice grants bob `tools/github:read` for a day.
fn grant(w: &World) -> Vec<u8> {
    Grant {
        issuer: w.alice.identity().did().clone(),
        audience: w.bob.identity().did().clone(),
        capabilities: capability("tools/github:read"),
        not_before: NOW,
        expires: NOW.plus_secs(86_400),
        depth: 2,
        min_trust: Score::saturating(300),
        nonce: [3; 16],
        parent: None,
    }
    .sign(w.alice.identity())
    .map(|g| g.0)
    .unwrap_or_default()
}

/// Alice spawns a child (the log key stands in for it).
fn spawn_certificate(w: &World) -> Vec<u8> {
    SpawnCertificate {
        parent: w.alice.identity().did().clone(),
        child: w.log.did().clone(),
        capabilities: capability("tools/github:read"),
        trust_ceiling: Score::saturating(600),
        not_before: NOW,
        expires: NOW.plus_secs(86_400),
        spawn_depth: 1,
        parent_certificate: None,
        nonce: [5; 16],
    }
    .sign(w.alice.identity())
    .map(|c| c.0)
    .unwrap_or_default()
}

/// Alice revokes her grant to bob.
fn revocation(w: &World, grant: &[u8]) -> Vec<u8> {
    let target = mesh_delegation::SignedGrant(grant.to_vec()).hash();
    Revocation {
        revoker: w.alice.identity().did().clone(),
        target,
        kind: TargetKind::Grant,
        chain: vec![ByteBuf::from(grant.to_vec())],
        reason: "fuzz seed".into(),
        issued: NOW,
    }
    .sign(w.alice.identity())
    .unwrap_or_default()
}

/// Bob's opinion of alice.
fn trust_report(w: &World) -> Vec<u8> {
    let report = TrustReport {
        reporter: w.bob.identity().did().clone(),
        epoch: 1,
        sequence: 1,
        issued: NOW,
        entries: vec![ReportEntry {
            subject: w.alice.identity().did().to_string(),
            score: Score::saturating(700),
            evidence: 12,
        }],
    };
    mesh_trust::report::seal_report(&report, w.bob.identity()).unwrap_or_default()
}

/// The log's checkpoint at `size` with `root`, signed by its key.
fn checkpoint_note(w: &World, size: u64, root: [u8; 32]) -> Vec<u8> {
    Checkpoint {
        origin: w.log.did().to_string(),
        size,
        root,
    }
    .sign(&w.log)
    .map(|n| n.to_bytes())
    .unwrap_or_default()
}

fn body_of(note: &[u8]) -> Vec<u8> {
    Note::parse(note)
        .map(|n| n.text.into_bytes())
        .unwrap_or_default()
}

/// `note` with the world's witness's cosignature appended.
fn cosigned(w: &World, note: &[u8]) -> Vec<u8> {
    let Ok(mut n) = Note::parse(note) else {
        return Vec::new();
    };
    n.signatures
        .push(cosign(&n.text, WITNESS_NAME, &w.witness, NOW));
    n.to_bytes()
}

/// A three-record export, as `mesh-ledger export` writes it.
fn export() -> Vec<u8> {
    let run = async {
        let dir = tempfile::tempdir().ok()?;
        let db = dir.path().join("seed.db").to_string_lossy().into_owned();
        mesh_ledger::populate::populate(&db, 3, 2, 1, &mut std::io::sink())
            .await
            .ok()?;
        let store = mesh_ledger::store::Store::open(&db).await.ok()?;
        let mut bytes = Vec::new();
        mesh_ledger::export::export(&store, &mut bytes).await.ok()?;
        Some(bytes)
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
        .and_then(|rt| rt.block_on(run))
        .unwrap_or_default()
}

fn encode<T: serde::Serialize>(values: &[T]) -> Vec<Vec<u8>> {
    values
        .iter()
        .filter_map(|v| cbor::to_canonical_vec(v).ok())
        .collect()
}

fn iatp_frames(w: &World) -> Vec<Vec<u8>> {
    let mut out = encode(&[
        IatpRequest::Hello(ByteBuf::from(w.hello.clone())),
        IatpRequest::Confirm(ByteBuf::from(w.confirm.clone())),
    ]);
    out.extend(encode(&[
        IatpResponse::Response(ByteBuf::from(w.response.clone())),
        IatpResponse::Accepted,
        IatpResponse::Refused {
            code: 23,
            reason: "rate_limited".into(),
        },
    ]));
    out
}

fn action_frames(record: &mesh_ledger::CoSignedRecord, note: &[u8]) -> Vec<Vec<u8>> {
    let mut out = encode(&[
        ActionRequest::Consistency { old: 1, new: 3 },
        ActionRequest::Inclusion { index: 0, size: 1 },
        ActionRequest::Cancel {
            grant: ByteBuf::from(vec![7; 32]),
        },
        ActionRequest::Cosignature {
            note: ByteBuf::from(note.to_vec()),
        },
        ActionRequest::Sync(SyncDigest {
            revocations: vec![],
            offenders: vec![],
            records: vec![ByteBuf::from(record.leaf_hash().to_vec())],
            checkpoint: Some(ByteBuf::from(note.to_vec())),
        }),
    ]);
    out.extend(encode(&[ActionResponse::refused(
        &mesh_agent::ActionRefusal::NoSession,
    )]));
    out
}

fn facts(w: &World, grant: &[u8]) -> Vec<Vec<u8>> {
    let did = |d: &Did| d.clone();
    encode(&[
        Fact::Met {
            agent: did(w.bob.identity().did()),
            org: did(w.fed.globex.did()),
            lineage: vec![],
            ceiling: None,
        },
        Fact::Met {
            agent: did(w.bob.identity().did()),
            org: did(w.fed.globex.did()),
            lineage: vec![ByteBuf::from(vec![9; 32])],
            ceiling: Some(Score::saturating(600)),
        },
        Fact::Strikes {
            peer: did(w.bob.identity().did()),
            count: 3,
        },
        Fact::Ban {
            peer: did(w.bob.identity().did()),
            until: NOW.plus_secs(3600),
        },
        Fact::Held {
            hash: ByteBuf::from(mesh_delegation::SignedGrant(grant.to_vec()).hash().to_vec()),
            chain: vec![ByteBuf::from(grant.to_vec())],
        },
        Fact::Running {
            grant: ByteBuf::from(vec![7; 32]),
            delegator: did(w.bob.identity().did()),
            task: mesh_agent::wire::Task {
                resource: "search".into(),
                action: "read".into(),
                input: ByteBuf::from(b"q".to_vec()),
            },
            deadline: NOW.plus_secs(600),
            outcome: Some(mesh_agent::wire::TaskOutcome::stopped(
                mesh_agent::wire::Stopped::Expired,
            )),
        },
        Fact::Awaited {
            grant: ByteBuf::from(vec![7; 32]),
            delegatee: did(w.bob.identity().did()),
            deadline: NOW.plus_secs(600),
            cancelled: true,
        },
    ])
}

/// Bodies of the local agent API's requests.
fn agent_api_bodies(w: &World) -> Vec<Vec<u8>> {
    let bob = w.bob.identity().did().to_string();
    [
        format!(r#"{{"to":"{bob}","resource":"search","action":"read","input":"q","deadline_secs":60,"min_trust":400,"wait_secs":5}}"#),
        r#"{"wait_secs":0,"lease_secs":60}"#.to_string(),
        r#"{"lease_secs":30,"note":"half way"}"#.to_string(),
        r#"{"success":true,"output":"done"}"#.to_string(),
        format!(r#"{{"to":"{bob}","capabilities":["search:read"],"lifetime_secs":600,"depth":0,"min_trust":400}}"#),
        format!(r#"{{"link":"{}","reason":"done"}}"#, "ab".repeat(32)),
        r#"{"capabilities":["search:read"],"trust_ceiling":600,"lifetime_secs":3600}"#.to_string(),
        format!(r#"{{"counterparty":"{bob}","kind":"invoke","payload":"hello"}}"#),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

const NODE_TOML: &str = r#"identity = "agent.key"
credential = "agent.cred"
name = "worker-1"
capabilities = ["search"]
trust_bundle = "bundle.toml"
data_dir = "data"
listen = ["/ip4/127.0.0.1/tcp/0"]
bootstrap = ["/ip4/127.0.0.1/tcp/4001"]
http = "127.0.0.1:7777"
http_token = "0123456789abcdef0123"
"#;

fn bundle_toml(w: &World) -> String {
    format!(
        "[[org]]\nname = \"acme\"\nroot = \"{}\"\ninitial_trust = 500\ntrust_ceiling = 900\ncapabilities = [\"tools/*\", \"search\"]\n\n[[org]]\nname = \"globex\"\nroot = \"{}\"\ninitial_trust = 400\ntrust_ceiling = 800\n",
        w.fed.acme.did(),
        w.fed.globex.did()
    )
}

fn revoked_list(credential: &[u8]) -> String {
    let digest = mesh_iatp::credential::SignedCredential(credential.to_vec()).digest();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("# revoked credentials\n{hex}  # a leaked key\n")
}
