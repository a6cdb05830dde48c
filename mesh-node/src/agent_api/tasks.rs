//! `/v1/tasks`: tasks this agent delegates through the API — to a named
//! agent, or to the best candidate connected for the task's resource —
//! and what came of them. A task is returned as soon as the delegatee
//! accepted it; its answer is followed in the background and kept in a
//! bounded book (the newest [`MAX_TASKS_KEPT`] tasks).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use mesh_delegation::{Capability, LinkHash};
use mesh_iatp::{CapabilityPattern, Did, Score};
use mesh_trust::select::{Candidate, Selection};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tokio::sync::{Notify, watch};

use super::{ApiError, App};
use crate::node::protocol::MAX_PAYLOAD;
use crate::node::{DelegateOptions, Delegated, NodeError, NodeEvent, Task, TaskOutcome};

/// Tasks kept in the book, newest first; the oldest finished one goes.
pub const MAX_TASKS_KEPT: usize = 1000;
/// Tasks delegated through the API and not answered yet, at most.
pub const MAX_TASKS_RUNNING: usize = 1024;
/// The longest a request waits for an answer (`wait_secs`).
pub const MAX_WAIT_SECS: u64 = 60;
/// The longest deadline (a grant lives as long).
pub const MAX_DEADLINE_SECS: u64 = 7 * 24 * 3600;

/// What to delegate (`POST /v1/tasks`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// The delegatee's DID; absent: the best candidate connected.
    to: Option<String>,
    /// A concrete resource, e.g. `tools/search`.
    resource: String,
    /// The action, e.g. `read`.
    action: String,
    /// Text for the delegatee (at most 16 KiB as UTF-8).
    #[serde(default)]
    input: String,
    /// Answer due within this long (default 600; at most a week).
    deadline_secs: Option<u64>,
    /// The delegatee needs at least this trust (default 400).
    min_trust: Option<u16>,
    /// Wait up to this long for the answer before returning (default 0:
    /// return once accepted; at most 60).
    #[serde(default)]
    wait_secs: u64,
}

/// A task as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskView {
    /// The task's grant, 64 hex digits: its name on both sides.
    pub id: String,
    /// Who runs it.
    pub to: String,
    /// The resource.
    pub resource: String,
    /// The action.
    pub action: String,
    /// `running`, `succeeded`, `failed`, `cancelled`, `expired` (the
    /// delegatee's answer), or `overdue` (no answer by the deadline; a
    /// late one still replaces it).
    pub state: &'static str,
    /// When it must be answered (Unix seconds).
    pub deadline: u64,
    /// The answer's output, as text (when it is UTF-8).
    pub output: Option<String>,
    /// The answer's output as hex (when it is not UTF-8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_hex: Option<String>,
    /// This log's index of the `delegate` record.
    pub delegate_record: Option<u64>,
    /// This log's index of the `result` record.
    pub result_record: Option<u64>,
}

impl TaskView {
    fn answered(&mut self, outcome: &TaskOutcome) {
        self.state = outcome.status();
        match std::str::from_utf8(&outcome.output) {
            Ok(text) => self.output = Some(text.to_string()),
            Err(_) => self.output_hex = Some(hex::encode(&outcome.output)),
        }
    }
}

/// The tasks delegated through the API.
#[derive(Default)]
pub(super) struct Book {
    tasks: Mutex<BookState>,
    changed: Notify,
}

#[derive(Default)]
struct BookState {
    by_id: BTreeMap<LinkHash, TaskView>,
    /// Oldest first.
    order: VecDeque<LinkHash>,
}

