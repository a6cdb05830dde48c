//! The HTTP server: routes, the security layer, the background sampler.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use mesh_iatp::Did;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::api::{self, TrustDetail, TrustRow};
use crate::memory::{KnownAgent, Memory, Sample};
use crate::view::{Activity, MeshControl, Verification, ViewError};

/// The shortest bearer token accepted.
pub const MIN_TOKEN_LEN: usize = 16;
/// Most records one `/api/v1/ledger/records` call returns.
pub const MAX_RECORDS_PER_PAGE: u64 = 500;
/// A full-log verification newer than this is served from cache.
pub const VERIFICATION_REUSE: Duration = Duration::from_secs(5);
/// Longest revocation reason accepted, in bytes.
pub const MAX_REASON_BYTES: usize = 256;
/// Live event streams served at once; more are refused (503) until one
/// closes.
pub const MAX_LIVE_STREAMS: usize = 32;

/// Every API route (method, path) `router` serves besides the pages;
/// docs/openapi.json documents exactly these (a test holds them together).
pub const API_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/node"),
    ("GET", "/api/v1/peers"),
    ("GET", "/api/v1/trust"),
    ("GET", "/api/v1/trust/history"),
    ("GET", "/api/v1/trust/{did}"),
    ("GET", "/api/v1/delegations"),
    ("GET", "/api/v1/ledger"),
    ("GET", "/api/v1/ledger/records"),
    ("GET", "/api/v1/ledger/records/{index}/proof"),
    ("GET", "/api/v1/ledger/verification"),
    ("GET", "/api/v1/refusals"),
    ("GET", "/api/v1/activity"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/revocations"),
];

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// Where and how the dashboard serves.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Address to bind. Loopback unless the operator says otherwise.
    pub addr: SocketAddr,
    /// Bearer token for writes; `None` makes the dashboard read-only.
    pub token: Option<String>,
    /// How often scores are sampled for the chart (and pushed live).
    pub sample_every: Duration,
    /// How many samples the chart keeps.
    pub samples_kept: usize,
    /// Connection caps and the request-header deadline.
    pub connections: crate::listener::ConnLimits,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 7777)),
            token: None,
            sample_every: Duration::from_secs(1),
            samples_kept: 900,
            connections: crate::listener::ConnLimits::default(),
        }
    }
}

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The configured token is too weak to guard writes.
    #[error("the dashboard token is {len} characters; give at least {MIN_TOKEN_LEN}")]
    WeakToken {
        /// Its length.
        len: usize,
    },
}

/// A running dashboard. Dropping it leaves the server running until the
/// runtime stops; [`Dashboard::shutdown`] stops it.
pub struct Dashboard {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Dashboard {
    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The dashboard's URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stop serving: live streams end, in-flight requests finish (5 s at
    /// most).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// What the live stream carries.
#[derive(Debug, Clone)]
enum Live {
    Trust(Sample),
    Activity(Activity),
}

struct App<V> {
    view: Arc<V>,
    token: Option<String>,
    memory: Mutex<Memory>,
    live: broadcast::Sender<Live>,
    stop: watch::Receiver<bool>,
    /// Host names accepted in the `Host` header (loopback binds only).
    hosts: Option<Vec<String>>,
    verification: tokio::sync::Mutex<Option<(Instant, Verification)>>,
    /// One permit per open live stream.
    streams: Arc<tokio::sync::Semaphore>,
}

impl<V> App<V> {
    fn memory(&self) -> MutexGuard<'_, Memory> {
        // A panic while holding the lock cannot leave Memory inconsistent
        // (every method leaves it whole), so a poisoned lock is still usable.
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Serve `view` on `config.addr`.
pub async fn serve<V: MeshControl>(
    view: Arc<V>,
    config: DashboardConfig,
) -> Result<Dashboard, DashboardError> {
    if let Some(t) = &config.token
        && t.len() < MIN_TOKEN_LEN
    {
        return Err(DashboardError::WeakToken { len: t.len() });
    }
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| DashboardError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DashboardError::Bind {
            addr: config.addr,
            source,
        })?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the dashboard listens beyond loopback: anyone who can reach it can read the node's state");
    }
    let hosts = addr.ip().is_loopback().then(|| loopback_hosts(addr));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (live, _) = broadcast::channel(256);
    let app = Arc::new(App {
        view,
        token: config.token.clone(),
        memory: Mutex::new(Memory::new(config.samples_kept)),
        live,
        stop: stop_rx.clone(),
        hosts,
        verification: tokio::sync::Mutex::new(None),
        streams: Arc::new(tokio::sync::Semaphore::new(MAX_LIVE_STREAMS)),
    });

