//! C2SP `tlog-checkpoint` bodies, signed by the log as signed notes, and
//! C2SP `tlog-cosignature` (`cosignature/v1`) by witnesses.
//!
//! ```text
//! <origin>\n<decimal size>\n<base64 root hash>\n      (then optional extension lines)
//! cosigned message = "cosignature/v1\n" "time " <decimal seconds> "\n" <checkpoint body>
//! cosignature line = "— " name " " base64(key ID ‖ u64 BE timestamp ‖ Ed25519 signature)
//! ```
//! where a cosigner's key ID uses signature type 0x04.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use mesh_iatp::{Did, Identity, Signature, Timestamp};

use crate::merkle::Hash;
use crate::note::{
    ALG_COSIGNATURE_V1, ALG_ED25519, Note, NoteError, NoteVerifier, SignatureLine, key_id,
};

/// Why a checkpoint or cosignature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The note layer refused it.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The body is not `origin\nsize\nroot\n…`.
    #[error("malformed checkpoint body: {0}")]
    Body(&'static str),
    /// The checkpoint's origin is not the expected log's.
    #[error("checkpoint origin {found:?} is not {expected:?}")]
    WrongOrigin {
        /// The verifier's name.
        expected: String,
        /// The checkpoint's origin line.
        found: String,
    },
}

/// A log's state: origin, size, root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The log's name (its key name).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body: three lines.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parse a body (extension lines are allowed and ignored).
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(CheckpointError::Body("missing origin"))?;
        let size_line = lines.next().ok_or(CheckpointError::Body("missing size"))?;
        if size_line.is_empty()
            || (size_line.len() > 1 && size_line.starts_with('0'))
            || !size_line.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(CheckpointError::Body(
                "size must be a decimal without leading zeros",
            ));
        }
        let size: u64 = size_line
            .parse()
            .map_err(|_| CheckpointError::Body("size out of range"))?;
        let root_line = lines.next().ok_or(CheckpointError::Body("missing root"))?;
        let root: Hash = B64
            .decode(root_line)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(CheckpointError::Body("root must be base64 of 32 bytes"))?;
        if !text.ends_with('\n') {
            return Err(CheckpointError::Body("must end in a newline"));
        }
        Ok(Checkpoint {
            origin: origin.into(),
            size,
            root,
        })
    }

    /// Sign as the log (key name = origin): a signed note.
    pub fn sign(&self, log_key: &Identity) -> Result<Note, CheckpointError> {
        Ok(Note::sign(&self.body(), &self.origin, log_key)?)
    }
}

/// The log's verifier: its origin and key.
pub fn log_verifier(origin: &str, key: Did) -> Result<NoteVerifier, CheckpointError> {
    Ok(NoteVerifier::new(origin, ALG_ED25519, key)?)
}

/// Parse a signed checkpoint and verify the log's signature.
pub fn open_checkpoint(
    note_bytes: &[u8],
    log: &NoteVerifier,
) -> Result<(Checkpoint, Note), CheckpointError> {
    let note = Note::parse(note_bytes)?;
    let cp = Checkpoint::parse_body(&note.text)?;
    if cp.origin != log.name {
        return Err(CheckpointError::WrongOrigin {
            expected: log.name.clone(),
            found: cp.origin,
        });
    }
    note.verify(log)?;
    Ok((cp, note))
}

fn cosigned_message(body: &str, time: Timestamp) -> Vec<u8> {
    format!("cosignature/v1\ntime {}\n{}", time.0, body).into_bytes()
}

/// Cosign a checkpoint body as witness `name` at `time`: the signature line.
pub fn cosign(body: &str, name: &str, witness: &Identity, time: Timestamp) -> SignatureLine {
    let sig = witness.sign(&cosigned_message(body, time));
    let mut payload = time.0.to_be_bytes().to_vec();
    payload.extend_from_slice(&sig.to_bytes());
    SignatureLine {
        name: name.into(),
        key_id: key_id(name, ALG_COSIGNATURE_V1, witness.did().public_key_bytes()),
        signature: payload,
    }
}

/// A witness's verifier (type 0x04).
pub fn witness_verifier(name: &str, key: Did) -> Result<NoteVerifier, CheckpointError> {
    Ok(NoteVerifier::new(name, ALG_COSIGNATURE_V1, key)?)
}

