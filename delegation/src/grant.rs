//! Grants: signed, attenuable delegations of capabilities (UCAN-like).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use mesh_iatp::envelope::{self, EnvelopeError, SignedMessage};
use mesh_iatp::{Did, Identity, Score, Timestamp};

use crate::capability::Capability;

/// SHA-256 of a signed link's envelope bytes: its name in chains and revocations.
pub type LinkHash = [u8; 32];

/// Most links in one chain (a root plus seven re-delegations).
pub const MAX_CHAIN_LEN: usize = 8;

/// `issuer` lets `audience` use `capabilities` within a window, and
/// re-delegate them at most `depth` more times to agents trusted at least
/// `min_trust`. Signed by `issuer` (envelope type `delegation/grant`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Who delegates (and signs).
    pub issuer: Did,
    /// Who receives.
    pub audience: Did,
    /// What may be done.
    pub capabilities: Vec<Capability>,
    /// Not valid before.
    pub not_before: Timestamp,
    /// Not valid from.
    pub expires: Timestamp,
    /// How many further links may follow this one (0: no re-delegation).
    pub depth: u8,
    /// The audience's trust must be at least this when the grant is used.
    pub min_trust: Score,
    /// Makes otherwise identical grants distinct.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 16],
    /// Hash of the grant this one re-delegates; `None` for a root grant.
    #[serde(with = "mesh_iatp::cbor::opt_bytes32")]
    pub parent: Option<LinkHash>,
}

impl SignedMessage for Grant {
    const TYPE: &'static str = "delegation/grant";
    const MAX_BYTES: usize = 8 * 1024;
}

/// A grant's signed envelope bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignedGrant(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl SignedGrant {
    /// The link hash.
    pub fn hash(&self) -> LinkHash {
        Sha256::digest(&self.0).into()
    }

    /// Decode without checking the signature: what the grant claims, for
    /// cheap checks made before the chain holding it is verified (never a
    /// reason to trust it).
    pub fn claimed(&self) -> Result<Grant, EnvelopeError> {
        Ok(envelope::open::<Grant>(&self.0)?.claimed().clone())
    }

    /// Decode and verify the issuer's signature.
    pub fn open(&self) -> Result<Grant, EnvelopeError> {
        let unverified = envelope::open::<Grant>(&self.0)?;
        let issuer = unverified.claimed().issuer.clone();
        unverified.verify(&issuer)
    }
}

impl std::fmt::Debug for SignedGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignedGrant({})", hex(&self.hash()))
    }
}

impl Grant {
    /// Sign as `issuer` (whose DID must be `self.issuer`).
    pub fn sign(&self, issuer: &Identity) -> Result<SignedGrant, EnvelopeError> {
        if issuer.did() != &self.issuer {
            return Err(EnvelopeError::BadSignature {
                signer: issuer.did().clone(),
            });
        }
        Ok(SignedGrant(envelope::seal(self, issuer)?))
    }
}

/// Lowercase hex of a hash, for messages.
pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}
