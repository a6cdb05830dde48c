//! The gate: where trust scores turn into yes or no.
//!
//! `Gate::decide(request, peers, revocations, now)` is deterministic and
//! does no I/O. The expensive part of a chain — signatures, linkage,
//! attenuation — is verified once and cached by chain hash; everything that
//! changes with time (validity windows, revocations, trust scores) is checked
//! on every decision. A denial names the rule and, where there is one, the
//! link.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use mesh_iatp::{CapabilityPattern, Did, OrgPolicy, Score, Timestamp};

use crate::capability::{self, Actions, Capability};
use crate::chain::{self, ChainError, LinkRef, VerifiedChain, VerifiedLink};
use crate::grant::{LinkHash, SignedGrant};
use crate::revocation::RevocationSet;
use crate::spawn::{self, LineageError, SignedSpawnCertificate};

/// What the gate needs to know about agents, supplied by the node (from its
/// trust engine, trust bundle and handshake sessions).
pub trait Peers {
    /// The agent's current trust score.
    fn trust(&self, agent: &Did) -> Score;
    /// The bundle policy of the agent's organisation (for an org root DID,
    /// its own policy), or `None` if unknown.
    fn org(&self, agent: &Did) -> Option<&OrgPolicy>;
    /// Hashes of the agent's spawn lineage (first spawn first); empty for an
    /// agent that was not spawned.
    fn lineage(&self, agent: &Did) -> &[LinkHash];
}

/// Spawning rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnPolicy {
    /// The parent's score must be at least this (default 700, "trusted").
    pub threshold: Score,
    /// Children alive allowed, by the parent's score: the entry with the
    /// highest `min_score` not above the score applies (default 700 → 2,
    /// 900 → 8).
    pub budgets: Vec<(Score, u32)>,
    /// Deepest generation allowed (default 3).
    pub max_depth: u8,
}

impl Default for SpawnPolicy {
    fn default() -> Self {
        SpawnPolicy {
            threshold: Score::saturating(700),
            budgets: vec![(Score::saturating(700), 2), (Score::saturating(900), 8)],
            max_depth: 3,
        }
    }
}

impl SpawnPolicy {
    /// Children alive allowed at `score`.
    pub fn budget(&self, score: Score) -> u32 {
        self.budgets
            .iter()
            .filter(|(min, _)| *min <= score)
            .max_by_key(|(min, _)| *min)
            .map_or(0, |(_, b)| *b)
    }
}

/// The gate's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateConfig {
    /// DIDs whose root grants this gate accepts (the resource owner itself,
    /// its org root).
    pub roots: BTreeSet<Did>,
    /// Longest chain accepted, in links (default 4).
    pub max_chain_len: usize,
    /// Minimum trust to use (or be granted) anything matching a pattern.
    pub capability_min_trust: Vec<(CapabilityPattern, Score)>,
    /// Clock skew allowed on validity windows (default 60 s).
    pub clock_skew_secs: u64,
    /// Spawning rules.
    pub spawn: SpawnPolicy,
    /// Verified chains kept (default 10,000).
    pub cache_capacity: usize,
}

impl GateConfig {
    /// Defaults, accepting root grants from `roots`.
    pub fn new(roots: impl IntoIterator<Item = Did>) -> Self {
        GateConfig {
            roots: roots.into_iter().collect(),
            max_chain_len: 4,
            capability_min_trust: Vec::new(),
            clock_skew_secs: 60,
            spawn: SpawnPolicy::default(),
            cache_capacity: 10_000,
        }
    }
}

/// Something an agent asks to do.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// Use `action` on `resource` under the authority of `chain`.
    Use {
        /// Who asks (the chain's final audience).
        requester: &'a Did,
        /// A concrete resource (a capability pattern without `*`).
        resource: &'a CapabilityPattern,
        /// The action.
        action: &'a str,
        /// Root first.
        chain: &'a [SignedGrant],
    },
    /// Issue a new grant: `chain` is the issuer's authority with the new
    /// grant appended as its last link.
    Delegate {
        /// Root first, new grant last.
        chain: &'a [SignedGrant],
    },
    /// Spawn a child.
    Spawn {
        /// The spawning agent.
        parent: &'a Did,
        /// The new certificate, signed by the parent.
        certificate: &'a SignedSpawnCertificate,
        /// The parent's own lineage (empty if it was not spawned).
        lineage: &'a [SignedSpawnCertificate],
        /// How many of its children are alive now.
        children_alive: u32,
    },
}

