//! The libp2p `PeerId` of an Ed25519 identity, computed without libp2p.
//!
//! libp2p names a peer by the multihash of its protobuf-encoded public key;
//! for Ed25519 keys (36 encoded bytes, under the 42-byte threshold) that
//! multihash is the *identity* hash, so the PeerId bytes are
//! `0x00 0x24` (identity, length 36) ‖ `0x08 0x01` (KeyType = Ed25519) ‖
//! `0x12 0x20` (Data, 32 bytes) ‖ key. The key is recoverable from the PeerId,
//! which is what lets the handshake check that a connection's PeerId and a
//! DID name the same key. PeerIds of other key types are refused here: a mesh
//! node's transport key *is* its Ed25519 DID key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Did, DidError};

/// Prefix of every Ed25519 PeerId: identity multihash header and the
/// protobuf `PublicKey { Type: Ed25519, Data: <32 bytes> }` header.
pub const ED25519_PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
/// Length of an Ed25519 PeerId in bytes.
pub const ED25519_PEER_ID_LEN: usize = 38;

/// Why bytes or text are not an Ed25519 PeerId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIdError {
    /// Not base58btc.
    #[error("PeerId is not valid base58btc: {0}")]
    InvalidBase58(String),
    /// Not the 38-byte identity multihash of an Ed25519 key.
    #[error(
        "PeerId is not the identity multihash of an Ed25519 key \
         (expected 38 bytes starting 00 24 08 01 12 20)"
    )]
    NotEd25519,
    /// The embedded key is not a valid Ed25519 point.
    #[error("PeerId embeds an invalid Ed25519 key: {0}")]
    InvalidKey(DidError),
}

/// A libp2p PeerId whose key is Ed25519, and therefore also a DID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId([u8; ED25519_PEER_ID_LEN]);

impl PeerId {
    /// The PeerId for the key a DID names.
    pub fn from_did(did: &Did) -> Self {
        let mut out = [0u8; ED25519_PEER_ID_LEN];
        out[..6].copy_from_slice(&ED25519_PEER_ID_PREFIX);
        out[6..].copy_from_slice(did.public_key_bytes());
        PeerId(out)
    }

    /// Parse the binary multihash form (as libp2p's `PeerId::to_bytes`).
    ///
    /// Checks the format only; whether the 32 bytes are a valid curve point
    /// is checked by [`PeerId::to_did`]. PeerIds are compared as bytes, so
    /// decoding them in every handshake message need not pay for point
    /// decompression.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PeerIdError> {
        let arr: [u8; ED25519_PEER_ID_LEN] =
            bytes.try_into().map_err(|_| PeerIdError::NotEd25519)?;
        if arr[..6] != ED25519_PEER_ID_PREFIX {
            return Err(PeerIdError::NotEd25519);
        }
        Ok(PeerId(arr))
    }

    /// The DID of the key inside this PeerId.
    pub fn to_did(&self) -> Result<Did, PeerIdError> {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.0[6..]);
        Did::from_public_key_bytes(&key).map_err(PeerIdError::InvalidKey)
    }

    /// The binary multihash form.
    pub fn as_bytes(&self) -> &[u8; ED25519_PEER_ID_LEN] {
        &self.0
    }

    /// Base58btc text (`12D3KooW…`), as libp2p prints PeerIds.
    pub fn to_base58(&self) -> String {
        bs58::encode(self.0).into_string()
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.to_base58())
    }
}

impl FromStr for PeerId {
    type Err = PeerIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > 64 {
            return Err(PeerIdError::NotEd25519);
        }
        let raw = bs58::decode(s)
            .into_vec()
            .map_err(|e| PeerIdError::InvalidBase58(e.to_string()))?;
        PeerId::from_bytes(&raw)
    }
}

impl Serialize for PeerId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        PeerId::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_peer_id_did_round_trip() {
        let did = Did::parse("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")
            .expect("vector parses");
        let peer = PeerId::from_did(&did);
        assert!(peer.to_base58().starts_with("12D3KooW"));
        assert_eq!(peer.to_did().expect("valid key"), did);
        let parsed: PeerId = peer.to_base58().parse().expect("base58 parses");
        assert_eq!(parsed, peer);
    }

    #[test]
    fn refuses_other_key_types_and_lengths() {
        // A SHA-256 multihash PeerId (RSA keys use these): 0x12 0x20 ‖ digest.
        let mut sha = vec![0x12, 0x20];
        sha.extend_from_slice(&[1u8; 32]);
        assert_eq!(PeerId::from_bytes(&sha), Err(PeerIdError::NotEd25519));
        assert_eq!(PeerId::from_bytes(&[]), Err(PeerIdError::NotEd25519));
        assert!(matches!(
            "0OIl".parse::<PeerId>(),
            Err(PeerIdError::InvalidBase58(_))
        ));
    }
}
