//! The local agent API: how an agent process in any language uses its
//! node — delegate tasks and follow them, take the tasks delegated to it
//! from an inbox (with a lease), grant, revoke, read peers and trust,
//! record actions and prove records. HTTP/JSON on loopback TCP or a Unix
//! socket; every route but `/v1/healthz` needs the bearer token, which
//! lives in an owner-only file. docs/API.md §8 documents each route, and
//! docs/openapi.json describes them.
//!
//! It is not the dashboard: the dashboard shows a node to people
//! (read-only without its token); this API acts for the agent.

pub mod client;
mod error;
mod inbox;
mod mesh;
mod tasks;
pub mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use mesh_dashboards::ConnLimits;
use tokio::sync::watch;

use crate::node::{Inbox, Node};
pub use error::ApiError;
pub use tasks::MAX_TASKS_KEPT;

/// The longest a request may wait for a task's answer (`wait_secs`).
pub const fn tasks_max_wait() -> u64 {
    tasks::MAX_WAIT_SECS
}

/// Largest request body: a task's input is at most 16 KiB of UTF-8, and
/// JSON may escape each character in up to 12 bytes (`\uXXXX\uXXXX`), so
/// an over-long text still reaches its handler and is refused naming its
/// field.
pub const MAX_BODY: usize = 256 * 1024;

/// Whether `data` decodes as any route's request body (the fuzz target
/// `agent_api_body` drives this with arbitrary bytes: it must never panic
/// or allocate beyond the body).
#[doc(hidden)]
pub fn check_request_bodies(data: &[u8]) -> bool {
    fn parses<T: serde::de::DeserializeOwned>(data: &[u8]) -> bool {
        serde_json::from_slice::<T>(data).is_ok()
    }
    [
        parses::<tasks::NewTask>(data),
        parses::<inbox::Take>(data),
        parses::<inbox::Progress>(data),
        parses::<inbox::Answer>(data),
        parses::<mesh::NewGrant>(data),
        parses::<mesh::NewRevocation>(data),
        parses::<mesh::NewChild>(data),
        parses::<mesh::NewRecord>(data),
    ]
    .contains(&true)
}

/// Where the API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAddr {
    /// TCP, on loopback (another address is refused: the API acts for the
    /// agent).
    Tcp(SocketAddr),
    /// A Unix socket at this path (created; removed on shutdown).
    Unix(PathBuf),
}

impl std::fmt::Display for ApiAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiAddr::Tcp(a) => write!(f, "http://{a}"),
            ApiAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl std::str::FromStr for ApiAddr {
    type Err = String;

    /// `127.0.0.1:7800`, `[::1]:7800`, or `unix:/path/to/socket`.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a socket path, e.g. `unix:data/api.sock`".into());
            }
            return Ok(ApiAddr::Unix(PathBuf::from(path)));
        }
        let addr: SocketAddr = s.parse().map_err(|_| {
            format!("{s:?} is neither `IP:PORT` (e.g. `127.0.0.1:7800`) nor `unix:PATH`")
        })?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "{addr} is not a loopback address: the agent API acts for the agent, so it \
                 listens on loopback (127.0.0.1, ::1) or a Unix socket only"
            ));
        }
        Ok(ApiAddr::Tcp(addr))
    }
}

