//! Grants, revocations and spawn certificates (DELEGATION.md; PROTOCOL.md
//! §11.1 for the gossiped ones): a chain, then one case per rule.

use ciborium::Value;
use mesh_delegation::{
    Capability, Grant, Revocation, SignedGrant, SignedSpawnCertificate, SpawnCertificate,
    TargetKind, verify_chain, verify_lineage, verify_revocation,
};
use mesh_iatp::testing::{FIXTURE_NOW, identity};
use mesh_iatp::{Did, Identity, Score, Timestamp};
use serde_bytes::ByteBuf;
use serde_json::json;

use crate::envelope::{reseal, set_in_body, spoil_signature};
use crate::{Case, Refused, VectorFile, Verdict, hex};

const NOW: Timestamp = FIXTURE_NOW;
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;

fn caps(list: &[&str]) -> Vec<Capability> {
    list.iter().map(|c| Capability::parse(c).unwrap()).collect()
}

/// A grant valid from an hour before now for a day.
fn grant(
    issuer: &Identity,
    audience: &Did,
    parent: Option<&SignedGrant>,
    capabilities: &[&str],
    depth: u8,
) -> Grant {
    Grant {
        issuer: issuer.did().clone(),
        audience: audience.clone(),
        capabilities: caps(capabilities),
        not_before: NOW.minus_secs(HOUR),
        expires: NOW.plus_secs(DAY),
        depth,
        min_trust: Score::saturating(0),
        nonce: [depth; 16],
        parent: parent.map(SignedGrant::hash),
    }
}

fn hexes<T: AsRef<[u8]>>(links: &[T]) -> Vec<String> {
    links.iter().map(|l| hex(l.as_ref())).collect()
}

