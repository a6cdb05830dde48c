//! The one signed wire envelope every mesh message travels in.
//!
//! ```text
//! envelope = { "t": text, "v": uint, "sig": bstr .size 64, "body": any }
//! signature = Ed25519( SIGNATURE_DOMAIN ‖ canonical({ "t", "v", "body" }) )
//! ```
//! encoded in deterministic CBOR ([`crate::cbor`]). The message type `t` is
//! inside the signed bytes, so a signature made for one kind of message
//! never verifies as another. The signer is named by the body (each message
//! type says which field), so decoding yields an [`Unverified`] message that
//! must be verified against that DID before it can be used.

use std::marker::PhantomData;

use ed25519_dalek::Signature;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cbor::{self, CborError};
use crate::{Did, Identity};

/// The envelope version this implementation speaks.
pub const PROTOCOL_VERSION: u64 = 1;
/// Prefix of every signing input, so these signatures can't be confused
/// with signatures the same key makes for other formats.
pub const SIGNATURE_DOMAIN: &[u8] = b"mesh-iatp/v1 envelope\0";
/// Longest message type name accepted.
pub const MAX_TYPE_LEN: usize = 64;

/// A message type that travels signed in an envelope.
pub trait SignedMessage: Serialize + DeserializeOwned {
    /// The `t` value, e.g. `"iatp/hello"`.
    const TYPE: &'static str;
    /// Largest encoded envelope of this type accepted, checked before decoding.
    const MAX_BYTES: usize;
}

/// Why bytes are not a valid envelope of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not canonical CBOR (or too large, truncated, trailing bytes…).
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// Canonical CBOR, but not shaped as `{t, v, sig, body}`.
    #[error("not a mesh envelope: {0}")]
    NotAnEnvelope(&'static str),
    /// A version this implementation does not speak.
    #[error("unsupported protocol version {found} (this node speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion {
        /// The `v` received.
        found: u64,
    },
    /// A different message type than the one expected here.
    #[error("expected a `{expected}` message, received `{found}`")]
    UnexpectedType {
        /// What the protocol state expects.
        expected: &'static str,
        /// What arrived.
        found: String,
    },
    /// The body does not match the message type's schema.
    #[error("`{msg_type}` body is invalid: {reason}")]
    InvalidBody {
        /// The message type.
        msg_type: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The signature does not verify under the named signer's key.
    #[error("signature does not verify for {signer}")]
    BadSignature {
        /// The DID the message claims as signer.
        signer: Did,
    },
}

/// Sign `msg` as `signer` and return the envelope bytes.
pub fn seal<M: SignedMessage>(msg: &M, signer: &Identity) -> Result<Vec<u8>, EnvelopeError> {
    let body = cbor::to_canonical_vec(msg)?;
    // Canonical key order is t, v, sig, body (shorter encodings first), so
    // both the signed map {t, v, body} and the envelope are assembled from
    // the same pieces without re-encoding the body.
    let mut head = Vec::with_capacity(16 + M::TYPE.len());
    write_item(&mut head, &"t")?;
    write_item(&mut head, &M::TYPE)?;
    write_item(&mut head, &"v")?;
    write_item(&mut head, &PROTOCOL_VERSION)?;

    let mut input = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 1 + head.len() + 5 + body.len());
    input.extend_from_slice(SIGNATURE_DOMAIN);
    input.push(0xa3);
    input.extend_from_slice(&head);
    input.extend_from_slice(BODY_KEY);
    input.extend_from_slice(&body);
    let sig = signer.sign(&input);

    let mut out = Vec::with_capacity(1 + head.len() + SIG_ENTRY_LEN + 5 + body.len());
    out.push(0xa4);
    out.extend_from_slice(&head);
    out.extend_from_slice(&SIG_ENTRY_HEAD);
    out.extend_from_slice(&sig.to_bytes());
    out.extend_from_slice(BODY_KEY);
    out.extend_from_slice(&body);
    Ok(out)
}

/// `"body"` as a CBOR text string.
const BODY_KEY: &[u8] = b"\x64body";
/// `"sig"` as a CBOR text string, then the head of a 64-byte byte string.
const SIG_ENTRY_HEAD: [u8; 6] = [0x63, b's', b'i', b'g', 0x58, 0x40];
const SIG_ENTRY_LEN: usize = SIG_ENTRY_HEAD.len() + 64;

fn write_item<T: Serialize + ?Sized>(out: &mut Vec<u8>, item: &T) -> Result<(), EnvelopeError> {
    ciborium::into_writer(item, out).map_err(|e| CborError::Encode(e.to_string()).into())
}

