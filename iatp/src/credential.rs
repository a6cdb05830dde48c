//! Organisation credentials and agent cards.
//!
//! An organisation vouches for its agents with an [`OrgCredential`] signed by
//! the org's root key. An agent presents it inside its [`AgentCard`] during
//! the handshake; the peer checks it against its [`crate::TrustBundle`].

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::capability::CapabilityPattern;
use crate::envelope::{self, EnvelopeError, SignedMessage};
use crate::{Did, Identity, Timestamp};

/// Most roles one credential may carry.
pub const MAX_ROLES: usize = 16;
/// Longest role name.
pub const MAX_ROLE_LEN: usize = 64;
/// Longest agent display name in a card.
pub const MAX_NAME_LEN: usize = 128;
/// Most capabilities one card may offer.
pub const MAX_CARD_CAPABILITIES: usize = 64;
/// Most protocol versions one card may list.
pub const MAX_CARD_VERSIONS: usize = 8;
/// Most spawn certificates a card's lineage may carry.
pub const MAX_LINEAGE: usize = 8;
/// Largest spawn certificate in a card's lineage.
pub const MAX_CERTIFICATE_BYTES: usize = 8 * 1024;

/// An organisation's statement that `agent` belongs to it, with roles, for
/// a validity window. Signed (envelope type `iatp/org-credential`) by `org`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgCredential {
    /// The organisation root DID that signs this.
    pub org: Did,
    /// The agent vouched for.
    pub agent: Did,
    /// Free-form role names, e.g. `"researcher"`.
    pub roles: Vec<String>,
    /// Not valid before this instant.
    pub not_before: Timestamp,
    /// Not valid from this instant on.
    pub expires: Timestamp,
}

impl SignedMessage for OrgCredential {
    const TYPE: &'static str = "iatp/org-credential";
    const MAX_BYTES: usize = 4096;
}

/// Why a credential is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not a well-formed, correctly signed credential envelope.
    #[error("invalid org credential: {0}")]
    Envelope(#[from] EnvelopeError),
    /// Roles over the limits, or a window that ends before it starts.
    #[error("malformed org credential: {0}")]
    Malformed(&'static str),
    /// `now` is before `not_before` (beyond the allowed clock skew).
    #[error("org credential is not valid until {not_before} (now {now})")]
    NotYetValid {
        /// Start of validity.
        not_before: Timestamp,
        /// The verifier's clock.
        now: Timestamp,
    },
    /// `now` is at or after `expires` (beyond the allowed clock skew).
    #[error("org credential expired at {expires} (now {now})")]
    Expired {
        /// End of validity.
        expires: Timestamp,
        /// The verifier's clock.
        now: Timestamp,
    },
    /// Listed in the verifier's revocation set.
    #[error("org credential {} is revoked", hex32(.digest))]
    Revoked {
        /// SHA-256 of the credential envelope.
        digest: [u8; 32],
    },
}

/// Where an instant falls in a credential's validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Before `not_before`.
    NotYetValid {
        /// Seconds until it starts.
        starts_in: u64,
    },
    /// Inside the window.
    Valid {
        /// Seconds until it expires.
        expires_in: u64,
    },
    /// At or after `expires`.
    Expired {
        /// Seconds since it expired.
        ago: u64,
    },
}