/// Verify witness `w`'s cosignature on `note`; returns its timestamp.
pub fn verify_cosignature(note: &Note, w: &NoteVerifier) -> Result<Timestamp, CheckpointError> {
    let line = note
        .lines_for(w)
        .next()
        .ok_or(NoteError::MissingSignature {
            name: w.name.clone(),
            key_id: w.key_id(),
        })?;
    let invalid = || NoteError::InvalidSignature {
        name: w.name.clone(),
        key_id: w.key_id(),
    };
    if line.signature.len() != 72 || w.alg != ALG_COSIGNATURE_V1 {
        return Err(invalid().into());
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&line.signature[..8]);
    let time = u64::from_be_bytes(ts);
    if time > i64::MAX as u64 {
        return Err(invalid().into());
    }
    let sig: [u8; 64] = line.signature[8..].try_into().map_err(|_| invalid())?;
    if !w.key.verify(
        &cosigned_message(&note.text, Timestamp(time)),
        &Signature::from_bytes(&sig),
    ) {
        return Err(invalid().into());
    }
    Ok(Timestamp(time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_iatp::testing::{every_bit_flip, identity};

    fn cp() -> Checkpoint {
        Checkpoint {
            origin: "mesh.example/log/alice".into(),
            size: 20852163,
            root: [7; 32],
        }
    }

    #[test]
    fn bodies_round_trip_and_reject_malformed() {
        assert_eq!(Checkpoint::parse_body(&cp().body()).unwrap(), cp());
        for bad in [
            "",
            "o\n",
            "o\n01\nAAAA\n",
            "o\n1\nnotbase64\n",
            "o\n-1\nBwcH\n",
            "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            "\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        ] {
            assert!(Checkpoint::parse_body(bad).is_err(), "{bad:?}");
        }
        let with_ext = format!("{}extension line\n", cp().body());
        assert_eq!(Checkpoint::parse_body(&with_ext).unwrap(), cp());
    }

    /// `cp()` signed by "log alice" and cosigned by "witness bob" at
    /// `time`: its bytes, and the log's and the witness's verifiers.
    fn cosigned(time: Timestamp) -> (Vec<u8>, NoteVerifier, NoteVerifier) {
        let (log, wit) = (identity("log alice"), identity("witness bob"));
        let mut note = cp().sign(&log).unwrap();
        note.signatures
            .push(cosign(&note.text, "witness.example/bob", &wit, time));
        let lv = log_verifier(&cp().origin, log.did().clone()).unwrap();
        let wv = witness_verifier("witness.example/bob", wit.did().clone()).unwrap();
        (note.to_bytes(), lv, wv)
    }

    #[test]
    fn signed_checkpoints_and_cosignatures_verify() {
        let log = identity("log alice");
        let (bytes, lv, wv) = cosigned(Timestamp(1_679_315_147));
        let (back, parsed) = open_checkpoint(&bytes, &lv).unwrap();
        assert_eq!(back, cp());
        assert_eq!(
            verify_cosignature(&parsed, &wv).unwrap(),
            Timestamp(1_679_315_147)
        );
        // The cosignature's message starts with the header and time lines.
        assert!(
            String::from_utf8(cosigned_message(&parsed.text, Timestamp(5)))
                .unwrap()
                .starts_with("cosignature/v1\ntime 5\nmesh.example/log/alice\n")
        );
        // A cosignature made for another checkpoint does not verify on this one.
        let mut other = Checkpoint { size: 1, ..cp() }.sign(&log).unwrap();
        other.signatures.push(parsed.signatures[1].clone());
        assert!(verify_cosignature(&other, &wv).is_err());
        // The log's key is not a witness key: type separation by key ID.
        let as_witness = witness_verifier(&cp().origin, log.did().clone()).unwrap();
        assert!(verify_cosignature(&parsed, &as_witness).is_err());
    }

    #[test]
    fn every_bit_of_a_cosigned_checkpoint_is_covered() {
        let (bytes, lv, wv) = cosigned(Timestamp(5));
        let verifies = |b: &[u8]| {
            open_checkpoint(b, &lv)
                .is_ok_and(|(c, n)| c == cp() && verify_cosignature(&n, &wv).is_ok())
        };
        assert!(verifies(&bytes));
        for (i, mask, changed) in every_bit_flip(&bytes) {
            assert!(!verifies(&changed), "byte {i} ^ {mask:#04x}");
        }
    }

    #[test]
    fn wrong_origin_and_forged_log_signatures_are_refused() {
        let log = identity("log alice");
        let note = cp().sign(&identity("mallory")).unwrap();
        let lv = log_verifier(&cp().origin, log.did().clone()).unwrap();
        assert!(open_checkpoint(&note.to_bytes(), &lv).is_err());
        let other = log_verifier("mesh.example/log/bob", log.did().clone()).unwrap();
        assert!(matches!(
            open_checkpoint(&cp().sign(&log).unwrap().to_bytes(), &other),
            Err(CheckpointError::WrongOrigin { .. })
        ));
    }
}
