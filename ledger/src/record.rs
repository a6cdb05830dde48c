//! Co-signed action records: the leaves of every log.
//!
//! An [`ActionRecord`] is signed by its actor and countersigned by its
//! counterparty, each over the same canonical bytes with its own domain tag;
//! the countersignature is the counterparty's acknowledgement. Only a
//! [`CoSignedRecord`] (both signatures verified) can be appended, so a
//! record with one signature is unappendable by construction. The leaf is
//! the record's exact canonical encoding, signatures included.

use serde::{Deserialize, Serialize};

use mesh_iatp::cbor::{self, CborError};
use mesh_iatp::{Did, Identity, Signature, Timestamp};

use crate::merkle::{Hash, leaf_hash};

/// Domain tag for the actor's signature.
pub const ACTOR_DOMAIN: &[u8] = b"mesh-ledger/v1 record actor\0";
/// Domain tag for the counterparty's countersignature.
pub const COUNTERPARTY_DOMAIN: &[u8] = b"mesh-ledger/v1 record counterparty\0";
/// Largest encoded co-signed record.
pub const MAX_RECORD_BYTES: usize = 4096;

/// What kind of action a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A capability was delegated.
    Delegate,
    /// A delegated capability was invoked (a task handed over).
    Invoke,
    /// The outcome of an invocation.
    Result,
    /// A child agent was spawned.
    Spawn,
    /// A grant or certificate was revoked.
    Revoke,
}

/// One cross-agent action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRecord {
    /// What happened.
    pub kind: ActionKind,
    /// Who acted (signs first).
    pub actor: Did,
    /// With whom (countersigns).
    pub counterparty: Did,
    /// The grant (link hash) under whose authority, if any.
    #[serde(with = "mesh_iatp::cbor::opt_bytes32")]
    pub grant: Option<Hash>,
    /// SHA-256 of the action's payload (kept off-ledger).
    #[serde(with = "serde_bytes")]
    pub payload_digest: Hash,
    /// When.
    pub timestamp: Timestamp,
    /// Makes otherwise identical records distinct.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 16],
}

/// Why a record is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not canonical CBOR of the record shape.
    #[error("malformed record: {0}")]
    Malformed(#[from] CborError),
    /// Actor and counterparty are the same agent.
    #[error("actor and counterparty are the same agent")]
    SelfDealing,
    /// The signing key is not the named party's.
    #[error("{0} is not the key of the party that must sign")]
    WrongSigner(Did),
    /// The actor's signature does not verify.
    #[error("actor signature does not verify for {0}")]
    BadActorSignature(Did),
    /// The counterparty's countersignature does not verify.
    #[error("countersignature does not verify for {0}")]
    BadCountersignature(Did),
    /// A co-signed record handed back does not carry the record and
    /// signature its actor sent.
    #[error("the co-signed record is not the one the actor signed")]
    NotOurRecord,
}

impl ActionRecord {
    /// The canonical bytes both parties sign.
    pub fn signing_bytes(&self) -> Result<Vec<u8>, RecordError> {
        Ok(cbor::to_canonical_vec(self)?)
    }

    /// Sign as the actor: the first half of a co-signed record.
    pub fn sign(self, actor: &Identity) -> Result<ActorSigned, RecordError> {
        if self.actor == self.counterparty {
            return Err(RecordError::SelfDealing);
        }
        if actor.did() != &self.actor {
            return Err(RecordError::WrongSigner(actor.did().clone()));
        }
        let bytes = self.signing_bytes()?;
        let sig = actor.sign(&[ACTOR_DOMAIN, &bytes].concat());
        Ok(ActorSigned {
            record: self,
            actor_sig: sig,
        })
    }
}

/// A record signed by its actor, awaiting the counterparty. Not appendable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorSigned {
    record: ActionRecord,
    actor_sig: Signature,
}

/// The wire form of an [`ActorSigned`] record: `{record, actor_sig}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActorWire {
    record: ActionRecord,
    #[serde(with = "serde_bytes")]
    actor_sig: [u8; 64],
}

impl ActorSigned {
    /// Deterministic CBOR `{"record": R, "actor_sig": bytes(64)}`: what the
    /// actor sends its counterparty (LEDGER.md §2).
    pub fn to_bytes(&self) -> Result<Vec<u8>, RecordError> {
        Ok(cbor::to_canonical_vec(&ActorWire {
            record: self.record.clone(),
            actor_sig: self.actor_sig.to_bytes(),
        })?)
    }

