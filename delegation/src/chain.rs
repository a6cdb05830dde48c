//! Verifying a chain of grants, root first.
//!
//! For each link `i` (hash `h_i`): its signature verifies under its issuer;
//! link 0 has no parent and is issued by an accepted root; every later link
//! names `h_{i−1}` as parent and is issued by link `i−1`'s audience; its
//! capabilities, window and depth are each within its parent's (depth
//! strictly smaller); and the last link's audience is the requester. Each
//! failure names the link and the rule. Time, revocation and trust are *not*
//! checked here: they change, so the gate checks them on every decision,
//! while this (expensive, signature-bound) part is cached by chain hash.

use sha2::{Digest, Sha256};

use mesh_iatp::envelope::EnvelopeError;
use mesh_iatp::{Did, Score, Timestamp};

use crate::capability::{self, Capability};
use crate::grant::{Grant, LinkHash, MAX_CHAIN_LEN, SignedGrant, hex};

/// A link's position and name, for error messages and decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRef {
    /// 0 = root.
    pub index: usize,
    /// The link hash.
    pub hash: LinkHash,
}

impl std::fmt::Display for LinkRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "link {} ({})", self.index, &hex(&self.hash)[..16])
    }
}

/// Why a chain is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No links.
    #[error("empty chain")]
    Empty,
    /// More than [`MAX_CHAIN_LEN`] links (checked before any decoding).
    #[error("chain has {len} links, more than {MAX_CHAIN_LEN}")]
    TooLong {
        /// Links given.
        len: usize,
    },
    /// Not a well-formed, correctly signed grant.
    #[error("{link}: {source}")]
    Invalid {
        /// Which link.
        link: LinkRef,
        /// Why.
        source: EnvelopeError,
    },
    /// Malformed content (capability count, window).
    #[error("{link}: {reason}")]
    Malformed {
        /// Which link.
        link: LinkRef,
        /// What.
        reason: &'static str,
    },
    /// The root names a parent, or its issuer is not an accepted root.
    #[error("{link}: issuer {issuer} is not an accepted root for this resource")]
    UntrustedRoot {
        /// The root link.
        link: LinkRef,
        /// Its issuer.
        issuer: Did,
    },
    /// A root link that names a parent.
    #[error("{link}: a root grant must not name a parent")]
    RootHasParent {
        /// The root link.
        link: LinkRef,
    },
    /// The link does not name the previous link as parent (reordered or spliced).
    #[error("{link}: parent is not the previous link (reordered or spliced chain)")]
    BrokenLink {
        /// Which link.
        link: LinkRef,
    },
    /// The link's issuer is not the previous link's audience.
    #[error("{link}: issuer {issuer} is not the previous link's audience {expected}")]
    IssuerNotAudience {
        /// Which link.
        link: LinkRef,
        /// Its issuer.
        issuer: Did,
        /// The previous audience.
        expected: Did,
    },
    /// The link allows something its parent does not.
    #[error("{link}: capability {capability} is not within the parent's")]
    CapabilityWidened {
        /// Which link.
        link: LinkRef,
        /// The first capability not covered.
        capability: String,
    },
    /// The link's window reaches outside its parent's.
    #[error("{link}: validity window is not within the parent's")]
    WindowWidened {
        /// Which link.
        link: LinkRef,
    },
    /// The parent allowed no further delegation, or depth did not decrease.
    #[error("{link}: depth {depth} is not below the parent's {parent_depth}")]
    DepthNotDecreasing {
        /// Which link.
        link: LinkRef,
        /// This link's depth.
        depth: u8,
        /// Its parent's.
        parent_depth: u8,
    },
    /// The last link is for someone else.
    #[error("{link}: chain ends at {audience}, not at the requester {requester}")]
    WrongAudience {
        /// The last link.
        link: LinkRef,
        /// Its audience.
        audience: Did,
        /// Who presented the chain.
        requester: Did,
    },
}

/// The facts of one verified link that later checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLink {
    /// Position and hash.
    pub link: LinkRef,
    /// Issuer.
    pub issuer: Did,
    /// Audience.
    pub audience: Did,
    /// Capabilities.
    pub capabilities: Vec<Capability>,
    /// Window start.
    pub not_before: Timestamp,
    /// Window end.
    pub expires: Timestamp,
    /// Remaining depth.
    pub depth: u8,
    /// Minimum audience trust.
    pub min_trust: Score,
}

