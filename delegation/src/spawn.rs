//! Spawn certificates: a parent agent vouches for a child it created.
//!
//! A spawned agent's *lineage* is the chain of certificates from the first
//! spawn down to it: `[c₀, …, cₖ]` where `c₀.parent` is an ordinary
//! (org-credentialed) agent, each `cᵢ₊₁.parent == cᵢ.child`, each names its
//! predecessor's hash, and `cᵢ.spawn_depth == i + 1`. A child's capabilities
//! are within its parent's (the parent's own certificate's, or for a
//! first-generation child the parent org's allowed capabilities), its window
//! within its parent's certificate, and its trust ceiling at most its
//! parent's. Revoking any certificate in a lineage cuts off everything below.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use mesh_iatp::envelope::{self, EnvelopeError, SignedMessage};
use mesh_iatp::{Did, Identity, Score, Timestamp};

use crate::capability::{self, Capability};
use crate::chain::LinkRef;
use crate::grant::{LinkHash, MAX_CHAIN_LEN, hex};

/// `parent` vouches for `child`, with capabilities, a trust ceiling and a
/// window. Signed by `parent` (envelope type `delegation/spawn-certificate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnCertificate {
    /// The spawning agent (signs).
    pub parent: Did,
    /// The new agent.
    pub child: Did,
    /// What the child may do (within the parent's).
    pub capabilities: Vec<Capability>,
    /// The child's score never exceeds this.
    pub trust_ceiling: Score,
    /// Not valid before.
    pub not_before: Timestamp,
    /// Not valid from.
    pub expires: Timestamp,
    /// 1 for a child of an unspawned agent, +1 per generation.
    pub spawn_depth: u8,
    /// Hash of the parent's own certificate, if the parent was spawned.
    #[serde(with = "mesh_iatp::cbor::opt_bytes32")]
    pub parent_certificate: Option<LinkHash>,
    /// Makes otherwise identical certificates distinct.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 16],
}

impl SignedMessage for SpawnCertificate {
    const TYPE: &'static str = "delegation/spawn-certificate";
    const MAX_BYTES: usize = 8 * 1024;
}

/// A certificate's signed envelope bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignedSpawnCertificate(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl SignedSpawnCertificate {
    /// The certificate's hash (its name in lineages and revocations).
    pub fn hash(&self) -> LinkHash {
        Sha256::digest(&self.0).into()
    }

    /// Decode and verify the parent's signature.
    pub fn open(&self) -> Result<SpawnCertificate, EnvelopeError> {
        let unverified = envelope::open::<SpawnCertificate>(&self.0)?;
        let parent = unverified.claimed().parent.clone();
        unverified.verify(&parent)
    }
}

impl std::fmt::Debug for SignedSpawnCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignedSpawnCertificate({})", hex(&self.hash()))
    }
}

impl SpawnCertificate {
    /// Sign as the parent.
    pub fn sign(&self, parent: &Identity) -> Result<SignedSpawnCertificate, EnvelopeError> {
        if parent.did() != &self.parent {
            return Err(EnvelopeError::BadSignature {
                signer: parent.did().clone(),
            });
        }
        Ok(SignedSpawnCertificate(envelope::seal(self, parent)?))
    }
}

/// Why a lineage is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineageError {
    /// Longer than [`MAX_CHAIN_LEN`].
    #[error("lineage has {len} certificates, more than {MAX_CHAIN_LEN}")]
    TooLong {
        /// Certificates given.
        len: usize,
    },
    /// Not a well-formed, correctly signed certificate.
    #[error("{link}: {source}")]
    Invalid {
        /// Which certificate.
        link: LinkRef,
        /// Why.
        source: EnvelopeError,
    },
    /// Parent/child, hash or depth linkage broken.
    #[error("{link}: {reason}")]
    Broken {
        /// Which certificate.
        link: LinkRef,
        /// Which rule.
        reason: &'static str,
    },
    /// Capabilities not within the parent's.
    #[error("{link}: capability {capability} is not within the parent's")]
    CapabilityWidened {
        /// Which certificate.
        link: LinkRef,
        /// The first one not covered.
        capability: String,
    },
    /// Window or ceiling beyond the parent's certificate.
    #[error("{link}: {what} exceeds the parent's certificate")]
    Exceeds {
        /// Which certificate.
        link: LinkRef,
        /// `"window"` or `"trust ceiling"`.
        what: &'static str,
    },
}

/// A verified certificate's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCertificate {
    /// Position and hash.
    pub link: LinkRef,
    /// The certificate.
    pub certificate: SpawnCertificate,
}

/// Verify a lineage, first spawn first. `root_capabilities` are the first
/// parent's capabilities (its org's allowed capabilities, as `*` actions).
pub fn verify_lineage(
    lineage: &[SignedSpawnCertificate],
    root_capabilities: &[Capability],
) -> Result<Vec<VerifiedCertificate>, LineageError> {
    if lineage.len() > MAX_CHAIN_LEN {
        return Err(LineageError::TooLong { len: lineage.len() });
    }
    let mut out: Vec<VerifiedCertificate> = Vec::with_capacity(lineage.len());
    for (index, signed) in lineage.iter().enumerate() {
        let link = LinkRef {
            index,
            hash: signed.hash(),
        };
        let cert = signed
            .open()
            .map_err(|source| LineageError::Invalid { link, source })?;
        let broken = |reason| LineageError::Broken { link, reason };
        if cert.expires <= cert.not_before {
            return Err(broken("expires is not after not_before"));
        }
        if capability::check_count(&cert.capabilities).is_err() {
            return Err(broken("too many capabilities"));
        }
        if usize::from(cert.spawn_depth) != index + 1 {
            return Err(broken(
                "spawn_depth does not match the position in the lineage",
            ));
        }
        let parent_caps = match out.last() {
            None => {
                if cert.parent_certificate.is_some() {
                    return Err(broken("first certificate names a parent certificate"));
                }
                root_capabilities
            }
            Some(prev) => {
                let p = &prev.certificate;
                if cert.parent_certificate != Some(prev.link.hash) {
                    return Err(broken("parent_certificate is not the previous certificate"));
                }
                if cert.parent != p.child {
                    return Err(broken("parent is not the previous certificate's child"));
                }
                if cert.not_before < p.not_before || cert.expires > p.expires {
                    return Err(LineageError::Exceeds {
                        link,
                        what: "window",
                    });
                }
                if cert.trust_ceiling > p.trust_ceiling {
                    return Err(LineageError::Exceeds {
                        link,
                        what: "trust ceiling",
                    });
                }
                &p.capabilities
            }
        };
        if let Some(c) = capability::first_not_within(&cert.capabilities, parent_caps) {
            return Err(LineageError::CapabilityWidened {
                link,
                capability: c.to_string(),
            });
        }
        out.push(VerifiedCertificate {
            link,
            certificate: cert,
        });
    }
    Ok(out)
}

/// A child's starting score: at most its ceiling and at most its parent's score.
pub fn child_initial_score(certificate: &SpawnCertificate, parent_score: Score) -> Score {
    certificate.trust_ceiling.min(parent_score)
}
