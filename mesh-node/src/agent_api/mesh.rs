//! The agent API's routes about the mesh around the agent: who it is, its
//! peers and their trust, grants and revocations, records and their
//! proofs.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mesh_delegation::Capability;
use mesh_iatp::Score;
use mesh_ledger::record::ActionKind;
use serde::Deserialize;
use serde_json::{Value, json};

use super::tasks::parse_did;
use super::{ApiError, App};
use crate::node::GrantOptions;
use crate::node::protocol::MAX_PAYLOAD;

/// Most capabilities in one grant.
pub const MAX_CAPABILITIES: usize = 32;
/// A revocation's reason, at most.
pub const MAX_REASON: usize = 256;

/// A grant's or a child's capabilities: 1 to [`MAX_CAPABILITIES`], each
/// `RESOURCE_PATTERN:ACTION[,ACTION…]`.
fn capabilities(list: &[String]) -> Result<Vec<Capability>, ApiError> {
    if list.is_empty() || list.len() > MAX_CAPABILITIES {
        return Err(ApiError::field(
            "capabilities",
            format!("from 1 to {MAX_CAPABILITIES} `resource:action` patterns"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            Capability::parse(c)
                .map_err(|e| ApiError::field("capabilities", format!("capability {i}: {e}")))
        })
        .collect()
}

/// `GET /v1/agent`: this agent.
pub(super) async fn agent(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    let node = &app.node;
    let card = node.local().card();
    let org = card
        .credential
        .verify_signature()
        .ok()
        .and_then(|c| node.bundle().policy_for(&c.org).map(|o| o.name.clone()));
    let listen: Vec<String> = node
        .listen_addrs()
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(Json(json!({
        "did": node.did().to_string(),
        "name": card.name,
        "org": org,
        "capabilities": card.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "listen": listen,
        "serves_tasks": app.inbox.is_some(),
    })))
}

/// `GET /v1/peers`: agents holding a session now, with our trust in them.
pub(super) async fn peers(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    let mut rows = Vec::new();
    for p in app.node.peers().await? {
        let tier = app.node.tier_of(&p.did).await?;
        rows.push(json!({
            "did": p.did.to_string(),
            "name": p.name,
            "org": p.org,
            "score": p.score.get(),
            "tier": tier.name(),
            "capabilities": p.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        }));
    }
    Ok(Json(json!({ "peers": rows })))
}

/// `GET /v1/trust/{did}`: what the score is made of.
pub(super) async fn trust(
    State(app): State<Arc<App>>,
    Path(did): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let did = parse_did("did", &did)?;
    let e = app.node.explain(&did).await?;
    Ok(Json(json!({
        "did": e.subject.to_string(),
        "score": e.score.get(),
        "tier": e.tier.name(),
        "direct_score": e.direct_score,
        "direct_evidence": e.direct_evidence,
        "direct_weight": e.direct_weight,
        "global_score": e.global.score,
        "reporters": e.global.reporters,
        "capped_by_ceiling": e.capped_by_ceiling,
        "severe": e.severe.map(|s| s.kind.name()),
        "evidence": e.recent_evidence.iter().rev().map(|ev| json!({
            "kind": ev.kind.name(),
            "at": ev.at.0,
        })).collect::<Vec<_>>(),
    })))
}

/// `POST /v1/grants` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// The audience's DID.
    to: String,
    /// `resource:action` patterns (at most 32).
    capabilities: Vec<String>,
    /// Valid this long (default 3600; at most a year).
    lifetime_secs: Option<u64>,
    /// Re-delegation depth (default 0; at most 8).
    depth: Option<u8>,
    /// The audience must keep at least this trust (default 400).
    min_trust: Option<u16>,
}

/// `POST /v1/grants`: a root grant on this agent's authority, through its
/// gate, acknowledged in both logs.
pub(super) async fn grant(
    State(app): State<Arc<App>>,
    body: Result<Json<NewGrant>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(g) = body?;
    let to = parse_did("to", &g.to)?;
    let capabilities = capabilities(&g.capabilities)?;
    let lifetime_secs = g.lifetime_secs.unwrap_or(3600);
    if !(1..=365 * 24 * 3600).contains(&lifetime_secs) {
        return Err(ApiError::field(
            "lifetime_secs",
            "from 1 to 31536000 (a year)",
        ));
    }
    let depth = g.depth.unwrap_or(0);
    if depth > 8 {
        return Err(ApiError::field("depth", "from 0 to 8"));
    }
    let min_trust = match g.min_trust {
        Some(t) if t > 1000 => return Err(ApiError::field("min_trust", "from 0 to 1000")),
        t => Score::saturating(t.unwrap_or(400)),
    };
    let issued = app
        .node
        .grant(
            &to,
            GrantOptions {
                capabilities,
                lifetime_secs,
                depth,
                min_trust,
                authority: None,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "grant": hex::encode(issued.hash), "record": issued.record.index })),
    ))
}