/// Why a request is denied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The chain fails verification.
    #[error("invalid chain: {0}")]
    InvalidChain(ChainError),
    /// The lineage or new certificate fails verification.
    #[error("invalid spawn lineage: {0}")]
    InvalidLineage(LineageError),
    /// Too many links.
    #[error("chain has {len} links; at most {max} allowed")]
    ChainTooLong {
        /// Links.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A link's window has closed.
    #[error("{link} expired at {expires}")]
    Expired {
        /// Which.
        link: LinkRef,
        /// When.
        expires: Timestamp,
    },
    /// A link's window has not opened.
    #[error("{link} is not valid before {not_before}")]
    NotYetValid {
        /// Which.
        link: LinkRef,
        /// When.
        not_before: Timestamp,
    },
    /// A link is revoked.
    #[error("{link} is revoked")]
    Revoked {
        /// Which.
        link: LinkRef,
    },
    /// An agent in the chain descends from a revoked spawn certificate.
    #[error("{agent} descends from revoked spawn certificate {}", crate::grant::hex(.certificate))]
    RevokedAncestor {
        /// The agent.
        agent: Did,
        /// The revoked certificate.
        certificate: LinkHash,
    },
    /// A link's audience is below that link's minimum trust.
    #[error("{link}: audience {agent} has trust {score}, below the grant's minimum {min}")]
    TrustBelowLinkMinimum {
        /// Which.
        link: LinkRef,
        /// The audience.
        agent: Did,
        /// Its score.
        score: Score,
        /// Required.
        min: Score,
    },
    /// Below the gate's minimum for this capability.
    #[error("{agent} has trust {score}, below the {min} required for {pattern}")]
    TrustBelowCapabilityMinimum {
        /// Who.
        agent: Did,
        /// Its score.
        score: Score,
        /// Required.
        min: Score,
        /// The configured pattern.
        pattern: String,
    },
    /// A link hands another org a capability its bundle policy does not allow.
    #[error("{link}: {capability} may not go to org `{org}` under the trust bundle")]
    CrossOrgCapability {
        /// Which.
        link: LinkRef,
        /// The capability.
        capability: String,
        /// The audience's org.
        org: String,
    },
    /// An agent's organisation is unknown, so its bundle policy cannot apply.
    #[error("the organisation of {agent} is unknown")]
    UnknownOrg {
        /// Who.
        agent: Did,
    },
    /// The chain does not grant this action on this resource.
    #[error("{link} does not grant `{action}` on {resource}")]
    NotGranted {
        /// The leaf.
        link: LinkRef,
        /// The resource asked for.
        resource: String,
        /// The action asked for.
        action: String,
    },
    /// The resource asked for is a pattern, not a concrete resource.
    #[error("request must name a concrete resource, not the pattern {0}")]
    NotConcrete(String),
    /// The certificate is not the parent's.
    #[error("the certificate's parent is {found}, not the requesting agent {expected}")]
    WrongParent {
        /// The requester.
        expected: Did,
        /// The certificate's parent.
        found: Did,
    },
    /// Parent's trust below the spawn threshold.
    #[error("parent trust {score} is below the spawn threshold {threshold}")]
    SpawnBelowThreshold {
        /// Parent's score.
        score: Score,
        /// Threshold.
        threshold: Score,
    },
    /// Parent's spawn budget used up.
    #[error("parent has {alive} children alive; its budget at trust {score} is {budget}")]
    SpawnBudgetExhausted {
        /// Alive.
        alive: u32,
        /// Budget.
        budget: u32,
        /// Parent's score.
        score: Score,
    },
    /// Too many generations.
    #[error("spawn depth {depth} exceeds the maximum {max}")]
    SpawnTooDeep {
        /// Requested depth.
        depth: u8,
        /// Limit.
        max: u8,
    },
    /// The child's ceiling is above what the parent may have.
    #[error("child trust ceiling {ceiling} is above the parent's {parent_ceiling}")]
    SpawnCeilingAboveParent {
        /// Requested.
        ceiling: Score,
        /// Parent's ceiling.
        parent_ceiling: Score,
    },
}

