//! Embedding a node from the files `mesh-node run` reads
//! (`NodeBuilder::from_config`): two nodes built from `node.toml` files
//! authenticate each other through the bootstrap address; a config naming
//! a missing or foreign credential is refused naming the field and file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::daemon::{bundle, provision};
use mesh_iatp::testing::identity;
use mesh_node::load::LoadError;
use mesh_node::node::NodeBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_built_from_node_toml_find_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let acme = identity("org acme (embedding)");
    let globex = identity("org globex (embedding)");
    std::fs::write(root.join("bundle.toml"), bundle(&acme, &globex)).unwrap();

    let (a_cfg, a_id) = provision(&root.join("a"), &acme, "a", None);
    let a = NodeBuilder::from_config(&a_cfg)
        .unwrap()
        .build()
        .await
        .unwrap();
    assert_eq!(a.did(), a_id.did());
    let a_addr = a.listen_addrs().await.unwrap().remove(0);
    assert!(
        root.join("a/data").exists(),
        "the data dir is node.toml's, relative to it"
    );

    let (b_cfg, _) = provision(&root.join("b"), &globex, "b", Some(&a_addr));
    let b = NodeBuilder::from_config(&b_cfg)
        .unwrap()
        .build()
        .await
        .unwrap();
    common::eventually("b's bootstrap authenticates a", || {
        let b = b.clone();
        let a_did = a.did().clone();
        async move { b.peers().await.unwrap().iter().any(|p| p.did == a_did) }
    })
    .await;
    assert_eq!(b.peers().await.unwrap()[0].org, "acme");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[test]
fn a_bad_credential_is_named_with_its_field_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let acme = identity("org acme (embedding errors)");
    std::fs::write(root.join("bundle.toml"), bundle(&acme, &acme)).unwrap();
    let (cfg, _) = provision(&root.join("a"), &acme, "a", None);

    std::fs::rename(root.join("a/agent.cred"), root.join("a/moved.cred")).unwrap();
    match NodeBuilder::from_config(&cfg) {
        Err(
            e @ LoadError::Read {
                field: "credential",
                ..
            },
        ) => {
            let text = e.to_string();
            assert!(text.starts_with("credential: "), "{text}");
            assert!(text.contains("agent.cred"), "{text}");
        }
        other => panic!("{:?}", other.err()),
    }

    // Another agent's credential: named as such.
    let (_, _) = provision(&root.join("other"), &acme, "other", None);
    std::fs::copy(root.join("other/agent.cred"), root.join("a/agent.cred")).unwrap();
    match NodeBuilder::from_config(&cfg) {
        Err(e @ LoadError::Credential { .. }) => {
            assert!(e.to_string().contains("but the identity is"), "{e}")
        }
        other => panic!("{:?}", other.err()),
    }
}
