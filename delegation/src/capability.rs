//! Capabilities: a resource pattern and the actions allowed on it.
//!
//! A capability is `{ resource, actions }`: `resource` is a mesh-iatp
//! [`CapabilityPattern`] (`tools/github/*`: `*` is one or more whole
//! segments), `actions` a set of action names (`["read", "write"]`,
//! each `[a-z0-9_-]{1,32}`) or `["*"]` for every action. A capability set
//! denotes the set of `(resource, action)` pairs its members allow.
//!
//! Set A is **within** set B when every pair A allows, B allows. Because a
//! wildcard stands for infinitely many segments (and `*` for infinitely many
//! actions), that holds exactly when, for every capability `a` in A and every
//! action `x` of `a`, some single capability `b` in B allows `x` (or all
//! actions) and `b.resource` contains `a.resource`; `a`'s `*` actions are
//! covered only by a `b` with `*` actions. This is the attenuation rule.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use mesh_iatp::CapabilityPattern;

/// Most actions one capability may list.
pub const MAX_ACTIONS: usize = 16;
/// Most capabilities one grant or certificate may carry.
pub const MAX_CAPABILITIES: usize = 32;

/// Why a capability is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// No actions, or more than [`MAX_ACTIONS`].
    #[error("a capability needs 1 to {MAX_ACTIONS} actions")]
    ActionCount,
    /// An action name outside `[a-z0-9_-]{1,32}` (or `*` mixed with names).
    #[error("invalid action {0:?}: use a-z 0-9 _ - (1 to 32), or `*` alone")]
    BadAction(String),
    /// The same action twice.
    #[error("action {0:?} listed twice")]
    DuplicateAction(String),
    /// More than [`MAX_CAPABILITIES`].
    #[error("more than {MAX_CAPABILITIES} capabilities")]
    TooMany,
}

/// The actions a capability allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actions {
    /// Every action (`["*"]`).
    All,
    /// Exactly these.
    Only(BTreeSet<String>),
}

impl Actions {
    /// Does this allow action `a`?
    pub fn allows(&self, a: &str) -> bool {
        match self {
            Actions::All => true,
            Actions::Only(set) => set.contains(a),
        }
    }
}

/// A resource pattern with the actions allowed on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "WireCapability", into = "WireCapability")]
pub struct Capability {
    /// Which resources.
    pub resource: CapabilityPattern,
    /// Which actions on them.
    pub actions: Actions,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCapability {
    resource: CapabilityPattern,
    actions: Vec<String>,
}

impl TryFrom<WireCapability> for Capability {
    type Error = CapabilityError;
    fn try_from(w: WireCapability) -> Result<Self, Self::Error> {
        Capability::new(
            w.resource,
            &w.actions.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }
}

impl From<Capability> for WireCapability {
    fn from(c: Capability) -> Self {
        WireCapability {
            resource: c.resource,
            actions: match c.actions {
                Actions::All => vec!["*".into()],
                Actions::Only(set) => set.into_iter().collect(),
            },
        }
    }
}

fn valid_action(a: &str) -> bool {
    (1..=32).contains(&a.len())
        && a.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Capability {
    /// A capability; `actions` is `["*"]` or distinct action names.
    pub fn new(resource: CapabilityPattern, actions: &[&str]) -> Result<Self, CapabilityError> {
        if actions.is_empty() || actions.len() > MAX_ACTIONS {
            return Err(CapabilityError::ActionCount);
        }
        if actions == ["*"] {
            return Ok(Capability {
                resource,
                actions: Actions::All,
            });
        }
        let mut set = BTreeSet::new();
        for a in actions {
            if !valid_action(a) {
                return Err(CapabilityError::BadAction((*a).into()));
            }
            if !set.insert((*a).to_owned()) {
                return Err(CapabilityError::DuplicateAction((*a).into()));
            }
        }
        Ok(Capability {
            resource,
            actions: Actions::Only(set),
        })
    }

    /// Parse `"resource:action,action"` (e.g. `tools/github/*:read,write`),
    /// the form used in configs and the CLI.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (res, acts) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected RESOURCE:ACTION[,ACTION…]"))?;
        let resource = CapabilityPattern::parse(res).map_err(|e| e.to_string())?;
        let actions: Vec<&str> = acts.split(',').collect();
        Capability::new(resource, &actions).map_err(|e| e.to_string())
    }

    /// Does this capability allow `action` on the concrete `resource`?
    pub fn allows(&self, resource: &CapabilityPattern, action: &str) -> bool {
        self.actions.allows(action) && self.resource.contains(resource)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.actions {
            Actions::All => write!(f, "{}:*", self.resource),
            Actions::Only(set) => {
                let list: Vec<&str> = set.iter().map(String::as_str).collect();
                write!(f, "{}:{}", self.resource, list.join(","))
            }
        }
    }
}

/// Check a list's size (after decoding; the envelope size bounds it first).
pub fn check_count(caps: &[Capability]) -> Result<(), CapabilityError> {
    if caps.len() > MAX_CAPABILITIES {
        return Err(CapabilityError::TooMany);
    }
    Ok(())
}

/// Is every pair `inner` allows also allowed by `outer`? Returns the first
/// capability of `inner` that is not covered, if any.
pub fn first_not_within<'a>(
    inner: &'a [Capability],
    outer: &[Capability],
) -> Option<&'a Capability> {
    inner.iter().find(|a| !covered(a, outer))
}

