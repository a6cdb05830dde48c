//! One key, two protocols: the libp2p identity of a node is its DID key.
//!
//! libp2p's Noise handshake authenticates the connection with this keypair,
//! so the PeerId the transport reports *is* the remote agent's DID key, and
//! IATP can check the card against it (see `mesh_iatp::handshake`).

use mesh_iatp::Identity;

/// Why an identity could not become a libp2p keypair.
#[derive(Debug, thiserror::Error)]
#[error("cannot convert identity to a libp2p ed25519 keypair: {0}")]
pub struct TransportKeyError(String);

/// The libp2p keypair for `identity` (same Ed25519 key).
pub fn to_libp2p(identity: &Identity) -> Result<libp2p_identity::Keypair, TransportKeyError> {
    let mut bytes = identity.to_keypair_bytes();
    let kp = libp2p_identity::ed25519::Keypair::try_from_bytes(&mut bytes[..])
        .map_err(|e| TransportKeyError(e.to_string()))?;
    Ok(kp.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_iatp::{Did, PeerId};

    #[test]
    fn libp2p_and_mesh_agree_on_peer_ids() {
        for label in ["a", "b", "c"] {
            let id = mesh_iatp::testing::identity(label);
            let theirs = to_libp2p(&id).expect("converts").public().to_peer_id();
            let ours = id.peer_id();
            assert_eq!(theirs.to_bytes(), ours.as_bytes().to_vec());
            assert_eq!(theirs.to_base58(), ours.to_base58());
        }
    }

    #[test]
    fn did_to_peer_id_to_did_round_trips_through_libp2p() {
        let did = Did::parse("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")
            .expect("W3C vector");
        let ours = PeerId::from_did(&did);
        let theirs =
            libp2p_identity::PeerId::from_bytes(ours.as_bytes()).expect("libp2p parses it");
        let back = PeerId::from_bytes(&theirs.to_bytes())
            .expect("ours parses libp2p's")
            .to_did()
            .expect("key");
        assert_eq!(back, did);
    }
}