impl Denial {
    /// Stable snake_case rule name, for metrics and logs.
    pub fn rule(&self) -> &'static str {
        match self {
            Denial::InvalidChain(_) => "invalid_chain",
            Denial::InvalidLineage(_) => "invalid_lineage",
            Denial::ChainTooLong { .. } => "chain_too_long",
            Denial::Expired { .. } => "expired",
            Denial::NotYetValid { .. } => "not_yet_valid",
            Denial::Revoked { .. } => "revoked",
            Denial::RevokedAncestor { .. } => "revoked_ancestor",
            Denial::TrustBelowLinkMinimum { .. } => "trust_below_link_minimum",
            Denial::TrustBelowCapabilityMinimum { .. } => "trust_below_capability_minimum",
            Denial::CrossOrgCapability { .. } => "cross_org_capability",
            Denial::UnknownOrg { .. } => "unknown_org",
            Denial::NotGranted { .. } => "not_granted",
            Denial::NotConcrete(_) => "not_concrete",
            Denial::WrongParent { .. } => "wrong_parent",
            Denial::SpawnBelowThreshold { .. } => "spawn_below_threshold",
            Denial::SpawnBudgetExhausted { .. } => "spawn_budget_exhausted",
            Denial::SpawnTooDeep { .. } => "spawn_too_deep",
            Denial::SpawnCeilingAboveParent { .. } => "spawn_ceiling_above_parent",
        }
    }
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// No, and why.
    Deny(Denial),
}

impl Decision {
    /// Allowed?
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// The gate, with its cache of verified chains.
#[derive(Debug, Clone)]
pub struct Gate {
    config: GateConfig,
    cache: HashMap<[u8; 32], Arc<VerifiedChain>>,
    /// Links whose signatures are known good: checked as part of a valid
    /// chain, or signed by this gate's owner ([`Gate::signed_here`]). A
    /// fresh chain that extends a known one (every new leaf under the same
    /// authority) then costs one signature check, not one per link.
    signatures: HashSet<LinkHash>,
    verifications: u64,
}

impl Gate {
    /// A gate with these rules.
    pub fn new(config: GateConfig) -> Self {
        Gate {
            config,
            cache: HashMap::new(),
            signatures: HashSet::new(),
            verifications: 0,
        }
    }

    /// The rules.
    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    /// Accept `root` as an origin of authority from now on (a node adds
    /// the agents it has authenticated). Adding a root only makes more
    /// chains valid, so no cached verification goes stale.
    pub fn add_root(&mut self, root: Did) {
        self.config.roots.insert(root);
    }

    /// Note a link the gate's owner has just signed, so deciding on a chain
    /// that holds it does not check that signature again. Only for links
    /// signed here: a link from anyone else is verified with its chain.
    pub fn signed_here(&mut self, link: &SignedGrant) {
        self.know_signature(link.hash());
    }

    fn know_signature(&mut self, hash: LinkHash) {
        if self.signatures.len() >= self.config.cache_capacity
            && !self.signatures.contains(&hash)
            && let Some(evict) = self.signatures.iter().next().copied()
        {
            self.signatures.remove(&evict);
        }
        self.signatures.insert(hash);
    }

    /// Full chain verifications done so far (cache misses), for tests and metrics.
    pub fn verifications(&self) -> u64 {
        self.verifications
    }

    /// Decide a request.
    pub fn decide(
        &mut self,
        request: Request<'_>,
        peers: &dyn Peers,
        revocations: &RevocationSet,
        now: Timestamp,
    ) -> Decision {
        let result = match request {
            Request::Use {
                requester,
                resource,
                action,
                chain,
            } => self.decide_use(requester, resource, action, chain, peers, revocations, now),
            Request::Delegate { chain } => self.decide_delegate(chain, peers, revocations, now),
            Request::Spawn {
                parent,
                certificate,
                lineage,
                children_alive,
            } => self.decide_spawn(
                parent,
                certificate,
                lineage,
                children_alive,
                peers,
                revocations,
                now,
            ),
        };
        match result {
            Ok(()) => Decision::Allow,
            Err(d) => Decision::Deny(d),
        }
    }

