//! An agent's (or organisation's) signing identity.
//!
//! One Ed25519 key is the agent's DID, its libp2p `PeerId` and the key that
//! signs every envelope. It is stored as PKCS#8 PEM (RFC 8410), the format of
//! `openssl genpkey -algorithm ed25519`, so keys move freely between the mesh
//! and standard tooling. This module only encodes and decodes; writing files
//! with safe permissions is the caller's job (see `mesh-node`).

use ed25519_dalek::ed25519::pkcs8::KeypairBytes;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use ed25519_dalek::{Signature, Signer, SigningKey};
use rand_core::CryptoRng;

use crate::{Did, PeerId};

/// Why PEM text is not a usable Ed25519 private key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not PKCS#8 PEM, or PKCS#8 holding another algorithm.
    #[error(
        "not an Ed25519 PKCS#8 private key ({0}); expected a `-----BEGIN PRIVATE KEY-----` block \
         such as `openssl genpkey -algorithm ed25519` writes"
    )]
    NotEd25519Pkcs8(String),
    /// The key could not be encoded (should not happen for a valid key).
    #[error("could not encode the key as PKCS#8: {0}")]
    Encode(String),
}

/// A private Ed25519 key with its DID and PeerId precomputed.
///
/// The secret is zeroised on drop (ed25519-dalek's `zeroize` feature) and
/// never printed: `Debug` shows only the DID.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
    did: Did,
}

impl Identity {
    /// A fresh identity from a cryptographic RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_signing_key(SigningKey::generate(rng))
    }

    /// The identity for a 32-byte Ed25519 secret (seed). Used for test
    /// vectors and deterministic simulations.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        Self::from_signing_key(SigningKey::from_bytes(secret))
    }

    /// Wrap an existing ed25519-dalek key.
    pub fn from_signing_key(key: SigningKey) -> Self {
        let did = Did::from_verifying_key(key.verifying_key());
        Identity { key, did }
    }

    /// Load a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, IdentityError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(Self::from_signing_key)
            .map_err(|e| IdentityError::NotEd25519Pkcs8(e.to_string()))
    }

    /// Encode as PKCS#8 **v1** PEM (RFC 8410 §7: the 32-byte seed only),
    /// byte-identical in form to `openssl genpkey -algorithm ed25519`.
    /// ed25519-dalek's own encoder writes v2 (RFC 5958, with the public key),
    /// which OpenSSL 3.0 refuses to load. Zeroised when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<zeroize::Zeroizing<String>, IdentityError> {
        let v1 = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        v1.to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| IdentityError::Encode(e.to_string()))
    }

    /// This identity's DID.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// This identity's libp2p PeerId (same key).
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_did(&self.did)
    }

    /// Sign raw bytes. Callers sign through [`crate::envelope`], which adds
    /// domain separation; this is public for the other mesh crates' formats
    /// that mandate their own signing input (e.g. C2SP signed notes).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        self.key.sign(msg)
    }

    /// The 64-byte keypair encoding (secret ‖ public) that libp2p's
    /// `ed25519::Keypair::try_from_bytes` takes, so the node's transport key
    /// is this very key. Zeroised on drop.
    pub fn to_keypair_bytes(&self) -> zeroize::Zeroizing<[u8; 64]> {
        zeroize::Zeroizing::new(self.key.to_keypair_bytes())
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.did)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8410 §10.3 example private key; its public key is RFC 8410 §10.1's.
    const RFC8410_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
        -----END PRIVATE KEY-----\n";
    const RFC8410_PUBLIC_HEX: &str =
        "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1";

    #[test]
    fn loads_rfc8410_example_key() {
        let id = Identity::from_pkcs8_pem(RFC8410_PEM).expect("RFC 8410 key loads");
        let hex: String = id
            .did()
            .public_key_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, RFC8410_PUBLIC_HEX);
    }

    #[test]
    fn pem_round_trip() {
        let id = Identity::from_secret_bytes(&[9u8; 32]);
        let pem = id.to_pkcs8_pem().expect("encodes");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        // v1, 48 DER bytes: the same shape as the RFC 8410 example and openssl.
        assert_eq!(pem.lines().nth(1).map(str::len), Some(64));
        assert!(
            pem.lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("MC4CAQAwBQYDK2VwBCIEI"))
        );
        let back = Identity::from_pkcs8_pem(&pem).expect("decodes");
        assert_eq!(back.did(), id.did());
    }

    #[test]
    fn accepts_pkcs8_v2_with_public_key() {
        // RFC 5958 OneAsymmetricKey v2 (version 1, [1] publicKey), as older
        // versions of this crate and other tools write.
        let v2 = "-----BEGIN PRIVATE KEY-----\n\
            MFECAQEwBQYDK2VwBCIEIGwACYRdV7yuz8iK65lUmsN0E03UQDK4b1nlMU96OLcm\n\
            gSEAbY20HOLxbrsgZ6Wv46sK6GV7HmMJvHsiBQFCe46EG9Y=\n\
            -----END PRIVATE KEY-----\n";
        let id = Identity::from_pkcs8_pem(v2).expect("v2 loads");
        assert_eq!(
            id.did().as_str(),
            "did:key:z6MkmpuoozBL7GVZztdkM5x3TrpzwaoweaRikigDF7prGHBB"
        );
    }

    #[test]
    fn refuses_non_ed25519_pem() {
        // An X25519 PKCS#8 key (OID 1.3.101.110), also from RFC 8410.
        let x25519 = "-----BEGIN PRIVATE KEY-----\n\
            MC4CAQAwBQYDK2VuBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
            -----END PRIVATE KEY-----\n";
        assert!(matches!(
            Identity::from_pkcs8_pem(x25519),
            Err(IdentityError::NotEd25519Pkcs8(_))
        ));
        assert!(matches!(
            Identity::from_pkcs8_pem("hello"),
            Err(IdentityError::NotEd25519Pkcs8(_))
        ));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let id = Identity::from_secret_bytes(&[0x42; 32]);
        let shown = format!("{id:?}");
        assert!(shown.starts_with("Identity(did:key:z6Mk"));
        assert!(!shown.contains("4242"));
    }
}