/// `POST /v1/revocations` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRevocation {
    /// The grant or spawn certificate, 64 hex digits.
    link: String,
    /// Why (at most 256 bytes; signed into the revocation).
    reason: Option<String>,
}

/// `POST /v1/revocations`: revoke a grant or certificate this agent issued.
pub(super) async fn revoke(
    State(app): State<Arc<App>>,
    body: Result<Json<NewRevocation>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(r) = body?;
    let link = hex::decode(&r.link)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| ApiError::field("link", "64 hex digits"))?;
    let reason = r
        .reason
        .unwrap_or_else(|| "revoked through the agent API".into());
    if reason.len() > MAX_REASON {
        return Err(ApiError::field(
            "reason",
            format!("at most {MAX_REASON} bytes"),
        ));
    }
    let revoked = app.node.revoke(&link, &reason).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "link": r.link, "record": revoked.record.map(|rec| rec.index) })),
    ))
}

/// `POST /v1/records` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    /// The other party's DID (holding a session).
    counterparty: String,
    /// `invoke` or `result`.
    kind: String,
    /// The off-ledger payload (its SHA-256 is signed; at most 16 KiB).
    payload: String,
}

/// `POST /v1/records`: an `invoke` or `result` record co-signed by the
/// counterparty, in both logs.
pub(super) async fn record(
    State(app): State<Arc<App>>,
    body: Result<Json<NewRecord>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(r) = body?;
    let counterparty = parse_did("counterparty", &r.counterparty)?;
    let kind = match r.kind.as_str() {
        "invoke" => ActionKind::Invoke,
        "result" => ActionKind::Result,
        _ => return Err(ApiError::field("kind", "`invoke` or `result`")),
    };
    if r.payload.len() > MAX_PAYLOAD {
        return Err(ApiError::field(
            "payload",
            format!("at most {MAX_PAYLOAD} bytes"),
        ));
    }
    let recorded = app
        .node
        .record_action(&counterparty, kind, r.payload.as_bytes())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "index": recorded.index,
            "leaf_hash": hex::encode(recorded.record.leaf_hash()),
        })),
    ))
}

/// `GET /v1/records/{index}/proof`: the record and its inclusion proof
/// against the log's current size (RFC 9162 §2.1.3).
pub(super) async fn proof(
    State(app): State<Arc<App>>,
    Path(index): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let index: u64 = index
        .parse()
        .map_err(|_| ApiError::field("index", "a record index (a whole number)"))?;
    let size = app.node.log_info().await?.size;
    if index >= size {
        return Err(ApiError::not_found(format!(
            "record {index} does not exist (the log has {size})"
        )));
    }
    let p = app.node.prove(index).await?;
    Ok(Json(json!({
        "origin": p.origin,
        "index": p.index,
        "size": p.size,
        "root": hex::encode(p.root),
        "record": hex::encode(p.record.bytes()),
        "leaf_hash": hex::encode(p.record.leaf_hash()),
        "path": p.hashes.iter().map(hex::encode).collect::<Vec<_>>(),
        "verified": p.verify(),
    })))
}

/// `POST /v1/spawn` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChild {
    /// `resource:action` patterns the child may use (within this agent's
    /// org policy; at most 32).
    capabilities: Vec<String>,
    /// Its score never exceeds this (default 600).
    trust_ceiling: Option<u16>,
    /// Its certificate is valid this long (default 86400; at most a year).
    lifetime_secs: Option<u64>,
}

/// `POST /v1/spawn`: a child agent — a fresh key and a certificate through
/// the gate's spawn rules, the `spawn` record co-signed with the child's
/// key. The answer carries the child's private key (PKCS#8 PEM): store it
/// owner-only (the CLI writes it to a new 0600 file and prints it nowhere).
pub(super) async fn spawn(
    State(app): State<Arc<App>>,
    body: Result<Json<NewChild>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(c) = body?;
    let capabilities = capabilities(&c.capabilities)?;
    let trust_ceiling = match c.trust_ceiling {
        Some(t) if t > 1000 => return Err(ApiError::field("trust_ceiling", "from 0 to 1000")),
        t => Score::saturating(t.unwrap_or(600)),
    };
    let lifetime_secs = c.lifetime_secs.unwrap_or(86_400);
    if !(1..=365 * 24 * 3600).contains(&lifetime_secs) {
        return Err(ApiError::field(
            "lifetime_secs",
            "from 1 to 31536000 (a year)",
        ));
    }
    let spawned = app
        .node
        .spawn(crate::node::SpawnOptions {
            capabilities,
            trust_ceiling,
            lifetime_secs,
        })
        .await?;
    let key_pem = spawned.identity.to_pkcs8_pem().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unavailable",
            e.to_string(),
        )
    })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "child": spawned.identity.did().to_string(),
            "certificate": hex::encode(spawned.certificate.hash()),
            "record": spawned.record.index,
            "key_pem": key_pem.as_str(),
        })),
    ))
}