fn chain_verdict(parents: &[SignedGrant], last: &[u8], requester: &Did, root: &Did) -> Verdict {
    let mut chain = parents.to_vec();
    chain.push(SignedGrant(last.to_vec()));
    let verified =
        verify_chain(&chain, requester, |d| d == root).map_err(|e| Refused::named(&e))?;
    let leaf = verified.leaf();
    Ok(json!({
        "leaf": hex(&leaf.link.hash),
        "capabilities": leaf.capabilities.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))
}

/// acme → alice → bob (cases `root grant` and `re-delegation`).
pub fn grant_chain() -> Vec<SignedGrant> {
    let (owner, alice, bob) = (
        identity("org acme"),
        identity("agent alice"),
        identity("agent bob"),
    );
    let g1 = grant(&owner, alice.did(), None, &["tools/*:read,write"], 2)
        .sign(&owner)
        .unwrap();
    let g2 = grant(&alice, bob.did(), Some(&g1), &["tools/github/*:read"], 1)
        .sign(&alice)
        .unwrap();
    vec![g1, g2]
}

/// `delegation/grant` chains (DELEGATION.md §2).
pub fn grants() -> VectorFile {
    let mut f = VectorFile::new(
        "delegation-grant.json",
        "Grant chains: each case's bytes are the last link of a chain whose earlier links \
         are `input.parents` (root first); the chain is verified for `input.requester`, \
         with `input.root` the only DID that may issue root grants. Windows are not \
         checked here (the gate checks them against its clock).",
        "docs/DELEGATION.md §2",
    );
    let owner = f.key("org acme");
    let alice = f.key("agent alice");
    let bob = f.key("agent bob");
    let carol = f.key("agent carol");
    let root = owner.did().clone();
    let [g1, good] = <[SignedGrant; 2]>::try_from(grant_chain()).unwrap();
    let g2 = good.claimed().unwrap();
    let input = |parents: &[SignedGrant], requester: &Identity| json!({ "parents": hexes(&parents.iter().map(|g| g.0.clone()).collect::<Vec<_>>()), "requester": requester.did().as_str(), "root": root.as_str() });
    let one = std::slice::from_ref(&g1);
    f.accepted(
        Case::new(
            "delegation/grant",
            "root grant",
            "acme's root grant to alice: tools/* read and write, depth 2",
            input(&[], &alice),
            &g1.0,
        ),
        chain_verdict(&[], &g1.0, alice.did(), &root),
    );
    f.accepted(
        Case::new(
            "delegation/grant",
            "re-delegation",
            "alice passes tools/github/* read on to bob, depth 1",
            input(one, &bob),
            &good.0,
        ),
        chain_verdict(one, &good.0, bob.did(), &root),
    );
    let resign = |g: Grant, by: &Identity| {
        let mut g = g;
        g.issuer = by.did().clone();
        g.sign(by).unwrap().0
    };
    let bytes_of = |g: Grant| g.sign(&alice).unwrap().0;
    let widened = Grant {
        capabilities: caps(&["tools/*:read,write,admin"]),
        ..g2.clone()
    };
    let late = Grant {
        expires: NOW.plus_secs(2 * DAY),
        ..g2.clone()
    };
    let deep = Grant {
        depth: 2,
        ..g2.clone()
    };
    let spliced = Grant {
        parent: Some([0; 32]),
        ..g2.clone()
    };
    let reversed = Grant {
        expires: g2.not_before,
        ..g2.clone()
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, &[SignedGrant], Vec<u8>, &Identity, &str)> = vec![
        ("signature spoiled", "the re-delegation with its signature's first bit flipped", one, spoil_signature(&good.0), &bob, "invalid/bad_signature"),
        ("capability widened", "alice adds the action admin, which her grant lacks", one, bytes_of(widened), &bob, "capability_widened"),
        ("window widened", "expires a day after alice's grant", one, bytes_of(late), &bob, "window_widened"),
        ("depth not decreasing", "depth 2 under a depth-2 grant", one, bytes_of(deep), &bob, "depth_not_decreasing"),
        ("parent not the previous link", "parent = 32 × 00", one, bytes_of(spliced), &bob, "broken_link"),
        ("window reversed", "expires = not_before", one, bytes_of(reversed), &bob, "malformed"),
        ("issuer not the audience", "carol, not alice, issues the second link", one, resign(g2.clone(), &carol), &bob, "issuer_not_audience"),
        ("wrong requester", "the valid chain, presented by carol", one, good.0.clone(), &carol, "wrong_audience"),
        ("untrusted root", "carol issues a root grant to alice", &[], resign(Grant { parent: None, ..grant(&owner, alice.did(), None, &["tools/*:read"], 2) }, &carol), &alice, "untrusted_root"),
        ("root with a parent", "acme's root grant naming a parent", &[], resign(Grant { parent: Some([1; 32]), ..grant(&owner, alice.did(), None, &["tools/*:read"], 2) }, &owner), &alice, "root_has_parent"),
    ];
    for (name, about, parents, bytes, requester, error) in cases {
        let verdict = chain_verdict(parents, &bytes, requester.did(), &root);
        f.refused(
            Case::new(
                "delegation/grant",
                name,
                about,
                input(parents, requester),
                &bytes,
            ),
            verdict,
            Refused::error(error),
        );
    }
    f
}

/// alice revokes the grant she gave bob (revocation case `valid`).
pub fn alice_revokes_bob(alice: &Identity) -> Revocation {
    let [g1, g2] = <[SignedGrant; 2]>::try_from(grant_chain()).unwrap();
    Revocation {
        revoker: alice.did().clone(),
        target: g2.hash(),
        kind: TargetKind::Grant,
        chain: vec![ByteBuf::from(g1.0), ByteBuf::from(g2.0)],
        reason: "bob left the project".into(),
        issued: NOW,
    }
}

fn revocation_verdict(bytes: &[u8]) -> Verdict {
    let r = verify_revocation(bytes).map_err(|e| Refused::named(&e))?;
    Ok(
        json!({ "target": hex(&r.target), "revoker": r.revoker.as_str(), "target_expires": r.target_expires.0 }),
    )
}

/// `delegation/revocation` (DELEGATION.md §4, PROTOCOL.md §11.1).
pub fn revocations() -> VectorFile {
    let mut f = VectorFile::new(
        "delegation-revocation.json",
        "Revocations as gossiped: verified alone (signature, chain linkage, target at the \
         chain's end, and the revoker issued a link at or above the target).",
        "docs/DELEGATION.md §4, docs/PROTOCOL.md §11.1",
    );
    let owner = f.key("org acme");
    let alice = f.key("agent alice");
    let bob = f.key("agent bob");
    let carol = f.key("agent carol");
    let [g1, g2] = <[SignedGrant; 2]>::try_from(grant_chain()).unwrap();
    let revocation = alice_revokes_bob(&alice);
    let good = revocation.sign(&alice).unwrap();
    let about = "alice revokes the grant she gave bob; the chain is acme → alice → bob";
    f.accepted(
        Case::new("delegation/revocation", "valid", about, json!({}), &good),
        revocation_verdict(&good),
    );
    let by_owner = Revocation {
        revoker: owner.did().clone(),
        ..revocation.clone()
    }
    .sign(&owner)
    .unwrap();
    f.accepted(
        Case::new(
            "delegation/revocation",
            "by an issuer above",
            "acme, who issued the chain's root, revokes bob's grant",
            json!({}),
            &by_owner,
        ),
        revocation_verdict(&by_owner),
    );
    let bob_revokes = Revocation {
        revoker: bob.did().clone(),
        ..revocation.clone()
    }
    .sign(&bob)
    .unwrap();
    let carol_signs = reseal(&good, &carol, |_| {});
    let chain = |links: Vec<Vec<u8>>| Value::Array(links.into_iter().map(Value::Bytes).collect());
    let swapped = reseal(&good, &alice, |e| {
        set_in_body(e, &["chain"], chain(vec![g2.0.clone(), g1.0.clone()]))
    });
    let short = reseal(&good, &alice, |e| {
        set_in_body(e, &["chain"], chain(vec![g1.0.clone()]))
    });
    let empty = reseal(&good, &alice, |e| set_in_body(e, &["chain"], chain(vec![])));
    let long_reason = reseal(&good, &alice, |e| {
        set_in_body(e, &["reason"], Value::Text("x".repeat(257)))
    });
    let bad_link = reseal(&good, &alice, |e| {
        set_in_body(
            e,
            &["chain"],
            chain(vec![g1.0.clone(), spoil_signature(&g2.0)]),
        )
    });
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("signature spoiled", "the first signature bit flipped", spoil_signature(&good), "envelope/bad_signature"),
        ("signed by another", "alice's revocation, signed by carol", carol_signs, "envelope/bad_signature"),
        ("revoker below the target", "bob, the grant's audience, revokes it", bob_revokes, "not_authorised"),
        ("chain reordered", "the chain's links swapped, signed by alice", swapped, "broken_chain"),
        ("target not at the end", "the chain stops before the target, signed by alice", short, "target_not_in_chain"),
        ("empty chain", "no links, signed by alice", empty, "malformed"),
        ("reason too long", "a 257-byte reason, signed by alice", long_reason, "malformed"),
        ("chain link forged", "the target's signature spoiled, revocation signed by alice", bad_link, "invalid_chain_link/bad_signature"),
    ];
    for (name, about, bytes, error) in cases {
        let verdict = revocation_verdict(&bytes);
        f.refused(
            Case::new("delegation/revocation", name, about, json!({}), &bytes),
            verdict,
            Refused::error(error),
        );
    }
    f
}

