//! Every tunable of the trust engine, in one place, with documented defaults.
//!
//! Loaded from TOML (all keys optional; unknown keys are errors) and
//! validated; every error names the field and, when it came from a file, the
//! line and column. docs/TRUST.md explains what each parameter does.

use serde::{Deserialize, Serialize};

use mesh_iatp::Did;
use mesh_iatp::toml_location::{line_col, locate};

use crate::evidence::{Dimension, EvidenceKind};
use crate::tier::Tiers;

/// All trust parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// Evidence loses half its weight every this many seconds (default 7 days).
    pub half_life_secs: u64,
    /// Strength of the prior (the org's initial trust) in each dimension, in
    /// units of evidence weight (default 2).
    pub prior_strength: f64,
    /// Direct evidence mass at which direct and global opinions weigh the
    /// same in the final blend (default 10).
    pub blend_evidence: f64,
    /// Initial score of an agent whose org we do not know (default 300).
    pub unknown_initial: u16,
    /// Ceiling of an agent whose org we do not know (default 500).
    pub unknown_ceiling: u16,
    /// How many recent evidence items `explain` keeps per subject (default 32).
    pub recent_evidence_kept: usize,
    /// DIDs trusted a priori in aggregation, besides this node itself.
    pub anchors: Vec<Did>,
    /// Weight of each dimension in a score; must sum to 1.
    pub dimensions: DimensionWeights,
    /// Weight of one item of each (non-severe) evidence kind.
    pub evidence: EvidenceWeights,
    /// Gossip and EigenTrust parameters.
    pub aggregation: AggregationConfig,
    /// Tier cut-offs.
    pub tiers: Tiers,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            half_life_secs: 7 * 86_400,
            prior_strength: 2.0,
            blend_evidence: 10.0,
            unknown_initial: 300,
            unknown_ceiling: 500,
            recent_evidence_kept: 32,
            anchors: Vec::new(),
            dimensions: DimensionWeights::default(),
            evidence: EvidenceWeights::default(),
            aggregation: AggregationConfig::default(),
            tiers: Tiers::default(),
        }
    }
}

/// Weights of the five dimensions (reference toolkit defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DimensionWeights {
    /// Default 0.25.
    pub policy_compliance: f64,
    /// Default 0.25.
    pub security_posture: f64,
    /// Default 0.20.
    pub output_quality: f64,
    /// Default 0.15.
    pub resource_efficiency: f64,
    /// Default 0.15.
    pub collaboration_health: f64,
}

impl Default for DimensionWeights {
    fn default() -> Self {
        DimensionWeights {
            policy_compliance: 0.25,
            security_posture: 0.25,
            output_quality: 0.20,
            resource_efficiency: 0.15,
            collaboration_health: 0.15,
        }
    }
}

impl DimensionWeights {
    /// The weight of `d`.
    pub fn weight(&self, d: Dimension) -> f64 {
        match d {
            Dimension::PolicyCompliance => self.policy_compliance,
            Dimension::SecurityPosture => self.security_posture,
            Dimension::OutputQuality => self.output_quality,
            Dimension::ResourceEfficiency => self.resource_efficiency,
            Dimension::CollaborationHealth => self.collaboration_health,
        }
    }
}

/// Weight of one item of evidence of each kind (a magnitude; the kind says
/// whether it counts for or against). Severe kinds have no weight: they set
/// the score to 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceWeights {
    /// Default 1.0.
    pub task_success: f64,
    /// Default 2.0: failures weigh more than successes, so trust is lost
    /// faster than it is won.
    pub task_failure: f64,
    /// Default 1.0.
    pub delegation_honoured: f64,
    /// Default 4.0.
    pub delegation_abused: f64,
    /// Default 0.5.
    pub handshake_completed: f64,
    /// Default 1.0.
    pub handshake_failure: f64,
    /// Default 3.0.
    pub protocol_violation: f64,
    /// Default 5.0.
    pub revoked_for_cause: f64,
    /// Default 1.0.
    pub rate_limit_exceeded: f64,
}

