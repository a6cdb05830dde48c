//! Gossip across many hops, and the spawn budget over a child's life: the
//! behaviour mesh-node's socket tests used to check, on the deterministic
//! harness.

use std::time::Duration;

use mesh_agent::sim::{Mesh, NetConfig, OrgOptions};
use mesh_agent::{AgentError, Command, Event, Outcome, SpawnOptions};
use mesh_delegation::Capability;
use mesh_iatp::Score;
use mesh_ledger::record::ActionKind;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_trust_report_crosses_a_line_of_twelve_checked_at_every_hop() {
    let mut mesh = Mesh::new(21, NetConfig::default());
    let acme = mesh.add_org("acme");
    let globex = mesh.add_org("globex");
    for i in 0..12 {
        mesh.add_agent(if i % 2 == 0 { acme } else { globex }, &format!("n{i}"));
    }
    for i in 1..12 {
        mesh.connect(i, i - 1);
    }
    assert!(mesh.run_until(LIMIT, |m| {
        (1..12).all(|i| m.agent(i).session(m.did(i - 1)).is_some())
    }));
    mesh.record_events(true);
    let _ = mesh.run_command(0, Command::PublishReport, LIMIT);
    // Agent 0 is eleven hops from agent 11: every relay verifies the
    // report before passing it on, and every agent hears it once.
    let origin = mesh.did(0).clone();
    let published: Vec<u64> = mesh
        .events()
        .iter()
        .filter_map(|(_, at, e)| match e {
            Event::ReportPublished { sequence } if *at == 0 => Some(*sequence),
            _ => None,
        })
        .collect();
    let [sequence] = published[..] else {
        panic!("agent 0 published one report, not {published:?}");
    };
    // Each receiver names the report it accepted by the publisher's
    // sequence number.
    let heard = |m: &Mesh, n: usize| {
        m.events()
            .iter()
            .filter(|(_, at, e)| {
                *at == n
                    && matches!(e, Event::TrustReport { reporter, sequence: s }
                        if *reporter == origin && *s == sequence)
            })
            .count()
    };
    assert!(mesh.run_until(LIMIT, |m| (1..12).all(|n| heard(m, n) >= 1)));
    mesh.run_for(Duration::from_secs(5));
    for n in 1..12 {
        assert_eq!(heard(&mesh, n), 1, "agent {n} accepted the report once");
    }
    assert!(mesh.faults().is_empty(), "{:?}", mesh.faults());
}

fn spawn(mesh: &mut Mesh, parent: usize) -> Option<Result<Outcome, AgentError>> {
    mesh.run_command(
        parent,
        Command::Spawn(SpawnOptions {
            capabilities: vec![
                Capability::parse("tools/github/*:read").unwrap_or_else(|e| panic!("{e}")),
            ],
            trust_ceiling: Score::saturating(600),
            lifetime_secs: 3600,
        }),
        LIMIT,
    )
}

#[test]
fn a_revoked_child_frees_its_place_in_the_budget_and_a_live_child_joins_the_mesh() {
    let mut mesh = Mesh::new(22, NetConfig::default());
    let acme = mesh.add_org_with(
        "acme",
        OrgOptions {
            initial_trust: 750,
            ..OrgOptions::default()
        },
    );
    mesh.add_agent(acme, "parent");
    let mut children = Vec::new();
    for _ in 0..2 {
        match spawn(&mut mesh, 0) {
            Some(Ok(Outcome::Spawned(s))) => children.push(s),
            other => panic!("spawn within budget failed: {other:?}"),
        }
    }
    assert_ne!(children[0].identity.did(), children[1].identity.did());
    match spawn(&mut mesh, 0) {
        Some(Err(AgentError::Denied(d))) => assert_eq!(d.rule(), "spawn_budget_exhausted"),
        other => panic!("a third child alive was allowed: {other:?}"),
    }
    // Two spawn records, co-signed with each child's key.
    let records = mesh.store(0).records();
    assert_eq!(records.len(), 2);
    for (record, child) in records.iter().zip(&children) {
        assert_eq!(record.record().kind, ActionKind::Spawn);
        assert_eq!(&record.record().counterparty, child.identity.did());
    }

    // Revoking the first child frees a place.
    let revoked = mesh.run_command(
        0,
        Command::Revoke {
            target: children[0].certificate.hash(),
            reason: "done".into(),
        },
        LIMIT,
    );
    assert!(
        matches!(revoked, Some(Ok(Outcome::Revoked(_)))),
        "{revoked:?}"
    );
    assert!(matches!(spawn(&mut mesh, 0), Some(Ok(Outcome::Spawned(_)))));

    // The second child runs on its lineage (no credential of its own) and
    // joins.
    let child = mesh
        .add_spawned("child", &children[1])
        .unwrap_or_else(|| panic!("the child's card is valid"));
    mesh.connect(child, 0);
    assert!(
        mesh.run_until(LIMIT, |m| m.agent(child).session(m.did(0)).is_some()
            && m.agent(0).session(m.did(child)).is_some())
    );
}