    let router = router(app.clone());
    let server = tokio::spawn(crate::listener::serve(
        listener,
        router,
        config.connections,
        stop_rx.clone(),
    ));
    let sampler = tokio::spawn(sample_loop(
        app.clone(),
        config.sample_every,
        stop_rx.clone(),
    ));
    let collector = tokio::spawn(collect_loop(app, stop_rx));
    tracing::info!(url = %format!("http://{addr}/"), "dashboard serving");
    Ok(Dashboard {
        addr,
        stop: stop_tx,
        tasks: vec![server, sampler, collector],
    })
}

fn router<V: MeshControl>(app: Arc<App<V>>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/app.css", get(app_css))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::<V>))
        .route("/api/v1/node", get(node::<V>))
        .route("/api/v1/peers", get(peers::<V>))
        .route("/api/v1/trust", get(trust::<V>))
        .route("/api/v1/trust/history", get(trust_history::<V>))
        .route("/api/v1/trust/{did}", get(trust_of::<V>))
        .route("/api/v1/delegations", get(delegations::<V>))
        .route("/api/v1/ledger", get(ledger::<V>))
        .route("/api/v1/ledger/records", get(records::<V>))
        .route("/api/v1/ledger/records/{index}/proof", get(proof::<V>))
        .route("/api/v1/ledger/verification", get(verification::<V>))
        .route("/api/v1/refusals", get(refusals::<V>))
        .route("/api/v1/activity", get(activity::<V>))
        .route("/api/v1/events", get(events::<V>))
        .route(
            "/api/v1/revocations",
            post(revoke::<V>).layer(DefaultBodyLimit::max(4096)),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard::<V>))
        .with_state(app)
}

async fn sample_loop<V: MeshControl>(
    app: Arc<App<V>>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let peers = app.view.peers().await;
        // Scores of agents seen before but not connected now.
        let mut scores = std::collections::HashMap::new();
        let known_agents = app.memory().agents();
        for known in known_agents {
            if let Ok(did) = Did::parse(&known.did)
                && let Ok(e) = app.view.explain(&did).await
            {
                scores.insert(known.did, (e.score.get(), e.tier.name().to_string()));
            }
        }
        let sample = app
            .memory()
            .sample(unix_millis(), &peers, |did| scores.get(did).cloned());
        let _ = app.live.send(Live::Trust(sample));
    }
}

async fn collect_loop<V: MeshControl>(app: Arc<App<V>>, mut stop: watch::Receiver<bool>) {
    let mut rx = app.view.activity();
    loop {
        let item = tokio::select! {
            item = rx.recv() => item,
            _ = stop.wait_for(|s| *s) => return,
        };
        match item {
            Ok(a) => {
                app.memory().note(&a);
                let _ = app.live.send(Live::Activity(a));
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "dashboard fell behind the node's activity");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

// ----- errors -----

/// An API error: a status and a JSON body `{"error": code, "message": …}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.code,
                message: &self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mesh-node\""),
            );
        }
        response
    }
}

impl From<ViewError> for ApiError {
    fn from(e: ViewError) -> Self {
        let (status, code) = match &e {
            ViewError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ViewError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            ViewError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError::new(e.status(), "bad_body", e.body_text())
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such page or endpoint",
    )
}

// ----- the security layer -----

/// Every response: a strict content security policy, no framing, no
/// sniffing, no referrer, no caching of API data; never a CORS header.
/// Requests: the `Host` must name loopback when bound there (DNS
/// rebinding), and a cross-origin `Origin` is refused outright.
async fn guard<V: MeshControl>(
    State(app): State<Arc<App<V>>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if let Some(hosts) = &app.hosts {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return secure(
                ApiError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    "bad_host",
                    format!("Host {host:?} is not this dashboard's loopback address"),
                )
                .into_response(),
            );
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let same = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(host));
        if !same {
            return secure(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "cross_origin",
                    "cross-origin requests are not served",
                )
                .into_response(),
            );
        }
    }
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    if api {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    secure(response)
}

