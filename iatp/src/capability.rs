//! Capability names and the patterns that allow them.
//!
//! A capability is a `/`-separated path of segments, each of
//! `[a-z0-9._-]+`, e.g. `tools/github/read`. A pattern is either an exact
//! capability or a prefix followed by `/*` (or a lone `*`), where `*` stands
//! for **one or more** further segments: `tools/*` allows `tools/github` and
//! `tools/github/read` but not `tools` itself. Matching is by whole segments,
//! never by substring, so `tools/*` does not allow `toolshed/x`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest capability or pattern accepted, in bytes.
pub const MAX_CAPABILITY_LEN: usize = 128;

/// Why a string is not a capability pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// Empty, or longer than [`MAX_CAPABILITY_LEN`].
    #[error("capability must be 1 to {MAX_CAPABILITY_LEN} bytes long")]
    BadLength,
    /// A segment is empty or holds a character outside `[a-z0-9._-]`.
    #[error("capability {0:?}: segments must be non-empty and use only a-z 0-9 . _ -")]
    BadSegment(String),
    /// `*` somewhere other than as the whole last segment.
    #[error("capability {0:?}: `*` may only be the whole last segment")]
    MisplacedWildcard(String),
}

/// A capability pattern (an exact capability is a pattern without `*`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapabilityPattern {
    text: String,
    /// Number of fixed leading segments.
    fixed: usize,
    wildcard: bool,
}

impl CapabilityPattern {
    /// Parse and validate.
    pub fn parse(s: &str) -> Result<Self, CapabilityError> {
        if s.is_empty() || s.len() > MAX_CAPABILITY_LEN {
            return Err(CapabilityError::BadLength);
        }
        let segments: Vec<&str> = s.split('/').collect();
        let last = segments.len() - 1;
        for (i, seg) in segments.iter().enumerate() {
            if *seg == "*" {
                if i != last {
                    return Err(CapabilityError::MisplacedWildcard(s.into()));
                }
            } else if seg.contains('*') {
                return Err(CapabilityError::MisplacedWildcard(s.into()));
            } else if seg.is_empty()
                || !seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            {
                return Err(CapabilityError::BadSegment(s.into()));
            }
        }
        let wildcard = segments[last] == "*";
        Ok(CapabilityPattern {
            text: s.to_owned(),
            fixed: if wildcard { last } else { segments.len() },
            wildcard,
        })
    }

    fn fixed_segments(&self) -> impl Iterator<Item = &str> {
        self.text.split('/').take(self.fixed)
    }

    /// Does this pattern allow everything `inner` allows? (Set inclusion:
    /// the basis of attenuation checks.)
    pub fn contains(&self, inner: &CapabilityPattern) -> bool {
        let prefix_ok = inner.fixed >= self.fixed
            && self
                .fixed_segments()
                .zip(inner.fixed_segments())
                .all(|(a, b)| a == b);
        if !prefix_ok {
            return false;
        }
        match (self.wildcard, inner.wildcard) {
            (false, _) => !inner.wildcard && inner.fixed == self.fixed,
            // `a/*` holds `a/b` and `a/b/*` and `a/*`, not `a`.
            (true, false) => inner.fixed > self.fixed,
            (true, true) => inner.fixed >= self.fixed,
        }
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Is `pattern` within at least one of `allowed`?
pub fn allowed_by(pattern: &CapabilityPattern, allowed: &[CapabilityPattern]) -> bool {
    allowed.iter().any(|a| a.contains(pattern))
}

impl fmt::Display for CapabilityPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for CapabilityPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl FromStr for CapabilityPattern {
    type Err = CapabilityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for CapabilityPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for CapabilityPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> CapabilityPattern {
        CapabilityPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn wildcard_means_one_or_more_whole_segments() {
        assert!(p("tools/*").contains(&p("tools/github")));
        assert!(p("tools/*").contains(&p("tools/github/read")));
        assert!(p("tools/*").contains(&p("tools/github/*")));
        assert!(p("tools/*").contains(&p("tools/*")));
        assert!(!p("tools/*").contains(&p("tools")));
        assert!(!p("tools/*").contains(&p("toolshed/x")));
        assert!(!p("tools/*").contains(&p("*")));
        assert!(p("*").contains(&p("anything/at/all")));
        assert!(p("search").contains(&p("search")));
        assert!(!p("search").contains(&p("search/web")));
        assert!(!p("tools/github").contains(&p("tools/*")));
    }

    #[test]
    fn refuses_malformed_patterns() {
        assert_eq!(
            CapabilityPattern::parse(""),
            Err(CapabilityError::BadLength)
        );
        assert!(matches!(
            CapabilityPattern::parse("a//b"),
            Err(CapabilityError::BadSegment(_))
        ));
        assert!(matches!(
            CapabilityPattern::parse("Tools"),
            Err(CapabilityError::BadSegment(_))
        ));
        assert!(matches!(
            CapabilityPattern::parse("a/*/b"),
            Err(CapabilityError::MisplacedWildcard(_))
        ));
        assert!(matches!(
            CapabilityPattern::parse("a/b*"),
            Err(CapabilityError::MisplacedWildcard(_))
        ));
        assert_eq!(
            CapabilityPattern::parse(&"a".repeat(129)),
            Err(CapabilityError::BadLength)
        );
    }

    /// Brute-force model: a pattern denotes the set of concrete capabilities
    /// (over a tiny alphabet, depth ≤ 4) it matches; `contains` must equal
    /// set inclusion.
    fn denotes(pat: &CapabilityPattern, cap: &[&str]) -> bool {
        let fixed: Vec<&str> = pat.fixed_segments().collect();
        if pat.wildcard {
            cap.len() > fixed.len() && cap[..fixed.len()] == fixed[..]
        } else {
            cap == &fixed[..]
        }
    }

    fn universe() -> Vec<Vec<&'static str>> {
        let mut all: Vec<Vec<&str>> = vec![];
        let mut layer: Vec<Vec<&str>> = vec![vec![]];
        for _ in 0..4 {
            let mut next = vec![];
            for c in &layer {
                for s in ["a", "b"] {
                    let mut c2 = c.clone();
                    c2.push(s);
                    next.push(c2);
                }
            }
            all.extend(next.iter().cloned());
            layer = next;
        }
        all
    }

    fn pattern_strategy() -> impl Strategy<Value = CapabilityPattern> {
        (
            prop::collection::vec(prop::sample::select(vec!["a", "b"]), 0..3),
            any::<bool>(),
        )
            .prop_filter_map("non-empty", |(segs, wild)| {
                let mut s = segs.join("/");
                if wild {
                    s = if s.is_empty() {
                        "*".into()
                    } else {
                        format!("{s}/*")
                    };
                }
                CapabilityPattern::parse(&s).ok()
            })
    }

    proptest! {
        #[test]
        fn contains_is_set_inclusion(outer in pattern_strategy(), inner in pattern_strategy()) {
            // Depth ≤ 2 patterns are exactly decided by depth ≤ 4 capabilities.
            let subset = universe()
                .iter()
                .filter(|c| denotes(&inner, c))
                .all(|c| denotes(&outer, c));
            prop_assert_eq!(outer.contains(&inner), subset);
        }
    }
}
