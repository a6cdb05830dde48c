//! `did:key` identifiers for Ed25519 keys.
//!
//! A `did:key` names a public key directly: `did:key:` + multibase base58btc
//! (`z`) of the multicodec varint for ed25519-pub (`0xed 0x01`) followed by the
//! 32 key bytes. Every Ed25519 DID therefore starts `did:key:z6Mk`. Only
//! Ed25519 is accepted: the mesh signs everything with Ed25519 and a DID must
//! be usable as a verification key the moment it parses.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The fixed scheme and method prefix of every identifier we accept.
pub const DID_KEY_PREFIX: &str = "did:key:";
/// Multicodec varint for `ed25519-pub` (code 0xed).
pub const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];
/// Longest DID text we look at; an Ed25519 did:key is 56 characters.
const MAX_DID_LEN: usize = 128;

/// Why a string is not an Ed25519 `did:key`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidError {
    /// Does not start with `did:key:`.
    #[error("not a did:key identifier (expected it to start with `did:key:`)")]
    MissingPrefix,
    /// The method-specific id is not multibase base58btc (`z…`).
    #[error("did:key must use multibase base58btc (a leading `z`), found {found:?}")]
    NotBase58btc {
        /// The multibase prefix character found instead, if any.
        found: Option<char>,
    },
    /// The base58 text does not decode.
    #[error("invalid base58btc in did:key: {0}")]
    InvalidBase58(String),
    /// The multicodec is not `ed25519-pub`.
    #[error("unsupported multicodec 0x{code:x} in did:key (only ed25519-pub, 0xed, is accepted)")]
    UnsupportedMulticodec {
        /// The decoded multicodec (or the first byte if the varint is malformed).
        code: u64,
    },
    /// Right multicodec, wrong number of key bytes.
    #[error("ed25519 did:key carries {found} key bytes, expected 32")]
    WrongKeyLength {
        /// Number of key bytes after the multicodec.
        found: usize,
    },
    /// 32 bytes that are not a valid Ed25519 point.
    #[error("did:key bytes are not a valid Ed25519 public key")]
    InvalidPublicKey,
    /// Absurdly long input, refused before decoding.
    #[error("did:key is {len} characters, longer than the {MAX_DID_LEN} allowed")]
    TooLong {
        /// Length of the input.
        len: usize,
    },
}

/// An Ed25519 `did:key`: an agent's (or organisation's) identity and its
/// verification key at once.
///
/// Invariant: the key is a valid Ed25519 point and `text` is its canonical
/// encoding, so equal keys give equal DIDs and parsing a DID we printed
/// returns the same value.
///
/// A cheap-to-clone handle (one `Arc`): DIDs are copied into sessions,
/// errors and evidence constantly, and the decompressed key is ~200 bytes.
#[derive(Clone)]
pub struct Did(Arc<DidInner>);

struct DidInner {
    key: VerifyingKey,
    text: Box<str>,
}

impl Did {
    /// The DID naming `key`.
    pub fn from_verifying_key(key: VerifyingKey) -> Self {
        let mut raw = Vec::with_capacity(34);
        raw.extend_from_slice(&ED25519_MULTICODEC);
        raw.extend_from_slice(key.as_bytes());
        let text = format!("{DID_KEY_PREFIX}z{}", bs58::encode(raw).into_string());
        Did(Arc::new(DidInner {
            key,
            text: text.into_boxed_str(),
        }))
    }