impl Default for EvidenceWeights {
    fn default() -> Self {
        EvidenceWeights {
            task_success: 1.0,
            task_failure: 2.0,
            delegation_honoured: 1.0,
            delegation_abused: 4.0,
            handshake_completed: 0.5,
            handshake_failure: 1.0,
            protocol_violation: 3.0,
            revoked_for_cause: 5.0,
            rate_limit_exceeded: 1.0,
        }
    }
}

impl EvidenceWeights {
    /// The weight of one item of `kind` (0 for severe kinds).
    pub fn weight(&self, kind: EvidenceKind) -> f64 {
        match kind {
            EvidenceKind::TaskSuccess => self.task_success,
            EvidenceKind::TaskFailure => self.task_failure,
            EvidenceKind::DelegationHonoured => self.delegation_honoured,
            EvidenceKind::DelegationAbused => self.delegation_abused,
            EvidenceKind::HandshakeCompleted => self.handshake_completed,
            EvidenceKind::HandshakeFailure => self.handshake_failure,
            EvidenceKind::ProtocolViolation => self.protocol_violation,
            EvidenceKind::RevokedForCause => self.revoked_for_cause,
            EvidenceKind::RateLimitExceeded => self.rate_limit_exceeded,
            EvidenceKind::InvalidSignature | EvidenceKind::LedgerEquivocation => 0.0,
        }
    }

    fn fields(&self) -> [(&'static str, f64); 9] {
        [
            ("task_success", self.task_success),
            ("task_failure", self.task_failure),
            ("delegation_honoured", self.delegation_honoured),
            ("delegation_abused", self.delegation_abused),
            ("handshake_completed", self.handshake_completed),
            ("handshake_failure", self.handshake_failure),
            ("protocol_violation", self.protocol_violation),
            ("revoked_for_cause", self.revoked_for_cause),
            ("rate_limit_exceeded", self.rate_limit_exceeded),
        ]
    }
}

/// Gossip and global-trust (EigenTrust) parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregationConfig {
    /// EigenTrust damping `a`: share of trust mass returned to the
    /// pre-trusted set each iteration (default 0.15).
    pub damping: f64,
    /// Stop iterating when the L1 change is below this (default 1e-9).
    pub epsilon: f64,
    /// Stop after this many iterations regardless (default 200).
    pub max_iterations: u32,
    /// Opinions at or below this score endorse nobody: only the part of a
    /// score above it passes trust on (default 500).
    pub neutral: u16,
    /// Weight of the prior against reported opinions in a global score, in
    /// units of one average reporter's credibility (default 1).
    pub prior_mass: f64,
    /// Most entries one trust report may carry (default 1024).
    pub max_report_entries: usize,
    /// Most reporters whose latest report is held (default 4096). A new
    /// reporter beyond it displaces the least credible one held, if that
    /// one is no more credible than the newcomer; otherwise it is refused.
    pub max_reporters: usize,
    /// Of those, most reporters of credibility 0 (not pre-trusted) held
    /// (default 256). Their reports weigh nothing until someone credible
    /// vouches for them, so a flood of fresh keys fills this quota, not the
    /// store; a new one beyond it is refused (`crowded`).
    pub max_unproven_reporters: usize,
    /// Reports older than this are left out of aggregation (default 1 day).
    pub report_ttl_secs: u64,
    /// Reports dated further than this in the future are refused (default 60 s).
    pub max_clock_skew_secs: u64,
    /// How hard disagreement with the pre-trusted peers' own opinions
    /// discounts a reporter (TRUST.md §5): its opinions weigh `agreement^k`
    /// (default 2; 0 turns the discount off).
    pub agreement_power: f64,
    /// Evidence a claim is always believed up to, and all a reporter's
    /// first report is (TRUST.md §5, "Claims"; default 10 = the default
    /// `blend_evidence`, so a first claim weighs at most half).
    pub claim_floor: f64,
    /// How fast a reporter's believed claim about one subject may grow, in
    /// evidence mass per hour between its reports (default 60: ten
    /// failures, or twenty successes, an hour of one subject).
    pub claim_rate_per_hour: f64,
}

