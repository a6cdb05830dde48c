//! Two agents of two federated organisations complete the IATP handshake
//! in-process; an agent of a third organisation, outside the trust bundle,
//! is refused with its reason.
//!
//! Run: `cargo run -p mesh-iatp --example handshake`

// Example code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use mesh_iatp::handshake::{
    Context, HandshakeConfig, InitialTrust, Initiator, LocalAgent, NoLineage, NonceCache, Responder,
};
use mesh_iatp::{
    AgentCard, CapabilityPattern, Identity, OrgCredential, OrgPolicy, RevokedCredentials, Score,
    Session, Timestamp, TrustBundle,
};

const DAY: u64 = 86_400;

/// An org root vouches for a fresh agent key; returns the agent's side.
fn enrol(org: &Identity, name: &str, offers: &[&str], now: Timestamp) -> LocalAgent {
    let agent = Identity::generate(&mut UnwrapErr(SysRng));
    let credential = OrgCredential {
        org: org.did().clone(),
        agent: agent.did().clone(),
        roles: vec!["worker".into()],
        not_before: now,
        expires: now.plus_secs(30 * DAY),
    }
    .sign(org)
    .expect("a well-formed credential signs");
    let card = AgentCard {
        did: agent.did().clone(),
        name: name.into(),
        credential,
        capabilities: offers
            .iter()
            .map(|c| c.parse().expect("valid capability"))
            .collect(),
        versions: vec![mesh_iatp::envelope::PROTOCOL_VERSION],
        lineage: vec![],
    };
    LocalAgent::new(agent, card).expect("the card describes the agent")
}

fn policy(name: &str, root: &Identity, initial: u16, ceiling: u16, caps: &[&str]) -> OrgPolicy {
    OrgPolicy {
        name: name.into(),
        root: root.did().clone(),
        initial_trust: Score::new(initial).expect("in range"),
        trust_ceiling: Score::new(ceiling).expect("in range"),
        capabilities: caps
            .iter()
            .map(|c| CapabilityPattern::parse(c).expect("valid"))
            .collect(),
    }
}

fn print_session(who: &str, s: &Session) {
    println!("{who} authenticated {} ({})", s.remote_card.name, s.remote);
    println!("  peer id        {}", s.remote_peer);
    println!("  org            {} ({})", s.policy.name, s.credential.org);
    println!("  roles          {}", s.credential.roles.join(", "));
    println!("  offers         {:?}", s.remote_card.capabilities);
    println!(
        "  admitted trust {} (org ceiling {})",
        s.admitted_score, s.policy.trust_ceiling
    );
    println!("  transcript     {}", hex(&s.transcript_hash));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() {
    let now = Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs(),
    );
    let mut rng = UnwrapErr(SysRng);

    // Two organisations federate: both nodes load the same bundle.
    let acme = Identity::generate(&mut rng);
    let globex = Identity::generate(&mut rng);
    let rogue = Identity::generate(&mut rng);
    let bundle = TrustBundle::new(vec![
        policy("acme", &acme, 500, 900, &["tools/*", "search"]),
        policy("globex", &globex, 400, 800, &["search"]),
    ])
    .expect("distinct roots");

    let alice = enrol(&acme, "alice (acme)", &["tools/github"], now);
    let bob = enrol(&globex, "bob (globex)", &["search"], now);
    let eve = enrol(&rogue, "eve (rogue org)", &[], now);

    let revoked = RevokedCredentials::default();
    let config = HandshakeConfig::default();
    let ctx = |local| Context {
        local,
        bundle: &bundle,
        revoked: &revoked,
        trust: &InitialTrust,
        config: &config,
        lineage: &NoLineage,
    };
    let mut bob_nonces = NonceCache::new(4096, config.max_skew_secs);

    // alice → bob: Hello, Response, Confirm.
    let (waiting, hello) =
        Initiator::start(ctx(&alice), bob.peer_id(), now, &mut rng).expect("hello");
    let (pending, response) = Responder::on_hello(
        ctx(&bob),
        alice.peer_id(),
        &hello,
        now,
        &mut bob_nonces,
        &mut rng,
    )
    .expect("bob accepts alice's hello");
    let (alice_view, confirm) = waiting
        .on_response(ctx(&alice), &response, now)
        .expect("alice accepts bob's response");
    let bob_view = pending
        .on_confirm(ctx(&bob), &confirm, now)
        .expect("bob accepts the confirm");
    println!(
        "handshake bytes: hello {}, response {}, confirm {}\n",
        hello.len(),
        response.len(),
        confirm.len()
    );
    print_session("alice", &alice_view);
    println!();
    print_session("bob", &bob_view);

    // eve → bob: her org is not in bob's bundle.
    let (_, hello) = Initiator::start(ctx(&eve), bob.peer_id(), now, &mut rng).expect("hello");
    match Responder::on_hello(
        ctx(&bob),
        eve.peer_id(),
        &hello,
        now,
        &mut bob_nonces,
        &mut rng,
    ) {
        Ok(_) => panic!("eve must be refused"),
        Err(refused) => {
            println!("\nbob refused eve: {refused}");
            println!(
                "  refusal code {} ({}); accountable peer: {}",
                refused.refusal.code(),
                refused.refusal.name(),
                refused.accountable.map_or("none".into(), |d| d.to_string())
            );
        }
    }
}
