//! Why an embedder's command failed.

use mesh_delegation::Denial;
use mesh_iatp::Did;

/// A failed [`Command`](crate::Command).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// There is no authenticated session with this agent.
    #[error("no session with {0}")]
    NoSession(Did),
    /// Our gate denied the request.
    #[error("the gate denied it: {0}")]
    Denied(Denial),
    /// The peer refused the request.
    #[error("the peer refused ({rule}, code {code}): {reason}")]
    PeerRefused {
        /// Its stable code (PROTOCOL.md §10.1).
        code: u16,
        /// Its stable name.
        rule: String,
        /// Its reason.
        reason: String,
    },
    /// The peer answered something it should not have.
    #[error("bad answer from the peer: {0}")]
    BadResponse(String),
    /// The request reached no answer (timeout, closed connection).
    #[error("request failed: {0}")]
    RequestFailed(String),
    /// Signing or encoding failed.
    #[error("signing: {0}")]
    Signing(String),
    /// The link to revoke was not issued by this agent.
    #[error("this agent issued no grant or certificate {0}")]
    UnknownLink(String),
    /// Something was malformed (a capability string, a kind).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A delegated task was accepted but not answered by its deadline
    /// (plus the clock skew allowed): the command gives up waiting. A late
    /// answer is still co-signed into both logs.
    #[error("{0} accepted the task but did not answer it by its deadline")]
    TaskExpired(Did),
    /// No task this agent delegated awaits an answer under this grant.
    #[error("no task delegated by this agent awaits an answer under grant {0}")]
    UnknownTask(String),
}
