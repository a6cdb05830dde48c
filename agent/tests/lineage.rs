//! Spawned agents over the wire (issue 14, item 3): a child's card carries
//! its lineage instead of an org credential of its own; its certificate's
//! ceiling and capabilities apply at every peer; revoking a certificate
//! cuts off the child and its descendants everywhere.

use std::time::Duration;

use mesh_agent::sim::{Mesh, NetConfig, OrgOptions};
use mesh_agent::wire::Task;
use mesh_agent::{AgentError, Command, DelegateOptions, Event, Outcome, SpawnOptions, Spawned};
use mesh_delegation::Capability;
use mesh_iatp::Score;
use serde_bytes::ByteBuf;

const LIMIT: Duration = Duration::from_secs(30);

fn task(resource: &str) -> Task {
    Task {
        resource: resource.into(),
        action: "read".into(),
        input: ByteBuf::from(b"hello".to_vec()),
    }
}

fn delegate(mesh: &mut Mesh, from: usize, to: usize, t: Task) -> Result<Outcome, AgentError> {
    let delegatee = mesh.did(to).clone();
    mesh.run_command(
        from,
        Command::Delegate {
            delegatee,
            task: t,
            options: DelegateOptions::default(),
        },
        LIMIT,
    )
    .unwrap_or_else(|| panic!("the delegation did not finish"))
}

/// `parent` spawns a child that may read `tools/github/*`, ceiling 600.
fn spawn(mesh: &mut Mesh, parent: usize) -> Spawned {
    let done = mesh.run_command(
        parent,
        Command::Spawn(SpawnOptions {
            capabilities: vec![
                Capability::parse("tools/github/*:read").unwrap_or_else(|e| panic!("{e}")),
            ],
            trust_ceiling: Score::saturating(600),
            lifetime_secs: 3600,
        }),
        LIMIT,
    );
    match done {
        Some(Ok(Outcome::Spawned(s))) => *s,
        other => panic!("spawn failed: {other:?}"),
    }
}

/// An acme parent (initial trust 750, ceiling 900) and two acme peers, all
/// connected.
fn family(seed: u64) -> Mesh {
    let mut mesh = Mesh::new(seed, NetConfig::default());
    let acme = mesh.add_org_with(
        "acme",
        OrgOptions {
            initial_trust: 750,
            ..OrgOptions::default()
        },
    );
    for name in ["parent", "peer one", "peer two"] {
        mesh.add_agent(acme, name);
    }
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        mesh.connect(a, b);
    }
    assert!(mesh.run_until(LIMIT, |m| {
        (0..3).all(|i| m.agent(i).sessions().count() == 2)
    }));
    mesh
}

/// Add a spawned child and connect it to `to`.
fn join(mesh: &mut Mesh, name: &str, spawned: &Spawned, to: &[usize]) -> usize {
    let child = mesh
        .add_spawned(name, spawned)
        .unwrap_or_else(|| panic!("{name}'s card is valid"));
    for &peer in to {
        mesh.connect(child, peer);
    }
    assert!(
        mesh.run_until(LIMIT, |m| to.iter().all(|&p| {
            m.agent(child).session(m.did(p)).is_some() && m.agent(p).session(m.did(child)).is_some()
        })),
        "{name} did not join: {:?}",
        mesh.events()
    );
    child
}

#[test]
fn a_child_joins_on_its_lineage_under_its_certificates_ceiling_and_capabilities() {
    let mut mesh = family(41);
    let spawned = spawn(&mut mesh, 0);
    // Its card carries the parent's credential, not one of its own.
    assert_eq!(spawned.credential, mesh.agent(0).local().card().credential);
    let child = join(&mut mesh, "child", &spawned, &[0, 1]);
    let at = mesh.agent_now().wall;
    let session = mesh
        .agent(1)
        .session(mesh.did(child))
        .unwrap_or_else(|| panic!("a session"))
        .clone();
    let admitted = session
        .spawned
        .unwrap_or_else(|| panic!("admitted as spawned"));
    assert_eq!(admitted.lineage, vec![spawned.certificate.hash()]);
    // The org's initial 750 is capped by the certificate's 600, and the
    // child is never scored above it.
    assert_eq!(
        mesh.agent(1).trust_of(mesh.did(child), at),
        Score::saturating(600)
    );
    assert_eq!(
        mesh.agent(1).trust().policy(mesh.did(child)).ceiling,
        Score::saturating(600)
    );
    // It works within its certificate.
    assert!(matches!(
        delegate(&mut mesh, 1, child, task("tools/github/issues")),
        Ok(Outcome::Delegated(_))
    ));
}