/// How the API is served.
#[derive(Debug, Clone)]
pub struct AgentApiConfig {
    /// Where.
    pub addr: ApiAddr,
    /// The bearer token every request but `/v1/healthz` carries.
    pub token: String,
    /// Connection bounds.
    pub limits: ConnLimits,
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentApiError {
    /// The address could not be bound.
    #[error("agent API: cannot listen on {addr}: {source}")]
    Bind {
        /// Where.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The token is too short to be a secret.
    #[error("agent API: the token must be at least 16 characters")]
    WeakToken,
}

/// The API being served; [`AgentApi::shutdown`] stops it.
pub struct AgentApi {
    addr: ApiAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl AgentApi {
    /// Where it listens (the port bound, if `:0` was asked for).
    pub fn addr(&self) -> &ApiAddr {
        &self.addr
    }

    /// Stop serving; open connections finish their current response.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let ApiAddr::Unix(path) = &self.addr {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What the routes share.
pub(crate) struct App {
    node: Node,
    inbox: Option<Arc<Inbox>>,
    token: String,
    /// The `Host` values accepted (TCP on loopback: DNS rebinding).
    hosts: Option<Vec<String>>,
    book: tasks::Book,
}

/// Serve the API for `node` (and its inbox, when delegated tasks go to an
/// agent process).
pub async fn serve(
    node: &Node,
    inbox: Option<Arc<Inbox>>,
    config: AgentApiConfig,
) -> Result<AgentApi, AgentApiError> {
    if config.token.len() < 16 {
        return Err(AgentApiError::WeakToken);
    }
    let bind_error = |source| AgentApiError::Bind {
        addr: config.addr.to_string(),
        source,
    };
    let (bound, addr, hosts): (mesh_dashboards::listener::Bound, ApiAddr, _) = match &config.addr {
        ApiAddr::Tcp(want) => {
            let l = tokio::net::TcpListener::bind(want)
                .await
                .map_err(bind_error)?;
            let at = l.local_addr().map_err(bind_error)?;
            let hosts = mesh_dashboards::server::loopback_hosts(at);
            (l.into(), ApiAddr::Tcp(at), Some(hosts))
        }
        ApiAddr::Unix(path) => {
            // A socket left by a node that died is in the way; anything
            // else at that path is not ours to remove.
            if std::fs::symlink_metadata(path)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            {
                let _ = std::fs::remove_file(path);
            }
            let l = tokio::net::UnixListener::bind(path).map_err(bind_error)?;
            // Owner only: the socket is the door to the agent.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(bind_error)?;
            (l.into(), ApiAddr::Unix(path.clone()), None)
        }
    };
    let (stop, stop_rx) = watch::channel(false);
    let app = Arc::new(App {
        node: node.clone(),
        inbox,
        token: config.token,
        hosts,
        book: tasks::Book::default(),
    });
    let follower = tokio::spawn(tasks::follow(app.clone(), stop_rx.clone()));
    let server = tokio::spawn(mesh_dashboards::listener::serve(
        bound,
        router(app),
        config.limits,
        stop_rx,
    ));
    Ok(AgentApi {
        addr,
        stop,
        tasks: vec![server, follower],
    })
}

/// Every route served, `(method, path)`: the router is built from this
/// list, and a test holds docs/agent-openapi.json to it.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/healthz"),
    ("GET", "/v1/agent"),
    ("GET", "/v1/peers"),
    ("GET", "/v1/trust/{did}"),
    ("GET", "/v1/tasks"),
    ("POST", "/v1/tasks"),
    ("GET", "/v1/tasks/{id}"),
    ("POST", "/v1/tasks/{id}/cancel"),
    ("GET", "/v1/inbox"),
    ("POST", "/v1/inbox/next"),
    ("POST", "/v1/inbox/{id}/progress"),
    ("POST", "/v1/inbox/{id}/result"),
    ("POST", "/v1/grants"),
    ("POST", "/v1/revocations"),
    ("POST", "/v1/spawn"),
    ("POST", "/v1/records"),
    ("GET", "/v1/records/{index}/proof"),
];

/// The handler of one route in [`ROUTES`].
fn handler(method: &str, path: &str) -> MethodRouter<Arc<App>> {
    match (method, path) {
        ("GET", "/v1/healthz") => get(healthz),
        ("GET", "/v1/agent") => get(mesh::agent),
        ("GET", "/v1/peers") => get(mesh::peers),
        ("GET", "/v1/trust/{did}") => get(mesh::trust),
        ("GET", "/v1/tasks") => get(tasks::list),
        ("POST", "/v1/tasks") => post(tasks::create),
        ("GET", "/v1/tasks/{id}") => get(tasks::show),
        ("POST", "/v1/tasks/{id}/cancel") => post(tasks::cancel),
        ("GET", "/v1/inbox") => get(inbox::list),
        ("POST", "/v1/inbox/next") => post(inbox::next),
        ("POST", "/v1/inbox/{id}/progress") => post(inbox::progress),
        ("POST", "/v1/inbox/{id}/result") => post(inbox::result),
        ("POST", "/v1/grants") => post(mesh::grant),
        ("POST", "/v1/revocations") => post(mesh::revoke),
        ("POST", "/v1/spawn") => post(mesh::spawn),
        ("POST", "/v1/records") => post(mesh::record),
        ("GET", "/v1/records/{index}/proof") => get(mesh::proof),
        // Unreachable while ROUTES and this match agree (a test builds
        // the router from every entry).
        _ => MethodRouter::new().fallback(error::not_found),
    }
}

fn router(app: Arc<App>) -> Router {
    let mut router = Router::new();
    for (method, path) in ROUTES {
        let mut route = handler(method, path);
        // Everything but health needs the token.
        if *path != "/v1/healthz" {
            route = route.route_layer(middleware::from_fn_with_state(app.clone(), authorize));
        }
        router = router.route(path, route);
    }
    router
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Every request: a loopback `Host` on TCP (DNS rebinding), no `Origin`
/// at all (no browser page may drive the agent); every response: the
/// security headers, and no caching.
async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if let Some(hosts) = &app.hosts {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return ApiError::bad_host(host).into_response();
        }
    }
    if headers.contains_key(header::ORIGIN) {
        return ApiError::cross_origin().into_response();
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    mesh_dashboards::secure(response)
}

/// Every `/v1` route but `/v1/healthz` needs the bearer token.
async fn authorize(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    match mesh_dashboards::check_bearer(request.headers(), &app.token) {
        Ok(()) => next.run(request).await,
        Err(e) => ApiError::unauthorized(e).into_response(),
    }
}
