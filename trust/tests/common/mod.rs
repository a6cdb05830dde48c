//! What the trust engine's integration tests share.

use mesh_iatp::testing::FIXTURE_NOW;
use mesh_iatp::{Did, Identity, Score};
use mesh_trust::report::seal_report;
use mesh_trust::{ReportEntry, TrustReport};

/// The tests' clock.
pub const NOW: mesh_iatp::Timestamp = FIXTURE_NOW;

/// A sealed report from `from`: `(subject, score, evidence)` entries.
pub fn report(from: &Identity, sequence: u64, entries: Vec<(Did, u16, u32)>) -> Vec<u8> {
    seal_report(
        &TrustReport {
            reporter: from.did().clone(),
            epoch: 1,
            sequence,
            issued: NOW,
            entries: entries
                .into_iter()
                .map(|(s, score, evidence)| ReportEntry {
                    subject: s.to_string(),
                    score: Score::saturating(score),
                    evidence,
                })
                .collect(),
        },
        from,
    )
    .unwrap_or_else(|e| panic!("seals: {e}"))
}
