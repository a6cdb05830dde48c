//! Org credentials and the IATP handshake (PROTOCOL.md §3–§5): one honest
//! transcript and one case per refusal a receiver can make of a message.

use ciborium::Value;
use mesh_agent::LineageVerifier;
use mesh_delegation::{Revocation, RevocationSet, SignedSpawnCertificate, TargetKind};
use mesh_iatp::CapabilityPattern;
use mesh_iatp::credential::{AgentCard, OrgCredential, RevokedCredentials, SignedCredential};
use mesh_iatp::envelope;
use mesh_iatp::handshake::{
    AwaitingConfirm, AwaitingResponse, Context, Hello, Initiator, LineageCheck, LocalAgent,
    NoLineage, NonceCache, Refused as HandshakeRefused, Responder,
};
use mesh_iatp::testing::{FIXTURE_NOW, Handshakers};
use mesh_iatp::{Identity, PeerId, Score, Timestamp, TrustBundle};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_bytes::ByteBuf;
use serde_json::{Value as Json, json};

use crate::envelope::{Entries, reseal, set, set_in_body, spoil_signature, with_trailing_byte};
use crate::{Case, Refused, VectorFile, Verdict, hex};

const NOW: Timestamp = FIXTURE_NOW;
const DAY: u64 = 86_400;

