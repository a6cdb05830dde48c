//! C2SP signed notes (c2sp.org/signed-note, as Go's `sumdb/note`).
//!
//! ```text
//! note      = text "\n" 1*signature-line      ; text: UTF-8, no control chars but "\n", ends in "\n"
//! signature = "— " name " " base64(key ID (4 bytes, big-endian) ‖ signature) "\n"
//! key ID    = SHA-256(name ‖ "\n" ‖ type ‖ public key)[:4]
//! ```
//!
//! Type 0x01 is an Ed25519 signature over the text; type 0x04 is a C2SP
//! `cosignature/v1` (see [`crate::checkpoint`]). Keys are written as Go
//! writes them: verifier `name+hex(key ID)+base64(type ‖ key)`, signer
//! `PRIVATE+KEY+name+hex(key ID)+base64(type ‖ seed)`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use mesh_iatp::{Did, Identity, Signature};

/// Signature type of a plain Ed25519 note signature.
pub const ALG_ED25519: u8 = 0x01;
/// Signature type of an Ed25519 `cosignature/v1`.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Most signature lines a note may carry (as Go's implementation).
pub const MAX_SIGNATURES: usize = 100;
/// Largest note accepted.
pub const MAX_NOTE_BYTES: usize = 1 << 20;
const DASH: &str = "\u{2014} ";

/// Why a note or key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not a well-formed signed note.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// Not a well-formed key string.
    #[error("malformed note key: {0}")]
    MalformedKey(&'static str),
    /// A signature from the expected key does not verify.
    #[error("invalid signature for key {name}+{key_id:08x}")]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key ID.
        key_id: u32,
    },
    /// No signature from the expected key.
    #[error("note has no signature from {name}+{key_id:08x}")]
    MissingSignature {
        /// Key name.
        name: String,
        /// Key ID.
        key_id: u32,
    },
}

/// The key ID of `(name, type, public key)`.
pub fn key_id(name: &str, alg: u8, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// A public key that verifies one kind of note signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    /// Key name (a log origin, a witness URL).
    pub name: String,
    /// Signature type.
    pub alg: u8,
    /// The key.
    pub key: Did,
}

impl NoteVerifier {
    /// A verifier for `key` under `name`.
    pub fn new(name: &str, alg: u8, key: Did) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::MalformedKey(
                "name must be non-empty with no spaces or '+'",
            ));
        }
        Ok(NoteVerifier {
            name: name.into(),
            alg,
            key,
        })
    }

    /// Key ID.
    pub fn key_id(&self) -> u32 {
        key_id(&self.name, self.alg, self.key.public_key_bytes())
    }

    /// Go's verifier key string, `name+hash+base64(type ‖ key)`.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![self.alg];
        raw.extend_from_slice(self.key.public_key_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id(), B64.encode(raw))
    }

    /// Parse a verifier key string (checking its key ID).
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey("expected name+hash+key"));
        };
        let raw = B64
            .decode(key)
            .map_err(|_| NoteError::MalformedKey("key is not base64"))?;
        let (alg, key_bytes) = raw
            .split_first()
            .ok_or(NoteError::MalformedKey("empty key"))?;
        let key_bytes: &[u8; 32] = key_bytes
            .try_into()
            .map_err(|_| NoteError::MalformedKey("key is not 32 bytes"))?;
        if *alg != ALG_ED25519 && *alg != ALG_COSIGNATURE_V1 {
            return Err(NoteError::MalformedKey("unknown signature type"));
        }
        let did = Did::from_public_key_bytes(key_bytes)
            .map_err(|_| NoteError::MalformedKey("not an Ed25519 key"))?;
        let v = NoteVerifier::new(name, *alg, did)?;
        if hash.len() != 8 || u32::from_str_radix(hash, 16).ok() != Some(v.key_id()) {
            return Err(NoteError::MalformedKey("key hash does not match"));
        }
        Ok(v)
    }
}

/// A signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLine {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub key_id: u32,
    /// The bytes after the key ID (64 for type 0x01, 72 for 0x04).
    pub signature: Vec<u8>,
}

