//! Trust bundles: which organisations a node accepts, and on what terms.
//!
//! Federation between organisations is configuration, not code: a node's
//! bundle lists the org root DIDs whose agents it will talk to, each with the
//! trust a new agent of that org starts at, the most it can ever reach here,
//! and the capabilities its agents may offer. Bundles are TOML:
//!
//! ```toml
//! [[org]]
//! name = "acme"
//! root = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
//! initial_trust = 500     # 0..=1000, where a new acme agent starts
//! trust_ceiling = 900     # 0..=1000, never scored above this here
//! capabilities = ["tools/*", "search"]
//! ```
//!
//! Every mistake is reported with its line, column and field.

use std::collections::HashMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::toml_location::line_col;

use crate::capability::CapabilityPattern;
use crate::{Did, Score};

/// The terms on which one organisation's agents are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgPolicy {
    /// Short name for logs and dashboards.
    pub name: String,
    /// The org root DID that signs its agents' credentials.
    pub root: Did,
    /// Score a new agent of this org starts at.
    pub initial_trust: Score,
    /// Highest score an agent of this org can have on this node.
    pub trust_ceiling: Score,
    /// Capabilities this org's agents may offer and be granted here.
    pub capabilities: Vec<CapabilityPattern>,
}

/// Why a bundle is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// TOML syntax, an unknown or missing field, or a wrong value type.
    #[error("trust bundle, line {line} column {column}: {message}")]
    Toml {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's explanation (it names the field).
        message: String,
    },
    /// A value that parses but is not acceptable.
    #[error("trust bundle, line {line} column {column}: `{field}` {reason}")]
    Invalid {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Path of the offending field, e.g. `org[1].trust_ceiling`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two entries for one org root (built in code, so no line).
    #[error("trust bundle lists org root {0} twice")]
    DuplicateRoot(Did),
}

/// The set of organisations a node accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustBundle {
    orgs: Vec<OrgPolicy>,
    by_root: HashMap<Did, usize>,
}

impl TrustBundle {
    /// A bundle from policies built in code.
    pub fn new(orgs: Vec<OrgPolicy>) -> Result<Self, BundleError> {
        let mut by_root = HashMap::with_capacity(orgs.len());
        for (i, org) in orgs.iter().enumerate() {
            if by_root.insert(org.root.clone(), i).is_some() {
                return Err(BundleError::DuplicateRoot(org.root.clone()));
            }
        }
        Ok(TrustBundle { orgs, by_root })
    }

    /// Parse and validate bundle TOML.
    pub fn from_toml_str(text: &str) -> Result<Self, BundleError> {
        let raw: RawBundle = toml::from_str(text).map_err(|e| {
            let (line, column) = line_col(text, e.span().unwrap_or(0..0));
            let mut message = e.message().trim().to_owned();
            // `[org]` makes one table where a list of them is wanted.
            if message.contains("expected a sequence") {
                message.push_str(
                    "; write each organisation as its own `[[org]]` table (double brackets)",
                );
            }
            BundleError::Toml {
                line,
                column,
                message,
            }
        })?;
        let mut orgs = Vec::with_capacity(raw.org.len());
        let mut seen_roots: HashMap<Did, usize> = HashMap::new();
        let mut seen_names: HashMap<String, usize> = HashMap::new();
        for (i, o) in raw.org.into_iter().enumerate() {
            let invalid = |span: Range<usize>, field: &str, reason: String| {
                let (line, column) = line_col(text, span);
                BundleError::Invalid {
                    line,
                    column,
                    field: format!("org[{i}].{field}"),
                    reason,
                }
            };
            let name = o.name.get_ref().trim().to_owned();
            if name.is_empty() {
                return Err(invalid(o.name.span(), "name", "must not be empty".into()));
            }
            if let Some(prev) = seen_names.insert(name.clone(), i) {
                return Err(invalid(
                    o.name.span(),
                    "name",
                    format!("{name:?} is already used by org[{prev}]"),
                ));
            }
            let root = Did::parse(o.root.get_ref())
                .map_err(|e| invalid(o.root.span(), "root", format!("is not a usable DID: {e}")))?;
            if let Some(prev) = seen_roots.insert(root.clone(), i) {
                return Err(invalid(
                    o.root.span(),
                    "root",
                    format!("is already listed as org[{prev}]"),
                ));
            }
            let score = |v: &Spanned<i64>, field: &str| {
                u16::try_from(*v.get_ref())
                    .ok()
                    .and_then(|n| Score::new(n).ok())
                    .ok_or_else(|| {
                        invalid(
                            v.span(),
                            field,
                            format!("= {} is out of range (0 to 1000)", v.get_ref()),
                        )
                    })
            };
            let initial_trust = score(&o.initial_trust, "initial_trust")?;
            let trust_ceiling = score(&o.trust_ceiling, "trust_ceiling")?;
            if initial_trust > trust_ceiling {
                return Err(invalid(
                    o.initial_trust.span(),
                    "initial_trust",
                    format!("= {initial_trust} is above trust_ceiling = {trust_ceiling}"),
                ));
            }
            let mut capabilities = Vec::with_capacity(o.capabilities.len());
            for (j, c) in o.capabilities.iter().enumerate() {
                capabilities.push(CapabilityPattern::parse(c.get_ref()).map_err(|e| {
                    invalid(c.span(), &format!("capabilities[{j}]"), e.to_string())
                })?);
            }
            orgs.push(OrgPolicy {
                name,
                root,
                initial_trust,
                trust_ceiling,
                capabilities,
            });
        }
        Self::new(orgs)
    }