/// A decoded, well-formed envelope whose type and signature are not yet
/// checked. Borrows the bytes it was decoded from.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    msg_type: &'a str,
    body: &'a [u8],
    signature: Signature,
    signing_input: Vec<u8>,
}

impl<'a> Envelope<'a> {
    /// Decode envelope bytes, refusing inputs over `max_len` before parsing,
    /// non-canonical encodings, and versions other than [`PROTOCOL_VERSION`].
    ///
    /// Once the bytes are known to be canonical, a map with exactly the keys
    /// t, v, sig, body can only be laid out as
    /// `a4 ‖ "t"-entry ‖ "v"-entry ‖ "sig"-entry ‖ "body"-entry`, so the
    /// fields are read in place and the body is later decoded straight into
    /// its type, without an intermediate CBOR value tree.
    pub fn decode(bytes: &'a [u8], max_len: usize) -> Result<Self, EnvelopeError> {
        cbor::check_canonical(bytes, max_len)?;
        let shape = EnvelopeError::NotAnEnvelope;
        let (major, entries, mut at) = cbor::read_head(bytes, 0)?;
        if major != 5 || entries != 4 {
            return Err(shape("expected a map of exactly t, v, sig, body"));
        }
        let key = |name: &'static [u8], at: &mut usize| -> Result<(), EnvelopeError> {
            if bytes.get(*at..*at + name.len()) != Some(name) {
                return Err(shape("expected exactly the keys t, v, sig, body"));
            }
            *at += name.len();
            Ok(())
        };
        key(b"\x61t", &mut at)?;
        let (major, len, start) = cbor::read_head(bytes, at)?;
        if major != 3 {
            return Err(shape("t must be a text string"));
        }
        let end = start + len as usize;
        let msg_type =
            std::str::from_utf8(&bytes[start..end]).map_err(|_| shape("t is not UTF-8"))?;
        at = end;
        key(b"\x61v", &mut at)?;
        let (major, version, after) = cbor::read_head(bytes, at)?;
        if major != 0 {
            return Err(shape("v must be an unsigned integer"));
        }
        at = after;
        let sig_at = at;
        key(&SIG_ENTRY_HEAD, &mut at)?;
        let sig: [u8; 64] = bytes
            .get(at..at + 64)
            .and_then(|s| s.try_into().ok())
            .ok_or(shape("sig must be 64 bytes"))?;
        at += 64;
        key(BODY_KEY, &mut at)?;
        let body = &bytes[at..];
        if version != PROTOCOL_VERSION {
            return Err(EnvelopeError::UnsupportedVersion { found: version });
        }
        if msg_type.is_empty() || msg_type.len() > MAX_TYPE_LEN {
            return Err(shape("message type is empty or too long"));
        }
        // The signed map {t, v, body} is these bytes without the sig entry.
        let mut signing_input =
            Vec::with_capacity(SIGNATURE_DOMAIN.len() + bytes.len() - SIG_ENTRY_LEN);
        signing_input.extend_from_slice(SIGNATURE_DOMAIN);
        signing_input.push(0xa3);
        signing_input.extend_from_slice(&bytes[1..sig_at]);
        signing_input.extend_from_slice(&bytes[sig_at + SIG_ENTRY_LEN..]);
        Ok(Envelope {
            msg_type,
            body,
            signature: Signature::from_bytes(&sig),
            signing_input,
        })
    }

    /// The message type `t`.
    pub fn msg_type(&self) -> &str {
        self.msg_type
    }

    /// Check the type is `M` and decode the body as `M` (still unverified).
    pub fn expect<M: SignedMessage>(self) -> Result<Unverified<M>, EnvelopeError> {
        if self.msg_type != M::TYPE {
            return Err(EnvelopeError::UnexpectedType {
                expected: M::TYPE,
                found: self.msg_type.to_owned(),
            });
        }
        let msg = ciborium::de::from_reader_with_recursion_limit(self.body, cbor::MAX_NESTING)
            .map_err(|e| EnvelopeError::InvalidBody {
                msg_type: M::TYPE,
                reason: match e {
                    ciborium::de::Error::Semantic(_, m) => m,
                    other => other.to_string(),
                },
            })?;
        cbor::require_round_trip(&msg, self.body).map_err(|_| EnvelopeError::InvalidBody {
            msg_type: M::TYPE,
            reason: "the body is not exactly the encoding of what it decodes to".into(),
        })?;
        Ok(Unverified {
            msg,
            signature: self.signature,
            signing_input: self.signing_input,
            _kind: PhantomData,
        })
    }
}

/// Decode bytes expected to be an `M` envelope; bounded by `M::MAX_BYTES`.
pub fn open<M: SignedMessage>(bytes: &[u8]) -> Result<Unverified<M>, EnvelopeError> {
    Envelope::decode(bytes, M::MAX_BYTES)?.expect::<M>()
}

