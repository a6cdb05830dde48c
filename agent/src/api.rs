//! What the embedder asks for ([`GrantOptions`], [`DelegateOptions`],
//! [`SpawnOptions`]) and what it gets back ([`Outcome`]).

use mesh_delegation::{Capability, LinkHash, SignedGrant, SignedSpawnCertificate};
use mesh_iatp::credential::{AgentCard, SignedCredential};
use mesh_iatp::envelope::PROTOCOL_VERSION;
use mesh_iatp::handshake::LocalAgent;
use mesh_iatp::{CapabilityPattern, Identity, Score};
use mesh_ledger::merkle::{Hash, verify_inclusion};
use mesh_ledger::record::CoSignedRecord;

use crate::wire::TaskOutcome;

/// A record this agent co-signed and appended.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Its index in this agent's log.
    pub index: u64,
    /// The record with both signatures.
    pub record: CoSignedRecord,
}

/// A grant to issue.
#[derive(Debug, Clone)]
pub struct GrantOptions {
    /// The capabilities (within the authority's).
    pub capabilities: Vec<Capability>,
    /// Valid for this long from now.
    pub lifetime_secs: u64,
    /// How many more times the audience may re-delegate.
    pub depth: u8,
    /// The audience must keep at least this trust for the grant to work.
    pub min_trust: Score,
    /// The chain this grant extends (one this agent holds); `None` issues a
    /// root grant on this agent's own authority.
    pub authority: Option<Vec<SignedGrant>>,
}

impl GrantOptions {
    /// A root grant of `capabilities` for an hour, no re-delegation,
    /// minimum trust 400.
    pub fn new(capabilities: Vec<Capability>) -> Self {
        GrantOptions {
            capabilities,
            lifetime_secs: 3600,
            depth: 0,
            min_trust: Score::saturating(400),
            authority: None,
        }
    }
}

/// A grant issued to a peer and acknowledged in both logs.
#[derive(Debug, Clone)]
pub struct IssuedGrant {
    /// Root first, the new grant last (what the audience presents).
    pub chain: Vec<SignedGrant>,
    /// The new grant's hash (what a revocation names).
    pub hash: LinkHash,
    /// The `delegate` record in this agent's log.
    pub record: Recorded,
}

/// How a task is delegated.
#[derive(Debug, Clone)]
pub struct DelegateOptions {
    /// The task's grant is valid this long.
    pub lifetime_secs: u64,
    /// The task must be answered within this long; `None` takes the
    /// agent's default (`Settings::task_deadline`, 10 minutes) or the
    /// grant's lifetime, whichever is shorter. A deadline past the grant's
    /// lifetime is refused.
    pub deadline_secs: Option<u64>,
    /// The delegatee needs at least this trust (checked here and again
    /// there).
    pub min_trust: Score,
    /// Delegate under this chain (held by this agent); `None` on this
    /// agent's own authority.
    pub authority: Option<Vec<SignedGrant>>,
}

impl Default for DelegateOptions {
    fn default() -> Self {
        DelegateOptions {
            lifetime_secs: 600,
            deadline_secs: None,
            min_trust: Score::saturating(400),
            authority: None,
        }
    }
}

/// A delegated task and its outcome, both co-signed.
#[derive(Debug, Clone)]
pub struct Delegated {
    /// What the delegatee returned.
    pub outcome: TaskOutcome,
    /// The task's grant.
    pub grant: LinkHash,
    /// The `delegate` record.
    pub delegate: Recorded,
    /// The `result` record.
    pub result: Recorded,
}

/// What a child is spawned with.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// What it may do (within this agent's org policy).
    pub capabilities: Vec<mesh_delegation::Capability>,
    /// Its score never exceeds this.
    pub trust_ceiling: Score,
    /// Its certificate is valid this long.
    pub lifetime_secs: u64,
}

/// A spawned child: its key (to run its own node with), its certificate,
/// and what its card carries instead of an org credential of its own.
#[derive(Clone)]
pub struct Spawned {
    /// The child's identity. Store it like any key (0600).
    pub identity: Identity,
    /// The certificate, signed by this agent.
    pub certificate: SignedSpawnCertificate,
    /// The child's lineage: this agent's own, then `certificate`.
    pub lineage: Vec<SignedSpawnCertificate>,
    /// The org credential at the root of the lineage (this agent's, or its
    /// root ancestor's).
    pub credential: SignedCredential,
    /// The `spawn` record in this agent's log (co-signed by the child's key).
    pub record: Recorded,
}

impl Spawned {
    /// The child's card: the root credential and the lineage, offering
    /// `capabilities` (within its certificate's, or peers refuse it).
    pub fn card(&self, name: &str, capabilities: Vec<CapabilityPattern>) -> AgentCard {
        AgentCard {
            did: self.identity.did().clone(),
            name: name.into(),
            credential: self.credential.clone(),
            capabilities,
            versions: vec![PROTOCOL_VERSION],
            lineage: self
                .lineage
                .iter()
                .map(|c| serde_bytes::ByteBuf::from(c.0.clone()))
                .collect(),
        }
    }

    /// The child as a local agent, offering its certificate's resources.
    pub fn local_agent(&self, name: &str) -> Result<LocalAgent, mesh_iatp::Refusal> {
        let offers = self
            .certificate
            .open()
            .map(|c| c.capabilities.into_iter().map(|c| c.resource).collect())
            .unwrap_or_default();
        LocalAgent::new(self.identity.clone(), self.card(name, offers))
    }
}

impl std::fmt::Debug for Spawned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the child's secret key.
        f.debug_struct("Spawned")
            .field("child", self.identity.did())
            .field("certificate", &self.certificate)
            .field("record", &self.record.index)
            .finish()
    }
}

/// A revocation issued by this agent.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// The signed revocation (gossiped).
    pub revocation: Vec<u8>,
    /// The `revoke` record, if the audience was connected to co-sign it.
    pub record: Option<Recorded>,
}

/// A record's inclusion proof against a tree size of a log.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    /// The log's origin.
    pub origin: String,
    /// The record's index.
    pub index: u64,
    /// The tree size proven against.
    pub size: u64,
    /// The root at that size.
    pub root: Hash,
    /// The co-signed record.
    pub record: CoSignedRecord,
    /// The audit path.
    pub hashes: Vec<Hash>,
}

impl InclusionProof {
    /// Check the proof (RFC 9162 §2.1.3.2).
    pub fn verify(&self) -> bool {
        verify_inclusion(
            self.index,
            self.size,
            &self.record.leaf_hash(),
            &self.hashes,
            &self.root,
        )
        .is_ok()
    }
}

/// What a finished [`Command`](crate::Command) produced.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `Record`.
    Recorded(Recorded),
    /// `Grant`.
    Granted(IssuedGrant),
    /// `Delegate`.
    Delegated(Box<Delegated>),
    /// `Spawn`.
    Spawned(Box<Spawned>),
    /// `Revoke`.
    Revoked(Revoked),
    /// `FetchProof`.
    Proof(Box<InclusionProof>),
    /// `Checkpoint`: the note signed, if any.
    Checkpoint(Option<Vec<u8>>),
    /// Anything else.
    Done,
}
