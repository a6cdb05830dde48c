//! Signed trust reports: what each node tells the mesh about its direct
//! opinions, and the rules for accepting them.
//!
//! A report travels in the mesh-iatp envelope (type `trust/report`), signed
//! by its reporter. Reports from one reporter are ordered by
//! `(epoch, sequence)`: a newer one replaces the older, an older one is
//! ignored, the same one again changes nothing, and two *different* reports
//! with the same `(epoch, sequence)` are refused as conflicting (the reporter
//! equivocated). Subjects are parsed into DIDs only after the signature has
//! verified, so a forged report costs one CBOR decode and one signature
//! check, not thousands of key decompressions.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use mesh_iatp::envelope::{self, EnvelopeError, SignedMessage};
use mesh_iatp::{Did, DidError, Identity, Score, Timestamp};

/// Hard protocol limit on entries per report (configs may set lower).
pub const MAX_REPORT_ENTRIES: usize = 4096;

/// One opinion in a report, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportEntry {
    /// The DID the opinion is about (text; parsed after verification).
    pub subject: String,
    /// The reporter's direct score for the subject.
    pub score: Score,
    /// How much direct evidence backs it (decayed mass, rounded up).
    pub evidence: u32,
}

/// A reporter's direct opinions at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustReport {
    /// Who reports (and signs).
    pub reporter: Did,
    /// Increases when the reporter restarts (sequence starts again).
    pub epoch: u64,
    /// Increases with every report within an epoch.
    pub sequence: u64,
    /// When the report was made.
    pub issued: Timestamp,
    /// The opinions, at most [`MAX_REPORT_ENTRIES`], distinct subjects,
    /// none about the reporter itself.
    pub entries: Vec<ReportEntry>,
}

impl SignedMessage for TrustReport {
    const TYPE: &'static str = "trust/report";
    // 4096 entries of ~100 bytes, plus the envelope.
    const MAX_BYTES: usize = 512 * 1024;
}

/// A verified report with its subjects parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedReport {
    /// Who reported.
    pub reporter: Did,
    /// Its `(epoch, sequence)`.
    pub position: (u64, u64),
    /// When it was made.
    pub issued: Timestamp,
    /// `(subject, score, evidence)`, in the order sent.
    pub entries: Vec<(Did, Score, u32)>,
    /// The exact envelope bytes, to tell a duplicate from a conflict.
    pub bytes: Vec<u8>,
}