    /// Decode the wire form (at most [`MAX_RECORD_BYTES`]). The signature is
    /// checked by [`ActorSigned::countersign`], not here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let wire: ActorWire = cbor::from_canonical_slice(bytes, MAX_RECORD_BYTES)?;
        if wire.record.actor == wire.record.counterparty {
            return Err(RecordError::SelfDealing);
        }
        Ok(ActorSigned {
            record: wire.record,
            actor_sig: Signature::from_bytes(&wire.actor_sig),
        })
    }

    /// The record, for the counterparty to inspect before countersigning.
    pub fn record(&self) -> &ActionRecord {
        &self.record
    }

    /// Verify the actor's signature and countersign as the counterparty.
    pub fn countersign(self, counterparty: &Identity) -> Result<CoSignedRecord, RecordError> {
        if counterparty.did() != &self.record.counterparty {
            return Err(RecordError::WrongSigner(counterparty.did().clone()));
        }
        let bytes = self.record.signing_bytes()?;
        if !self
            .record
            .actor
            .verify(&[ACTOR_DOMAIN, &bytes].concat(), &self.actor_sig)
        {
            return Err(RecordError::BadActorSignature(self.record.actor.clone()));
        }
        let counter_sig = counterparty.sign(&[COUNTERPARTY_DOMAIN, &bytes].concat());
        CoSignedRecord::from_parts(self.record, self.actor_sig, counter_sig)
    }

    /// The actor's check of what its counterparty sent back: the same
    /// record with the same actor signature (so that one needs no second
    /// verification), and a countersignature that verifies.
    pub fn complete(&self, countersigned: &[u8]) -> Result<CoSignedRecord, RecordError> {
        let parts = RecordParts::decode(countersigned)?;
        if parts.record != self.record || parts.actor_sig != self.actor_sig {
            return Err(RecordError::NotOurRecord);
        }
        let counterparty = &self.record.counterparty;
        if !counterparty.verify(
            &[COUNTERPARTY_DOMAIN, parts.signed].concat(),
            &parts.counterparty_sig,
        ) {
            return Err(RecordError::BadCountersignature(counterparty.clone()));
        }
        Ok(CoSignedRecord {
            record: parts.record,
            bytes: countersigned.to_vec(),
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    record: ActionRecord,
    #[serde(with = "serde_bytes")]
    actor_sig: [u8; 64],
    #[serde(with = "serde_bytes")]
    counterparty_sig: [u8; 64],
}

/// A decoded co-signed record whose signatures are not yet checked: what a
/// verifier batches. `signed` is the record's canonical bytes, sliced from
/// the leaf (the leaf is `a3 ‖ "record" ‖ R ‖ "actor_sig" ‖ … ‖
/// "counterparty_sig" ‖ …` by the key-order rule), so nothing is re-encoded.
#[derive(Debug, Clone)]
pub struct RecordParts<'a> {
    /// The record.
    pub record: ActionRecord,
    /// Its canonical bytes (what both parties signed, after their domain tags).
    pub signed: &'a [u8],
    /// The actor's signature.
    pub actor_sig: Signature,
    /// The counterparty's signature.
    pub counterparty_sig: Signature,
}

/// Length of `"actor_sig": bytes(64)` and `"counterparty_sig": bytes(64)` entries.
const ACTOR_SIG_ENTRY: usize = 1 + 9 + 2 + 64;
const COUNTER_SIG_ENTRY: usize = 1 + 16 + 2 + 64;
/// `a3` and the `"record"` key.
const RECORD_KEY_PREFIX: usize = 1 + 1 + 6;

impl<'a> RecordParts<'a> {
    /// Decode (canonical, bounded, shaped) without checking signatures.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, RecordError> {
        let wire: Wire = cbor::from_canonical_slice(bytes, MAX_RECORD_BYTES)?;
        if wire.record.actor == wire.record.counterparty {
            return Err(RecordError::SelfDealing);
        }
        let end = bytes.len().checked_sub(ACTOR_SIG_ENTRY + COUNTER_SIG_ENTRY);
        let signed = end
            .and_then(|end| bytes.get(RECORD_KEY_PREFIX..end))
            .ok_or(RecordError::Malformed(CborError::Schema(
                "record layout".into(),
            )))?;
        Ok(RecordParts {
            record: wire.record,
            signed,
            actor_sig: Signature::from_bytes(&wire.actor_sig),
            counterparty_sig: Signature::from_bytes(&wire.counterparty_sig),
        })
    }

    /// The two signed messages: (actor's, counterparty's).
    pub fn messages(&self) -> (Vec<u8>, Vec<u8>) {
        (
            [ACTOR_DOMAIN, self.signed].concat(),
            [COUNTERPARTY_DOMAIN, self.signed].concat(),
        )
    }
}

/// A record with both signatures verified: the only thing a log appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoSignedRecord {
    record: ActionRecord,
    bytes: Vec<u8>,
}

impl CoSignedRecord {
    fn from_parts(
        record: ActionRecord,
        actor_sig: Signature,
        counter_sig: Signature,
    ) -> Result<Self, RecordError> {
        let wire = Wire {
            record,
            actor_sig: actor_sig.to_bytes(),
            counterparty_sig: counter_sig.to_bytes(),
        };
        let bytes = cbor::to_canonical_vec(&wire)?;
        Ok(CoSignedRecord {
            record: wire.record,
            bytes,
        })
    }

