//! The agent API's errors: JSON `{"error": CODE, "message": TEXT}` with a
//! stable code, plus `field` when one input field is wrong and `rule` (and
//! `refusal_code`) when a peer or the gate refused — so an SDK can raise an
//! exception carrying the rule.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::node::{InboxError, NodeError};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// The stable code (docs/API.md §8.2).
    pub error: &'static str,
    /// For people.
    pub message: String,
    /// The input field that is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// The rule that refused (a peer's refusal, the gate's denial).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// A peer's refusal code (PROTOCOL.md §10.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal_code: Option<u16>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            message: message.into(),
            field: None,
            rule: None,
            refusal_code: None,
        }
    }

    /// `field` is wrong: 400 `invalid`.
    pub(crate) fn field(field: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub(crate) fn bad_host(host: &str) -> Self {
        ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "bad_host",
            format!("Host {host:?} is not this API's loopback address"),
        )
    }

    pub(crate) fn cross_origin() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "requests from web pages (with an Origin header) are not served",
        )
    }

    pub(crate) fn unauthorized(e: mesh_dashboards::BearerError) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (status, Json(self)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mesh-node\""),
            );
        }
        response
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let message = e.to_string();
        match e {
            NodeError::PeerRefused { code, rule, .. } => ApiError {
                rule: Some(rule),
                refusal_code: Some(code),
                ..ApiError::new(StatusCode::CONFLICT, "refused", message)
            },
            NodeError::Denied(denial) => ApiError {
                rule: Some(denial.rule().to_string()),
                ..ApiError::new(StatusCode::FORBIDDEN, "denied", message)
            },
            NodeError::NoSession(_) => ApiError::new(StatusCode::CONFLICT, "no_session", message),
            NodeError::Invalid(_) => ApiError::new(StatusCode::BAD_REQUEST, "invalid", message),
            NodeError::UnknownLink(_) | NodeError::UnknownTask(_) => ApiError::not_found(message),
            NodeError::TaskExpired(_) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "expired", message)
            }
            NodeError::RequestFailed(_) | NodeError::BadResponse(_) | NodeError::Timeout(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "peer_failed", message)
            }
            _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message),
        }
    }
}

impl From<InboxError> for ApiError {
    fn from(e: InboxError) -> Self {
        let message = e.to_string();
        match e {
            InboxError::Unknown(_) => ApiError::not_found(message),
            InboxError::NotLeased(_) => ApiError::new(StatusCode::CONFLICT, "not_leased", message),
            InboxError::Stopped => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        // serde's message names the field (`unknown field `x``, `missing
        // field `y``, `invalid type … at line 1 column 9`).
        ApiError::new(e.status(), "bad_body", e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text())
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (the agent API is under /v1)")
}