impl Default for AggregationConfig {
    fn default() -> Self {
        AggregationConfig {
            damping: 0.15,
            epsilon: 1e-9,
            max_iterations: 200,
            neutral: 500,
            prior_mass: 1.0,
            max_report_entries: 1024,
            max_reporters: 4096,
            max_unproven_reporters: 256,
            report_ttl_secs: 86_400,
            max_clock_skew_secs: 60,
            agreement_power: 2.0,
            claim_floor: 10.0,
            claim_rate_per_hour: 60.0,
        }
    }
}

/// Why a trust configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// TOML syntax, unknown key or wrong type.
    #[error("trust config, line {line} column {column}: {message}")]
    Toml {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message (names the key).
        message: String,
    },
    /// A value that parses but is not acceptable.
    #[error("trust config{}: `{field}` {reason}", at.map(|(l, c)| format!(", line {l} column {c}")).unwrap_or_default())]
    Invalid {
        /// Dotted path, e.g. `aggregation.damping`.
        field: String,
        /// What is wrong.
        reason: String,
        /// Line and column, when loaded from text.
        at: Option<(usize, usize)>,
    },
}

impl TrustConfig {
    /// Parse and validate TOML.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: TrustConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = line_col(text, e.span().unwrap_or(0..0));
            ConfigError::Toml {
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        config.validate().map_err(|e| match e {
            ConfigError::Invalid { field, reason, .. } => {
                let path: Vec<&str> = field.split('.').collect();
                ConfigError::Invalid {
                    at: locate(text, &path),
                    field,
                    reason,
                }
            }
            other => other,
        })?;
        Ok(config)
    }