/// The `Host` values a server bound on loopback `addr` accepts (any other
/// is a DNS-rebinding attempt).
pub fn loopback_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .flat_map(|h| [h.to_string(), format!("{h}:{port}")])
        .collect()
}

/// The security headers every response carries (the dashboard's and the
/// local agent API's).
pub fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Writes need `Authorization: Bearer <token>` matching the configured
/// token (compared in constant time); with no token configured there are
/// no writes.
fn authorize<V>(app: &App<V>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &app.token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "read_only",
            "this dashboard is read-only: no token is configured",
        ));
    };
    check_bearer(headers, expected)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()))
}

/// Why a request's bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization: Bearer …` header.
    #[error("this needs `Authorization: Bearer <token>`")]
    Missing,
    /// A token that is not the one configured.
    #[error("the token is wrong")]
    Wrong,
}

/// Check `Authorization: Bearer <token>` against `expected`, in constant
/// time (the dashboard's writes, the local agent API's every route).
pub fn check_bearer(headers: &HeaderMap, expected: &str) -> Result<(), BearerError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(BearerError::Missing)?;
    let same: bool = subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into();
    if same {
        Ok(())
    } else {
        Err(BearerError::Wrong)
    }
}

// ----- pages -----

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn metrics<V: MeshControl>(State(app): State<Arc<App<V>>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.view.metrics().await,
    )
        .into_response()
}

// ----- the API -----

type Api<T> = Result<Json<T>, ApiError>;

async fn node<V: MeshControl>(State(app): State<Arc<App<V>>>) -> Api<api::NodeOverview> {
    let ledger = app.view.ledger().await?;
    let agents = app.memory().agents();
    Ok(Json(api::NodeOverview {
        node: app.view.identity(),
        peers: agents.iter().filter(|a| a.connected).count(),
        known_agents: agents.len(),
        log_size: ledger.size,
        checkpoint_size: ledger.checkpoint.as_ref().map(|c| c.size),
        writes_enabled: app.token.is_some(),
    }))
}

async fn peers<V: MeshControl>(State(app): State<Arc<App<V>>>) -> Api<Vec<KnownAgent>> {
    Ok(Json(app.memory().agents()))
}

async fn trust<V: MeshControl>(State(app): State<Arc<App<V>>>) -> Api<Vec<TrustRow>> {
    let agents = app.memory().agents();
    let mut rows = Vec::with_capacity(agents.len());
    for a in agents {
        if let Ok(did) = Did::parse(&a.did) {
            let e = app.view.explain(&did).await?;
            rows.push(TrustRow::new(a, &e));
        }
    }
    Ok(Json(rows))
}

async fn trust_history<V: MeshControl>(State(app): State<Arc<App<V>>>) -> Api<Vec<Sample>> {
    Ok(Json(app.memory().samples()))
}

async fn trust_of<V: MeshControl>(
    State(app): State<Arc<App<V>>>,
    Path(did): Path<String>,
) -> Api<TrustDetail> {
    let did = Did::parse(&did).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_did",
            format!("{did:?} is not a did:key: {e}"),
        )
    })?;
    Ok(Json(TrustDetail::from(&app.view.explain(&did).await?)))
}

async fn delegations<V: MeshControl>(State(app): State<Arc<App<V>>>) -> Api<api::Graph> {
    let me = app.view.identity();
    let links = app.view.links().await;
    let agents = app.memory().agents();
    Ok(Json(api::Graph::new(&me, &agents, links)))
}