/// A certificate valid from an hour before now for a day (depth 1, or 2
/// under `previous`).
pub fn certificate(
    parent: &Identity,
    child: &Did,
    previous: Option<&SignedSpawnCertificate>,
    capabilities: &[&str],
    ceiling: u16,
) -> SpawnCertificate {
    SpawnCertificate {
        parent: parent.did().clone(),
        child: child.clone(),
        capabilities: caps(capabilities),
        trust_ceiling: Score::saturating(ceiling),
        not_before: NOW.minus_secs(HOUR),
        expires: NOW.plus_secs(DAY),
        spawn_depth: if previous.is_some() { 2 } else { 1 },
        parent_certificate: previous.map(SignedSpawnCertificate::hash),
        nonce: [7; 16],
    }
}

fn lineage_verdict(
    parents: &[SignedSpawnCertificate],
    last: &[u8],
    root_caps: &[Capability],
) -> Verdict {
    let mut lineage = parents.to_vec();
    lineage.push(SignedSpawnCertificate(last.to_vec()));
    let verified = verify_lineage(&lineage, root_caps).map_err(|e| Refused::named(&e))?;
    let last = verified.last().unwrap();
    Ok(
        json!({ "hash": hex(&last.link.hash), "child": last.certificate.child.as_str(), "trust_ceiling": last.certificate.trust_ceiling.get() }),
    )
}

