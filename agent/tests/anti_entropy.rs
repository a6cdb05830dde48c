//! Anti-entropy: what gossip or a dropped connection lost is reconciled
//! when a session is established again.

use std::time::Duration;

use mesh_agent::sim::{Mesh, NetConfig};
use mesh_agent::wire::Task;
use mesh_agent::{AgentError, Command, DelegateOptions, GrantOptions, Outcome};
use mesh_delegation::Capability;
use mesh_ledger::record::ActionKind;
use serde_bytes::ByteBuf;

const LIMIT: Duration = Duration::from_secs(30);

fn trio(seed: u64, net: NetConfig) -> Mesh {
    let mut mesh = Mesh::new(seed, net);
    let acme = mesh.add_org("acme");
    for name in ["a", "b", "c"] {
        mesh.add_agent(acme, name);
    }
    mesh.connect(0, 1);
    mesh.connect(0, 2);
    mesh.connect(1, 2);
    assert!(mesh.run_until(LIMIT, |m| {
        (0..3).all(|i| m.agent(i).sessions().count() == 2)
    }));
    mesh
}

#[test]
fn an_agent_offline_during_a_revocation_refuses_the_chain_after_one_reconnection() {
    let mut mesh = trio(31, NetConfig::default());
    let cap = Capability::parse("tools/*:read").unwrap_or_else(|e| panic!("{e}"));
    let mut options = GrantOptions::new(vec![cap]);
    options.depth = 1;
    let audience = mesh.did(1).clone();
    let Some(Ok(Outcome::Granted(grant))) =
        mesh.run_command(0, Command::Grant { audience, options }, LIMIT)
    else {
        panic!("grant failed");
    };
    // c is down while a revokes; b hears it by gossip.
    mesh.crash(2);
    let _ = mesh.run_command(
        0,
        Command::Revoke {
            target: grant.hash,
            reason: "compromised".into(),
        },
        LIMIT,
    );
    mesh.run_for(Duration::from_secs(2));
    assert!(mesh.agent(1).is_revoked(&grant.hash));
    // c comes back; nobody gossips the revocation again.
    mesh.start(2);
    assert!(!mesh.agent(2).is_revoked(&grant.hash));
    assert!(mesh.run_until(LIMIT, |m| m.agent(2).is_revoked(&grant.hash)));
    // b (whose gate would refuse anyway) cannot make c accept the chain:
    // c's own gate refuses it.
    let delegatee = mesh.did(2).clone();
    let task = Task {
        resource: "tools/x".into(),
        action: "read".into(),
        input: ByteBuf::new(),
    };
    let result = mesh.run_command(
        1,
        Command::Delegate {
            delegatee,
            task,
            options: DelegateOptions {
                authority: Some(grant.chain.clone()),
                ..DelegateOptions::default()
            },
        },
        LIMIT,
    );
    assert!(
        matches!(result, Some(Err(AgentError::Denied(ref d))) if d.rule() == "revoked"),
        "{result:?}"
    );
}

#[test]
fn a_record_whose_answer_was_lost_reaches_the_actors_log_on_reconnection() {
    let mut mesh = trio(32, NetConfig::default());
    let op = mesh.command(
        0,
        Command::Record {
            counterparty: mesh.did(1).clone(),
            kind: ActionKind::Invoke,
            payload: b"cut off".to_vec(),
        },
    );
    // b appends and answers; the link breaks before the answer arrives.
    assert!(mesh.run_until(LIMIT, |m| m.store(1).records().len() == 1));
    mesh.partition(vec![0, 1, 0]);
    mesh.run_for(Duration::from_secs(1));
    assert!(matches!(
        mesh.result(0, op),
        Some(Err(AgentError::RequestFailed(_)))
    ));
    assert_eq!(mesh.store(0).records().len(), 0, "a never got the answer");
    mesh.heal();
    assert!(mesh.run_until(LIMIT, |m| m.store(0).records().len() == 1));
    assert_eq!(
        mesh.store(0).records()[0].leaf_hash(),
        mesh.store(1).records()[0].leaf_hash()
    );
    // Further syncs do not append it twice.
    mesh.partition(vec![0, 1, 0]);
    mesh.run_for(Duration::from_secs(1));
    mesh.heal();
    mesh.run_for(Duration::from_secs(3));
    assert_eq!(mesh.store(0).records().len(), 1);
    assert!(mesh.faults().is_empty(), "{:?}", mesh.faults());
}

/// After a lossy run, a full partition and heal: every co-signed record
/// stands in both parties' logs and every agent knows every revocation.
#[test]
fn seed_sweep_after_healing_every_record_is_in_both_logs_and_revocations_agree() {
    for seed in 0..6u64 {
        let mut mesh = Mesh::new(200 + seed, NetConfig::lossy());
        let acme = mesh.add_org("acme");
        let n = 5;
        for i in 0..n {
            mesh.add_agent(acme, &format!("agent-{i}"));
        }
        for a in 0..n {
            for b in a + 1..n {
                mesh.connect(a, b);
            }
        }
        mesh.run_for(Duration::from_secs(3));
        let mut grants = Vec::new();
        for round in 0..24usize {
            let (from, to) = (round % n, (round * 3 + 1) % n);
            if from == to {
                continue;
            }
            let cap = Capability::parse("search:query").unwrap_or_else(|e| panic!("{e}"));
            let command = if round % 4 == 0 {
                Command::Grant {
                    audience: mesh.did(to).clone(),
                    options: GrantOptions::new(vec![cap]),
                }
            } else {
                Command::Record {
                    counterparty: mesh.did(to).clone(),
                    kind: ActionKind::Invoke,
                    payload: vec![round as u8],
                }
            };
            if let Some(Ok(Outcome::Granted(g))) = mesh.run_command(from, command, LIMIT) {
                grants.push((from, g.hash));
            }
            if round % 6 == 5 {
                // Some of those grants are revoked over the lossy network.
                if let Some((issuer, hash)) = grants.pop() {
                    let _ = mesh.run_command(
                        issuer,
                        Command::Revoke {
                            target: hash,
                            reason: "sweep".into(),
                        },
                        LIMIT,
                    );
                }
            }
        }
        // The network heals; every link is re-established (and synced).
        mesh.set_net(NetConfig::default());
        mesh.partition((0..n).map(|i| i as u8).collect());
        mesh.run_for(Duration::from_secs(1));
        mesh.heal();
        mesh.run_for(Duration::from_secs(10));
        assert!(mesh.faults().is_empty(), "seed {seed}: {:?}", mesh.faults());
        for a in 0..n {
            for r in mesh.store(a).records() {
                let rec = r.record();
                let other = if &rec.actor == mesh.did(a) {
                    &rec.counterparty
                } else {
                    &rec.actor
                };
                let b = mesh.index_of(other).unwrap_or_else(|| panic!("a party"));
                assert!(
                    mesh.store(b)
                        .records()
                        .iter()
                        .any(|x| x.leaf_hash() == r.leaf_hash()),
                    "seed {seed}: a record of {a} is missing from {b}'s log"
                );
            }
        }
        let revoked: Vec<Vec<[u8; 32]>> = (0..n)
            .map(|a| mesh.agent(a).revocations().targets())
            .collect();
        for a in 1..n {
            assert_eq!(revoked[a], revoked[0], "seed {seed}: agent {a} disagrees");
        }
    }
}