    /// Verified chain for `requester`, from the cache or by verifying it.
    fn verified(
        &mut self,
        chain: &[SignedGrant],
        requester: Option<&Did>,
    ) -> Result<Arc<VerifiedChain>, Denial> {
        if chain.len() > self.config.max_chain_len {
            return Err(Denial::ChainTooLong {
                len: chain.len(),
                max: self.config.max_chain_len,
            });
        }
        let key = chain::chain_hash(chain);
        let verified = match self.cache.get(&key) {
            Some(v) => v.clone(),
            None => {
                self.verifications += 1;
                // For a Delegate request the requester is the new link's
                // audience, which verify_chain reads from the chain itself.
                let leaf_audience;
                let who = match requester {
                    Some(r) => r,
                    None => {
                        // What the leaf claims: verify_chain checks its
                        // signature next, with the rest of the chain.
                        leaf_audience = chain
                            .last()
                            .ok_or(Denial::InvalidChain(ChainError::Empty))?
                            .claimed()
                            .map(|g| g.audience)
                            .map_err(|source| {
                                Denial::InvalidChain(ChainError::Invalid {
                                    link: LinkRef {
                                        index: chain.len() - 1,
                                        hash: chain[chain.len() - 1].hash(),
                                    },
                                    source,
                                })
                            })?;
                        &leaf_audience
                    }
                };
                let roots = &self.config.roots;
                let known = &self.signatures;
                let v = Arc::new(
                    chain::verify_chain_with(
                        chain,
                        who,
                        |d| roots.contains(d),
                        |h| known.contains(h),
                    )
                    .map_err(Denial::InvalidChain)?,
                );
                for link in &v.links {
                    self.know_signature(link.link.hash);
                }
                if self.cache.len() >= self.config.cache_capacity
                    && let Some(evict) = self.cache.keys().next().copied()
                {
                    self.cache.remove(&evict);
                }
                self.cache.insert(key, v.clone());
                v
            }
        };
        if let Some(r) = requester
            && verified.leaf().audience != *r
        {
            let leaf = verified.leaf();
            return Err(Denial::InvalidChain(ChainError::WrongAudience {
                link: leaf.link,
                audience: leaf.audience.clone(),
                requester: r.clone(),
            }));
        }
        Ok(verified)
    }

