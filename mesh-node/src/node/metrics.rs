//! The node's Prometheus metrics (served by the dashboard at `/metrics`).
//! Counters are fed where things happen; gauges are read when encoded.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use mesh_delegation::Decision;

use super::NodeEvent;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandshakeLabels {
    /// `established`, `refused` (by us) or `refused_by_peer`.
    outcome: &'static str,
    /// The refusal code's name; empty when established.
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GateLabels {
    /// `delegate`, `accept_grant`, `run_task` or `spawn`.
    request: &'static str,
    /// `allow` or `deny`.
    result: &'static str,
    /// The denying rule; empty when allowed.
    rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    /// `published` or `accepted`.
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerifyLabels {
    /// `witness_checkpoint` (a peer's checkpoint and consistency proof)
    /// or `full_log` (this node's whole log).
    what: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    /// `rejected` (gossip or request failing verification) or `throttled`.
    kind: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 10 µs … ~5 s.
    Histogram::new(exponential_buckets(1e-5, 2.0, 20))
}

/// Every metric the node exports.
pub struct NodeMetrics {
    registry: Registry,
    peers: Gauge,
    ledger_records: Gauge,
    handshakes: Family<HandshakeLabels, Counter>,
    gate: Family<GateLabels, Counter>,
    reports: Family<DirectionLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
    trimmed: Counter,
    append: Histogram,
    verify: HistogramFamily<VerifyLabels>,
    aggregation: Histogram,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeMetrics")
    }
}

impl Default for NodeMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let peers = Gauge::default();
        registry.register(
            "mesh_peers",
            "Peers holding an authenticated IATP session",
            peers.clone(),
        );
        let ledger_records = Gauge::default();
        registry.register(
            "mesh_ledger_records",
            "Records in this node's log",
            ledger_records.clone(),
        );
        let handshakes = Family::default();
        registry.register(
            "mesh_handshakes",
            "IATP handshakes by outcome",
            handshakes.clone(),
        );
        let gate = Family::default();
        registry.register(
            "mesh_gate_decisions",
            "Gate decisions by request and result",
            gate.clone(),
        );
        let reports = Family::default();
        registry.register(
            "mesh_trust_reports",
            "Signed trust reports published by this node or accepted from peers",
            reports.clone(),
        );
        let refused = Family::default();
        registry.register(
            "mesh_refused_messages",
            "Gossip or requests rejected or throttled",
            refused.clone(),
        );
        let trimmed = Counter::default();
        registry.register(
            "mesh_sessions_trimmed",
            "Sessions closed because the node held more than max_sessions",
            trimmed.clone(),
        );
        let append = latency_histogram();
        registry.register(
            "mesh_ledger_append_seconds",
            "Time to commit one batch of co-signed records to this node's log (group commit)",
            append.clone(),
        );
        let verify: HistogramFamily<VerifyLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "mesh_ledger_verify_seconds",
            "Time to verify a witnessed checkpoint or this node's whole log",
            verify.clone(),
        );
        let aggregation = latency_histogram();
        registry.register(
            "mesh_trust_aggregation_seconds",
            "Time to aggregate global trust from the reports held (on a worker thread)",
            aggregation.clone(),
        );
        NodeMetrics {
            registry,
            peers,
            ledger_records,
            handshakes,
            gate,
            reports,
            refused,
            trimmed,
            append,
            verify,
            aggregation,
        }
    }
}

impl NodeMetrics {
    /// Count what an event tells.
    pub fn observe(&self, event: &NodeEvent) {
        match event {
            NodeEvent::SessionEstablished(_) => self.handshake("established", String::new()),
            NodeEvent::RefusedPeer { refusal, .. } => {
                self.handshake("refused", refusal.name().to_string())
            }
            NodeEvent::RefusedByPeer { reason, .. } => {
                self.handshake("refused_by_peer", reason.clone())
            }
            NodeEvent::TrustReport { .. } => {
                self.reports
                    .get_or_create(&DirectionLabels {
                        direction: "accepted",
                    })
                    .inc();
            }
            NodeEvent::Rejected { .. } => {
                self.refused
                    .get_or_create(&RefusedLabels { kind: "rejected" })
                    .inc();
            }
            NodeEvent::Throttled { .. } => {
                self.refused
                    .get_or_create(&RefusedLabels { kind: "throttled" })
                    .inc();
            }
            NodeEvent::GateDecision {
                request, decision, ..
            } => self.gate(request.name(), decision),
            NodeEvent::ReportPublished { .. } => self.report_published(),
            _ => {}
        }
    }

    fn handshake(&self, outcome: &'static str, reason: String) {
        self.handshakes
            .get_or_create(&HandshakeLabels { outcome, reason })
            .inc();
    }

    /// Count a gate decision on `request`.
    pub fn gate(&self, request: &'static str, decision: &Decision) {
        let (result, rule) = match decision {
            Decision::Allow => ("allow", ""),
            Decision::Deny(d) => ("deny", d.rule()),
        };
        self.gate
            .get_or_create(&GateLabels {
                request,
                result,
                rule,
            })
            .inc();
    }

    /// This node published its trust report.
    pub fn report_published(&self) {
        self.reports
            .get_or_create(&DirectionLabels {
                direction: "published",
            })
            .inc();
    }

    /// A session was closed to stay within `max_sessions`.
    pub fn session_trimmed(&self) {
        self.trimmed.inc();
    }

    /// One trust aggregation took `d`.
    pub fn aggregation_took(&self, d: Duration) {
        self.aggregation.observe(d.as_secs_f64());
    }

    /// One group commit of `records` records took `d`.
    pub fn append_took(&self, d: Duration, records: usize) {
        let _ = records;
        self.append.observe(d.as_secs_f64());
    }

    /// One verification of `what` took `d`.
    pub fn verify_took(&self, what: &'static str, d: Duration) {
        self.verify
            .get_or_create(&VerifyLabels { what })
            .observe(d.as_secs_f64());
    }

    /// The text exposition, with the gauges set to `peers` and `records`.
    pub fn encode(&self, peers: usize, records: u64) -> String {
        self.peers.set(i64::try_from(peers).unwrap_or(i64::MAX));
        self.ledger_records
            .set(i64::try_from(records).unwrap_or(i64::MAX));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics not encodable");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use mesh_delegation::Denial;
    use mesh_iatp::Score;

    #[test]
    fn counts_show_up_in_the_exposition() {
        let m = NodeMetrics::default();
        m.gate("delegate", &Decision::Allow);
        m.gate("delegate", &Decision::Allow);
        m.gate(
            "spawn",
            &Decision::Deny(Denial::SpawnBudgetExhausted {
                alive: 2,
                budget: 2,
                score: Score::saturating(600),
            }),
        );
        m.report_published();
        m.session_trimmed();
        m.append_took(Duration::from_micros(300), 4);
        m.verify_took("full_log", Duration::from_millis(20));
        let text = m.encode(3, 41);
        for line in [
            "mesh_peers 3",
            "mesh_ledger_records 41",
            "mesh_sessions_trimmed_total 1",
            "mesh_gate_decisions_total{request=\"delegate\",result=\"allow\",rule=\"\"} 2",
            "mesh_gate_decisions_total{request=\"spawn\",result=\"deny\",rule=\"spawn_budget_exhausted\"} 1",
            "mesh_trust_reports_total{direction=\"published\"} 1",
            "mesh_ledger_append_seconds_count 1",
            "mesh_ledger_verify_seconds_count{what=\"full_log\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