impl Book {
    fn state(&self) -> MutexGuard<'_, BookState> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn running(&self) -> usize {
        self.state()
            .by_id
            .values()
            .filter(|t| t.state == "running")
            .count()
    }

    fn insert(&self, grant: LinkHash, view: TaskView) {
        let mut s = self.state();
        s.by_id.insert(grant, view);
        s.order.push_back(grant);
        while s.order.len() > MAX_TASKS_KEPT {
            // The oldest finished task goes; running ones stay.
            let Some(pos) = s
                .order
                .iter()
                .position(|g| s.by_id.get(g).is_some_and(|t| t.state != "running"))
            else {
                break;
            };
            if let Some(g) = s.order.remove(pos) {
                s.by_id.remove(&g);
            }
        }
    }

    fn update(&self, grant: &LinkHash, f: impl FnOnce(&mut TaskView)) {
        if let Some(t) = self.state().by_id.get_mut(grant) {
            f(t);
        }
        self.changed.notify_waiters();
    }

    fn get(&self, grant: &LinkHash) -> Option<TaskView> {
        self.state().by_id.get(grant).cloned()
    }

    /// The task once it is no longer running, or as it is after `wait`.
    async fn settled(&self, grant: &LinkHash, wait: Duration) -> Option<TaskView> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let view = self.get(grant)?;
            if view.state != "running" {
                return Some(view);
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return self.get(grant);
            }
        }
    }
}

/// Follow late answers (after `overdue`, or to tasks the API did not
/// wait on) from the node's events, until `stop`.
pub(super) async fn follow(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut events = app.node.events();
    loop {
        let event = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            event = events.recv() => event,
        };
        match event {
            // Only late answers: one a command still waits for is filled
            // in by that command, records and all (taking it here too
            // raced with it and could show the answer without its records).
            Ok(NodeEvent::TaskAnswered {
                grant,
                outcome,
                awaited: false,
                ..
            }) => {
                app.book.update(&grant, |t| t.answered(&outcome));
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return,
        }
    }
}

pub(super) fn parse_id(id: &str) -> Result<LinkHash, ApiError> {
    let bytes = hex::decode(id)
        .ok()
        .and_then(|b| LinkHash::try_from(b).ok());
    bytes.ok_or_else(|| ApiError::field("id", "a task id is 64 hex digits (its grant)"))
}

pub(super) fn parse_did(field: &'static str, s: &str) -> Result<Did, ApiError> {
    Did::parse(s).map_err(|e| ApiError::field(field, e.to_string()))
}

/// The candidate chosen among those connected for `resource`: its card
/// offers it and its trust is at least `min`; among those, drawn as
/// TRUST.md §5b says (in proportion to trust above `min`, proven agents
/// only, with 5% exploration), so work spreads over the trusted agents
/// and a newcomer gets some.
async fn best_candidate(app: &App, resource: &str, min: Score) -> Result<Did, ApiError> {
    let wanted = CapabilityPattern::parse(resource)
        .map_err(|e| ApiError::field("resource", e.to_string()))?;
    let peers: Vec<_> = app
        .node
        .peers()
        .await?
        .into_iter()
        .filter(|p| p.capabilities.iter().any(|c| c.contains(&wanted)))
        .collect();
    let seen: Vec<Candidate> = peers
        .iter()
        .map(|p| Candidate {
            score: f64::from(p.score.get()),
            proven: p.proven,
        })
        .collect();
    let (explore, draw) = (unit_draw()?, unit_draw()?);
    Selection::default()
        .pick(&seen, f64::from(min.get()), explore, draw)
        .map(|k| peers[k].did.clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_candidate",
                format!(
                    "no connected agent offers {resource} with trust at least {}",
                    min.get()
                ),
            )
        })
}

/// A uniform draw in [0, 1) from the system's randomness.
fn unit_draw() -> Result<f64, ApiError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no_randomness",
            format!("no system randomness to choose a candidate: {e}"),
        )
    })?;
    Ok(mesh_trust::select::unit(u64::from_le_bytes(b)))
}