impl SignatureLine {
    /// `— name base64(id ‖ sig)\n`.
    pub fn to_line(&self) -> String {
        let mut raw = self.key_id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.signature);
        format!("{DASH}{} {}\n", self.name, B64.encode(raw))
    }
}

/// A note: its text and its signature lines (unverified until checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in "\n".
    pub text: String,
    /// Signature lines, in order.
    pub signatures: Vec<SignatureLine>,
}

fn valid_text(text: &str) -> bool {
    text.ends_with('\n') && !text.chars().any(|c| c.is_control() && c != '\n')
}

impl Note {
    /// Parse a signed note (syntax only).
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::Malformed("note too large"));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::Malformed("not UTF-8"))?;
        // As Go's note.Open: no ASCII control character but newline
        // anywhere, signature lines included.
        if s.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::Malformed(
                "a control character other than newline",
            ));
        }
        let split = s
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before signatures"))?;
        let (text, sigs) = (&s[..split + 1], &s[split + 2..]);
        if !valid_text(text) || text.len() < 2 {
            return Err(NoteError::Malformed(
                "text has control characters or no final newline",
            ));
        }
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "signature lines must end in a newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::Malformed("too many signatures"));
            }
            let rest = line
                .strip_prefix(DASH)
                .ok_or(NoteError::Malformed("signature line must start with '— '"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or(NoteError::Malformed("signature line has no key name"))?;
            if !valid_name(name) {
                return Err(NoteError::Malformed("bad key name"));
            }
            let raw = B64
                .decode(b64)
                .map_err(|_| NoteError::Malformed("signature is not base64"))?;
            if raw.len() < 5 {
                return Err(NoteError::Malformed("signature too short"));
            }
            signatures.push(SignatureLine {
                name: name.into(),
                key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
                signature: raw[4..].to_vec(),
            });
        }
        Ok(Note {
            text: text.into(),
            signatures,
        })
    }

    /// The note's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out.into_bytes()
    }

    /// Sign `text` as `name` with `key` (type 0x01): a note with one signature.
    pub fn sign(text: &str, name: &str, key: &Identity) -> Result<Note, NoteError> {
        if !valid_text(text) || !valid_name(name) {
            return Err(NoteError::Malformed("bad text or key name"));
        }
        let sig = key.sign(text.as_bytes());
        Ok(Note {
            text: text.into(),
            signatures: vec![SignatureLine {
                name: name.into(),
                key_id: key_id(name, ALG_ED25519, key.did().public_key_bytes()),
                signature: sig.to_bytes().to_vec(),
            }],
        })
    }

    /// The signature lines matching `v`'s name and key ID.
    pub fn lines_for<'a>(&'a self, v: &'a NoteVerifier) -> impl Iterator<Item = &'a SignatureLine> {
        let id = v.key_id();
        self.signatures
            .iter()
            .filter(move |s| s.name == v.name && s.key_id == id)
    }

    /// Check the type-0x01 signature of `v` on this note.
    pub fn verify(&self, v: &NoteVerifier) -> Result<(), NoteError> {
        let line = self
            .lines_for(v)
            .next()
            .ok_or(NoteError::MissingSignature {
                name: v.name.clone(),
                key_id: v.key_id(),
            })?;
        let invalid = || NoteError::InvalidSignature {
            name: v.name.clone(),
            key_id: v.key_id(),
        };
        let sig: [u8; 64] = line
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| invalid())?;
        if v.alg != ALG_ED25519
            || !v
                .key
                .verify(self.text.as_bytes(), &Signature::from_bytes(&sig))
        {
            return Err(invalid());
        }
        Ok(())
    }
}

