//! The three handshake messages, one type each.

use serde::{Deserialize, Serialize};

use crate::credential::AgentCard;
use crate::envelope::SignedMessage;
use crate::{PeerId, Timestamp};

/// Largest handshake envelope accepted (checked before decoding).
pub const MAX_HANDSHAKE_MESSAGE: usize = 16 * 1024;

/// Initiator → responder: who I am, whom I think I'm talking to, a fresh nonce.
/// Signed by `card.did`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// The initiator's PeerId (must be the connection's remote, and `card.did`'s key).
    pub from: PeerId,
    /// The responder's PeerId as the initiator dialled it.
    pub to: PeerId,
    /// Initiator's fresh random nonce.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 32],
    /// Initiator's clock when sending.
    pub time: Timestamp,
    /// The initiator's card, with its org credential.
    pub card: AgentCard,
}

impl SignedMessage for Hello {
    const TYPE: &'static str = "iatp/hello";
    const MAX_BYTES: usize = MAX_HANDSHAKE_MESSAGE;
}

/// Responder → initiator: my identity, bound to your Hello and both nonces.
/// Signed by `card.did`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// The responder's PeerId.
    pub from: PeerId,
    /// The initiator's PeerId.
    pub to: PeerId,
    /// SHA-256 of the Hello envelope bytes being answered.
    #[serde(with = "serde_bytes")]
    pub hello_hash: [u8; 32],
    /// The initiator's nonce, echoed.
    #[serde(with = "serde_bytes")]
    pub initiator_nonce: [u8; 32],
    /// Responder's fresh random nonce.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 32],
    /// Responder's clock when sending.
    pub time: Timestamp,
    /// The responder's card, with its org credential.
    pub card: AgentCard,
}

impl SignedMessage for Response {
    const TYPE: &'static str = "iatp/response";
    const MAX_BYTES: usize = MAX_HANDSHAKE_MESSAGE;
}

/// Initiator → responder: my signature over the whole transcript.
/// Signed by the initiator's DID (from its Hello).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// The initiator's PeerId.
    pub from: PeerId,
    /// The responder's PeerId.
    pub to: PeerId,
    /// SHA-256(Hello envelope bytes ‖ Response envelope bytes).
    #[serde(with = "serde_bytes")]
    pub transcript_hash: [u8; 32],
    /// The initiator's nonce.
    #[serde(with = "serde_bytes")]
    pub initiator_nonce: [u8; 32],
    /// The responder's nonce.
    #[serde(with = "serde_bytes")]
    pub responder_nonce: [u8; 32],
}

impl SignedMessage for Confirm {
    const TYPE: &'static str = "iatp/confirm";
    const MAX_BYTES: usize = 1024;
}
