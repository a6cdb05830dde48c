//! The JSON shapes of `/api/v1` built from the view (docs/API.md).

use std::collections::BTreeMap;

use mesh_trust::Explanation;
use serde::Serialize;

use crate::memory::KnownAgent;
use crate::view::{Link, NodeIdentity, RecordEntry};

/// `GET /api/v1/node`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeOverview {
    /// Who the node is.
    pub node: NodeIdentity,
    /// Peers connected now.
    pub peers: usize,
    /// Agents seen since the dashboard started.
    pub known_agents: usize,
    /// Records in the node's log.
    pub log_size: u64,
    /// Size of the latest signed checkpoint.
    pub checkpoint_size: Option<u64>,
    /// Whether a token is configured (writes possible with it).
    pub writes_enabled: bool,
}

/// A row of `GET /api/v1/trust`.
#[derive(Debug, Clone, Serialize)]
pub struct TrustRow {
    /// The agent as last seen.
    #[serde(flatten)]
    pub agent: KnownAgent,
    /// Score from this node's own evidence.
    pub direct_score: f64,
    /// Decayed direct evidence mass.
    pub direct_evidence: f64,
    /// The reported (global) score.
    pub global_score: f64,
    /// Reporters with an opinion.
    pub reporters: usize,
    /// A severe finding holding the score at 0, by kind.
    pub severe: Option<&'static str>,
}

impl TrustRow {
    /// The row for `agent`, scored by `e`.
    pub fn new(mut agent: KnownAgent, e: &Explanation) -> Self {
        agent.score = e.score.get();
        agent.tier = e.tier.name().to_string();
        TrustRow {
            agent,
            direct_score: e.direct_score,
            direct_evidence: e.direct_evidence,
            global_score: e.global.score,
            reporters: e.global.reporters,
            severe: e.severe.as_ref().map(|s| s.kind.name()),
        }
    }
}

/// One dimension of a direct score.
#[derive(Debug, Clone, Serialize)]
pub struct DimensionDetail {
    /// Its name.
    pub dimension: &'static str,
    /// Its weight.
    pub weight: f64,
    /// Its estimate, 0–1000.
    pub estimate: f64,
    /// Decayed evidence for.
    pub positive: f64,
    /// Decayed evidence against.
    pub negative: f64,
}

/// One piece of evidence.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceItem {
    /// What happened.
    pub kind: &'static str,
    /// Unix seconds.
    pub at: u64,
    /// The proof's format, when it has one (e.g. a co-signed record).
    pub proof: Option<String>,
}

/// `GET /api/v1/trust/{did}`: everything behind a score.
#[derive(Debug, Clone, Serialize)]
pub struct TrustDetail {
    /// Whom.
    pub subject: String,
    /// The final score.
    pub score: u16,
    /// Its tier.
    pub tier: &'static str,
    /// Score with no evidence.
    pub initial: u16,
    /// Cap.
    pub ceiling: u16,
    /// Direct score, 0–1000.
    pub direct_score: f64,
    /// Decayed direct evidence mass.
    pub direct_evidence: f64,
    /// The direct score's share of the blend.
    pub direct_weight: f64,
    /// Per dimension.
    pub dimensions: Vec<DimensionDetail>,
    /// Reported score.
    pub global_score: f64,
    /// Reporters behind it.
    pub reporters: usize,
    /// Credibility-weighted confidence behind it.
    pub global_weight: f64,
    /// Whether the ceiling lowered the blend.
    pub capped_by_ceiling: bool,
    /// A severe finding (kind) holding the score at 0.
    pub severe: Option<&'static str>,
    /// The latest evidence, newest first.
    pub evidence: Vec<EvidenceItem>,
}

impl From<&Explanation> for TrustDetail {
    fn from(e: &Explanation) -> Self {
        TrustDetail {
            subject: e.subject.as_str().to_string(),
            score: e.score.get(),
            tier: e.tier.name(),
            initial: e.policy.initial.get(),
            ceiling: e.policy.ceiling.get(),
            direct_score: e.direct_score,
            direct_evidence: e.direct_evidence,
            direct_weight: e.direct_weight,
            dimensions: e
                .dimensions
                .iter()
                .map(|d| DimensionDetail {
                    dimension: d.dimension.name(),
                    weight: d.weight,
                    estimate: d.estimate,
                    positive: d.masses.positive,
                    negative: d.masses.negative,
                })
                .collect(),
            global_score: e.global.score,
            reporters: e.global.reporters,
            global_weight: e.global.weight,
            capped_by_ceiling: e.capped_by_ceiling,
            severe: e.severe.as_ref().map(|s| s.kind.name()),
            evidence: e
                .recent_evidence
                .iter()
                .rev()
                .map(|ev| EvidenceItem {
                    kind: ev.kind.name(),
                    at: ev.at.0,
                    proof: ev.proof.as_ref().map(|p| p.kind.clone()),
                })
                .collect(),
        }
    }
}

/// A vertex of the delegation graph.
#[derive(Debug, Clone, Serialize)]
pub struct GraphNode {
    /// The agent.
    pub did: String,
    /// Its name when known (this node or a peer seen), else empty.
    pub name: String,
    /// Its organisation when known.
    pub org: String,
    /// Whether it is this node.
    pub local: bool,
}

/// `GET /api/v1/delegations`: who granted what to whom, spawned whom.
#[derive(Debug, Clone, Serialize)]
pub struct Graph {
    /// Every agent a link names.
    pub nodes: Vec<GraphNode>,
    /// The links, issuer → audience.
    pub links: Vec<Link>,
}

impl Graph {
    /// The graph of `links`, naming agents from `me` and `agents`.
    pub fn new(me: &NodeIdentity, agents: &[KnownAgent], mut links: Vec<Link>) -> Self {
        links.sort_by(|a, b| {
            (&a.issuer, &a.audience, &a.hash).cmp(&(&b.issuer, &b.audience, &b.hash))
        });
        let mut nodes: BTreeMap<String, GraphNode> = BTreeMap::new();
        nodes.insert(
            me.did.clone(),
            GraphNode {
                did: me.did.clone(),
                name: me.name.clone(),
                org: me.org.clone(),
                local: true,
            },
        );
        for l in &links {
            for did in [&l.issuer, &l.audience] {
                nodes.entry(did.clone()).or_insert_with(|| {
                    let known = agents.iter().find(|a| &a.did == did);
                    GraphNode {
                        did: did.clone(),
                        name: known.map(|a| a.name.clone()).unwrap_or_default(),
                        org: known.map(|a| a.org.clone()).unwrap_or_default(),
                        local: false,
                    }
                });
            }
        }
        Graph {
            nodes: nodes.into_values().collect(),
            links,
        }
    }
}

/// `GET /api/v1/ledger/records`.
#[derive(Debug, Clone, Serialize)]
pub struct RecordsPage {
    /// The log's size now.
    pub size: u64,
    /// The first index returned.
    pub from: u64,
    /// The records, oldest first.
    pub records: Vec<RecordEntry>,
}

/// A 32-byte hash from 64 hex digits.
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::parse_hash;

    #[test]
    fn hashes_parse_only_from_64_hex_digits() {
        let h = "00ff".repeat(16);
        assert_eq!(parse_hash(&h).map(|b| (b[0], b[1])), Some((0x00, 0xff)));
        assert_eq!(parse_hash(&h[..62]), None);
        assert_eq!(parse_hash(&format!("{}zz", &h[..62])), None);
        assert_eq!(parse_hash(&format!("{h}00")), None);
        assert_eq!(parse_hash(&"é".repeat(32)), None);
    }
}