    /// The checks that change with time: windows, revocations, lineages,
    /// per-hop trust, cross-org policy.
    fn check_live(
        &self,
        chain: &VerifiedChain,
        peers: &dyn Peers,
        revocations: &RevocationSet,
        now: Timestamp,
    ) -> Result<(), Denial> {
        let skew = self.config.clock_skew_secs;
        for l in &chain.links {
            if now.minus_secs(skew) >= l.expires {
                return Err(Denial::Expired {
                    link: l.link,
                    expires: l.expires,
                });
            }
            if now.plus_secs(skew) < l.not_before {
                return Err(Denial::NotYetValid {
                    link: l.link,
                    not_before: l.not_before,
                });
            }
            if revocations.is_revoked(&l.link.hash) {
                return Err(Denial::Revoked { link: l.link });
            }
        }
        for l in &chain.links {
            for agent in [&l.issuer, &l.audience] {
                check_lineage(agent, peers, revocations)?;
            }
            let score = peers.trust(&l.audience);
            if score < l.min_trust {
                return Err(Denial::TrustBelowLinkMinimum {
                    link: l.link,
                    agent: l.audience.clone(),
                    score,
                    min: l.min_trust,
                });
            }
            check_cross_org(l, peers)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_use(
        &mut self,
        requester: &Did,
        resource: &CapabilityPattern,
        action: &str,
        chain: &[SignedGrant],
        peers: &dyn Peers,
        revocations: &RevocationSet,
        now: Timestamp,
    ) -> Result<(), Denial> {
        if resource.as_str().ends_with('*') {
            return Err(Denial::NotConcrete(resource.to_string()));
        }
        let verified = self.verified(chain, Some(requester))?;
        self.check_live(&verified, peers, revocations, now)?;
        let leaf = verified.leaf();
        if !capability::allows(&leaf.capabilities, resource, action) {
            return Err(Denial::NotGranted {
                link: leaf.link,
                resource: resource.to_string(),
                action: action.into(),
            });
        }
        self.check_capability_minimum(requester, |pattern| pattern.contains(resource), peers)
    }

    fn decide_delegate(
        &mut self,
        chain: &[SignedGrant],
        peers: &dyn Peers,
        revocations: &RevocationSet,
        now: Timestamp,
    ) -> Result<(), Denial> {
        let verified = self.verified(chain, None)?;
        self.check_live(&verified, peers, revocations, now)?;
        let leaf = verified.leaf();
        for cap in &leaf.capabilities {
            // A configured minimum applies if the grant overlaps its pattern.
            self.check_capability_minimum(
                &leaf.audience,
                |pattern| pattern.contains(&cap.resource) || cap.resource.contains(pattern),
                peers,
            )?;
        }
        Ok(())
    }

    fn check_capability_minimum(
        &self,
        agent: &Did,
        applies: impl Fn(&CapabilityPattern) -> bool,
        peers: &dyn Peers,
    ) -> Result<(), Denial> {
        let mut score = None;
        for (pattern, min) in &self.config.capability_min_trust {
            if applies(pattern) {
                let s = *score.get_or_insert_with(|| peers.trust(agent));
                if s < *min {
                    return Err(Denial::TrustBelowCapabilityMinimum {
                        agent: agent.clone(),
                        score: s,
                        min: *min,
                        pattern: pattern.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_spawn(
        &mut self,
        parent: &Did,
        certificate: &SignedSpawnCertificate,
        lineage: &[SignedSpawnCertificate],
        children_alive: u32,
        peers: &dyn Peers,
        revocations: &RevocationSet,
        now: Timestamp,
    ) -> Result<(), Denial> {
        // The first parent of the lineage (or the parent itself) must have a
        // known org: its bundle policy bounds everything below.
        let first_parent_org_caps: Vec<Capability>;
        let org_ceiling;
        {
            let first = match lineage.first() {
                Some(c) => c.open().map(|c| c.parent).map_err(|source| {
                    Denial::InvalidLineage(LineageError::Invalid {
                        link: LinkRef {
                            index: 0,
                            hash: c.hash(),
                        },
                        source,
                    })
                })?,
                None => parent.clone(),
            };
            let policy = peers.org(&first).ok_or(Denial::UnknownOrg {
                agent: first.clone(),
            })?;
            first_parent_org_caps = policy_capabilities(policy);
            org_ceiling = policy.trust_ceiling;
        }
        let mut full: Vec<SignedSpawnCertificate> = lineage.to_vec();
        full.push(certificate.clone());
        let verified =
            spawn::verify_lineage(&full, &first_parent_org_caps).map_err(Denial::InvalidLineage)?;
        let new = &verified[verified.len() - 1];
        let cert = &new.certificate;
        if cert.parent != *parent {
            return Err(Denial::WrongParent {
                expected: parent.clone(),
                found: cert.parent.clone(),
            });
        }
        if cert.spawn_depth > self.config.spawn.max_depth {
            return Err(Denial::SpawnTooDeep {
                depth: cert.spawn_depth,
                max: self.config.spawn.max_depth,
            });
        }
        let skew = self.config.clock_skew_secs;
        for v in &verified {
            let c = &v.certificate;
            if now.minus_secs(skew) >= c.expires {
                return Err(Denial::Expired {
                    link: v.link,
                    expires: c.expires,
                });
            }
            if v.link.index < verified.len() - 1 && now.plus_secs(skew) < c.not_before {
                return Err(Denial::NotYetValid {
                    link: v.link,
                    not_before: c.not_before,
                });
            }
            if revocations.is_revoked(&v.link.hash) {
                return Err(Denial::RevokedAncestor {
                    agent: c.child.clone(),
                    certificate: v.link.hash,
                });
            }
        }
        check_lineage(parent, peers, revocations)?;
        let parent_ceiling = match verified.len() {
            1 => org_ceiling,
            n => verified[n - 2].certificate.trust_ceiling,
        };
        if cert.trust_ceiling > parent_ceiling {
            return Err(Denial::SpawnCeilingAboveParent {
                ceiling: cert.trust_ceiling,
                parent_ceiling,
            });
        }
        let score = peers.trust(parent);
        let policy = &self.config.spawn;
        if score < policy.threshold {
            return Err(Denial::SpawnBelowThreshold {
                score,
                threshold: policy.threshold,
            });
        }
        let budget = policy.budget(score);
        if children_alive >= budget {
            return Err(Denial::SpawnBudgetExhausted {
                alive: children_alive,
                budget,
                score,
            });
        }
        Ok(())
    }
}

/// An org's allowed capabilities as delegation capabilities (all actions).
pub fn policy_capabilities(policy: &OrgPolicy) -> Vec<Capability> {
    policy
        .capabilities
        .iter()
        .map(|p| Capability {
            resource: p.clone(),
            actions: Actions::All,
        })
        .collect()
}

fn check_lineage(
    agent: &Did,
    peers: &dyn Peers,
    revocations: &RevocationSet,
) -> Result<(), Denial> {
    if let Some(h) = peers
        .lineage(agent)
        .iter()
        .find(|h| revocations.is_revoked(h))
    {
        return Err(Denial::RevokedAncestor {
            agent: agent.clone(),
            certificate: *h,
        });
    }
    Ok(())
}

fn check_cross_org(l: &VerifiedLink, peers: &dyn Peers) -> Result<(), Denial> {
    let Some(to) = peers.org(&l.audience) else {
        return Err(Denial::UnknownOrg {
            agent: l.audience.clone(),
        });
    };
    let same_org = peers
        .org(&l.issuer)
        .is_some_and(|from| from.root == to.root);
    if same_org {
        return Ok(());
    }
    let allowed = policy_capabilities(to);
    if let Some(c) = capability::first_not_within(&l.capabilities, &allowed) {
        return Err(Denial::CrossOrgCapability {
            link: l.link,
            capability: c.to_string(),
            org: to.name.clone(),
        });
    }
    Ok(())
}
