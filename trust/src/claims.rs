//! How much of a reporter's claimed evidence a node believes (TRUST.md §5,
//! "Claims"). A report entry says how much evidence backs an opinion, and
//! that number sets the opinion's confidence; nothing in the report proves
//! it. A node therefore believes a claim only as far as the reporter could
//! have observed the subject: [`scoring::believed_claim`], given what it believed in
//! the reporter's previous report and the time between the two.
//!
//! Verified reports are shared between engines (the bytes verify the same
//! everywhere), but what each engine believes depends on what it held
//! before, so the believed amounts live here, beside the shared report.

use std::collections::HashMap;
use std::sync::Arc;

use mesh_iatp::Did;

use crate::config::AggregationConfig;
use crate::report::VerifiedReport;
use crate::scoring;

/// A reporter's latest report, as this node holds it.
#[derive(Debug, Clone)]
pub(crate) struct HeldReport {
    pub(crate) report: Arc<VerifiedReport>,
    /// Believed evidence per entry, in entry order; `None` when every claim
    /// is believed as made (the common case: no copy).
    believed: Option<Arc<[u32]>>,
}

impl HeldReport {
    /// Hold `report`, believing each claim up to its cap given `previous`,
    /// the same reporter's report held before it.
    pub(crate) fn new(
        report: Arc<VerifiedReport>,
        previous: Option<&HeldReport>,
        config: &AggregationConfig,
    ) -> Self {
        let before: HashMap<&Did, u32> = previous
            .map(|p| {
                p.report
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(k, (subject, _, _))| (subject, p.evidence(k)))
                    .collect()
            })
            .unwrap_or_default();
        let elapsed =
            previous.map_or(0, |p| report.issued.0.saturating_sub(p.report.issued.0)) as f64;
        let believed: Vec<u32> = report
            .entries
            .iter()
            .map(|(subject, _, claimed)| {
                scoring::believed_claim(*claimed, before.get(subject).copied(), elapsed, config)
            })
            .collect();
        let as_claimed = believed
            .iter()
            .zip(&report.entries)
            .all(|(b, (_, _, claimed))| b == claimed);
        HeldReport {
            report,
            believed: (!as_claimed).then(|| believed.into()),
        }
    }

    /// The evidence believed of entry `k`.
    pub(crate) fn evidence(&self, k: usize) -> u32 {
        match &self.believed {
            Some(b) => b[k],
            None => self.report.entries[k].2,
        }
    }
}