pub(crate) fn hex32(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl OrgCredential {
    /// Sign this credential as the org. `org_key` must be the key of `self.org`.
    pub fn sign(&self, org_key: &Identity) -> Result<SignedCredential, CredentialError> {
        self.check_well_formed()?;
        if org_key.did() != &self.org {
            return Err(CredentialError::Malformed(
                "signing key is not the org's key",
            ));
        }
        Ok(SignedCredential(envelope::seal(self, org_key)?))
    }

    fn check_well_formed(&self) -> Result<(), CredentialError> {
        if self.roles.len() > MAX_ROLES {
            return Err(CredentialError::Malformed("more than 16 roles"));
        }
        if self
            .roles
            .iter()
            .any(|r| r.is_empty() || r.len() > MAX_ROLE_LEN)
        {
            return Err(CredentialError::Malformed(
                "a role is empty or over 64 bytes",
            ));
        }
        if self.expires <= self.not_before {
            return Err(CredentialError::Malformed(
                "expires is not after not_before",
            ));
        }
        Ok(())
    }

    /// Where `now` falls in the window, exactly (no skew: the holder's own
    /// view, for `org show` and `run`; verifiers use
    /// [`OrgCredential::check_window`]).
    pub fn validity(&self, now: Timestamp) -> Validity {
        if now < self.not_before {
            Validity::NotYetValid {
                starts_in: self.not_before.0 - now.0,
            }
        } else if now >= self.expires {
            Validity::Expired {
                ago: now.0 - self.expires.0,
            }
        } else {
            Validity::Valid {
                expires_in: self.expires.0 - now.0,
            }
        }
    }

    /// Is the window open at `now`, allowing `skew_secs` of clock difference?
    pub fn check_window(&self, now: Timestamp, skew_secs: u64) -> Result<(), CredentialError> {
        if now.plus_secs(skew_secs) < self.not_before {
            return Err(CredentialError::NotYetValid {
                not_before: self.not_before,
                now,
            });
        }
        if now.minus_secs(skew_secs) >= self.expires {
            return Err(CredentialError::Expired {
                expires: self.expires,
                now,
            });
        }
        Ok(())
    }
}

/// The signed envelope bytes of an [`OrgCredential`], as carried in cards
/// and stored in credential files.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignedCredential(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl SignedCredential {
    /// SHA-256 of the envelope bytes: the credential's name in revocations.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(&self.0).into()
    }

    /// The org the credential claims to be from, decoded but **not
    /// verified**: for cheap refusals (an org not accepted) before the
    /// signature is checked, never a reason to trust it.
    pub fn claimed_org(&self) -> Result<Did, CredentialError> {
        Ok(envelope::open::<OrgCredential>(&self.0)?
            .claimed()
            .org
            .clone())
    }

    /// Decode and verify the org's signature (not the window, not the
    /// bundle: see [`OrgCredential::check_window`] and the handshake).
    pub fn verify_signature(&self) -> Result<OrgCredential, CredentialError> {
        // The outcome is a function of these bytes alone, and the digest
        // covers all of them, signature included: a credential verified
        // before (a peer reconnecting) costs a hash, not a verification.
        let digest = self.digest();
        if let Some(known) = VERIFIED.with(|v| v.borrow().get(&digest).cloned()) {
            return Ok(known);
        }
        let unverified = envelope::open::<OrgCredential>(&self.0)?;
        let org = unverified.claimed().org.clone();
        let cred = unverified.verify(&org)?;
        cred.check_well_formed()?;
        VERIFIED.with(|v| {
            let mut v = v.borrow_mut();
            // Bounded: past its capacity it starts over (as the DID cache does).
            if v.len() >= VERIFIED_CREDENTIALS_CAPACITY {
                v.clear();
            }
            v.insert(digest, cred.clone());
        });
        Ok(cred)
    }
}

/// Most verified credentials remembered per thread by
/// [`SignedCredential::verify_signature`], by digest. Only credentials that
/// verified are remembered; a handshake reaches the verification only for
/// an org in the trust bundle.
pub const VERIFIED_CREDENTIALS_CAPACITY: usize = 4096;

thread_local! {
    static VERIFIED: std::cell::RefCell<std::collections::HashMap<[u8; 32], OrgCredential>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Forget this thread's verified credentials (with [`crate::clear_parse_cache`],
/// which calls this: a benchmark measuring a peer never seen before).
pub(crate) fn clear_verified() {
    VERIFIED.with(|v| v.borrow_mut().clear());
}

impl std::fmt::Debug for SignedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignedCredential({})", hex32(&self.digest()))
    }
}

/// Credential digests this node no longer accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevokedCredentials(HashSet<[u8; 32]>);

impl RevokedCredentials {
    /// Revoke a credential by digest. Idempotent.
    pub fn revoke(&mut self, digest: [u8; 32]) {
        self.0.insert(digest);
    }

    /// Is this digest revoked?
    pub fn is_revoked(&self, digest: &[u8; 32]) -> bool {
        self.0.contains(digest)
    }
}

/// What an agent says about itself in the handshake. Not signed on its own:
/// it travels inside a handshake message signed by `did`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCard {
    /// The agent's identity.
    pub did: Did,
    /// Human-readable name, for logs and dashboards.
    pub name: String,
    /// The org credential vouching for `did`.
    pub credential: SignedCredential,
    /// Capabilities the agent offers (patterns).
    pub capabilities: Vec<CapabilityPattern>,
    /// IATP protocol versions it speaks.
    pub versions: Vec<u64>,
    /// A spawned agent's spawn certificates, first spawn first: the
    /// credential is then its root ancestor's (PROTOCOL.md §3.2). Empty —
    /// and absent on the wire — for an agent with its own credential.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<serde_bytes::ByteBuf>,
}

