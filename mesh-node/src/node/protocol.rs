//! The IATP handshake over libp2p request-response.
//!
//! Protocol id `/mesh/iatp/1`, libp2p's CBOR request-response codec. The
//! initiator (the dialer) sends `Hello(envelope)`, gets `Response(envelope)`,
//! sends `Confirm(envelope)` and gets `Accepted`. Either side answers a
//! message it refuses with `Refused { code, reason }` (PROTOCOL.md §5.1
//! codes) and closes the connection.

use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The request-response protocol id.
pub const IATP_PROTOCOL: StreamProtocol = StreamProtocol::new("/mesh/iatp/1");

/// Initiator → responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IatpRequest {
    /// The signed Hello envelope.
    Hello(ByteBuf),
    /// The signed Confirm envelope.
    Confirm(ByteBuf),
}

/// Responder → initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IatpResponse {
    /// The signed Response envelope.
    Response(ByteBuf),
    /// The Confirm was accepted: the session is established on both sides.
    Accepted,
    /// The message was refused (the connection is closed after this).
    Refused {
        /// Refusal code (PROTOCOL.md §5.1).
        code: u16,
        /// Refusal name, e.g. `org_not_in_bundle`.
        reason: String,
    },
}
