//! Spawned agents over the network (issue 14, item 3), with real nodes on
//! loopback TCP: a child runs its own node on its lineage alone, peers
//! apply its certificate, and revoking the certificate cuts it off.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{builder, eventually, node, start};
use mesh_delegation::{Capability, SpawnPolicy};
use mesh_iatp::Score;
use mesh_iatp::testing::Federation;
use mesh_node::node::{DelegateOptions, NodeError, SpawnOptions, Task};
use serde_bytes::ByteBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_child_joins_on_its_lineage_and_is_cut_off_when_revoked() {
    let fed = Federation::new();
    let dir = tempfile::tempdir().unwrap();
    // Alice may spawn at acme's initial trust (500; the default threshold
    // is 700).
    let alice = start(
        builder(
            &fed,
            fed.agent(&fed.acme, "alice", &["tools/*"]),
            &dir.path().join("alice"),
            1,
        )
        .spawn_policy(SpawnPolicy {
            threshold: Score::saturating(500),
            budgets: vec![(Score::saturating(500), 2)],
            ..SpawnPolicy::default()
        }),
    )
    .await;
    let carol = node(
        &fed,
        fed.agent(&fed.acme, "carol", &["tools/*"]),
        &dir.path().join("carol"),
        3,
    )
    .await;
    alice.node.connect(carol.addr.clone()).await.unwrap();

    let spawned = alice
        .node
        .spawn(SpawnOptions {
            capabilities: vec![Capability::parse("tools/github/*:read").unwrap()],
            trust_ceiling: Score::saturating(600),
            lifetime_secs: 3600,
        })
        .await
        .unwrap();
    // The child's node runs on the lineage: no credential from acme's key.
    let local = spawned.local_agent("child").unwrap();
    assert_eq!(
        local.card().credential,
        alice.node.local().card().credential
    );
    let child = node(&fed, local, &dir.path().join("child"), 2).await;
    let child_did = child.node.connect(carol.addr.clone()).await.unwrap();
    assert_eq!(&child_did, carol.node.did());

    // Carol applies the certificate: ceiling 600 (acme's is 900).
    let seen = carol.node.explain(child.node.did()).await.unwrap();
    assert_eq!(seen.policy.ceiling, Score::saturating(600));
    let done = carol
        .node
        .delegate_task(
            child.node.did(),
            Task {
                resource: "tools/github/issues".into(),
                action: "read".into(),
                input: ByteBuf::from(b"list".to_vec()),
            },
            DelegateOptions::default(),
        )
        .await;
    assert!(done.is_ok(), "{done:?}");

    // Alice revokes it; the revocation reaches carol by gossip, and carol
    // drops the child and refuses it from then on.
    alice
        .node
        .revoke(&spawned.certificate.hash(), "compromised")
        .await
        .unwrap();
    eventually("carol drops the revoked child", || async {
        !carol
            .node
            .peers()
            .await
            .unwrap()
            .iter()
            .any(|p| &p.did == child.node.did())
    })
    .await;
    let again = child.node.connect(carol.addr.clone()).await;
    assert!(
        matches!(&again, Err(NodeError::HandshakeRefused(why)) if why.contains("lineage_revoked")
            || why.contains("revoked")),
        "{again:?}"
    );
}
