//! Deterministic CBOR (RFC 8949 §4.2.1, core deterministic encoding).
//!
//! Signatures cover bytes, so every message must have exactly one encoding.
//! We encode with ciborium (which already writes shortest-form integers and
//! lengths and definite lengths) and sort map keys by their encoded bytes.
//! On decode we do the converse and *refuse* any input that is not already
//! canonical: decode, re-encode canonically, compare. That single rule turns
//! away indefinite lengths, non-minimal integers, unsorted or duplicate map
//! keys and trailing bytes, and keeps one message = one byte string.
//! Floating point values are refused outright: no mesh message uses them.

use ciborium::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Deepest nesting accepted when decoding; our messages nest at most ~6.
pub const MAX_NESTING: usize = 16;

/// Why bytes are not an acceptable canonical CBOR message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    /// Longer than the caller's bound; refused before any parsing.
    #[error("message is {len} bytes, over the {max}-byte limit")]
    Oversized {
        /// Input length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Empty input, or input that ends inside an item.
    #[error("message is truncated")]
    Truncated,
    /// Not well-formed CBOR, or nested too deeply.
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    /// A complete item followed by more bytes.
    #[error("{extra} unexpected bytes after the message")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// Well-formed but not in deterministic encoding.
    #[error("CBOR is not in deterministic encoding (RFC 8949 §4.2.1)")]
    NotCanonical,
    /// A map key that is not a text string: every mesh map is keyed by
    /// field name, and a byte-string key would decode as the same field.
    #[error("CBOR map key is not a text string")]
    KeyNotText,
    /// A map has the same key twice.
    #[error("CBOR map has a duplicate key")]
    DuplicateKey,
    /// A floating-point value (never used by mesh messages).
    #[error("CBOR floating-point values are not allowed")]
    FloatNotAllowed,
    /// Well-formed CBOR that does not fit the expected structure.
    #[error("unexpected structure: {0}")]
    Schema(String),
    /// A value could not be serialised (a bug in the caller's type).
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Encode `value` in deterministic CBOR.
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CborError> {
    let v = Value::serialized(value).map_err(|e| CborError::Encode(e.to_string()))?;
    value_to_canonical_vec(v)
}

/// Encode an already-built CBOR value in deterministic form.
pub fn value_to_canonical_vec(value: Value) -> Result<Vec<u8>, CborError> {
    let v = canonicalize(value)?;
    let mut out = Vec::with_capacity(256);
    ciborium::into_writer(&v, &mut out).map_err(|e| CborError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decode canonical bytes into a generic CBOR value, refusing anything
/// longer than `max_len` before parsing and anything non-canonical.
pub fn value_from_canonical_slice(bytes: &[u8], max_len: usize) -> Result<Value, CborError> {
    check_canonical(bytes, max_len)?;
    ciborium::de::from_reader_with_recursion_limit(bytes, MAX_NESTING)
        .map_err(|e| CborError::Malformed(e.to_string()))
}

/// Check, in one pass over the bytes and without allocating, that `bytes`
/// is exactly one data item in RFC 8949 §4.2.1 deterministic encoding:
/// shortest-form heads, definite lengths, map keys text strings strictly
/// increasing in bytewise order of their encodings (so no duplicates),
/// valid UTF-8 text,
/// no floats, no tags, no simple values other than false/true/null, nesting
/// at most [`MAX_NESTING`], nothing after the item.
pub fn check_canonical(bytes: &[u8], max_len: usize) -> Result<(), CborError> {
    if bytes.len() > max_len {
        return Err(CborError::Oversized {
            len: bytes.len(),
            max: max_len,
        });
    }
    if bytes.is_empty() {
        return Err(CborError::Truncated);
    }
    let end = skip_item(bytes, 0, 0)?;
    if end != bytes.len() {
        return Err(CborError::TrailingBytes {
            extra: bytes.len() - end,
        });
    }
    Ok(())
}

/// Read a head at `pos`: (major type, argument, position after the head).
/// Refuses non-shortest forms, indefinite lengths and floats.
pub(crate) fn read_head(bytes: &[u8], pos: usize) -> Result<(u8, u64, usize), CborError> {
    let first = *bytes.get(pos).ok_or(CborError::Truncated)?;
    let (major, info) = (first >> 5, first & 0x1f);
    let width = match info {
        0..=23 => return Ok((major, u64::from(info), pos + 1)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        31 => return Err(CborError::NotCanonical), // indefinite length
        _ => {
            return Err(CborError::Malformed(format!(
                "reserved additional info {info}"
            )));
        }
    };
    if major == 7 {
        // Floats (and 1-byte simple values) are never used by mesh messages.
        return Err(if width >= 2 {
            CborError::FloatNotAllowed
        } else {
            CborError::NotCanonical
        });
    }
    let arg_bytes = bytes
        .get(pos + 1..pos + 1 + width)
        .ok_or(CborError::Truncated)?;
    let arg = arg_bytes
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let minimal = match width {
        1 => arg >= 24,
        2 => arg > 0xff,
        4 => arg > 0xffff,
        _ => arg > 0xffff_ffff,
    };
    if !minimal {
        return Err(CborError::NotCanonical);
    }
    Ok((major, arg, pos + 1 + width))
}

/// Validate the item at `pos` and return the position just after it.
fn skip_item(bytes: &[u8], pos: usize, depth: usize) -> Result<usize, CborError> {
    if depth > MAX_NESTING {
        return Err(CborError::Malformed(format!(
            "nested deeper than {MAX_NESTING}"
        )));
    }
    let (major, arg, mut at) = read_head(bytes, pos)?;
    // Counts and lengths can't exceed the bytes left: refuse before looping.
    let remaining = (bytes.len() - at) as u64;
    match major {
        0 | 1 => Ok(at),
        2 | 3 => {
            if arg > remaining {
                return Err(CborError::Truncated);
            }
            let end = at + arg as usize;
            if major == 3 && std::str::from_utf8(&bytes[at..end]).is_err() {
                return Err(CborError::Malformed("text is not UTF-8".into()));
            }
            Ok(end)
        }
        4 => {
            if arg > remaining {
                return Err(CborError::Truncated);
            }
            for _ in 0..arg {
                at = skip_item(bytes, at, depth + 1)?;
            }
            Ok(at)
        }
        5 => {
            if arg.saturating_mul(2) > remaining {
                return Err(CborError::Truncated);
            }
            let mut previous_key: Option<&[u8]> = None;
            for _ in 0..arg {
                if read_head(bytes, at)?.0 != 3 {
                    return Err(CborError::KeyNotText);
                }
                let key_end = skip_item(bytes, at, depth + 1)?;
                let key = &bytes[at..key_end];
                if let Some(prev) = previous_key {
                    match prev.cmp(key) {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal => return Err(CborError::DuplicateKey),
                        std::cmp::Ordering::Greater => return Err(CborError::NotCanonical),
                    }
                }
                previous_key = Some(key);
                at = skip_item(bytes, key_end, depth + 1)?;
            }
            Ok(at)
        }
        6 => Err(CborError::Malformed(
            "CBOR tags are not used by mesh messages".into(),
        )),
        // Major 7 with an immediate argument: false, true, null only.
        _ => match arg {
            20..=22 => Ok(at),
            _ => Err(CborError::NotCanonical),
        },
    }
}

/// Decode canonical bytes straight into `T`: the one-pass canonical check,
/// a typed decode, then [`require_round_trip`].
pub fn from_canonical_slice<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, CborError> {
    check_canonical(bytes, max_len)?;
    let value = ciborium::de::from_reader_with_recursion_limit(bytes, MAX_NESTING).map_err(
        |e| match e {
            ciborium::de::Error::Semantic(_, m) => CborError::Schema(m),
            other => CborError::Schema(other.to_string()),
        },
    )?;
    require_round_trip(&value, bytes)?;
    Ok(value)
}

/// Refuse `bytes` unless they are exactly how `value`, decoded from them,
/// encodes. Canonical CBOR alone does not make one message one byte string:
/// serde reads a byte string where it expects text (a `String`, an enum
/// tag) and text where it expects bytes, so `"same_size"` and
/// `h'73616d655f73697a65'` would decode alike. Re-encoding catches every
/// such swap, whatever the type.
pub fn require_round_trip<T: Serialize + ?Sized>(value: &T, bytes: &[u8]) -> Result<(), CborError> {
    if to_canonical_vec(value)? == bytes {
        Ok(())
    } else {
        Err(CborError::NotCanonical)
    }
}

/// Interpret a decoded value as `T`.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, CborError> {
    value
        .deserialized()
        .map_err(|e| CborError::Schema(e.to_string()))
}

/// Sort every map by encoded key bytes (RFC 8949 §4.2.1), refusing floats,
/// keys that are not text and duplicate keys.
fn canonicalize(value: Value) -> Result<Value, CborError> {
    Ok(match value {
        Value::Float(_) => return Err(CborError::FloatNotAllowed),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(canonicalize)
                .collect::<Result<_, _>>()?,
        ),
        Value::Tag(tag, inner) => Value::Tag(tag, Box::new(canonicalize(*inner)?)),
        Value::Map(entries) => {
            let mut keyed = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let Value::Text(k) = k else {
                    return Err(CborError::KeyNotText);
                };
                keyed.push((k, canonicalize(v)?));
            }
            // Already in order (serde writes our structs' fields in
            // canonical order): no sort.
            if !keyed.is_sorted_by(|a, b| key_order(&a.0, &b.0).is_le()) {
                keyed.sort_by(|a, b| key_order(&a.0, &b.0));
            }
            if keyed.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(CborError::DuplicateKey);
            }
            Value::Map(
                keyed
                    .into_iter()
                    .map(|(k, v)| (Value::Text(k), v))
                    .collect(),
            )
        }
        other => other,
    })
}