/// Parse Go's signer key string `PRIVATE+KEY+name+hash+base64(type ‖ seed)`.
pub fn identity_from_skey(skey: &str) -> Result<(String, Identity), NoteError> {
    let rest = skey
        .strip_prefix("PRIVATE+KEY+")
        .ok_or(NoteError::MalformedKey("expected PRIVATE+KEY+"))?;
    let mut parts = rest.splitn(3, '+');
    let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::MalformedKey("expected name+hash+key"));
    };
    let raw = B64
        .decode(key)
        .map_err(|_| NoteError::MalformedKey("key is not base64"))?;
    if raw.len() != 33 || raw[0] != ALG_ED25519 {
        return Err(NoteError::MalformedKey("expected an Ed25519 seed"));
    }
    let seed: [u8; 32] = raw[1..]
        .try_into()
        .map_err(|_| NoteError::MalformedKey("seed is not 32 bytes"))?;
    let id = Identity::from_secret_bytes(&seed);
    if !valid_name(name)
        || u32::from_str_radix(hash, 16).ok()
            != Some(key_id(name, ALG_ED25519, id.did().public_key_bytes()))
    {
        return Err(NoteError::MalformedKey("key hash does not match"));
    }
    Ok((name.into(), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    // From Go's golang.org/x/mod/sumdb/note tests.
    const SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const ENOCH: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    #[test]
    fn signs_exactly_as_go_does() {
        let (name, key) = identity_from_skey(SKEY).unwrap();
        let note = Note::sign(TEXT, &name, &key).unwrap();
        assert_eq!(
            String::from_utf8(note.to_bytes()).unwrap(),
            format!("{TEXT}\n{PETER_SIG}")
        );
        assert_eq!(
            NoteVerifier::new(&name, ALG_ED25519, key.did().clone())
                .unwrap()
                .to_vkey(),
            PETER
        );
    }

    #[test]
    fn opens_and_verifies_go_notes() {
        let peter = NoteVerifier::from_vkey(PETER).unwrap();
        let enoch = NoteVerifier::from_vkey(ENOCH).unwrap();
        assert_eq!(peter.key_id(), 0xc74f20a3);
        assert_eq!(enoch.key_id(), 0xaf0cfe78);
        let note = Note::parse(format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}").as_bytes()).unwrap();
        assert_eq!(note.text, TEXT);
        note.verify(&peter).unwrap();
        note.verify(&enoch).unwrap();
        // Invalid signature: the Go test inserts "ABCD" into it.
        let bad = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        let note = Note::parse(bad.as_bytes()).unwrap();
        assert!(matches!(
            note.verify(&peter),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn malformed_notes_from_the_go_tests_are_refused() {
        let bad = [
            TEXT.to_string(),
            format!("{TEXT}\n"),
            format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
            format!("\x01{TEXT}\n{PETER_SIG}"),
            format!(
                "{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
            ),
            format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
            // A control character in a signature line's key name (Go's
            // note.Open refuses it; its name check alone would not).
            format!(
                "{TEXT}\n{}",
                PETER_SIG.replacen("PeterNeumann", "Peter\x01Neumann", 1)
            ),
            format!(
                "{TEXT}\n{}",
                PETER_SIG.replacen("PeterNeumann", "Peter\rNeumann", 1)
            ),
            format!("{TEXT}\n{}", PETER_SIG.repeat(101)),
        ];
        for msg in bad {
            assert!(
                matches!(Note::parse(msg.as_bytes()), Err(NoteError::Malformed(_))),
                "{msg:?}"
            );
        }
        let mut invalid_utf8 = vec![0xff];
        invalid_utf8.extend_from_slice(format!("{TEXT}\n{PETER_SIG}").as_bytes());
        assert!(matches!(
            Note::parse(&invalid_utf8),
            Err(NoteError::Malformed(_))
        ));
    }

    #[test]
    fn mangled_keys_are_refused() {
        for i in 0..PETER.len() {
            let mut b = PETER.as_bytes().to_vec();
            b[i] = b[i].wrapping_add(1);
            if let Ok(s) = std::str::from_utf8(&b) {
                assert!(NoteVerifier::from_vkey(s).is_err(), "{s}");
            }
        }
        assert!(
            NoteVerifier::from_vkey(
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .is_err()
        );
    }
}
