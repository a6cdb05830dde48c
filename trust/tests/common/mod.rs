//! What the trust engine's integration tests share.

use mesh_iatp::testing::FIXTURE_NOW;
use mesh_iatp::{Did, Identity, Score};
use mesh_trust::report::seal_report;
use mesh_trust::{ReportEntry, TrustReport};

/// The tests' clock.
pub const NOW: mesh_iatp::Timestamp = FIXTURE_NOW;

/// A sealed report from `from`: `(subject, score, evidence)` entries.
#[allow(dead_code)] // not every test file uses it
pub fn report(from: &Identity, sequence: u64, entries: Vec<(Did, u16, u32)>) -> Vec<u8> {
    report_at(from, sequence, NOW, entries)
}

/// [`report`], issued at `issued`.
#[allow(dead_code)] // not every test file dates its reports
pub fn report_at(
    from: &Identity,
    sequence: u64,
    issued: mesh_iatp::Timestamp,
    entries: Vec<(Did, u16, u32)>,
) -> Vec<u8> {
    seal_report(
        &TrustReport {
            reporter: from.did().clone(),
            epoch: 1,
            sequence,
            issued,
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