    /// The policy for agents vouched for by `org_root`, if it is accepted.
    pub fn policy_for(&self, org_root: &Did) -> Option<&OrgPolicy> {
        self.by_root.get(org_root).map(|&i| &self.orgs[i])
    }

    /// All accepted organisations, in file order.
    pub fn orgs(&self) -> &[OrgPolicy] {
        &self.orgs
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    #[serde(default)]
    org: Vec<RawOrg>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrg {
    name: Spanned<String>,
    root: Spanned<String>,
    initial_trust: Spanned<i64>,
    trust_ceiling: Spanned<i64>,
    #[serde(default)]
    capabilities: Vec<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACME: &str = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
    const GLOBEX: &str = "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG";

    fn two_orgs() -> String {
        format!(
            "[[org]]\nname = \"acme\"\nroot = \"{ACME}\"\ninitial_trust = 500\ntrust_ceiling = 900\n\
             capabilities = [\"tools/*\", \"search\"]\n\n\
             [[org]]\nname = \"globex\"\nroot = \"{GLOBEX}\"\ninitial_trust = 300\ntrust_ceiling = 700\n"
        )
    }

    #[test]
    fn loads_a_valid_bundle() {
        let b = TrustBundle::from_toml_str(&two_orgs()).expect("valid");
        assert_eq!(b.orgs().len(), 2);
        let acme = b.policy_for(&Did::parse(ACME).expect("did")).expect("acme");
        assert_eq!(acme.name, "acme");
        assert_eq!(acme.initial_trust.get(), 500);
        assert_eq!(acme.capabilities.len(), 2);
        let globex = b
            .policy_for(&Did::parse(GLOBEX).expect("did"))
            .expect("globex");
        assert!(globex.capabilities.is_empty());
    }

    #[test]
    fn out_of_range_score_names_line_and_field() {
        let text = two_orgs().replace("trust_ceiling = 700", "trust_ceiling = 1200");
        match TrustBundle::from_toml_str(&text) {
            Err(BundleError::Invalid { line, field, .. }) => {
                assert_eq!(line, 12);
                assert_eq!(field, "org[1].trust_ceiling");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn initial_above_ceiling_is_refused() {
        let text = two_orgs().replace("initial_trust = 500", "initial_trust = 950");
        assert!(matches!(
            TrustBundle::from_toml_str(&text),
            Err(BundleError::Invalid { line: 4, ref field, .. }) if field == "org[0].initial_trust"
        ));
    }

    #[test]
    fn bad_did_and_bad_capability_name_their_field() {
        let text = two_orgs().replace(GLOBEX, "did:key:zNotAKey");
        assert!(matches!(
            TrustBundle::from_toml_str(&text),
            Err(BundleError::Invalid { line: 10, ref field, .. }) if field == "org[1].root"
        ));
        let text = two_orgs().replace("\"search\"", "\"Search Engine\"");
        assert!(matches!(
            TrustBundle::from_toml_str(&text),
            Err(BundleError::Invalid { line: 6, ref field, .. }) if field == "org[0].capabilities[1]"
        ));
    }

    #[test]
    fn duplicates_are_refused() {
        let text = two_orgs().replace(GLOBEX, ACME);
        assert!(matches!(
            TrustBundle::from_toml_str(&text),
            Err(BundleError::Invalid { ref field, .. }) if field == "org[1].root"
        ));
        let text = two_orgs().replace("\"globex\"", "\"acme\"");
        assert!(matches!(
            TrustBundle::from_toml_str(&text),
            Err(BundleError::Invalid { ref field, .. }) if field == "org[1].name"
        ));
    }

    #[test]
    fn unknown_and_missing_fields_give_line_and_name() {
        let text = two_orgs().replace("trust_ceiling = 900", "trust_ceilin = 900");
        match TrustBundle::from_toml_str(&text) {
            Err(BundleError::Toml { line, message, .. }) => {
                assert_eq!(line, 5);
                assert!(message.contains("trust_ceilin"), "{message}");
            }
            other => panic!("expected Toml error, got {other:?}"),
        }
        let text = two_orgs().replace("initial_trust = 300\n", "");
        match TrustBundle::from_toml_str(&text) {
            Err(BundleError::Toml { message, .. }) => {
                assert!(message.contains("initial_trust"), "{message}");
            }
            other => panic!("expected Toml error, got {other:?}"),
        }
        assert!(matches!(
            TrustBundle::from_toml_str("[[org]\n"),
            Err(BundleError::Toml { line: 1, .. })
        ));
    }
}
