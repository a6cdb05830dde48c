//! The node's wire protocols over libp2p: request-response with the
//! node's deterministic-CBOR codec ([`FrameCodec`]) on `/mesh/iatp/1` (the
//! handshake) and `/mesh/action/1` (everything after it). The messages are
//! the agent's ([`mesh_agent::wire`]); PROTOCOL.md §8 and §10 give the
//! bytes.

use libp2p::StreamProtocol;

pub use mesh_agent::wire::{
    ActionContext, ActionRefusal, ActionRequest, ActionResponse, IatpRequest, IatpResponse,
    MAX_ACTION_FRAME, MAX_IATP_FRAME, MAX_PAYLOAD, MAX_PROOF_HASHES, Stopped, Task, TaskOutcome,
};

pub use super::net::frame::{BadFrame, Frame, FrameCodec};

/// The handshake's request-response protocol id.
pub const IATP_PROTOCOL: StreamProtocol = StreamProtocol::new("/mesh/iatp/1");

/// The action protocol id.
pub const ACTION_PROTOCOL: StreamProtocol = StreamProtocol::new("/mesh/action/1");