    /// Check every constraint; the error names the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, reason: String| ConfigError::Invalid {
            field: field.into(),
            reason,
            at: None,
        };
        if self.half_life_secs == 0 {
            return Err(invalid("half_life_secs", "must be at least 1".into()));
        }
        for (field, v) in [
            ("prior_strength", self.prior_strength),
            ("blend_evidence", self.blend_evidence),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(field, format!("= {v} must be a positive number")));
            }
        }
        for (field, v) in [
            ("unknown_initial", self.unknown_initial),
            ("unknown_ceiling", self.unknown_ceiling),
        ] {
            if v > 1000 {
                return Err(invalid(field, format!("= {v} is out of range (0 to 1000)")));
            }
        }
        if self.unknown_initial > self.unknown_ceiling {
            return Err(invalid(
                "unknown_initial",
                format!(
                    "= {} is above unknown_ceiling = {}",
                    self.unknown_initial, self.unknown_ceiling
                ),
            ));
        }
        let mut sum = 0.0;
        for d in Dimension::ALL {
            let w = self.dimensions.weight(d);
            if !(w.is_finite() && w >= 0.0) {
                return Err(invalid(
                    &format!("dimensions.{}", d.name()),
                    format!("= {w} must be ≥ 0"),
                ));
            }
            sum += w;
        }
        if (sum - 1.0).abs() > 1e-9 {
            return Err(invalid(
                "dimensions",
                format!("weights sum to {sum}, not 1"),
            ));
        }
        for (name, w) in self.evidence.fields() {
            if !(w.is_finite() && w >= 0.0) {
                return Err(invalid(
                    &format!("evidence.{name}"),
                    format!("= {w} must be ≥ 0"),
                ));
            }
        }
        let a = &self.aggregation;
        if !(a.damping > 0.0 && a.damping <= 1.0) {
            return Err(invalid(
                "aggregation.damping",
                format!("= {} must be in (0, 1]", a.damping),
            ));
        }
        if !(a.epsilon.is_finite() && a.epsilon > 0.0) {
            return Err(invalid(
                "aggregation.epsilon",
                format!("= {} must be positive", a.epsilon),
            ));
        }
        if a.max_iterations == 0 {
            return Err(invalid(
                "aggregation.max_iterations",
                "must be at least 1".into(),
            ));
        }
        if a.neutral >= 1000 {
            return Err(invalid(
                "aggregation.neutral",
                format!("= {} must be below 1000", a.neutral),
            ));
        }
        if !(a.prior_mass.is_finite() && a.prior_mass >= 0.0) {
            return Err(invalid(
                "aggregation.prior_mass",
                format!("= {} must be ≥ 0", a.prior_mass),
            ));
        }
        if !(a.agreement_power.is_finite() && (0.0..=8.0).contains(&a.agreement_power)) {
            return Err(invalid(
                "aggregation.agreement_power",
                format!("= {} must be in [0, 8]", a.agreement_power),
            ));
        }
        for (field, v) in [
            ("aggregation.claim_floor", a.claim_floor),
            ("aggregation.claim_rate_per_hour", a.claim_rate_per_hour),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(field, format!("= {v} must be a number ≥ 0")));
            }
        }
        if a.max_report_entries == 0 || a.max_report_entries > crate::report::MAX_REPORT_ENTRIES {
            return Err(invalid(
                "aggregation.max_report_entries",
                format!(
                    "= {} must be in 1..={}",
                    a.max_report_entries,
                    crate::report::MAX_REPORT_ENTRIES
                ),
            ));
        }
        if a.max_reporters == 0 {
            return Err(invalid(
                "aggregation.max_reporters",
                "= 0 must be at least 1".into(),
            ));
        }
        self.tiers
            .check()
            .map_err(|reason| invalid("tiers", reason.into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_empty_toml_gives_defaults() {
        TrustConfig::default().validate().expect("defaults valid");
        assert_eq!(
            TrustConfig::from_toml_str("").expect("empty ok"),
            TrustConfig::default()
        );
    }

    #[test]
    fn partial_toml_overrides_only_what_it_names() {
        let c = TrustConfig::from_toml_str("half_life_secs = 3600\n[aggregation]\ndamping = 0.3\n")
            .expect("valid");
        assert_eq!(c.half_life_secs, 3600);
        assert_eq!(c.aggregation.damping, 0.3);
        assert_eq!(c.aggregation.neutral, 500);
        assert_eq!(c.dimensions, DimensionWeights::default());
    }

    #[test]
    fn invalid_values_name_field_line_and_column() {
        let err =
            TrustConfig::from_toml_str("half_life_secs = 60\n\n[aggregation]\ndamping = 1.5\n")
                .expect_err("refused");
        assert_eq!(
            err,
            ConfigError::Invalid {
                field: "aggregation.damping".into(),
                reason: "= 1.5 must be in (0, 1]".into(),
                at: Some((4, 11)),
            }
        );
        assert!(err.to_string().contains("line 4 column 11"));
        let err = TrustConfig::from_toml_str("[dimensions]\noutput_quality = 0.5\n")
            .expect_err("refused");
        assert!(
            matches!(err, ConfigError::Invalid { ref field, .. } if field == "dimensions"),
            "{err}"
        );
        let err = TrustConfig::from_toml_str("[tiers]\ntrusted = 400\n").expect_err("refused");
        assert!(
            matches!(err, ConfigError::Invalid { ref field, .. } if field == "tiers"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_with_a_line() {
        let err = TrustConfig::from_toml_str("half_life = 3\n").expect_err("refused");
        assert!(
            matches!(err, ConfigError::Toml { line: 1, ref message, .. } if message.contains("half_life")),
            "{err}"
        );
        let err = TrustConfig::from_toml_str("\n[evidence]\ntask_success = \"lots\"\n")
            .expect_err("refused");
        assert!(matches!(err, ConfigError::Toml { line: 3, .. }), "{err}");
    }

    #[test]
    fn anchors_must_be_dids() {
        let err =
            TrustConfig::from_toml_str("anchors = [\"did:key:nope\"]\n").expect_err("refused");
        assert!(matches!(err, ConfigError::Toml { line: 1, .. }), "{err}");
    }
}