    /// The DID naming the 32-byte Ed25519 public key `bytes`.
    ///
    /// Remembered per thread like [`Did::parse`] (a node names the peer of
    /// every message it receives this way, from its 32-byte libp2p key).
    pub fn from_public_key_bytes(bytes: &[u8; 32]) -> Result<Self, DidError> {
        if let Some(hit) = FROM_KEY.with(|cache| cache.borrow().get(bytes).cloned()) {
            return Ok(hit);
        }
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| DidError::InvalidPublicKey)?;
        let did = Self::from_verifying_key(key);
        FROM_KEY.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() >= PARSE_CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(*bytes, did.clone());
        });
        Ok(did)
    }

    /// Parse and validate a `did:key:z6Mk…` string.
    ///
    /// Recently parsed DIDs are remembered per thread (at most
    /// [`PARSE_CACHE_CAPACITY`]), because validating one costs an Ed25519
    /// point decompression (~5 µs) and the same few DIDs recur in every
    /// chain, credential and report. The cache only ever returns what
    /// parsing the same text returned before.
    pub fn parse(s: &str) -> Result<Self, DidError> {
        if s.len() > MAX_DID_LEN {
            return Err(DidError::TooLong { len: s.len() });
        }
        if let Some(hit) = PARSED.with(|cache| cache.borrow().get(s).cloned()) {
            return Ok(hit);
        }
        let did = Self::parse_uncached(s)?;
        PARSED.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() >= PARSE_CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(s.into(), did.clone());
        });
        Ok(did)
    }

    fn parse_uncached(s: &str) -> Result<Self, DidError> {
        let id = s
            .strip_prefix(DID_KEY_PREFIX)
            .ok_or(DidError::MissingPrefix)?;
        let mut chars = id.chars();
        match chars.next() {
            Some('z') => {}
            other => return Err(DidError::NotBase58btc { found: other }),
        }
        let raw = bs58::decode(chars.as_str())
            .into_vec()
            .map_err(|e| DidError::InvalidBase58(e.to_string()))?;
        if !raw.starts_with(&ED25519_MULTICODEC) {
            let code = read_varint(&raw)
                .map_or_else(|| raw.first().copied().unwrap_or(0).into(), |(c, _)| c);
            return Err(DidError::UnsupportedMulticodec { code });
        }
        let key_bytes: &[u8; 32] = raw[2..].try_into().map_err(|_| DidError::WrongKeyLength {
            found: raw.len() - 2,
        })?;
        let key = VerifyingKey::from_bytes(key_bytes).map_err(|_| DidError::InvalidPublicKey)?;
        // Base58 is a bijection for a fixed byte string (leading '1's are
        // leading zero bytes, which would change the prefix or length), so the
        // input is already the canonical spelling: keep it, don't re-encode.
        Ok(Did(Arc::new(DidInner {
            key,
            text: s.into(),
        })))
    }

    /// The Ed25519 key this DID names.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0.key
    }

    /// The raw 32-byte public key.
    pub fn public_key_bytes(&self) -> &[u8; 32] {
        self.0.key.as_bytes()
    }

    /// The DID text, `did:key:z6Mk…`.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// Verify `sig` over `msg` with this DID's key (strict: rejects small-order
    /// keys and malleable signatures).
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        let memo = VERIFIED.with(|m| {
            let m = m.borrow();
            m.as_ref().map(|(_, set)| {
                let key = verification_key(self.public_key_bytes(), msg, sig);
                (set.contains(&key), key)
            })
        });
        match memo {
            Some((true, _)) => true,
            Some((false, key)) => {
                let ok = self.0.key.verify_strict(msg, sig).is_ok();
                if ok {
                    VERIFIED.with(|m| {
                        if let Some((capacity, set)) = m.borrow_mut().as_mut() {
                            if set.len() >= *capacity {
                                set.clear();
                            }
                            set.insert(key);
                        }
                    });
                }
                ok
            }
            None => self.0.key.verify_strict(msg, sig).is_ok(),
        }
    }
}

thread_local! {
    /// This thread's memo of verified signatures, when on.
    static VERIFIED: std::cell::RefCell<Option<(usize, std::collections::HashSet<[u8; 32]>)>> =
        const { std::cell::RefCell::new(None) };
}

fn verification_key(key: &[u8; 32], msg: &[u8], sig: &Signature) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(key);
    h.update(sig.to_bytes());
    h.update(msg);
    h.finalize().into()
}

/// Remember, on this thread, the signatures that verified (up to
/// `capacity`, then start over; 0 turns it off). Ed25519 verification is a
/// pure function of key, message and signature, so a simulation of many
/// agents in one thread — each of which verifies the same gossiped report —
/// verifies each once; a node, whose messages it sees once, leaves it off.
/// Keyed by SHA-256 of key, signature and message.
pub fn memoize_verifications(capacity: usize) {
    VERIFIED.with(|m| {
        *m.borrow_mut() = (capacity > 0).then(|| (capacity, std::collections::HashSet::new()));
    });
}