/// A chain whose signatures, linkage and attenuation have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The links, root first.
    pub links: Vec<VerifiedLink>,
}

impl VerifiedChain {
    /// The last link (the requester's authority).
    pub fn leaf(&self) -> &VerifiedLink {
        // A VerifiedChain is never empty: verify_chain refuses empty chains.
        &self.links[self.links.len() - 1]
    }
}

/// A name for a whole chain: SHA-256 over its link hashes (the cache key).
pub fn chain_hash(chain: &[SignedGrant]) -> [u8; 32] {
    let mut h = Sha256::new();
    for link in chain {
        h.update(link.hash());
    }
    h.finalize().into()
}

/// Verify signatures, linkage, roots and attenuation of `chain` (root first)
/// for `requester`. `is_root(did)` says whether a DID may issue root grants.
pub fn verify_chain(
    chain: &[SignedGrant],
    requester: &Did,
    is_root: impl Fn(&Did) -> bool,
) -> Result<VerifiedChain, ChainError> {
    verify_chain_with(chain, requester, is_root, |_| false)
}

/// [`verify_chain`], except that a link for which `signature_known(hash)`
/// holds is decoded without checking its signature: the caller has checked
/// those exact bytes before (a link hash covers the signature) or signed
/// them itself. Every other rule is checked as for any link.
pub(crate) fn verify_chain_with(
    chain: &[SignedGrant],
    requester: &Did,
    is_root: impl Fn(&Did) -> bool,
    signature_known: impl Fn(&LinkHash) -> bool,
) -> Result<VerifiedChain, ChainError> {
    if chain.is_empty() {
        return Err(ChainError::Empty);
    }
    if chain.len() > MAX_CHAIN_LEN {
        return Err(ChainError::TooLong { len: chain.len() });
    }
    let mut links: Vec<VerifiedLink> = Vec::with_capacity(chain.len());
    for (index, signed) in chain.iter().enumerate() {
        let link = LinkRef {
            index,
            hash: signed.hash(),
        };
        let grant: Grant = if signature_known(&link.hash) {
            signed.claimed()
        } else {
            signed.open()
        }
        .map_err(|source| ChainError::Invalid { link, source })?;
        capability::check_count(&grant.capabilities).map_err(|_| ChainError::Malformed {
            link,
            reason: "too many capabilities",
        })?;
        if grant.expires <= grant.not_before {
            return Err(ChainError::Malformed {
                link,
                reason: "expires is not after not_before",
            });
        }
        match links.last() {
            None => {
                if grant.parent.is_some() {
                    return Err(ChainError::RootHasParent { link });
                }
                if !is_root(&grant.issuer) {
                    return Err(ChainError::UntrustedRoot {
                        link,
                        issuer: grant.issuer,
                    });
                }
            }
            Some(parent) => {
                if grant.parent != Some(parent.link.hash) {
                    return Err(ChainError::BrokenLink { link });
                }
                if grant.issuer != parent.audience {
                    return Err(ChainError::IssuerNotAudience {
                        link,
                        issuer: grant.issuer,
                        expected: parent.audience.clone(),
                    });
                }
                if let Some(c) =
                    capability::first_not_within(&grant.capabilities, &parent.capabilities)
                {
                    return Err(ChainError::CapabilityWidened {
                        link,
                        capability: c.to_string(),
                    });
                }
                if grant.not_before < parent.not_before || grant.expires > parent.expires {
                    return Err(ChainError::WindowWidened { link });
                }
                if parent.depth == 0 || grant.depth >= parent.depth {
                    return Err(ChainError::DepthNotDecreasing {
                        link,
                        depth: grant.depth,
                        parent_depth: parent.depth,
                    });
                }
            }
        }
        links.push(VerifiedLink {
            link,
            issuer: grant.issuer,
            audience: grant.audience,
            capabilities: grant.capabilities,
            not_before: grant.not_before,
            expires: grant.expires,
            depth: grant.depth,
            min_trust: grant.min_trust,
        });
    }
    let chain = VerifiedChain { links };
    let leaf = chain.leaf();
    if leaf.audience != *requester {
        return Err(ChainError::WrongAudience {
            link: leaf.link,
            audience: leaf.audience.clone(),
            requester: requester.clone(),
        });
    }
    Ok(chain)
}