/// `POST /v1/tasks`.
pub(super) async fn create(
    State(app): State<Arc<App>>,
    body: Result<Json<NewTask>, JsonRejection>,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    let Json(new) = body?;
    if new.input.len() > MAX_PAYLOAD {
        return Err(ApiError::field(
            "input",
            format!("at most {MAX_PAYLOAD} bytes of UTF-8"),
        ));
    }
    if new.resource.contains('*') {
        return Err(ApiError::field(
            "resource",
            "a task names one concrete resource (no `*`)",
        ));
    }
    Capability::parse(&format!("{}:{}", new.resource, new.action))
        .map_err(|e| ApiError::field("resource", format!("resource and action: {e}")))?;
    let deadline_secs = new.deadline_secs.unwrap_or(600);
    if !(1..=MAX_DEADLINE_SECS).contains(&deadline_secs) {
        return Err(ApiError::field(
            "deadline_secs",
            format!("from 1 to {MAX_DEADLINE_SECS}"),
        ));
    }
    let min_trust = match new.min_trust {
        Some(t) if t > 1000 => return Err(ApiError::field("min_trust", "from 0 to 1000")),
        Some(t) => Score::saturating(t),
        None => Score::saturating(400),
    };
    if new.wait_secs > MAX_WAIT_SECS {
        return Err(ApiError::field(
            "wait_secs",
            format!("from 0 to {MAX_WAIT_SECS}"),
        ));
    }
    if app.book.running() >= MAX_TASKS_RUNNING {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_tasks",
            format!("{MAX_TASKS_RUNNING} tasks delegated through the API await answers"),
        ));
    }
    let to = match &new.to {
        Some(to) => parse_did("to", to)?,
        None => best_candidate(&app, &new.resource, min_trust).await?,
    };
    let task = Task {
        resource: new.resource.clone(),
        action: new.action.clone(),
        input: ByteBuf::from(new.input.into_bytes()),
    };
    let options = DelegateOptions {
        lifetime_secs: deadline_secs.max(600),
        deadline_secs: Some(deadline_secs),
        min_trust,
        authority: None,
    };
    let started = app.node.start_task(&to, task, options).await?;
    let grant = started.grant;
    app.book.insert(
        grant,
        TaskView {
            id: hex::encode(grant),
            to: to.to_string(),
            resource: new.resource,
            action: new.action,
            state: "running",
            deadline: started.deadline.0,
            output: None,
            output_hex: None,
            delegate_record: None,
            result_record: None,
        },
    );
    let follower = app.clone();
    tokio::spawn(async move {
        let answer = started.answer().await;
        follower.book.update(&grant, |t| match answer {
            Ok(Delegated {
                outcome,
                delegate,
                result,
                ..
            }) => {
                t.answered(&outcome);
                t.delegate_record = Some(delegate.index);
                t.result_record = Some(result.index);
            }
            Err(NodeError::TaskExpired(_)) => t.state = "overdue",
            Err(e) => {
                t.state = "failed";
                t.output = Some(format!("this node: {e}"));
            }
        });
    });
    let view = app
        .book
        .settled(&grant, Duration::from_secs(new.wait_secs))
        .await
        .ok_or_else(|| ApiError::not_found("the task left the book"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /v1/tasks`: newest first.
pub(super) async fn list(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let s = app.book.state();
    let tasks: Vec<&TaskView> = s
        .order
        .iter()
        .rev()
        .filter_map(|g| s.by_id.get(g))
        .collect();
    Json(serde_json::json!({ "tasks": tasks }))
}

/// `?wait_secs=N`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    #[serde(default)]
    wait_secs: u64,
}

/// `GET /v1/tasks/{id}?wait_secs=N`: waits up to N s (at most 60) while
/// the task runs.
pub(super) async fn show(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    query: Result<Query<Wait>, QueryRejection>,
) -> Result<Json<TaskView>, ApiError> {
    let Query(wait) = query?;
    if wait.wait_secs > MAX_WAIT_SECS {
        return Err(ApiError::field(
            "wait_secs",
            format!("from 0 to {MAX_WAIT_SECS}"),
        ));
    }
    let grant = parse_id(&id)?;
    app.book
        .settled(&grant, Duration::from_secs(wait.wait_secs))
        .await
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no task {id} in this agent's book")))
}

/// `POST /v1/tasks/{id}/cancel`: the delegatee stops it and answers
/// `cancelled` (the task shows it once the answer is in).
pub(super) async fn cancel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    let grant = parse_id(&id)?;
    if app.book.get(&grant).is_none() {
        return Err(ApiError::not_found(format!(
            "no task {id} in this agent's book"
        )));
    }
    app.node.cancel_task(&grant).await?;
    let view = app
        .book
        .settled(&grant, Duration::from_secs(5))
        .await
        .ok_or_else(|| ApiError::not_found("the task left the book"))?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}