/// Is the whole set `inner` within `outer`?
pub fn within(inner: &[Capability], outer: &[Capability]) -> bool {
    first_not_within(inner, outer).is_none()
}

fn covered(a: &Capability, outer: &[Capability]) -> bool {
    match &a.actions {
        Actions::All => outer
            .iter()
            .any(|b| b.actions == Actions::All && b.resource.contains(&a.resource)),
        Actions::Only(set) => set.iter().all(|x| {
            outer
                .iter()
                .any(|b| b.actions.allows(x) && b.resource.contains(&a.resource))
        }),
    }
}

/// Does the set allow `action` on concrete `resource`?
pub fn allows(caps: &[Capability], resource: &CapabilityPattern, action: &str) -> bool {
    caps.iter().any(|c| c.allows(resource, action))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cap(s: &str) -> Capability {
        Capability::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn examples_from_the_docs() {
        let parent = [cap("tools/github/*:read,write")];
        assert!(within(&[cap("tools/github/repo:read")], &parent));
        assert!(within(&[cap("tools/github/*:write")], &parent));
        assert!(!within(&[cap("tools/github/repo:admin")], &parent));
        assert!(!within(&[cap("tools/*:read")], &parent));
        assert!(!within(&[cap("tools/github/repo:*")], &parent));
        // Actions can be covered by different parents.
        let split = [cap("a/x:read"), cap("a/*:write")];
        assert!(within(&[cap("a/x:read,write")], &split));
        assert!(within(&[cap("a/x:*")], &[cap("a/*:*")]));
    }

    #[test]
    fn malformed_capabilities_are_refused() {
        assert!(Capability::parse("tools/x").is_err());
        assert!(Capability::parse("tools/x:").is_err());
        assert!(Capability::parse("tools/x:Read").is_err());
        assert!(Capability::parse("tools/x:read,read").is_err());
        assert!(Capability::parse("tools/x:*,read").is_err());
        assert!(Capability::parse("Tools:read").is_err());
    }

    // ---- brute-force model for the property test ----
    // Patterns use segments {a, b}; the universe adds segment `z` and
    // action `other`, which no pattern names: they stand for the infinitely
    // many segments and actions a wildcard covers.
    const ACTIONS: [&str; 3] = ["read", "write", "other"];

    fn universe() -> Vec<(String, &'static str)> {
        let mut paths: Vec<String> = vec![];
        let mut layer: Vec<String> = vec![String::new()];
        for _ in 0..4 {
            let mut next = vec![];
            for p in &layer {
                for s in ["a", "b", "z"] {
                    next.push(if p.is_empty() {
                        s.to_string()
                    } else {
                        format!("{p}/{s}")
                    });
                }
            }
            paths.extend(next.iter().cloned());
            layer = next;
        }
        paths
            .into_iter()
            .flat_map(|p| ACTIONS.iter().map(move |a| (p.clone(), *a)))
            .collect()
    }

    fn denotes(caps: &[Capability], pair: &(String, &str)) -> bool {
        let r = CapabilityPattern::parse(&pair.0).unwrap_or_else(|e| panic!("{e}"));
        allows(caps, &r, pair.1)
    }

    fn arb_cap() -> impl Strategy<Value = Capability> {
        let resource = (
            prop::collection::vec(prop::sample::select(vec!["a", "b"]), 0..3),
            any::<bool>(),
        )
            .prop_filter_map("pattern", |(segs, wild)| {
                let mut s = segs.join("/");
                if wild {
                    s = if s.is_empty() {
                        "*".into()
                    } else {
                        format!("{s}/*")
                    };
                }
                CapabilityPattern::parse(&s).ok()
            });
        let actions = prop_oneof![
            Just(vec!["*"]),
            Just(vec!["read"]),
            Just(vec!["write"]),
            Just(vec!["read", "write"]),
        ];
        (resource, actions).prop_filter_map("capability", |(r, a)| Capability::new(r, &a).ok())
    }

    proptest! {
        #[test]
        fn within_is_exactly_set_inclusion(
            inner in prop::collection::vec(arb_cap(), 0..4),
            outer in prop::collection::vec(arb_cap(), 0..4),
        ) {
            let subset = universe()
                .iter()
                .filter(|p| denotes(&inner, p))
                .all(|p| denotes(&outer, p));
            prop_assert_eq!(within(&inner, &outer), subset);
        }
    }
}
