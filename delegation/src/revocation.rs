//! Revocations: a signed statement that a grant or spawn certificate is void.
//!
//! Only an issuer at or above the target in its chain may revoke it: the
//! target's issuer, or the issuer of any ancestor link (for a certificate:
//! the parent, or any earlier parent in its lineage). The revocation carries
//! that chain (root first, ending at the target), so any node can check the
//! revoker's authority offline, and revocations can be gossiped. The
//! [`RevocationSet`] only grows, merges idempotently, and may drop an entry
//! once its target has expired (plus clock skew): an expired item is refused
//! anyway.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use mesh_iatp::envelope::{self, EnvelopeError, SignedMessage};
use mesh_iatp::{Did, Identity, Timestamp};

use crate::grant::{LinkHash, MAX_CHAIN_LEN, SignedGrant, hex};
use crate::spawn::SignedSpawnCertificate;

/// Longest reason text.
pub const MAX_REASON_LEN: usize = 256;

/// What kind of link is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A grant; `chain` is its grant chain.
    Grant,
    /// A spawn certificate; `chain` is its lineage.
    SpawnCertificate,
}

/// `revoker` voids `target`. Signed by `revoker` (type `delegation/revocation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// Who revokes (and signs).
    pub revoker: Did,
    /// Hash of the revoked grant or certificate.
    #[serde(with = "serde_bytes")]
    pub target: LinkHash,
    /// Grant or certificate.
    pub kind: TargetKind,
    /// The target's chain, root first, ending with the target itself.
    pub chain: Vec<serde_bytes::ByteBuf>,
    /// Why (for humans and trust evidence), at most 256 bytes.
    pub reason: String,
    /// When.
    pub issued: Timestamp,
}

impl SignedMessage for Revocation {
    const TYPE: &'static str = "delegation/revocation";
    // Eight links of at most 8 KiB, plus the envelope.
    const MAX_BYTES: usize = 72 * 1024;
}

