//! # mesh-node: the agent's node in the mesh
//!
//! This crate will own the libp2p node that speaks IATP, gossips trust and
//! co-signs ledgers. Today it holds what the node's operators need first:
//! key files on disk ([`keyfile`]) and the bridge from a mesh identity to the
//! libp2p transport identity ([`transport_key`]), plus the `mesh-node` CLI.
//!
//! ```
//! use mesh_node::transport_key;
//! use mesh_iatp::testing::identity;
//!
//! let id = identity("agent doc-example");
//! let keypair = transport_key::to_libp2p(&id).unwrap();
//! // The libp2p PeerId is the mesh PeerId: one key, two names.
//! assert_eq!(keypair.public().to_peer_id().to_bytes(), id.peer_id().as_bytes().to_vec());
//! ```
#![forbid(unsafe_code)]

pub mod keyfile;
pub mod node;
pub mod transport_key;