    /// Decode and verify both signatures (e.g. reading a log back).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let wire: Wire = cbor::from_canonical_slice(bytes, MAX_RECORD_BYTES)?;
        let r = &wire.record;
        if r.actor == r.counterparty {
            return Err(RecordError::SelfDealing);
        }
        let signed = r.signing_bytes()?;
        if !r.actor.verify(
            &[ACTOR_DOMAIN, &signed].concat(),
            &Signature::from_bytes(&wire.actor_sig),
        ) {
            return Err(RecordError::BadActorSignature(r.actor.clone()));
        }
        if !r.counterparty.verify(
            &[COUNTERPARTY_DOMAIN, &signed].concat(),
            &Signature::from_bytes(&wire.counterparty_sig),
        ) {
            return Err(RecordError::BadCountersignature(r.counterparty.clone()));
        }
        Ok(CoSignedRecord {
            record: wire.record,
            bytes: bytes.to_vec(),
        })
    }

    /// The record.
    pub fn record(&self) -> &ActionRecord {
        &self.record
    }

    /// The exact leaf bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// RFC 6962 leaf hash of the record.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_iatp::testing::{every_bit_flip, identity};

    fn record() -> ActionRecord {
        ActionRecord {
            kind: ActionKind::Invoke,
            actor: identity("agent alice").did().clone(),
            counterparty: identity("agent bob").did().clone(),
            grant: Some([3; 32]),
            payload_digest: [4; 32],
            timestamp: Timestamp(1000),
            nonce: [5; 16],
        }
    }

    #[test]
    fn co_signed_records_round_trip_and_verify() {
        let signed = record()
            .sign(&identity("agent alice"))
            .unwrap()
            .countersign(&identity("agent bob"))
            .unwrap();
        let back = CoSignedRecord::from_bytes(signed.bytes()).unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.record(), &record());
    }

    #[test]
    fn wrong_signers_and_self_dealing_are_refused() {
        assert!(matches!(
            record().sign(&identity("agent bob")),
            Err(RecordError::WrongSigner(_))
        ));
        let half = record().sign(&identity("agent alice")).unwrap();
        assert!(matches!(
            half.countersign(&identity("agent carol")),
            Err(RecordError::WrongSigner(_))
        ));
        let mut r = record();
        r.counterparty = r.actor.clone();
        assert_eq!(
            r.sign(&identity("agent alice")),
            Err(RecordError::SelfDealing)
        );
    }

    #[test]
    fn the_sliced_signing_bytes_are_the_canonical_record() {
        let signed = record()
            .sign(&identity("agent alice"))
            .unwrap()
            .countersign(&identity("agent bob"))
            .unwrap();
        let parts = RecordParts::decode(signed.bytes()).unwrap();
        assert_eq!(parts.signed, record().signing_bytes().unwrap().as_slice());
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let signed = record()
            .sign(&identity("agent alice"))
            .unwrap()
            .countersign(&identity("agent bob"))
            .unwrap();
        for (i, mask, b) in every_bit_flip(signed.bytes()) {
            assert!(
                CoSignedRecord::from_bytes(&b).is_err(),
                "byte {i} ^ {mask:#04x}"
            );
        }
    }

    #[test]
    fn actor_signed_travels_and_any_flipped_bit_fails_at_countersigning() {
        let half = record().sign(&identity("agent alice")).unwrap();
        let wire = half.to_bytes().unwrap();
        let back = ActorSigned::from_bytes(&wire).unwrap();
        assert_eq!(back, half);
        assert!(back.countersign(&identity("agent bob")).is_ok());
        for (i, mask, b) in every_bit_flip(&wire) {
            // Either the bytes no longer decode, or the signature fails, or
            // the record now names someone else as counterparty.
            let outcome =
                ActorSigned::from_bytes(&b).and_then(|h| h.countersign(&identity("agent bob")));
            assert!(outcome.is_err(), "byte {i} ^ {mask:#04x}");
        }
        let mut oversized = wire.clone();
        oversized.resize(MAX_RECORD_BYTES + 1, 0);
        assert!(ActorSigned::from_bytes(&oversized).is_err());
    }

    #[test]
    fn the_actor_completes_only_its_own_record_with_a_valid_countersignature() {
        let half = record().sign(&identity("agent alice")).unwrap();
        let co = half.clone().countersign(&identity("agent bob")).unwrap();
        assert_eq!(half.complete(co.bytes()).unwrap(), co);
        // Every flipped bit: undecodable, another record or actor
        // signature, or a countersignature that fails.
        for (i, mask, b) in every_bit_flip(co.bytes()) {
            assert!(half.complete(&b).is_err(), "byte {i} ^ {mask:#04x}");
        }
        // A validly co-signed record, but not the one we signed.
        let mut other = record();
        other.nonce = [6; 16];
        let theirs = other
            .sign(&identity("agent alice"))
            .unwrap()
            .countersign(&identity("agent bob"))
            .unwrap();
        assert_eq!(
            half.complete(theirs.bytes()),
            Err(RecordError::NotOurRecord)
        );
        // Our record countersigned by someone else's key.
        let sig = identity("agent carol")
            .sign(&[COUNTERPARTY_DOMAIN, &record().signing_bytes().unwrap()].concat());
        let forged = CoSignedRecord::from_parts(record(), half.actor_sig, sig).unwrap();
        assert!(matches!(
            half.complete(forged.bytes()),
            Err(RecordError::BadCountersignature(_))
        ));
    }
}