/// Why a revocation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    /// Not a well-formed, correctly signed revocation.
    #[error("invalid revocation: {0}")]
    Envelope(#[from] EnvelopeError),
    /// Empty or over-long chain, or an over-long reason.
    #[error("malformed revocation: {0}")]
    Malformed(&'static str),
    /// A chain element is not a valid signed link.
    #[error("revocation chain element {index}: {source}")]
    InvalidChainLink {
        /// Position in the chain.
        index: usize,
        /// Why.
        source: EnvelopeError,
    },
    /// The chain does not link up (parent hashes, parent/child).
    #[error("revocation chain element {index} does not follow the previous one")]
    BrokenChain {
        /// Position in the chain.
        index: usize,
    },
    /// The chain's last element is not the target.
    #[error("the revocation's chain does not end at its target {}", hex(.target))]
    TargetNotInChain {
        /// The claimed target.
        target: LinkHash,
    },
    /// The revoker issued nothing at or above the target.
    #[error("{revoker} issued no link at or above the target, so may not revoke it")]
    NotAuthorised {
        /// Who tried.
        revoker: Did,
    },
    /// A valid revocation this node does not keep (a bound, or nothing
    /// left to revoke): not the sender's fault.
    #[error("revocation not kept: {0}")]
    Refused(&'static str),
}

/// A checked revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRevocation {
    /// The revoked link.
    pub target: LinkHash,
    /// Who revoked it.
    pub revoker: Did,
    /// When the target expires (the entry may be dropped after that).
    pub target_expires: Timestamp,
    /// The signed revocation, to pass on.
    pub bytes: Vec<u8>,
}

impl Revocation {
    /// Sign as the revoker.
    pub fn sign(&self, revoker: &Identity) -> Result<Vec<u8>, EnvelopeError> {
        envelope::seal(self, revoker)
    }
}

/// Verify a signed revocation: signature, chain, target, authority.
pub fn verify_revocation(bytes: &[u8]) -> Result<VerifiedRevocation, RevocationError> {
    let unverified = envelope::open::<Revocation>(bytes)?;
    let revoker = unverified.claimed().revoker.clone();
    let r = unverified.verify(&revoker)?;
    if r.chain.is_empty() || r.chain.len() > MAX_CHAIN_LEN {
        return Err(RevocationError::Malformed("chain must have 1 to 8 links"));
    }
    if r.reason.len() > MAX_REASON_LEN {
        return Err(RevocationError::Malformed("reason is over 256 bytes"));
    }
    // (issuer, hash, expires) of each link, checking linkage as we go.
    let mut issuers: Vec<Did> = Vec::with_capacity(r.chain.len());
    let mut previous: Option<(LinkHash, Did)> = None; // (hash, audience/child)
    let mut last_expires = Timestamp(0);
    let mut last_hash = [0u8; 32];
    for (index, raw) in r.chain.iter().enumerate() {
        let invalid = |source| RevocationError::InvalidChainLink { index, source };
        let (hash, issuer, audience, parent, expires) = match r.kind {
            TargetKind::Grant => {
                let s = SignedGrant(raw.to_vec());
                let g = s.open().map_err(invalid)?;
                (s.hash(), g.issuer, g.audience, g.parent, g.expires)
            }
            TargetKind::SpawnCertificate => {
                let s = SignedSpawnCertificate(raw.to_vec());
                let c = s.open().map_err(invalid)?;
                (s.hash(), c.parent, c.child, c.parent_certificate, c.expires)
            }
        };
        let follows = match &previous {
            None => parent.is_none(),
            Some((prev_hash, prev_audience)) => {
                parent == Some(*prev_hash) && issuer == *prev_audience
            }
        };
        if !follows {
            return Err(RevocationError::BrokenChain { index });
        }
        issuers.push(issuer);
        previous = Some((hash, audience));
        last_expires = expires;
        last_hash = hash;
    }
    if last_hash != r.target {
        return Err(RevocationError::TargetNotInChain { target: r.target });
    }
    if !issuers.contains(&r.revoker) {
        return Err(RevocationError::NotAuthorised { revoker: r.revoker });
    }
    Ok(VerifiedRevocation {
        target: r.target,
        revoker: r.revoker,
        target_expires: last_expires,
        bytes: bytes.to_vec(),
    })
}

/// Revocations taken from the mesh by one revoker at most: anyone may mint
/// a chain of their own and revoke it, so one key must not fill the set.
pub const MAX_PER_REVOKER: usize = 1024;

/// Revocations taken from the mesh at most, all revokers together.
pub const MAX_REVOCATIONS: usize = 65_536;

/// The revoked links a node knows of. Grow-only (but for pruning expired
/// targets), merged idempotently, so it converges under gossip.
#[derive(Debug, Clone, Default)]
pub struct RevocationSet {
    entries: HashMap<LinkHash, VerifiedRevocation>,
    /// Entries by revoker, for [`MAX_PER_REVOKER`].
    by_revoker: HashMap<Did, usize>,
}

impl RevocationSet {
    /// Verify and add a signed revocation. Returns whether it was new.
    pub fn add(&mut self, bytes: &[u8]) -> Result<bool, RevocationError> {
        let v = verify_revocation(bytes)?;
        Ok(self.insert(v))
    }

    /// Add an already verified revocation. Returns whether it was new.
    /// Unbounded: for a node's own revocations and ones it already took.
    pub fn insert(&mut self, v: VerifiedRevocation) -> bool {
        if self.entries.contains_key(&v.target) {
            return false;
        }
        *self.by_revoker.entry(v.revoker.clone()).or_insert(0) += 1;
        self.entries.insert(v.target, v);
        true
    }

    /// Add a revocation heard from the mesh, within the bounds: one whose
    /// target expired more than `skew_secs` before `now` revokes nothing
    /// and is not kept; nor is one past [`MAX_PER_REVOKER`] for its revoker
    /// or past [`MAX_REVOCATIONS`] in all.
    pub fn insert_bounded(
        &mut self,
        v: VerifiedRevocation,
        now: Timestamp,
        skew_secs: u64,
    ) -> Result<bool, RevocationError> {
        if self.entries.contains_key(&v.target) {
            return Ok(false);
        }
        if v.target_expires.plus_secs(skew_secs) < now {
            return Err(RevocationError::Refused("its target has expired"));
        }
        if self.by_revoker.get(&v.revoker).copied().unwrap_or(0) >= MAX_PER_REVOKER {
            return Err(RevocationError::Refused(
                "its revoker holds the most revocations kept per revoker",
            ));
        }
        if self.entries.len() >= MAX_REVOCATIONS {
            return Err(RevocationError::Refused("the revocation set is full"));
        }
        Ok(self.insert(v))
    }

    /// Take in everything `other` knows (idempotent, order-independent).
    pub fn merge(&mut self, other: &RevocationSet) -> usize {
        other
            .entries
            .values()
            .filter(|v| self.insert((*v).clone()))
            .count()
    }

    /// Is this link revoked?
    pub fn is_revoked(&self, hash: &LinkHash) -> bool {
        self.entries.contains_key(hash)
    }

    /// Drop entries whose target expired more than `skew_secs` before `now`.
    pub fn prune(&mut self, now: Timestamp, skew_secs: u64) -> usize {
        let before = self.entries.len();
        let by_revoker = &mut self.by_revoker;
        self.entries.retain(|_, v| {
            let keep = v.target_expires.plus_secs(skew_secs) >= now;
            if !keep && let Some(n) = by_revoker.get_mut(&v.revoker) {
                *n -= 1;
                if *n == 0 {
                    by_revoker.remove(&v.revoker);
                }
            }
            keep
        });
        before - self.entries.len()
    }

    /// Number of revoked links.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No revocations?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The revoked links, in hash order (deterministic).
    pub fn targets(&self) -> Vec<LinkHash> {
        let mut v: Vec<LinkHash> = self.entries.keys().copied().collect();
        v.sort();
        v
    }

    /// The signed revocation of `target`, if it is revoked.
    pub fn signed_for(&self, target: &LinkHash) -> Option<&[u8]> {
        self.entries.get(target).map(|v| v.bytes.as_slice())
    }

    /// The signed revocations, to gossip (in hash order, deterministic).
    pub fn signed(&self) -> Vec<&[u8]> {
        let mut v: Vec<(&LinkHash, &VerifiedRevocation)> = self.entries.iter().collect();
        v.sort_by_key(|(h, _)| **h);
        v.into_iter().map(|(_, r)| r.bytes.as_slice()).collect()
    }
}
