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
/// longer than `max_len` before parsing and anything non-canonical after.
pub fn value_from_canonical_slice(bytes: &[u8], max_len: usize) -> Result<Value, CborError> {
    if bytes.len() > max_len {
        return Err(CborError::Oversized {
            len: bytes.len(),
            max: max_len,
        });
    }
    if bytes.is_empty() {
        return Err(CborError::Truncated);
    }
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_NESTING)
        .map_err(|e| match e {
            ciborium::de::Error::Io(_) => CborError::Truncated,
            ciborium::de::Error::Syntax(at) => {
                CborError::Malformed(format!("syntax error at {at}"))
            }
            ciborium::de::Error::Semantic(_, msg) => CborError::Malformed(msg),
            ciborium::de::Error::RecursionLimitExceeded => {
                CborError::Malformed(format!("nested deeper than {MAX_NESTING}"))
            }
        })?;
    if !rest.is_empty() {
        return Err(CborError::TrailingBytes { extra: rest.len() });
    }
    let again = value_to_canonical_vec(value.clone())?;
    if again != bytes {
        return Err(CborError::NotCanonical);
    }
    Ok(value)
}

/// Decode canonical bytes into `T` (see [`value_from_canonical_slice`]).
pub fn from_canonical_slice<T: DeserializeOwned>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, CborError> {
    from_value(value_from_canonical_slice(bytes, max_len)?)
}

/// Interpret a decoded value as `T`.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, CborError> {
    value
        .deserialized()
        .map_err(|e| CborError::Schema(e.to_string()))
}

/// Sort every map by encoded key bytes (RFC 8949 §4.2.1), refusing floats
/// and duplicate keys.
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
                let k = canonicalize(k)?;
                let mut kb = Vec::new();
                ciborium::into_writer(&k, &mut kb).map_err(|e| CborError::Encode(e.to_string()))?;
                keyed.push((kb, k, canonicalize(v)?));
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            if keyed.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(CborError::DuplicateKey);
            }
            Value::Map(keyed.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        other => other,
    })
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
            (Value::Integer(10.into()), Value::Integer(3.into())),
        ]);
        let bytes = value_to_canonical_vec(map).expect("encodes");
        assert_eq!(bytes, hex("a30a0361740264626f647901"));
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
        assert!(value_from_canonical_slice(&hex("9b0000000100000000"), 64).is_err());
    }
}