/// Most DIDs remembered per thread by [`Did::parse`] (and as many by
/// [`Did::from_public_key_bytes`]).
pub const PARSE_CACHE_CAPACITY: usize = 4096;

thread_local! {
    static PARSED: std::cell::RefCell<std::collections::HashMap<Box<str>, Did>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
    static FROM_KEY: std::cell::RefCell<std::collections::HashMap<[u8; 32], Did>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Forget this thread's parsed DIDs and verified org credentials, so a
/// benchmark can measure a peer never seen before.
pub fn clear_parse_cache() {
    PARSED.with(|cache| cache.borrow_mut().clear());
    FROM_KEY.with(|cache| cache.borrow_mut().clear());
    crate::credential::clear_verified();
}

/// Unsigned LEB128 varint as multicodec uses it (at most 9 bytes).
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(9) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

impl PartialEq for Did {
    fn eq(&self, other: &Self) -> bool {
        self.0.key.as_bytes() == other.0.key.as_bytes()
    }
}
impl Eq for Did {}

impl std::hash::Hash for Did {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.key.as_bytes().hash(state);
    }
}

impl PartialOrd for Did {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
/// Ordered by public key bytes: consistent with `Eq`, deterministic, and
/// cheaper than comparing texts that all start `did:key:z6Mk`.
impl Ord for Did {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key.as_bytes().cmp(other.0.key.as_bytes())
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.text)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({})", self.0.text)
    }
}

impl FromStr for Did {
    type Err = DidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Did::parse(s)
    }
}

impl Serialize for Did {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.text)
    }
}

impl<'de> Deserialize<'de> for Did {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Did::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verification_memo_never_accepts_what_does_not_verify() {
        use ed25519_dalek::Signer;
        let id = crate::testing::identity("memo");
        let other = crate::testing::identity("memo other");
        let sig = ed25519_dalek::SigningKey::from_bytes(
            &id.to_keypair_bytes()[..32].try_into().unwrap_or([0; 32]),
        )
        .sign(b"msg");
        memoize_verifications(4);
        for _ in 0..3 {
            assert!(id.did().verify(b"msg", &sig));
            assert!(!id.did().verify(b"other msg", &sig));
            assert!(!other.did().verify(b"msg", &sig));
        }
        // Past its capacity it starts over, still right.
        for i in 0..10u8 {
            assert!(!id.did().verify(&[i], &sig));
        }
        assert!(id.did().verify(b"msg", &sig));
        memoize_verifications(0);
        assert!(id.did().verify(b"msg", &sig));
    }