/// A message whose signature has not been checked yet. Its content may be
/// read (to learn who claims to have signed it) but not trusted.
#[derive(Debug, Clone)]
pub struct Unverified<M> {
    msg: M,
    signature: Signature,
    signing_input: Vec<u8>,
    _kind: PhantomData<M>,
}

impl<M> Unverified<M> {
    /// The claimed content; untrusted until [`Unverified::verify`] succeeds.
    pub fn claimed(&self) -> &M {
        &self.msg
    }

    /// Verify the signature under `signer`'s key and release the message.
    pub fn verify(self, signer: &Did) -> Result<M, EnvelopeError> {
        if signer.verify(&self.signing_input, &self.signature) {
            Ok(self.msg)
        } else {
            Err(EnvelopeError::BadSignature {
                signer: signer.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Note {
        from: Did,
        text: String,
    }
    impl SignedMessage for Note {
        const TYPE: &'static str = "test/note";
        const MAX_BYTES: usize = 1024;
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Other {
        from: Did,
        text: String,
    }
    impl SignedMessage for Other {
        const TYPE: &'static str = "test/other";
        const MAX_BYTES: usize = 1024;
    }

    fn alice() -> Identity {
        Identity::from_secret_bytes(&[1; 32])
    }

    fn note() -> Note {
        Note {
            from: alice().did().clone(),
            text: "hi".into(),
        }
    }

    use ciborium::Value;

    #[test]
    fn sealed_bytes_are_canonical_and_sign_the_unsigned_map() {
        let bytes = seal(&note(), &alice()).expect("seals");
        cbor::check_canonical(&bytes, usize::MAX).expect("canonical");
        // The signing input is, by definition, DOMAIN ‖ canonical({t, v, body}).
        let body = Value::serialized(&note()).expect("serialises");
        let unsigned = Value::Map(vec![
            (Value::Text("t".into()), Value::Text(Note::TYPE.into())),
            (
                Value::Text("v".into()),
                Value::Integer(PROTOCOL_VERSION.into()),
            ),
            (Value::Text("body".into()), body),
        ]);
        let mut expected = SIGNATURE_DOMAIN.to_vec();
        expected.extend(cbor::value_to_canonical_vec(unsigned).expect("encodes"));
        let env = Envelope::decode(&bytes, 1024).expect("decodes");
        assert_eq!(env.signing_input, expected);
        assert!(alice().did().verify(&expected, &env.signature));
    }

    #[test]
    fn seal_open_verify_round_trip() {
        let bytes = seal(&note(), &alice()).expect("seals");
        let got = open::<Note>(&bytes).expect("opens");
        let signer = got.claimed().from.clone();
        assert_eq!(got.verify(&signer).expect("verifies"), note());
    }

    #[test]
    fn wrong_signer_is_refused() {
        let bytes = seal(&note(), &alice()).expect("seals");
        let mallory = Identity::from_secret_bytes(&[2; 32]);
        let got = open::<Note>(&bytes).expect("opens");
        assert!(matches!(
            got.verify(mallory.did()),
            Err(EnvelopeError::BadSignature { .. })
        ));
    }

    #[test]
    fn type_confusion_is_refused() {
        let bytes = seal(&note(), &alice()).expect("seals");
        assert_eq!(
            open::<Other>(&bytes).err(),
            Some(EnvelopeError::UnexpectedType {
                expected: "test/other",
                found: "test/note".into()
            })
        );
    }

    #[test]
    fn other_version_is_refused() {
        let bytes = seal(&note(), &alice()).expect("seals");
        // The envelope starts a4 61 74 <t…> 61 76 01: patch v to 2.
        let pos = bytes
            .windows(3)
            .position(|w| w == [0x61, 0x76, 0x01])
            .expect("v field present");
        let mut patched = bytes.clone();
        patched[pos + 2] = 0x02;
        assert_eq!(
            open::<Note>(&patched).err(),
            Some(EnvelopeError::UnsupportedVersion { found: 2 })
        );
    }

    #[test]
    fn unknown_body_field_is_refused() {
        #[derive(Serialize, Deserialize)]
        struct Wider {
            from: Did,
            text: String,
            extra: u8,
        }
        impl SignedMessage for Wider {
            const TYPE: &'static str = "test/note";
            const MAX_BYTES: usize = 1024;
        }
        let wider = Wider {
            from: alice().did().clone(),
            text: "hi".into(),
            extra: 1,
        };
        let bytes = seal(&wider, &alice()).expect("seals");
        assert!(matches!(
            open::<Note>(&bytes),
            Err(EnvelopeError::InvalidBody { .. })
        ));
    }
}