/// The order of two text keys' encodings, without encoding them. A text
/// string's shortest-form head grows with its length (0x60–0x77, then
/// 0x78 and one byte, 0x79 and two…) and is the same for equal lengths, so
/// comparing encodings bytewise is comparing lengths, then bytes.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    #[test]
    fn sorts_map_keys_by_encoded_bytes() {
        // RFC 8949 §4.2.1: shorter keys first, then bytewise.
        let map = Value::Map(vec![
            (Value::Text("body".into()), Value::Integer(1.into())),
            (Value::Text("t".into()), Value::Integer(2.into())),
            (Value::Text("aa".into()), Value::Integer(3.into())),
        ]);
        let bytes = value_to_canonical_vec(map).expect("encodes");
        assert_eq!(bytes, hex("a36174026261610364626f647901"));
    }

    proptest::proptest! {
        /// Ordering keys by length, then bytes, is ordering them by their
        /// encodings (RFC 8949 §4.2.1), across the head sizes.
        #[test]
        fn key_order_is_the_order_of_encoded_keys(
            a in "[a-c]{0,3}|[a-z]{20,30}|[a-b]{250,260}",
            b in "[a-c]{0,3}|[a-z]{20,30}|[a-b]{250,260}",
        ) {
            let encode = |k: &str| {
                let mut out = Vec::new();
                ciborium::into_writer(&Value::Text(k.into()), &mut out).expect("encodes");
                out
            };
            proptest::prop_assert_eq!(key_order(&a, &b), encode(&a).cmp(&encode(&b)));
        }
    }

    #[test]
    fn refuses_non_canonical_inputs() {
        // 1 encoded in two bytes instead of one.
        assert_eq!(
            value_from_canonical_slice(&hex("1801"), 64),
            Err(CborError::NotCanonical)
        );
        // Indefinite-length array [1].
        assert_eq!(
            value_from_canonical_slice(&hex("9f01ff"), 64),
            Err(CborError::NotCanonical)
        );
        // Map with keys out of order {"t":1, "a":2}.
        assert_eq!(
            value_from_canonical_slice(&hex("a2617401616102"), 64),
            Err(CborError::NotCanonical)
        );
        // Map with a duplicate key {"a":1, "a":2}.
        assert_eq!(
            value_from_canonical_slice(&hex("a2616101616102"), 64),
            Err(CborError::DuplicateKey)
        );
        // A float.
        assert_eq!(
            value_from_canonical_slice(&hex("f93c00"), 64),
            Err(CborError::FloatNotAllowed)
        );
        // A tag, and the simple value `undefined`.
        assert!(matches!(
            value_from_canonical_slice(&hex("c11a514b67b0"), 64),
            Err(CborError::Malformed(_))
        ));
        assert_eq!(
            value_from_canonical_slice(&hex("f7"), 64),
            Err(CborError::NotCanonical)
        );
        // Invalid UTF-8 in a text string.
        assert!(matches!(
            value_from_canonical_slice(&hex("62c328"), 64),
            Err(CborError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_truncated_trailing_and_oversized() {
        assert_eq!(
            value_from_canonical_slice(&[], 64),
            Err(CborError::Truncated)
        );
        assert_eq!(
            value_from_canonical_slice(&hex("6261"), 64),
            Err(CborError::Truncated)
        );
        assert_eq!(
            value_from_canonical_slice(&hex("0101"), 64),
            Err(CborError::TrailingBytes { extra: 1 })
        );
        assert_eq!(
            value_from_canonical_slice(&[0u8; 65], 64),
            Err(CborError::Oversized { len: 65, max: 64 })
        );
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing() {
        let deep = vec![0x81u8; 10_000];
        assert!(matches!(
            value_from_canonical_slice(&deep, 100_000),
            Err(CborError::Malformed(_))
        ));
    }

    #[test]
    fn huge_declared_lengths_do_not_allocate() {
        // A byte string claiming 2^63 bytes, and an array claiming 2^32 items.
        assert_eq!(
            value_from_canonical_slice(&hex("5b8000000000000000"), 64),
            Err(CborError::Truncated)
        );
        assert_eq!(
            value_from_canonical_slice(&hex("9b0000000100000000"), 64),
            Err(CborError::Truncated)
        );
        assert_eq!(
            value_from_canonical_slice(&hex("bb4000000000000000"), 64),
            Err(CborError::Truncated)
        );
    }
}

#[cfg(test)]
mod keys {
    use super::*;

    #[test]
    fn map_keys_must_be_text() {
        // {"a": 1} is fine; {h'61': 1} is the same field to serde, refused.
        assert_eq!(check_canonical(&[0xa1, 0x61, b'a', 0x01], 16), Ok(()));
        assert_eq!(
            check_canonical(&[0xa1, 0x41, b'a', 0x01], 16),
            Err(CborError::KeyNotText)
        );
        assert_eq!(
            check_canonical(&[0xa1, 0x01, 0x01], 16),
            Err(CborError::KeyNotText)
        );
        let bytes_key = Value::Map(vec![(Value::Bytes(b"a".to_vec()), Value::Null)]);
        assert_eq!(
            value_to_canonical_vec(bytes_key),
            Err(CborError::KeyNotText)
        );
    }
}

#[cfg(test)]
mod agreement {
    //! The one-pass validator must agree with the definition: an input is
    //! canonical iff decoding and re-encoding it canonically gives it back.
    use super::*;
    use proptest::prelude::*;

    fn reference_is_canonical(bytes: &[u8]) -> bool {
        let mut rest = bytes;
        let Ok(v) =
            ciborium::de::from_reader_with_recursion_limit::<Value, _>(&mut rest, MAX_NESTING)
        else {
            return false;
        };
        !has_tag(&v)
            && rest.is_empty()
            && value_to_canonical_vec(v).is_ok_and(|again| again == bytes)
    }

    /// Tags are refused by policy (no mesh message uses them).
    fn has_tag(v: &Value) -> bool {
        match v {
            Value::Tag(..) => true,
            Value::Array(items) => items.iter().any(has_tag),
            Value::Map(entries) => entries.iter().any(|(k, v)| has_tag(k) || has_tag(v)),
            _ => false,
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(|i| Value::Integer(i.into())),
            any::<u64>().prop_map(|i| Value::Integer(i.into())),
            ".{0,30}".prop_map(Value::Text),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((inner.clone(), inner.clone()), 0..6).prop_map(Value::Map),
                prop::collection::vec((".{0,8}".prop_map(Value::Text), inner), 0..6)
                    .prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn validator_accepts_what_we_encode(v in arb_value()) {
            // Maps with duplicate keys cannot be encoded; skip those.
            if let Ok(bytes) = value_to_canonical_vec(v) {
                prop_assert_eq!(check_canonical(&bytes, usize::MAX), Ok(()));
            }
        }

        #[test]
        fn validator_agrees_with_reencoding(v in arb_value(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut raw = Vec::new();
            // Possibly non-canonical: written as-is, maps unsorted.
            if ciborium::into_writer(&v, &mut raw).is_err() || raw.is_empty() { return Ok(()); }
            let i = pos.index(raw.len());
            raw[i] = byte;
            prop_assert_eq!(check_canonical(&raw, usize::MAX).is_ok(), reference_is_canonical(&raw), "{:02x?}", raw);
        }
    }
}

/// Serde helpers for `Option<[u8; 32]>` as CBOR null or a 32-byte byte
/// string (parent links, grant hashes): `#[serde(with = "mesh_iatp::cbor::opt_bytes32")]`.
pub mod opt_bytes32 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialise.
    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(h) => s.serialize_bytes(h),
            None => s.serialize_none(),
        }
    }

    /// Deserialise, refusing any length but 32.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        let v: Option<serde_bytes::ByteBuf> = Option::deserialize(d)?;
        v.map(|b| {
            <[u8; 32]>::try_from(b.as_slice())
                .map_err(|_| serde::de::Error::custom("expected a 32-byte hash"))
        })
        .transpose()
    }
}