impl AgentCard {
    /// Are the counts and lengths within the protocol limits?
    pub fn check_limits(&self) -> Result<(), &'static str> {
        if self.name.is_empty() || self.name.len() > MAX_NAME_LEN {
            return Err("name is empty or over 128 bytes");
        }
        if self.capabilities.len() > MAX_CARD_CAPABILITIES {
            return Err("more than 64 capabilities");
        }
        if self.versions.is_empty() || self.versions.len() > MAX_CARD_VERSIONS {
            return Err("versions list is empty or has more than 8 entries");
        }
        if self.lineage.len() > MAX_LINEAGE {
            return Err("lineage has more than 8 certificates");
        }
        if self.lineage.iter().any(|c| c.len() > MAX_CERTIFICATE_BYTES) {
            return Err("a lineage certificate is over 8 KiB");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> Identity {
        Identity::from_secret_bytes(&[10; 32])
    }
    fn agent() -> Identity {
        Identity::from_secret_bytes(&[11; 32])
    }
    fn cred() -> OrgCredential {
        OrgCredential {
            org: org().did().clone(),
            agent: agent().did().clone(),
            roles: vec!["worker".into()],
            not_before: Timestamp(1000),
            expires: Timestamp(2000),
        }
    }

    #[test]
    fn signed_credential_verifies_and_windows_apply() {
        let signed = cred().sign(&org()).expect("signs");
        let back = signed.verify_signature().expect("verifies");
        assert_eq!(back, cred());
        assert!(back.check_window(Timestamp(1500), 0).is_ok());
        assert_eq!(
            back.check_window(Timestamp(900), 60),
            Err(CredentialError::NotYetValid {
                not_before: Timestamp(1000),
                now: Timestamp(900)
            })
        );
        assert!(back.check_window(Timestamp(950), 60).is_ok());
        assert_eq!(
            back.check_window(Timestamp(2060), 60),
            Err(CredentialError::Expired {
                expires: Timestamp(2000),
                now: Timestamp(2060)
            })
        );
    }

    #[test]
    fn validity_places_an_instant_in_the_window_exactly() {
        let c = cred();
        assert_eq!(
            c.validity(Timestamp(999)),
            Validity::NotYetValid { starts_in: 1 }
        );
        assert_eq!(
            c.validity(Timestamp(1000)),
            Validity::Valid { expires_in: 1000 }
        );
        assert_eq!(
            c.validity(Timestamp(1999)),
            Validity::Valid { expires_in: 1 }
        );
        assert_eq!(c.validity(Timestamp(2000)), Validity::Expired { ago: 0 });
        assert_eq!(c.validity(Timestamp(2500)), Validity::Expired { ago: 500 });
    }

    #[test]
    fn refuses_signing_with_another_key_and_bad_windows() {
        assert!(matches!(
            cred().sign(&agent()),
            Err(CredentialError::Malformed(_))
        ));
        let mut c = cred();
        c.expires = c.not_before;
        assert!(matches!(c.sign(&org()), Err(CredentialError::Malformed(_))));
        let mut c = cred();
        c.roles = vec!["r".into(); 17];
        assert!(matches!(c.sign(&org()), Err(CredentialError::Malformed(_))));
    }

    #[test]
    fn forged_credential_is_refused() {
        // Mallory signs a credential that names the real org.
        let mallory = Identity::from_secret_bytes(&[12; 32]);
        let forged = SignedCredential(envelope::seal(&cred(), &mallory).expect("seals"));
        assert!(matches!(
            forged.verify_signature(),
            Err(CredentialError::Envelope(
                EnvelopeError::BadSignature { .. }
            ))
        ));
    }

    #[test]
    fn a_verified_credential_is_remembered_by_its_exact_bytes_only() {
        clear_verified();
        let signed = cred().sign(&org()).expect("signs");
        assert_eq!(signed.verify_signature().expect("verifies"), cred());
        let held = |d: &[u8; 32]| VERIFIED.with(|v| v.borrow().contains_key(d));
        assert!(held(&signed.digest()));
        // Remembered: the same answer again.
        assert_eq!(signed.verify_signature().expect("verifies"), cred());
        // Any other bytes — a flipped signature bit, Mallory's seal over the
        // same credential — are verified afresh and refused, not answered
        // from the remembered one.
        let mut flipped = signed.clone();
        let last = flipped.0.len() - 1;
        flipped.0[last] ^= 0x01;
        assert!(flipped.verify_signature().is_err());
        assert!(!held(&flipped.digest()));
        let mallory = Identity::from_secret_bytes(&[12; 32]);
        let forged = SignedCredential(envelope::seal(&cred(), &mallory).expect("seals"));
        assert!(forged.verify_signature().is_err());
        // Bounded: past its capacity the memory starts over.
        VERIFIED.with(|v| {
            let mut v = v.borrow_mut();
            for i in 0..VERIFIED_CREDENTIALS_CAPACITY as u32 {
                let mut d = [0u8; 32];
                d[..4].copy_from_slice(&i.to_be_bytes());
                v.insert(d, cred());
            }
        });
        let other = {
            let mut c = cred();
            c.roles = vec!["other".into()];
            c.sign(&org()).expect("signs")
        };
        other.verify_signature().expect("verifies");
        VERIFIED.with(|v| assert_eq!(v.borrow().len(), 1));
        clear_verified();
    }
}