fn bundle_json(bundle: &TrustBundle) -> Json {
    let orgs: Vec<Json> = bundle
        .orgs()
        .iter()
        .map(|o| {
            json!({
                "name": o.name,
                "root": o.root.as_str(),
                "initial_trust": o.initial_trust.get(),
                "trust_ceiling": o.trust_ceiling.get(),
                "capabilities": o.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "org": orgs })
}

fn credential_verdict(bytes: &[u8], now: Timestamp) -> Verdict {
    let signed = SignedCredential(bytes.to_vec());
    let credential = signed.verify_signature().map_err(|e| Refused::named(&e))?;
    credential
        .check_window(now, 60)
        .map_err(|e| Refused::named(&e))?;
    Ok(json!({
        "org": credential.org.as_str(),
        "agent": credential.agent.as_str(),
        "roles": credential.roles,
        "not_before": credential.not_before.0,
        "expires": credential.expires.0,
        "digest": hex(&signed.digest()),
    }))
}

/// The honest transcript of iatp-handshake.json: Hello, Response, Confirm.
pub fn transcript() -> [Vec<u8>; 3] {
    let w = World(Handshakers::new());
    let (waiting, pending, response) = w.run_to_response();
    let (_, hello) = w.hello(&w.alice);
    let (_, confirm) = waiting
        .on_response(w.ctx(&w.alice), &response, NOW)
        .unwrap();
    pending.on_confirm(w.ctx(&w.bob), &confirm, NOW).unwrap();
    [hello, response, confirm]
}

fn acme_credential(org: &Identity, agent: &Identity) -> OrgCredential {
    OrgCredential {
        org: org.did().clone(),
        agent: agent.did().clone(),
        roles: vec!["worker".into()],
        not_before: NOW.minus_secs(DAY),
        expires: NOW.plus_secs(30 * DAY),
    }
}

/// `iatp/org-credential` (PROTOCOL.md §4.1).
pub fn credentials() -> VectorFile {
    let mut f = VectorFile::new(
        "iatp-org-credential.json",
        "Org credentials: an `iatp/org-credential` envelope, verified under its `org` and \
         checked against the receiver's clock `now` with 60 s of skew. `output.digest` is \
         the credential's name in revocation lists.",
        "docs/PROTOCOL.md §3, §4.1",
    );
    let org = f.key("org acme");
    let agent = f.key("agent alice");
    let good = acme_credential(&org, &agent).sign(&org).unwrap().0;
    let input = |now: Timestamp| json!({ "now": now.0 });
    let valid = Case::new(
        "iatp/org-credential",
        "valid",
        "org acme vouches for alice as a worker for 31 days",
        input(NOW),
        &good,
    );
    f.accepted(valid, credential_verdict(&good, NOW));

    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Vec<u8>, Timestamp, &str)> = vec![
        ("signature spoiled", "the first signature byte's lowest bit flipped", spoil_signature(&good), NOW, "envelope/bad_signature"),
        ("signed by the agent", "the agent signed its own credential: not the org's key", reseal(&good, &agent, |_| {}), NOW, "envelope/bad_signature"),
        ("trailing byte", "one byte after the envelope", with_trailing_byte(&good), NOW, "envelope/cbor/trailing_bytes"),
        ("version 2", "v = 2, correctly signed", reseal(&good, &org, |e| set(e, "v", Value::Integer(2.into()))), NOW, "envelope/unsupported_version"),
        ("another message type", "t = iatp/hello over a credential body, correctly signed", reseal(&good, &org, |e| { set(e, "t", Value::Text("iatp/hello".into())) }), NOW, "envelope/unexpected_type"),
        ("window reversed", "expires before not_before, correctly signed", reseal(&good, &org, |e| { set_in_body(e, &["expires"], Value::Integer(NOW.minus_secs(2 * DAY).0.into())) }), NOW, "malformed"),
        ("expired", "checked 31 days later (past expires + skew)", good.clone(), NOW.plus_secs(31 * DAY), "expired"),
        ("not yet valid", "checked two days earlier (before not_before − skew)", good.clone(), NOW.minus_secs(2 * DAY), "not_yet_valid"),
    ];
    for (name, about, bytes, now, error) in cases {
        let verdict = credential_verdict(&bytes, now);
        let case = Case::new("iatp/org-credential", name, about, input(now), &bytes);
        f.refused(case, verdict, Refused::error(error));
    }
    f
}

fn refusal(r: HandshakeRefused) -> Refused {
    Refused::coded(r.refusal.name(), r.refusal.code())
}

/// The handshake fixture, with the honest run and each receiver's verdict.
struct World(Handshakers);

impl std::ops::Deref for World {
    type Target = Handshakers;
    fn deref(&self) -> &Handshakers {
        &self.0
    }
}

impl World {
    /// Alice's Hello to bob (her nonce from ChaCha20 seeded with 1).
    fn hello(&self, from: &LocalAgent) -> (AwaitingResponse, Vec<u8>) {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        Initiator::start(self.ctx(from), self.bob.peer_id(), NOW, &mut rng).unwrap()
    }

    /// Bob, with an empty nonce cache, receives `hello` from `remote`.
    fn on_hello(
        &self,
        remote: PeerId,
        hello: &[u8],
        nonces: &mut NonceCache,
    ) -> Result<(AwaitingConfirm, Vec<u8>), HandshakeRefused> {
        self.on_hello_with(&NoLineage, remote, hello, nonces)
    }

    /// The same, bob checking spawned agents' lineages with `lineage`.
    fn on_hello_with(
        &self,
        lineage: &dyn LineageCheck,
        remote: PeerId,
        hello: &[u8],
        nonces: &mut NonceCache,
    ) -> Result<(AwaitingConfirm, Vec<u8>), HandshakeRefused> {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let ctx = Context {
            lineage,
            ..self.ctx(&self.bob)
        };
        Responder::on_hello(ctx, remote, hello, NOW, nonces, &mut rng)
    }

    fn hello_verdict(&self, remote: PeerId, hello: &[u8]) -> Verdict {
        self.hello_verdict_with(&NoLineage, remote, hello)
    }

    fn hello_verdict_with(
        &self,
        lineage: &dyn LineageCheck,
        remote: PeerId,
        hello: &[u8],
    ) -> Verdict {
        let mut nonces = NonceCache::new(65_536, 60);
        let (_, response) = self
            .on_hello_with(lineage, remote, hello, &mut nonces)
            .map_err(refusal)?;
        Ok(json!({ "response": hex(&response) }))
    }

    /// The honest run up to bob's Response.
    fn run_to_response(&self) -> (AwaitingResponse, AwaitingConfirm, Vec<u8>) {
        let (waiting, hello) = self.hello(&self.alice);
        let mut nonces = NonceCache::new(65_536, 60);
        let (pending, response) = self
            .on_hello(self.alice.peer_id(), &hello, &mut nonces)
            .unwrap();
        (waiting, pending, response)
    }

    fn response_verdict(&self, response: &[u8], now: Timestamp) -> Verdict {
        let (waiting, _, _) = self.run_to_response();
        let (session, confirm) = waiting
            .on_response(self.ctx(&self.alice), response, now)
            .map_err(refusal)?;
        Ok(json!({
            "confirm": hex(&confirm),
            "transcript_hash": hex(&session.transcript_hash),
            "admitted_score": session.admitted_score.get(),
        }))
    }

    fn confirm_verdict(&self, confirm: &[u8], now: Timestamp) -> Verdict {
        let (_, pending, _) = self.run_to_response();
        let session = pending
            .on_confirm(self.ctx(&self.bob), confirm, now)
            .map_err(refusal)?;
        Ok(json!({
            "transcript_hash": hex(&session.transcript_hash),
            "remote": session.remote.as_str(),
            "admitted_score": session.admitted_score.get(),
        }))
    }
}

fn hello_input(from: PeerId) -> Json {
    json!({ "receiver": "agent bob", "connection_from": hex(from.as_bytes()), "now": NOW.0 })
}

fn with_card_field(hello: &[u8], signer: &Identity, field: &str, value: Value) -> Vec<u8> {
    reseal(hello, signer, |e: &mut Entries| {
        set_in_body(e, &["card", field], value)
    })
}

/// `iatp/hello`, `iatp/response`, `iatp/confirm` (PROTOCOL.md §4.3–§5).
pub fn handshake() -> VectorFile {
    let mut f = VectorFile::new(
        "iatp-handshake.json",
        "The IATP handshake: alice (acme) dials bob (globex). `shared.bundle` is both \
         receivers' trust bundle; `shared.config` their settings; each receiver's nonce \
         cache starts empty. A Hello is checked by bob on a connection whose \
         authenticated PeerId is `input.connection_from`; a Response by alice after \
         sending case `hello`; a Confirm by bob after answering it with case `response`. \
         Refusals carry PROTOCOL.md §5.1's code and name. Nonces are inputs (they are in \
         the bytes): alice's Hello nonce and bob's Response nonce come from the reference \
         implementation's seeded RNG.",
        "docs/PROTOCOL.md §3–§5",
    );
    for org in ["org acme", "org globex", "org rogue"] {
        f.key(org);
    }
    f.key("agent alice");
    f.key("agent bob");
    let carol = f.key("agent carol");
    let w = World(Handshakers::new());
    f.shared("bundle", bundle_json(&w.fed.bundle));
    f.shared(
        "config",
        json!({ "max_skew_secs": 60, "trust_floor": 100, "confirm_timeout_secs": 30, "nonces_per_initiator": 256 }),
    );
    let alice_key = w.alice.identity().clone();
    let bob_key = w.bob.identity().clone();
    let (alice_peer, bob_peer) = (w.alice.peer_id(), w.bob.peer_id());

    // The honest transcript.
    let [hello, response, confirm] = transcript();
    let claimed = envelope::open::<Hello>(&hello).unwrap().claimed().clone();
    let about = "alice's Hello, nonce from her RNG, time = now";
    let mut input = hello_input(alice_peer);
    input["initiator_nonce"] = json!(hex(&claimed.nonce));
    f.accepted(
        Case::new("iatp/hello", "hello", about, input, &hello),
        w.hello_verdict(alice_peer, &hello),
    );
    let response_input = json!({ "receiver": "agent alice", "after": "hello", "now": NOW.0 });
    f.accepted(
        Case::new(
            "iatp/response",
            "response",
            "bob's answer to case hello",
            response_input.clone(),
            &response,
        ),
        w.response_verdict(&response, NOW),
    );
    let confirm_input = json!({ "receiver": "agent bob", "after": "response", "now": NOW.0 });
    f.accepted(
        Case::new(
            "iatp/confirm",
            "confirm",
            "alice's Confirm closing the transcript",
            confirm_input.clone(),
            &confirm,
        ),
        w.confirm_verdict(&confirm, NOW),
    );

    // Hellos bob refuses.
    let mallory = w.fed.agent(&w.fed.rogue, "mallory", &[]);
    f.key("agent mallory");
    let eve = w.fed.agent(&w.fed.acme, "eve", &["admin"]);
    f.key("agent eve");
    let old = w.fed.agent_with_window(
        &w.fed.acme,
        "old",
        &[],
        NOW.minus_secs(40 * DAY),
        NOW.minus_secs(DAY),
    );
    f.key("agent old");
    let early = w.fed.agent_with_window(
        &w.fed.acme,
        "early",
        &[],
        NOW.plus_secs(DAY),
        NOW.plus_secs(9 * DAY),
    );
    f.key("agent early");
    let dave = w.fed.agent(&w.fed.acme, "dave", &[]);
    f.key("agent dave");
    let peer = |b: PeerId| Value::Bytes(b.as_bytes().to_vec());
    let credential_of = |a: &LocalAgent| Value::Bytes(a.card().credential.0.clone());
    #[rustfmt::skip]
    let hellos: Vec<(&str, &str, Vec<u8>, PeerId)> = vec![
        ("hello trailing byte", "case hello plus one byte", with_trailing_byte(&hello), alice_peer),
        ("hello version 2", "v = 2, signed by alice", reseal(&hello, &alice_key, |e| { set(e, "v", Value::Integer(2.into())) }), alice_peer),
        ("hello typed as response", "t = iatp/response, signed by alice", reseal(&hello, &alice_key, |e| { set(e, "t", Value::Text("iatp/response".into())) }), alice_peer),
        ("hello signature spoiled", "case hello with its signature's first bit flipped", spoil_signature(&hello), alice_peer),
        ("hello empty name", "card.name is empty, signed by alice", with_card_field(&hello, &alice_key, "name", Value::Text(String::new())), alice_peer),
        ("hello from another connection", "alice's card, from = carol, sent on carol's connection", reseal(&hello, &alice_key, |e| { set_in_body(e, &["from"], peer(carol.peer_id())) }), carol.peer_id()),
        ("hello to someone else", "to = carol's PeerId, signed by alice", reseal(&hello, &alice_key, |e| { set_in_body(e, &["to"], peer(carol.peer_id())) }), alice_peer),
        ("hello reflected", "from = bob's own PeerId, signed by alice", reseal(&hello, &alice_key, |e| { set_in_body(e, &["from"], peer(bob_peer)) }), alice_peer),
        ("hello from the future", "time = now + 61 s, signed by alice", reseal(&hello, &alice_key, |e| { set_in_body(e, &["time"], Value::Integer(NOW.plus_secs(61).0.into())) }), alice_peer),
        ("hello forged credential", "card.credential's signature spoiled, Hello signed by alice", with_card_field(&hello, &alice_key, "credential", Value::Bytes(spoil_signature(&w.alice.card().credential.0))), alice_peer),
        ("hello someone else's credential", "card.credential is dave's, Hello signed by alice", with_card_field(&hello, &alice_key, "credential", credential_of(&dave)), alice_peer),
        ("hello no common version", "card.versions = [2], signed by alice", with_card_field(&hello, &alice_key, "versions", Value::Array(vec![Value::Integer(2.into())])), alice_peer),
        ("hello expired credential", "agent old's credential expired a day ago", w.hello(&old).1, old.peer_id()),
        ("hello credential not yet valid", "agent early's credential opens tomorrow", w.hello(&early).1, early.peer_id()),
        ("hello org not in bundle", "agent mallory of org rogue, which the bundle does not list", w.hello(&mallory).1, mallory.peer_id()),
        ("hello capability not allowed", "agent eve of acme offers `admin`, outside acme's tools/* and search", w.hello(&eve).1, eve.peer_id()),
    ];
    let expected = [
        ("malformed", 1),
        ("unsupported_version", 2),
        ("unexpected_message", 3),
        ("bad_signature", 4),
        ("invalid_card", 5),
        ("peer_id_mismatch", 6),
        ("channel_binding", 7),
        ("reflected", 8),
        ("timestamp_outside_window", 10),
        ("credential_invalid", 12),
        ("credential_subject_mismatch", 13),
        ("no_common_version", 20),
        ("credential_expired", 14),
        ("credential_not_yet_valid", 15),
        ("org_not_in_bundle", 17),
        ("capability_not_allowed", 18),
    ];
    for ((name, about, bytes, from), (error, code)) in hellos.into_iter().zip(expected) {
        let verdict = w.hello_verdict(from, &bytes);
        f.refused(
            Case::new("iatp/hello", name, about, hello_input(from), &bytes),
            verdict,
            Refused::coded(error, code),
        );
    }
    // State-dependent refusals of the honest Hello.
    let mut nonces = NonceCache::new(65_536, 60);
    w.on_hello(alice_peer, &hello, &mut nonces).unwrap();
    let replay = w
        .on_hello(alice_peer, &hello, &mut nonces)
        .map(|_| json!(null))
        .map_err(refusal);
    let mut input = hello_input(alice_peer);
    input["after"] = json!("hello");
    f.refused(
        Case::new(
            "iatp/hello",
            "hello replayed",
            "case hello again, after bob accepted it",
            input,
            &hello,
        ),
        replay,
        Refused::coded("replayed_nonce", 9),
    );
    let mut revoking = World(w.0.clone());
    let digest = w.alice.card().credential.digest();
    revoking.0.revoked.revoke(digest);
    let mut input = hello_input(alice_peer);
    input["revoked_credentials"] = json!([hex(&digest)]);
    f.refused(
        Case::new(
            "iatp/hello",
            "hello revoked credential",
            "case hello; bob holds alice's credential digest revoked",
            input,
            &hello,
        ),
        revoking.hello_verdict(alice_peer, &hello),
        Refused::coded("credential_revoked", 16),
    );
    revoking.0.revoked = RevokedCredentials::default();
    revoking.0.config.trust_floor = Score::saturating(600);
    let mut input = hello_input(alice_peer);
    input["trust_floor"] = json!(600);
    f.refused(
        Case::new(
            "iatp/hello",
            "hello below trust floor",
            "case hello; bob's floor is 600, above acme's initial trust 500",
            input,
            &hello,
        ),
        revoking.hello_verdict(alice_peer, &hello),
        Refused::coded("below_trust_floor", 19),
    );

    // Responses alice refuses.
    #[rustfmt::skip]
    let responses: Vec<(&str, &str, Vec<u8>, Timestamp, (&str, u16))> = vec![
        ("response signature spoiled", "case response with its signature's first bit flipped", spoil_signature(&response), NOW, ("bad_signature", 4)),
        ("response to another hello", "hello_hash = 32 × 00, signed by bob", reseal(&response, &bob_key, |e| { set_in_body(e, &["hello_hash"], Value::Bytes(vec![0; 32])) }), NOW, ("transcript_mismatch", 11)),
        ("response from the past", "case response checked 61 s later", response.clone(), NOW.plus_secs(61), ("timestamp_outside_window", 10)),
    ];
    for (name, about, bytes, now, (error, code)) in responses {
        let mut input = response_input.clone();
        input["now"] = json!(now.0);
        f.refused(
            Case::new("iatp/response", name, about, input, &bytes),
            w.response_verdict(&bytes, now),
            Refused::coded(error, code),
        );
    }

    // Confirms bob refuses.
    #[rustfmt::skip]
    let confirms: Vec<(&str, &str, Vec<u8>, Timestamp, (&str, u16))> = vec![
        ("confirm too late", "case confirm, 31 s after the Response", confirm.clone(), NOW.plus_secs(31), ("timed_out", 22)),
        ("confirm signature spoiled", "case confirm with its signature's first bit flipped", spoil_signature(&confirm), NOW, ("bad_signature", 4)),
        ("confirm signed by carol", "case confirm's body, signed by carol", reseal(&confirm, &carol, |_| {}), NOW, ("bad_signature", 4)),
        ("confirm other transcript", "transcript_hash = 32 × 00, signed by alice", reseal(&confirm, &alice_key, |e| { set_in_body(e, &["transcript_hash"], Value::Bytes(vec![0; 32])) }), NOW, ("transcript_mismatch", 11)),
    ];
    for (name, about, bytes, now, (error, code)) in confirms {
        let mut input = confirm_input.clone();
        input["now"] = json!(now.0);
        f.refused(
            Case::new("iatp/confirm", name, about, input, &bytes),
            w.confirm_verdict(&bytes, now),
            Refused::coded(error, code),
        );
    }
    spawned_hellos(&mut f, &w);
    f
}

/// Hellos from alice/1, a child alice spawned (PROTOCOL.md §4.2, §5: codes
/// 24 and 25), to a bob that checks lineages as the reference agent does.
fn spawned_hellos(f: &mut VectorFile, w: &World) {
    let child = f.key("agent alice/1");
    let carol = f.key("agent carol");
    let alice = w.alice.identity();
    let certificate = |parent: &Identity| {
        crate::delegation::certificate(parent, child.did(), None, &["tools/github:*"], 600)
    };
    let spawned = |cert: &SignedSpawnCertificate| {
        let card = AgentCard {
            did: child.did().clone(),
            name: "alice/1".into(),
            credential: w.alice.card().credential.clone(),
            capabilities: vec![CapabilityPattern::parse("tools/github").unwrap()],
            versions: vec![1],
            lineage: vec![ByteBuf::from(cert.0.clone())],
        };
        let local = LocalAgent::new(child.clone(), card).unwrap();
        (w.hello(&local).1, local.peer_id())
    };
    let good = certificate(alice).sign(alice).unwrap();
    let (hello, from) = spawned(&good);
    let none = RevocationSet::default();
    let checking = LineageVerifier {
        revocations: &none,
        skew_secs: 60,
    };
    let input = |extra: Json| {
        let mut input = hello_input(from);
        input["lineage"] = json!({ "accepts_spawned": true, "revoked_certificates": [] });
        for (k, v) in extra.as_object().unwrap() {
            input["lineage"][k] = v.clone();
        }
        input
    };
    let about = "alice/1's Hello: alice's credential, and alice's certificate for alice/1 (tools/github, ceiling 600, a day) as its lineage";
    f.accepted(
        Case::new(
            "iatp/hello",
            "hello spawned",
            about,
            input(json!({})),
            &hello,
        ),
        w.hello_verdict_with(&checking, from, &hello),
    );
    let about = "case hello spawned, to a bob that accepts no spawned agents";
    let verdict = w.hello_verdict_with(&NoLineage, from, &hello);
    f.refused(
        Case::new(
            "iatp/hello",
            "hello spawned, not accepted",
            about,
            input(json!({ "accepts_spawned": false })),
            &hello,
        ),
        verdict,
        Refused::coded("lineage_invalid", 24),
    );
    let revocation = Revocation {
        revoker: alice.did().clone(),
        target: good.hash(),
        kind: TargetKind::SpawnCertificate,
        chain: vec![ByteBuf::from(good.0.clone())],
        reason: "retired".into(),
        issued: NOW,
    };
    let mut revoked = RevocationSet::default();
    revoked.add(&revocation.sign(alice).unwrap()).unwrap();
    let revoking = LineageVerifier {
        revocations: &revoked,
        skew_secs: 60,
    };
    let about = "case hello spawned; bob holds alice's revocation of the certificate";
    let verdict = w.hello_verdict_with(&revoking, from, &hello);
    f.refused(
        Case::new(
            "iatp/hello",
            "hello spawned, certificate revoked",
            about,
            input(json!({ "revoked_certificates": [hex(&good.hash())] })),
            &hello,
        ),
        verdict,
        Refused::coded("lineage_revoked", 25),
    );
    let (forged, from) = spawned(&certificate(&carol).sign(&carol).unwrap());
    let about = "alice/1 with alice's credential but a certificate carol signed as its parent";
    let verdict = w.hello_verdict_with(&checking, from, &forged);
    f.refused(
        Case::new(
            "iatp/hello",
            "hello spawned, not alice's child",
            about,
            input(json!({})),
            &forged,
        ),
        verdict,
        Refused::coded("lineage_invalid", 24),
    );
}