/// Why a report is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Not a well-formed, correctly signed `trust/report` envelope.
    #[error("invalid trust report: {0}")]
    Envelope(#[from] EnvelopeError),
    /// More entries than allowed.
    #[error("trust report has {count} entries, more than the {max} allowed")]
    TooManyEntries {
        /// Entries in the report.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An entry's subject is not a DID.
    #[error("trust report entry {index}: {source}")]
    InvalidSubject {
        /// Entry index.
        index: usize,
        /// Why.
        source: DidError,
    },
    /// The same subject twice.
    #[error("trust report entry {index} repeats subject {subject}")]
    DuplicateSubject {
        /// Entry index of the repeat.
        index: usize,
        /// The subject.
        subject: Did,
    },
    /// The reporter rates itself.
    #[error("trust report entry {index} is the reporter rating itself")]
    SelfRating {
        /// Entry index.
        index: usize,
    },
    /// Dated too far in the future.
    #[error("trust report issued at {issued}, ahead of local time {now}")]
    FromTheFuture {
        /// The report's date.
        issued: Timestamp,
        /// Our clock.
        now: Timestamp,
    },
    /// Older than the report already held from this reporter.
    #[error("stale trust report {got:?}: already have {have:?} from this reporter")]
    Stale {
        /// Position held.
        have: (u64, u64),
        /// Position received.
        got: (u64, u64),
    },
    /// A new reporter while the store is full of more credible ones.
    #[error("holding reports from {held} more credible reporters; {reporter}'s is not kept")]
    Crowded {
        /// The reporter refused.
        reporter: Did,
        /// Reporters held.
        held: usize,
    },
    /// A different report at the same position: the reporter equivocated.
    #[error("conflicting trust reports from {reporter} at {position:?}")]
    Conflicting {
        /// The reporter.
        reporter: Did,
        /// The position both claim.
        position: (u64, u64),
    },
}

/// Sign a report.
pub fn seal_report(report: &TrustReport, reporter: &Identity) -> Result<Vec<u8>, EnvelopeError> {
    envelope::seal(report, reporter)
}

/// The receiver's limit on a report's entries (checked before the
/// signature, so an oversized report costs no verification).
fn within_entry_limit(count: usize, max_entries: usize) -> Result<(), ReportError> {
    let max = max_entries.min(MAX_REPORT_ENTRIES);
    if count > max {
        return Err(ReportError::TooManyEntries { count, max });
    }
    Ok(())
}

/// The receiver's clock: a report issued beyond its skew is refused.
fn not_from_the_future(
    issued: Timestamp,
    now: Timestamp,
    skew_secs: u64,
) -> Result<(), ReportError> {
    if issued > now.plus_secs(skew_secs) {
        return Err(ReportError::FromTheFuture { issued, now });
    }
    Ok(())
}

/// Decode, verify and check a report's shape (not its freshness against
/// stored reports: see [`crate::TrustEngine::receive_report`]).
pub fn verify_report(
    bytes: &[u8],
    max_entries: usize,
    now: Timestamp,
    max_skew_secs: u64,
) -> Result<VerifiedReport, ReportError> {
    let unverified = envelope::open::<TrustReport>(bytes)?;
    let claimed = unverified.claimed();
    within_entry_limit(claimed.entries.len(), max_entries)?;
    let reporter = claimed.reporter.clone();
    let report = unverified.verify(&reporter)?;
    not_from_the_future(report.issued, now, max_skew_secs)?;
    let mut seen = BTreeSet::new();
    let mut entries = Vec::with_capacity(report.entries.len());
    for (index, e) in report.entries.into_iter().enumerate() {
        let subject = Did::parse(&e.subject)
            .map_err(|source| ReportError::InvalidSubject { index, source })?;
        if subject == report.reporter {
            return Err(ReportError::SelfRating { index });
        }
        if !seen.insert(subject.clone()) {
            return Err(ReportError::DuplicateSubject { index, subject });
        }
        entries.push((subject, e.score, e.evidence));
    }
    Ok(VerifiedReport {
        reporter: report.reporter,
        position: (report.epoch, report.sequence),
        issued: report.issued,
        entries,
        bytes: bytes.to_vec(),
    })
}

/// Verified reports by a hash of their bytes, with the most to hold.
type SharedReports = (
    usize,
    std::collections::HashMap<u64, std::sync::Arc<VerifiedReport>>,
);

thread_local! {
    /// Reports verified on this thread, when memoized (see
    /// [`memoize_reports`]).
    static VERIFIED_REPORTS: std::cell::RefCell<Option<SharedReports>> =
        const { std::cell::RefCell::new(None) };
}

/// Share verified reports among every trust engine on this thread (up to
/// `capacity` of them; 0 turns it off). A simulation runs many agents on
/// one thread, each receiving the same gossiped reports: each is then
/// decoded and verified once and held once. What depends on the receiver —
/// its entry limit and its clock — is still checked on every receipt, so
/// every answer is the one [`verify_report`] gives. Off by default.
pub fn memoize_reports(capacity: usize) {
    VERIFIED_REPORTS.with(|m| {
        *m.borrow_mut() = (capacity > 0).then(|| (capacity, std::collections::HashMap::new()));
    });
}

fn bytes_key(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// [`verify_report`], shared: the same report for the same bytes when
/// [`memoize_reports`] is on.
pub fn verify_report_shared(
    bytes: &[u8],
    max_entries: usize,
    now: Timestamp,
    max_skew_secs: u64,
) -> Result<std::sync::Arc<VerifiedReport>, ReportError> {
    let key = bytes_key(bytes);
    let held = VERIFIED_REPORTS.with(|m| {
        m.borrow().as_ref().and_then(|(_, all)| {
            all.get(&key)
                .filter(|r| r.bytes.as_slice() == bytes)
                .cloned()
        })
    });
    if let Some(report) = held {
        within_entry_limit(report.entries.len(), max_entries)?;
        not_from_the_future(report.issued, now, max_skew_secs)?;
        return Ok(report);
    }
    let report = std::sync::Arc::new(verify_report(bytes, max_entries, now, max_skew_secs)?);
    VERIFIED_REPORTS.with(|m| {
        if let Some((capacity, all)) = m.borrow_mut().as_mut() {
            if all.len() >= *capacity {
                all.clear();
            }
            all.insert(key, report.clone());
        }
    });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_iatp::testing::{every_bit_flip, identity};

    fn report(entries: Vec<ReportEntry>) -> TrustReport {
        TrustReport {
            reporter: identity("reporter").did().clone(),
            epoch: 1,
            sequence: 1,
            issued: Timestamp(900),
            entries,
        }
    }

    fn entry(label: &str, score: u16) -> ReportEntry {
        ReportEntry {
            subject: identity(label).did().to_string(),
            score: Score::saturating(score),
            evidence: 3,
        }
    }

    #[test]
    fn shared_reports_answer_exactly_as_unshared_ones() {
        let bytes = seal_report(
            &report(vec![entry("a", 700), entry("b", 200)]),
            &identity("reporter"),
        )
        .expect("seals");
        memoize_reports(16);
        let first = verify_report_shared(&bytes, 1024, Timestamp(1000), 60).expect("valid");
        let again = verify_report_shared(&bytes, 1024, Timestamp(1000), 60).expect("valid");
        assert!(std::sync::Arc::ptr_eq(&first, &again), "held once");
        assert_eq!(
            *first,
            verify_report(&bytes, 1024, Timestamp(1000), 60).expect("valid")
        );
        // What depends on the receiver is checked on every receipt.
        for (max, now) in [(1, Timestamp(1000)), (1024, Timestamp(800))] {
            assert_eq!(
                verify_report_shared(&bytes, max, now, 60),
                verify_report(&bytes, max, now, 60).map(std::sync::Arc::new),
            );
        }
        assert!(verify_report_shared(&bytes, 1, Timestamp(1000), 60).is_err());
        // Other bytes are never answered from the memo.
        let mut tampered = bytes.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(verify_report_shared(&tampered, 1024, Timestamp(1000), 60).is_err());
        memoize_reports(0);
    }

    #[test]
    fn every_bit_of_a_report_is_covered() {
        let bytes = seal_report(
            &report(vec![entry("a", 700), entry("b", 200)]),
            &identity("reporter"),
        )
        .expect("seals");
        assert!(verify_report(&bytes, 1024, Timestamp(1000), 60).is_ok());
        for (i, mask, changed) in every_bit_flip(&bytes) {
            assert!(
                verify_report(&changed, 1024, Timestamp(1000), 60).is_err(),
                "byte {i} ^ {mask:#04x}"
            );
        }
    }

    #[test]
    fn a_signed_report_verifies() {
        let bytes = seal_report(
            &report(vec![entry("a", 700), entry("b", 200)]),
            &identity("reporter"),
        )
        .expect("seals");
        let v = verify_report(&bytes, 1024, Timestamp(1000), 60).expect("valid");
        assert_eq!(v.entries.len(), 2);
        assert_eq!(v.entries[0].1.get(), 700);
        assert_eq!(v.position, (1, 1));
    }

    #[test]
    fn forged_and_malformed_reports_are_refused() {
        let forged =
            seal_report(&report(vec![entry("a", 700)]), &identity("mallory")).expect("seals");
        assert!(matches!(
            verify_report(&forged, 1024, Timestamp(1000), 60),
            Err(ReportError::Envelope(EnvelopeError::BadSignature { .. }))
        ));
        let me = report(vec![ReportEntry {
            subject: identity("reporter").did().to_string(),
            score: Score::MAX,
            evidence: 1,
        }]);
        let bytes = seal_report(&me, &identity("reporter")).expect("seals");
        assert_eq!(
            verify_report(&bytes, 1024, Timestamp(1000), 60),
            Err(ReportError::SelfRating { index: 0 })
        );
        let dup = seal_report(
            &report(vec![entry("a", 1), entry("a", 2)]),
            &identity("reporter"),
        )
        .expect("seals");
        assert!(matches!(
            verify_report(&dup, 1024, Timestamp(1000), 60),
            Err(ReportError::DuplicateSubject { index: 1, .. })
        ));
        let mut bad = report(vec![entry("a", 1)]);
        bad.entries[0].subject = "did:key:zzz".into();
        let bytes = seal_report(&bad, &identity("reporter")).expect("seals");
        assert!(matches!(
            verify_report(&bytes, 1024, Timestamp(1000), 60),
            Err(ReportError::InvalidSubject { index: 0, .. })
        ));
    }

    #[test]
    fn entry_count_and_dates_are_bounded() {
        let many: Vec<ReportEntry> = (0..11).map(|i| entry(&format!("s{i}"), 600)).collect();
        let bytes = seal_report(&report(many), &identity("reporter")).expect("seals");
        assert_eq!(
            verify_report(&bytes, 10, Timestamp(1000), 60),
            Err(ReportError::TooManyEntries { count: 11, max: 10 })
        );
        let bytes = seal_report(&report(vec![]), &identity("reporter")).expect("seals");
        assert!(matches!(
            verify_report(&bytes, 10, Timestamp(800), 60),
            Err(ReportError::FromTheFuture { .. })
        ));
    }

    #[test]
    fn score_out_of_range_is_refused_at_decode() {
        // A score of 1001 cannot be represented: hand-build the body.
        let mut r = report(vec![entry("a", 1000)]);
        r.entries[0].score = Score::MAX;
        let bytes = seal_report(&r, &identity("reporter")).expect("seals");
        // Patch the encoded 1000 (19 03e8) to 1001 (19 03e9): decode must refuse.
        let pos = bytes
            .windows(3)
            .position(|w| w == [0x19, 0x03, 0xe8])
            .expect("score present");
        let mut patched = bytes.clone();
        patched[pos + 2] = 0xe9;
        let got = verify_report(&patched, 1024, Timestamp(1000), 60);
        assert!(
            matches!(
                got,
                Err(ReportError::Envelope(EnvelopeError::InvalidBody { .. }))
            ),
            "{got:?}"
        );
    }
}
