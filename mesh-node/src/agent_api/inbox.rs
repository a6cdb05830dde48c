//! `/v1/inbox`: the tasks delegated to this agent, for its agent process
//! to take (with a lease), report progress on (renewing the lease) and
//! answer. A lease that runs out ends the task as failed; a task
//! cancelled or past its deadline leaves the inbox (its answer is given).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::tasks::parse_id;
use super::{ApiError, App};
use crate::node::protocol::MAX_PAYLOAD;
use crate::node::{Inbox, InboxTask, TaskOutcome};

/// The longest a take waits for a task.
pub const MAX_TAKE_WAIT_SECS: u64 = 60;
/// A progress note, at most.
pub const MAX_NOTE: usize = 256;

/// A task in the inbox, as the API shows it.
#[derive(Debug, Serialize)]
pub struct InboxView {
    /// The task's grant, 64 hex digits.
    id: String,
    /// Who delegated it.
    from: String,
    resource: String,
    action: String,
    /// The input, as text (when it is UTF-8).
    input: Option<String>,
    /// The input as hex (when it is not UTF-8).
    #[serde(skip_serializing_if = "Option::is_none")]
    input_hex: Option<String>,
    /// Answer by then (Unix seconds); the node answers `expired` itself.
    deadline: u64,
    leased: bool,
    /// Seconds the lease has left.
    lease_secs_left: Option<u64>,
    progress: Option<String>,
}

impl From<InboxTask> for InboxView {
    fn from(t: InboxTask) -> Self {
        let (input, input_hex) = match std::str::from_utf8(&t.task.input) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (None, Some(hex::encode(&t.task.input))),
        };
        InboxView {
            id: hex::encode(t.grant),
            from: t.delegator.to_string(),
            resource: t.task.resource,
            action: t.task.action,
            input,
            input_hex,
            deadline: t.deadline.0,
            leased: t.leased,
            lease_secs_left: t.lease_left.map(|d| d.as_secs()),
            progress: t.progress,
        }
    }
}

fn inbox(app: &App) -> Result<&Arc<Inbox>, ApiError> {
    app.inbox.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_inbox",
            "this node runs no agent process's tasks (set `serve_tasks = true` in node.toml)",
        )
    })
}

fn lease(secs: Option<u64>) -> Result<Duration, ApiError> {
    let secs = secs.unwrap_or(60);
    let max = crate::node::inbox::MAX_LEASE.as_secs();
    if !(1..=max).contains(&secs) {
        return Err(ApiError::field("lease_secs", format!("from 1 to {max}")));
    }
    Ok(Duration::from_secs(secs))
}

/// `GET /v1/inbox`: every task delegated to this agent not answered yet.
pub(super) async fn list(State(app): State<Arc<App>>) -> Result<Json<serde_json::Value>, ApiError> {
    let tasks: Vec<InboxView> = inbox(&app)?.list().into_iter().map(Into::into).collect();
    Ok(Json(serde_json::json!({ "tasks": tasks })))
}

/// `POST /v1/inbox/next` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Take {
    /// Wait up to this long for a task (default 30, at most 60).
    wait_secs: Option<u64>,
    /// Hold the task this long (default 60, at most 3600); renew with
    /// progress.
    lease_secs: Option<u64>,
}

/// `POST /v1/inbox/next`: the oldest task nobody holds, leased; `204` if
/// none came within `wait_secs`.
pub(super) async fn next(
    State(app): State<Arc<App>>,
    body: Result<Json<Take>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(take) = body?;
    let wait = take.wait_secs.unwrap_or(30);
    if wait > MAX_TAKE_WAIT_SECS {
        return Err(ApiError::field(
            "wait_secs",
            format!("from 0 to {MAX_TAKE_WAIT_SECS}"),
        ));
    }
    let lease = lease(take.lease_secs)?;
    match inbox(&app)?.take(Duration::from_secs(wait), lease).await {
        Some(task) => Ok(Json(InboxView::from(task)).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// `POST /v1/inbox/{id}/progress` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// Renew the lease for this long (default 60).
    lease_secs: Option<u64>,
    /// What is happening (at most 256 bytes).
    note: Option<String>,
}

/// `POST /v1/inbox/{id}/progress`: renew the lease (and note progress).
pub(super) async fn progress(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Result<Json<Progress>, JsonRejection>,
) -> Result<Json<InboxView>, ApiError> {
    let Json(p) = body?;
    let grant = parse_id(&id)?;
    if p.note.as_ref().is_some_and(|n| n.len() > MAX_NOTE) {
        return Err(ApiError::field("note", format!("at most {MAX_NOTE} bytes")));
    }
    let lease = lease(p.lease_secs)?;
    Ok(Json(inbox(&app)?.progress(&grant, lease, p.note)?.into()))
}

/// `POST /v1/inbox/{id}/result` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// Whether the task succeeded.
    success: bool,
    /// Text for the delegator (at most 16 KiB as UTF-8).
    #[serde(default)]
    output: String,
}

/// `POST /v1/inbox/{id}/result`: the outcome of a task held; the node
/// answers the delegator with it (a co-signed `result` record).
pub(super) async fn result(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Result<Json<Answer>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(answer) = body?;
    let grant = parse_id(&id)?;
    if answer.output.len() > MAX_PAYLOAD {
        return Err(ApiError::field(
            "output",
            format!("at most {MAX_PAYLOAD} bytes of UTF-8"),
        ));
    }
    let outcome = if answer.success {
        TaskOutcome::succeeded(answer.output.into_bytes())
    } else {
        TaskOutcome::failed(answer.output.into_bytes())
    };
    inbox(&app)?.answer(&grant, outcome).await?;
    Ok(Json(serde_json::json!({ "id": id, "answered": true })))
}