/// `delegation/spawn-certificate` lineages (DELEGATION.md §3).
pub fn spawn_certificates() -> VectorFile {
    let mut f = VectorFile::new(
        "delegation-spawn-certificate.json",
        "Spawn certificates: each case's bytes are the last certificate of a lineage \
         whose earlier certificates are `input.parents` (first spawn first); the first \
         parent's capabilities are `shared.root_capabilities` (its org's policy, all \
         actions). Windows are checked against a clock elsewhere (the handshake, \
         PROTOCOL.md §5).",
        "docs/DELEGATION.md §3",
    );
    let alice = f.key("agent alice");
    let child = f.key("agent alice/1");
    let grandchild = f.key("agent alice/1/1");
    let carol = f.key("agent carol");
    let root_caps = caps(&["tools/*:*", "search:*"]);
    f.shared("root_capabilities", json!(["tools/*:*", "search:*"]));
    let c1 = certificate(&alice, child.did(), None, &["tools/github/*:*"], 600)
        .sign(&alice)
        .unwrap();
    let c2 = certificate(
        &child,
        grandchild.did(),
        Some(&c1),
        &["tools/github/*:read"],
        500,
    );
    let good = c2.sign(&child).unwrap();
    let input = |parents: &[SignedSpawnCertificate]| json!({ "parents": hexes(&parents.iter().map(|c| c.0.clone()).collect::<Vec<_>>()) });
    let one = std::slice::from_ref(&c1);
    f.accepted(
        Case::new(
            "delegation/spawn-certificate",
            "first spawn",
            "alice spawns alice/1: tools/github/* all actions, ceiling 600",
            input(&[]),
            &c1.0,
        ),
        lineage_verdict(&[], &c1.0, &root_caps),
    );
    f.accepted(
        Case::new(
            "delegation/spawn-certificate",
            "second generation",
            "alice/1 spawns alice/1/1: tools/github/* read, ceiling 500",
            input(one),
            &good.0,
        ),
        lineage_verdict(one, &good.0, &root_caps),
    );
    let sign = |c: SpawnCertificate| c.sign(&child).unwrap().0;
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, &[SignedSpawnCertificate], Vec<u8>, &str)> = vec![
        ("signature spoiled", "the second certificate's signature, first bit flipped", one, spoil_signature(&good.0), "invalid/bad_signature"),
        ("capability widened", "alice/1 grants tools/* to its child", one, sign(SpawnCertificate { capabilities: caps(&["tools/*:read"]), ..c2.clone() }), "capability_widened"),
        ("ceiling raised", "trust ceiling 700 under a 600 parent", one, sign(SpawnCertificate { trust_ceiling: Score::saturating(700), ..c2.clone() }), "exceeds"),
        ("window widened", "expires two days out under a one-day parent", one, sign(SpawnCertificate { expires: NOW.plus_secs(2 * DAY), ..c2.clone() }), "exceeds"),
        ("depth skipped", "spawn_depth 3 in second position", one, sign(SpawnCertificate { spawn_depth: 3, ..c2.clone() }), "broken"),
        ("parent certificate wrong", "parent_certificate = 32 × 00", one, sign(SpawnCertificate { parent_certificate: Some([0; 32]), ..c2.clone() }), "broken"),
        ("parent not the previous child", "carol signs as the second parent", one, SpawnCertificate { parent: carol.did().clone(), ..c2.clone() } .sign(&carol) .unwrap() .0, "broken"),
        ("first names a parent certificate", "a first certificate with parent_certificate set", &[], SpawnCertificate { parent_certificate: Some([1; 32]), ..certificate(&alice, child.did(), None, &["tools/github/*:*"], 600) } .sign(&alice) .unwrap() .0, "broken"),
        ("first beyond the org", "alice gives her child admin, which her org does not allow", &[], certificate(&alice, child.did(), None, &["admin:*"], 600) .sign(&alice) .unwrap() .0, "capability_widened"),
    ];
    for (name, about, parents, bytes, error) in cases {
        let verdict = lineage_verdict(parents, &bytes, &root_caps);
        f.refused(
            Case::new(
                "delegation/spawn-certificate",
                name,
                about,
                input(parents),
                &bytes,
            ),
            verdict,
            Refused::error(error),
        );
    }
    f
}
