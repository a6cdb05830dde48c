//! Forks at any size (issue 14): a witness checks a checkpoint smaller than
//! the one it cosigned, and proves a rewritten log forked with a
//! divergent-leaf proof that every agent accepts.

use std::time::Duration;

use mesh_agent::sim::{Mesh, NetConfig};
use mesh_agent::{Command, Event, Outcome, Topic};
use mesh_iatp::Score;
use mesh_ledger::checkpoint::Checkpoint;
use mesh_ledger::equivocation::EquivocationProof;
use mesh_ledger::record::ActionKind;

const LIMIT: Duration = Duration::from_secs(30);

/// `n` agents of one org, all connected, sessions established.
fn mesh_of(n: usize, seed: u64) -> Mesh {
    let mut mesh = Mesh::new(seed, NetConfig::default());
    let acme = mesh.add_org("acme");
    for i in 0..n {
        mesh.add_agent(acme, &format!("agent {i}"));
    }
    for a in 0..n {
        for b in a + 1..n {
            mesh.connect(a, b);
        }
    }
    assert!(mesh.run_until(LIMIT, |m| {
        (0..n).all(|i| m.agent(i).sessions().count() == n - 1)
    }));
    mesh
}

/// Agent `n` records `count` invoke records with `with`.
fn record(mesh: &mut Mesh, n: usize, with: usize, count: usize) {
    let counterparty = mesh.did(with).clone();
    for i in 0..count {
        let done = mesh.run_command(
            n,
            Command::Record {
                counterparty: counterparty.clone(),
                kind: ActionKind::Invoke,
                payload: format!("call {i}").into_bytes(),
            },
            LIMIT,
        );
        assert!(matches!(done, Some(Ok(_))), "{done:?}");
    }
}

/// Agent `n` signs a checkpoint now; both others cosign it.
fn witnessed_checkpoint(mesh: &mut Mesh, n: usize) -> u64 {
    let done = mesh.run_command(n, Command::Checkpoint { force: true }, LIMIT);
    assert!(
        matches!(done, Some(Ok(Outcome::Checkpoint(Some(_))))),
        "{done:?}"
    );
    let (origin, size) = (mesh.did(n).to_string(), mesh.agent(n).log_size());
    let others: Vec<usize> = (0..mesh.len()).filter(|&i| i != n).collect();
    assert!(mesh.run_until(LIMIT, |m| others.iter().all(|&w| {
        m.store(w)
            .witnessed()
            .iter()
            .any(|(o, s, _)| o == &origin && *s == size)
    })));
    // The anchor's inclusion proof follows the cosignature.
    mesh.run_for(Duration::from_secs(1));
    size
}

/// The first case: a forged size-1 checkpoint of a log cosigned
/// at a larger size raised no event. Now every witness asks for a proof
/// that it is a prefix of what it cosigned, and the honest log's proof
/// does not fit the forged root.
#[test]
fn a_smaller_forged_checkpoint_is_checked_against_the_cosigned_one() {
    let mut mesh = mesh_of(3, 31);
    mesh.record_events(true);
    record(&mut mesh, 0, 1, 3);
    assert_eq!(witnessed_checkpoint(&mut mesh, 0), 3);
    let owner = mesh.did(0).clone();
    let at = mesh.agent_now().wall;
    let before = mesh.agent(1).trust_of(&owner, at);
    let forged = Checkpoint {
        origin: owner.to_string(),
        size: 1,
        root: [7; 32],
    }
    .sign(mesh.agent(0).local().identity())
    .unwrap_or_else(|e| panic!("{e}"))
    .to_bytes();
    let published = mesh.run_command(
        0,
        Command::PublishRaw {
            topic: Topic::Checkpoint,
            data: forged,
        },
        LIMIT,
    );
    assert!(published.is_some());
    mesh.run_for(Duration::from_secs(2));
    for w in [1, 2] {
        assert!(
            mesh.events().iter().any(|(_, n, e)| *n == w
                && matches!(e, Event::Rejected { peer, reason, .. }
                    if peer == &owner && reason.contains("not a prefix"))),
            "witness {w} saw no failed prefix check: {:?}",
            mesh.events()
        );
    }
    let after = mesh.agent(1).trust_of(&owner, mesh.agent_now().wall);
    assert!(after < before, "trust {before:?} → {after:?}");
}

/// A log rewritten under the same key is proven forked: the witness's
/// anchor (the last leaf of the checkpoint it cosigned) and the owner's
/// own inclusion proof of another leaf at that index under its new signed
/// root. The proof is gossiped and zeroes the owner everywhere. Here the
/// owner lost its database while the one peer holding its records was
/// down, so anti-entropy could not restore them and the new log differs.
#[test]
fn a_rewritten_log_is_proven_forked_by_a_divergent_leaf() {
    let mut mesh = mesh_of(4, 32);
    mesh.record_events(true);
    record(&mut mesh, 0, 3, 2);
    assert_eq!(witnessed_checkpoint(&mut mesh, 0), 2);
    let owner = mesh.did(0).clone();

    mesh.crash(3);
    mesh.lose_store(0);
    mesh.start(0);
    assert!(mesh.run_until(LIMIT, |m| m.agent(0).sessions().count() == 2));
    record(&mut mesh, 0, 2, 4);
    assert_eq!(mesh.agent(0).log_size(), 4);
    let done = mesh.run_command(0, Command::Checkpoint { force: true }, LIMIT);
    assert!(
        matches!(done, Some(Ok(Outcome::Checkpoint(Some(_))))),
        "{done:?}"
    );

    assert!(
        mesh.run_until(LIMIT, |m| [1, 2].iter().all(|&i| {
            m.agent(i).trust_of(&owner, m.agent_now().wall) == Score::saturating(0)
        })),
        "{:?}",
        mesh.events()
    );
    let proofs: Vec<EquivocationProof> = [1, 2]
        .iter()
        .filter_map(|&i| mesh.agent(i).equivocation_proof(&owner))
        .filter_map(|b| EquivocationProof::from_bytes(b).ok())
        .collect();
    assert!(
        proofs
            .iter()
            .any(|p| matches!(p, EquivocationProof::DivergentLeaf { index: 1, .. })),
        "{proofs:?}"
    );
}