async fn ledger<V: MeshControl>(State(app): State<Arc<App<V>>>) -> Api<crate::view::LedgerStatus> {
    Ok(Json(app.view.ledger().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsQuery {
    from: Option<u64>,
    limit: Option<u64>,
}

async fn records<V: MeshControl>(
    State(app): State<Arc<App<V>>>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Api<api::RecordsPage> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_RECORDS_PER_PAGE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("limit {limit}: give 1 to {MAX_RECORDS_PER_PAGE}"),
        ));
    }
    let size = app.view.ledger().await?.size;
    // Without `from`, the latest page.
    let from = q.from.unwrap_or(size.saturating_sub(limit));
    // Never past `size`: the log may grow between the two reads, and a
    // page must agree with the size it reports.
    let records = if from >= size {
        Vec::new()
    } else {
        app.view.records(from, limit.min(size - from)).await?
    };
    Ok(Json(api::RecordsPage {
        size,
        from,
        records,
    }))
}

async fn proof<V: MeshControl>(
    State(app): State<Arc<App<V>>>,
    Path(index): Path<String>,
) -> Api<crate::view::InclusionProof> {
    let index: u64 = index.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_index",
            format!("{index:?} is not a record index"),
        )
    })?;
    Ok(Json(app.view.prove(index).await?))
}

async fn verification<V: MeshControl>(State(app): State<Arc<App<V>>>) -> Api<Verification> {
    // One verification at a time; a recent result is reused, so the
    // endpoint cannot be used to keep the node busy.
    let mut cached = app.verification.lock().await;
    if let Some((at, v)) = cached.as_ref()
        && at.elapsed() < VERIFICATION_REUSE
    {
        return Ok(Json(v.clone()));
    }
    let v = app.view.verify().await?;
    *cached = Some((Instant::now(), v.clone()));
    Ok(Json(v))
}

async fn refusals<V: MeshControl>(
    State(app): State<Arc<App<V>>>,
) -> Api<Vec<crate::view::Refusal>> {
    Ok(Json(app.memory().refusals()))
}

async fn activity<V: MeshControl>(State(app): State<Arc<App<V>>>) -> Api<Vec<Activity>> {
    Ok(Json(app.memory().activity()))
}

/// Server-sent events: `trust` (a score sample, every sampling interval)
/// and `activity` (everything the node reports), as JSON; `lagged` if this
/// reader fell behind (refetch).
async fn events<V: MeshControl>(
    State(app): State<Arc<App<V>>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // The permit travels with the stream and is released when it closes.
    let permit = app.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{MAX_LIVE_STREAMS} live streams are open already; close one or retry later"),
        )
    })?;
    let rx = app.live.subscribe();
    let stop = app.stop.clone();
    let state = (rx, stop, permit);
    let stream = futures::stream::unfold(state, |(mut rx, mut stop, permit)| async move {
        loop {
            let item = tokio::select! {
                item = rx.recv() => item,
                _ = stop.wait_for(|s| *s) => return None,
            };
            let event = match item {
                Ok(Live::Trust(s)) => Event::default().event("trust").json_data(&s),
                Ok(Live::Activity(a)) => Event::default().event("activity").json_data(&a),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    Ok(Event::default().event("lagged").data(n.to_string()))
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            match event {
                Ok(e) => return Some((Ok(e), (rx, stop, permit))),
                Err(e) => tracing::warn!(error = %e, "live event not encodable"),
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    link: String,
    reason: Option<String>,
}

async fn revoke<V: MeshControl>(
    State(app): State<Arc<App<V>>>,
    headers: HeaderMap,
    body: Result<Json<RevokeBody>, JsonRejection>,
) -> Result<(StatusCode, Json<crate::view::RevokeOutcome>), ApiError> {
    authorize(&app, &headers)?;
    let Json(body) = body?;
    let link = api::parse_hash(&body.link).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_link",
            format!(
                "link {:?}: give the 64 hex digits of a link hash",
                body.link
            ),
        )
    })?;
    let reason = body
        .reason
        .unwrap_or_else(|| "revoked from the dashboard".into());
    if reason.len() > MAX_REASON_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_reason",
            format!("reason: at most {MAX_REASON_BYTES} bytes"),
        ));
    }
    let outcome = app.view.revoke(link, &reason).await?;
    tracing::info!(link = %outcome.link, "revoked through the dashboard");
    Ok((StatusCode::CREATED, Json(outcome)))
}
