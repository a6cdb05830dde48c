//! Spawned agents over the wire (DELEGATION.md §3.1): the handshake's
//! check of a card's spawn-certificate chain, and the child's org policy
//! narrowed to its certificate. (Cutting off the sessions under a revoked
//! certificate is `Agent::cut_off_lineage`, in `commands.rs`.)

use mesh_delegation::{RevocationSet, SignedSpawnCertificate, policy_capabilities, verify_lineage};
use mesh_iatp::handshake::{LineageCheck, LineageRefusal, Spawned};
use mesh_iatp::{Did, OrgPolicy, Score, Timestamp};
use serde_bytes::ByteBuf;

/// The handshake's lineage check, against the revocations this agent
/// knows (public for other embedders of the handshake, and for the test
/// vectors).
pub struct LineageVerifier<'a> {
    /// Revoked certificates refuse the lineage (code 25).
    pub revocations: &'a RevocationSet,
    /// Clock skew allowed around each certificate's window.
    pub skew_secs: u64,
}

impl LineageCheck for LineageVerifier<'_> {
    fn check(
        &self,
        lineage: &[ByteBuf],
        root: &Did,
        child: &Did,
        policy: &OrgPolicy,
        now: Timestamp,
    ) -> Result<Spawned, LineageRefusal> {
        let invalid = |why: String| LineageRefusal::Invalid(why);
        let certs: Vec<SignedSpawnCertificate> = lineage
            .iter()
            .map(|c| SignedSpawnCertificate(c.to_vec()))
            .collect();
        let verified = verify_lineage(&certs, &policy_capabilities(policy))
            .map_err(|e| invalid(e.to_string()))?;
        let (Some(first), Some(last)) = (verified.first(), verified.last()) else {
            return Err(invalid("the lineage is empty".into()));
        };
        if &first.certificate.parent != root {
            return Err(invalid(format!(
                "the first certificate's parent {} is not the credential's agent {root}",
                first.certificate.parent
            )));
        }
        if &last.certificate.child != child {
            return Err(invalid(format!(
                "the last certificate is for {}, not {child}",
                last.certificate.child
            )));
        }
        for v in &verified {
            let c = &v.certificate;
            if now.plus_secs(self.skew_secs) < c.not_before
                || now >= c.expires.plus_secs(self.skew_secs)
            {
                return Err(invalid(format!("{} is outside its window", v.link)));
            }
            if self.revocations.is_revoked(&v.link.hash) {
                return Err(LineageRefusal::Revoked(v.link.to_string()));
            }
        }
        Ok(Spawned {
            lineage: verified.iter().map(|v| v.link.hash).collect(),
            parent: last.certificate.parent.clone(),
            trust_ceiling: last.certificate.trust_ceiling,
            capabilities: last
                .certificate
                .capabilities
                .iter()
                .map(|c| c.resource.clone())
                .collect(),
        })
    }
}

/// A spawned peer's org policy as it applies to it: its certificate's
/// capabilities and ceiling; its initial trust its parent's score here
/// (the org's initial trust if the parent is unknown), under that ceiling
/// (DELEGATION.md §3, `child_initial_score`).
pub(crate) fn narrowed(policy: &OrgPolicy, spawned: &Spawned, parent: Option<Score>) -> OrgPolicy {
    let ceiling = spawned.trust_ceiling.min(policy.trust_ceiling);
    OrgPolicy {
        name: policy.name.clone(),
        root: policy.root.clone(),
        initial_trust: parent.unwrap_or(policy.initial_trust).min(ceiling),
        trust_ceiling: ceiling,
        capabilities: spawned
            .capabilities
            .iter()
            .filter(|c| mesh_iatp::capability::allowed_by(c, &policy.capabilities))
            .cloned()
            .collect(),
    }
}

/// This agent's own lineage, from its card (empty unless it was spawned).
pub(crate) fn own_certificates(card_lineage: &[ByteBuf]) -> Vec<SignedSpawnCertificate> {
    card_lineage
        .iter()
        .map(|c| SignedSpawnCertificate(c.to_vec()))
        .collect()
}