    /// The Ed25519 vectors of the W3C CCG did-method-key spec
    /// (test-vectors/ed25519-x25519.json): secret seed → DID and base58 key.
    pub(crate) const W3C_VECTORS: [(&str, &str, &str); 5] = [
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
            "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000001",
            "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
            "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000002",
            "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
            "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000003",
            "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ",
            "HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000004",
            "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL",
            "J3qYF7YJMKCqQke47UQwiHizgFUXapHxRxKmxbkar89x",
        ),
    ];

    fn seed(hex_seed: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex_seed[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        out
    }

    #[test]
    fn w3c_vectors_encode_from_seed() {
        for (seed_hex, did, key_b58) in W3C_VECTORS {
            let key = ed25519_dalek::SigningKey::from_bytes(&seed(seed_hex));
            let ours = Did::from_verifying_key(key.verifying_key());
            assert_eq!(ours.as_str(), did);
            assert_eq!(bs58::encode(ours.public_key_bytes()).into_string(), key_b58);
        }
    }

    #[test]
    fn w3c_vectors_decode_to_key() {
        for (_, did, key_b58) in W3C_VECTORS {
            let parsed = Did::parse(did).unwrap_or_else(|e| panic!("{did}: {e}"));
            assert_eq!(
                bs58::encode(parsed.public_key_bytes()).into_string(),
                key_b58
            );
            assert_eq!(parsed.to_string(), did);
        }
    }

    #[test]
    fn refuses_missing_prefix() {
        assert_eq!(
            Did::parse("did:web:example.com"),
            Err(DidError::MissingPrefix)
        );
        assert_eq!(
            Did::parse("z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"),
            Err(DidError::MissingPrefix)
        );
    }

    #[test]
    fn refuses_other_multibase() {
        assert_eq!(
            Did::parse("did:key:f6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"),
            Err(DidError::NotBase58btc { found: Some('f') })
        );
        assert_eq!(
            Did::parse("did:key:"),
            Err(DidError::NotBase58btc { found: None })
        );
    }

    #[test]
    fn refuses_bad_base58() {
        // '0', 'O', 'I' and 'l' are not in the bitcoin alphabet.
        assert!(matches!(
            Did::parse("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDoo0p"),
            Err(DidError::InvalidBase58(_))
        ));
    }

    #[test]
    fn refuses_other_multicodecs() {
        // secp256k1-pub (0xe7) and x25519-pub (0xec) keys from the same spec.
        assert_eq!(
            Did::parse("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"),
            Err(DidError::UnsupportedMulticodec { code: 0xe7 })
        );
        assert_eq!(
            Did::parse("did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW"),
            Err(DidError::UnsupportedMulticodec { code: 0xec })
        );
    }

    #[test]
    fn refuses_wrong_key_lengths() {
        for len in [0usize, 31, 33, 64] {
            let mut raw = ED25519_MULTICODEC.to_vec();
            raw.extend(std::iter::repeat_n(7u8, len));
            let s = format!("did:key:z{}", bs58::encode(raw).into_string());
            assert_eq!(Did::parse(&s), Err(DidError::WrongKeyLength { found: len }));
        }
    }

    #[test]
    fn cached_and_uncached_parses_agree() {
        for (_, did, _) in W3C_VECTORS {
            clear_parse_cache();
            let cold = Did::parse(did).expect("parses");
            let warm = Did::parse(did).expect("parses again");
            assert_eq!(cold, warm);
            assert_eq!(warm.as_str(), did);
        }
        // Failures are never cached.
        for _ in 0..2 {
            assert_eq!(Did::parse("did:web:x"), Err(DidError::MissingPrefix));
        }
        // Nor are keys that are not points, by either door.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        for _ in 0..2 {
            assert_eq!(
                Did::from_public_key_bytes(&not_a_point),
                Err(DidError::InvalidPublicKey)
            );
        }
        for (_, did, _) in W3C_VECTORS {
            let parsed = Did::parse(did).expect("parses");
            let key = *parsed.public_key_bytes();
            clear_parse_cache();
            let cold = Did::from_public_key_bytes(&key).expect("a point");
            let warm = Did::from_public_key_bytes(&key).expect("a point");
            assert_eq!((&cold, &warm), (&parsed, &parsed));
        }
    }

    #[test]
    fn refuses_padded_varint_spelling() {
        // 0xed written as a 3-byte varint (ed 81 00): same code, not canonical.
        let mut raw = vec![0xed, 0x81, 0x00];
        raw.extend_from_slice(&[7u8; 32]);
        let s = format!("did:key:z{}", bs58::encode(raw).into_string());
        assert_eq!(
            Did::parse(&s),
            Err(DidError::UnsupportedMulticodec { code: 0xed })
        );
    }

    #[test]
    fn refuses_non_point_and_oversized_input() {
        // y = 2 has no x on the curve: not a valid compressed point.
        let mut raw = ED25519_MULTICODEC.to_vec();
        let mut y = [0u8; 32];
        y[0] = 2;
        raw.extend_from_slice(&y);
        let s = format!("did:key:z{}", bs58::encode(raw).into_string());
        assert_eq!(Did::parse(&s), Err(DidError::InvalidPublicKey));
        let long = format!("did:key:z{}", "1".repeat(200));
        assert!(matches!(Did::parse(&long), Err(DidError::TooLong { .. })));
    }
}
