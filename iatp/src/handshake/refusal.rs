//! Why a handshake was refused: one variant per thing the peer did wrong.

use crate::credential::CredentialError;
use crate::envelope::EnvelopeError;
use crate::{Did, PeerId, Score, Timestamp};

/// A precise reason for refusing a handshake. Each has a stable numeric
/// [`Refusal::code`] (see docs/PROTOCOL.md) so it can be logged, counted,
/// sent to the peer and turned into trust evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a well-formed canonical envelope of a handshake message
    /// (truncated, oversized, trailing bytes, non-canonical, wrong CBOR types).
    #[error("malformed handshake message: {0}")]
    Malformed(EnvelopeError),
    /// An envelope version we do not speak.
    #[error("unsupported envelope version {found}")]
    UnsupportedVersion {
        /// The version received.
        found: u64,
    },
    /// A valid message of the wrong kind for this point of the handshake.
    #[error("expected `{expected}`, received `{found}`")]
    UnexpectedMessage {
        /// The message type this state accepts.
        expected: &'static str,
        /// What arrived.
        found: String,
    },
    /// The signature does not verify under the DID the message names.
    #[error("bad signature on a message claiming to be from {signer}")]
    BadSignature {
        /// The claimed signer.
        signer: Did,
    },
    /// The card breaks the protocol's limits.
    #[error("invalid agent card: {0}")]
    InvalidCard(&'static str),
    /// The card's DID is not the key of the connection's PeerId.
    #[error("card DID {claimed} is not the key of the connection's PeerId {connection}")]
    PeerIdMismatch {
        /// The DID in the card.
        claimed: Did,
        /// The PeerId the transport authenticated.
        connection: PeerId,
    },
    /// The message is bound to a different pair of peers (relayed).
    #[error("message `{field}` names {found}, but this connection is {expected}")]
    ChannelBinding {
        /// `"from"` or `"to"`.
        field: &'static str,
        /// The PeerId this connection has there.
        expected: PeerId,
        /// The PeerId the message names.
        found: PeerId,
    },
    /// Our own message came back to us.
    #[error("reflected message: it claims to come from this node")]
    Reflected,
    /// A Hello nonce seen before within the replay window.
    #[error("replayed handshake nonce")]
    ReplayedNonce,
    /// A message time too far from our clock.
    #[error("message time {sent} is more than {skew_secs}s from local time {now}")]
    TimestampOutsideWindow {
        /// The time in the message.
        sent: Timestamp,
        /// Our clock.
        now: Timestamp,
        /// The allowed skew.
        skew_secs: u64,
    },
    /// Hashes or nonces do not match the messages exchanged so far.
    #[error("transcript mismatch: {0}")]
    TranscriptMismatch(&'static str),
    /// The org credential is forged or malformed.
    #[error("invalid org credential: {0}")]
    CredentialInvalid(CredentialError),
    /// The credential vouches for a different agent than the card's.
    #[error("org credential is for {credential_agent}, not for {card_agent}")]
    CredentialSubjectMismatch {
        /// Agent named by the credential.
        credential_agent: Did,
        /// Agent presenting it.
        card_agent: Did,
    },
    /// The credential's window has closed.
    #[error("org credential expired at {expires} (now {now})")]
    CredentialExpired {
        /// End of validity.
        expires: Timestamp,
        /// Our clock.
        now: Timestamp,
    },
    /// The credential's window has not opened.
    #[error("org credential not valid before {not_before} (now {now})")]
    CredentialNotYetValid {
        /// Start of validity.
        not_before: Timestamp,
        /// Our clock.
        now: Timestamp,
    },
    /// The credential is in our revocation set.
    #[error("org credential is revoked")]
    CredentialRevoked,
    /// The credential's org is not in our trust bundle.
    #[error("organisation {org} is not in this node's trust bundle")]
    OrgNotInBundle {
        /// The org root DID.
        org: Did,
    },
    /// The card offers a capability the org's policy does not allow here.
    #[error("org `{org}` may not offer capability `{capability}` under this node's bundle")]
    CapabilityNotAllowed {
        /// The org's name in our bundle.
        org: String,
        /// The capability pattern offered.
        capability: String,
    },
    /// The peer's trust score is under our floor.
    #[error("peer trust {score} is below the floor {floor}")]
    BelowTrustFloor {
        /// The peer's current score.
        score: Score,
        /// The configured floor.
        floor: Score,
    },
    /// No protocol version in common.
    #[error("no common protocol version (peer speaks {offered:?})")]
    NoCommonVersion {
        /// Versions the peer listed.
        offered: Vec<u64>,
    },
    /// This initiator sent too many Hellos within the replay window to
    /// remember another of its nonces.
    #[error("too many Hellos from this agent within the replay window; try again shortly")]
    ReplayCacheFull,
    /// The Confirm came after the handshake deadline.
    #[error("handshake timed out (started {started}, now {now})")]
    TimedOut {
        /// When the Response was sent.
        started: Timestamp,
        /// Our clock.
        now: Timestamp,
    },
    /// This agent sent Hellos faster than the receiver takes them; refused
    /// before any signature is checked.
    #[error("too many Hellos from this agent; slow down")]
    RateLimited,
    /// A spawned agent's lineage does not verify (or spawned agents are
    /// not accepted here).
    #[error("invalid lineage: {0}")]
    LineageInvalid(String),
    /// A certificate in a spawned agent's lineage is revoked.
    #[error("lineage revoked: {0}")]
    LineageRevoked(String),
}

impl Refusal {
    /// Stable numeric code for logs, metrics and the wire.
    pub fn code(&self) -> u16 {
        match self {
            Refusal::Malformed(_) => 1,
            Refusal::UnsupportedVersion { .. } => 2,
            Refusal::UnexpectedMessage { .. } => 3,
            Refusal::BadSignature { .. } => 4,
            Refusal::InvalidCard(_) => 5,
            Refusal::PeerIdMismatch { .. } => 6,
            Refusal::ChannelBinding { .. } => 7,
            Refusal::Reflected => 8,
            Refusal::ReplayedNonce => 9,
            Refusal::TimestampOutsideWindow { .. } => 10,
            Refusal::TranscriptMismatch(_) => 11,
            Refusal::CredentialInvalid(_) => 12,
            Refusal::CredentialSubjectMismatch { .. } => 13,
            Refusal::CredentialExpired { .. } => 14,
            Refusal::CredentialNotYetValid { .. } => 15,
            Refusal::CredentialRevoked => 16,
            Refusal::OrgNotInBundle { .. } => 17,
            Refusal::CapabilityNotAllowed { .. } => 18,
            Refusal::BelowTrustFloor { .. } => 19,
            Refusal::NoCommonVersion { .. } => 20,
            Refusal::ReplayCacheFull => 21,
            Refusal::TimedOut { .. } => 22,
            Refusal::RateLimited => 23,
            Refusal::LineageInvalid(_) => 24,
            Refusal::LineageRevoked(_) => 25,
        }
    }

    /// Stable snake_case name (metrics label, log field).
    pub fn name(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::UnsupportedVersion { .. } => "unsupported_version",
            Refusal::UnexpectedMessage { .. } => "unexpected_message",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::InvalidCard(_) => "invalid_card",
            Refusal::PeerIdMismatch { .. } => "peer_id_mismatch",
            Refusal::ChannelBinding { .. } => "channel_binding",
            Refusal::Reflected => "reflected",
            Refusal::ReplayedNonce => "replayed_nonce",
            Refusal::TimestampOutsideWindow { .. } => "timestamp_outside_window",
            Refusal::TranscriptMismatch(_) => "transcript_mismatch",
            Refusal::CredentialInvalid(_) => "credential_invalid",
            Refusal::CredentialSubjectMismatch { .. } => "credential_subject_mismatch",
            Refusal::CredentialExpired { .. } => "credential_expired",
            Refusal::CredentialNotYetValid { .. } => "credential_not_yet_valid",
            Refusal::CredentialRevoked => "credential_revoked",
            Refusal::OrgNotInBundle { .. } => "org_not_in_bundle",
            Refusal::CapabilityNotAllowed { .. } => "capability_not_allowed",
            Refusal::BelowTrustFloor { .. } => "below_trust_floor",
            Refusal::NoCommonVersion { .. } => "no_common_version",
            Refusal::ReplayCacheFull => "replay_cache_full",
            Refusal::TimedOut { .. } => "timed_out",
            Refusal::RateLimited => "rate_limited",
            Refusal::LineageInvalid(_) => "lineage_invalid",
            Refusal::LineageRevoked(_) => "lineage_revoked",
        }
    }
}