#[test]
fn a_child_offering_more_than_its_certificate_is_refused() {
    let mut mesh = family(42);
    let spawned = spawn(&mut mesh, 0);
    let search = "search".parse().unwrap_or_else(|e| panic!("{e:?}"));
    let greedy = mesh_iatp::handshake::LocalAgent::new(
        spawned.identity.clone(),
        spawned.card("greedy", vec![search]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let child = mesh.add_local_agent(greedy, "greedy");
    mesh.record_events(true);
    mesh.connect(child, 1);
    mesh.run_for(Duration::from_secs(3));
    assert!(mesh.agent(1).session(mesh.did(child)).is_none());
    assert!(mesh.events().iter().any(|(_, n, e)| *n == 1
        && matches!(e, Event::RefusedPeer { refusal, .. } if refusal.name() == "capability_not_allowed")));
}

#[test]
fn a_lineage_that_does_not_lead_to_the_card_is_refused() {
    let mut mesh = family(43);
    let first = spawn(&mut mesh, 0);
    let second = spawn(&mut mesh, 0);
    // The first child's key with the second child's certificate.
    let mut stolen = second.clone();
    stolen.identity = first.identity.clone();
    let local = stolen
        .local_agent("impostor")
        .unwrap_or_else(|e| panic!("{e}"));
    let impostor = mesh.add_local_agent(local, "impostor");
    mesh.record_events(true);
    mesh.connect(impostor, 1);
    mesh.run_for(Duration::from_secs(3));
    assert!(mesh.agent(1).session(mesh.did(impostor)).is_none());
    assert!(mesh.events().iter().any(|(_, n, e)| *n == 1
        && matches!(e, Event::RefusedPeer { refusal, .. } if refusal.name() == "lineage_invalid")));
}

/// The attack: after the parent revoked its child, the child kept
/// its sessions, delegated, and was granted a capability. Now the
/// revocation ends every session with the child and its grandchild, new
/// handshakes are refused, and nothing it asks is served.
#[test]
fn revoking_a_certificate_cuts_off_the_child_and_its_descendants_everywhere() {
    let mut mesh = family(44);
    let spawned = spawn(&mut mesh, 0);
    let child = join(&mut mesh, "child", &spawned, &[0, 1, 2]);
    let grand = spawn(&mut mesh, child);
    assert_eq!(grand.lineage.len(), 2, "spawned under the child's lineage");
    let grandchild = join(&mut mesh, "grandchild", &grand, &[1, 2]);
    assert!(matches!(
        delegate(&mut mesh, grandchild, 1, task("tools/github/issues")),
        Ok(Outcome::Delegated(_))
    ));

    mesh.record_events(true);
    let revoked = mesh.run_command(
        0,
        Command::Revoke {
            target: spawned.certificate.hash(),
            reason: "compromised".into(),
        },
        LIMIT,
    );
    assert!(
        matches!(revoked, Some(Ok(Outcome::Revoked(_)))),
        "{revoked:?}"
    );
    // Every peer drops both, and keeps refusing them.
    mesh.run_for(Duration::from_secs(10));
    for peer in [1, 2] {
        for cut in [child, grandchild] {
            assert!(
                mesh.agent(peer).session(mesh.did(cut)).is_none(),
                "agent {peer} still holds a session with {cut}"
            );
        }
    }
    assert!(mesh.events().iter().any(|(_, n, e)| *n == 1
        && matches!(e, Event::RefusedPeer { refusal, .. } if refusal.name() == "lineage_revoked")));
    // Its own node heard the revocation too: its gate stops it first (a
    // node that ignored it would meet the refused handshake above).
    let after = delegate(&mut mesh, grandchild, 1, task("tools/github/issues"));
    assert!(
        matches!(&after, Err(AgentError::Denied(d)) if d.rule() == "revoked_ancestor"),
        "{after:?}"
    );
}

/// What a peer learned of a child's lineage survives the peer's restart:
/// the gate still knows the certificate (so a chain the child issued is
/// cut off if it is revoked later), and the certificate's ceiling holds
/// before the child is met again.
#[test]
fn a_childs_lineage_and_ceiling_survive_a_peers_restart() {
    let mut mesh = family(45);
    let spawned = spawn(&mut mesh, 0);
    let child = join(&mut mesh, "child", &spawned, &[1]);
    let did = mesh.did(child).clone();
    assert_eq!(mesh.agent(1).lineage_of(&did), [spawned.certificate.hash()]);
    mesh.crash(child);
    mesh.crash(1);
    mesh.start(1);
    assert_eq!(mesh.agent(1).lineage_of(&did), [spawned.certificate.hash()]);
    assert_eq!(
        mesh.agent(1).trust().policy(&did).ceiling,
        Score::saturating(600)
    );
}