impl From<EnvelopeError> for Refusal {
    fn from(e: EnvelopeError) -> Self {
        match e {
            EnvelopeError::UnsupportedVersion { found } => Refusal::UnsupportedVersion { found },
            EnvelopeError::UnexpectedType { expected, found } => {
                Refusal::UnexpectedMessage { expected, found }
            }
            EnvelopeError::BadSignature { signer } => Refusal::BadSignature { signer },
            other => Refusal::Malformed(other),
        }
    }
}

impl From<CredentialError> for Refusal {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::Expired { expires, now } => {
                Refusal::CredentialExpired { expires, now }
            }
            CredentialError::NotYetValid { not_before, now } => {
                Refusal::CredentialNotYetValid { not_before, now }
            }
            CredentialError::Revoked { .. } => Refusal::CredentialRevoked,
            other => Refusal::CredentialInvalid(other),
        }
    }
}

/// A refused handshake: the reason, and the peer that provably caused it.
///
/// `accountable` is set only once the peer's signature over the offending
/// message has verified, so it is safe to record as trust evidence against
/// that DID; before that, anyone could have sent the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("handshake refused ({}): {refusal}", refusal.name())]
pub struct Refused {
    /// Why.
    pub refusal: Refusal,
    /// The authenticated peer responsible, if any.
    pub accountable: Option<Did>,
}
