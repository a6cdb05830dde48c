//! `mesh-node mcp`: the mesh as Model Context Protocol tools, so any
//! MCP-capable agent (or agent framework) can use it. A stdio server built
//! on `rmcp`, the official Rust MCP SDK, speaking to a running node through
//! its local agent API (docs/API.md §8): delegate a task and wait for its
//! result, list peers with their trust and tiers, explain a score, prove a
//! record, and follow or cancel a task.
//!
//! Refusals (a peer's, the gate's, bad input) come back as tool errors
//! whose text names the rule or the field, which the calling model reads;
//! only a failure of the server itself is a protocol error.

use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::agent_api::client::{ApiClient, ClientError};

/// The longest a `delegate_task` call waits for the answer, unless asked.
pub const DEFAULT_WAIT_SECS: u64 = 300;

/// The MCP server: tools over one node's agent API.
#[derive(Clone)]
pub struct MeshTools {
    api: ApiClient,
    tool_router: ToolRouter<Self>,
}

/// `delegate_task`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateArgs {
    /// The resource, e.g. `search` (one concrete resource, no `*`).
    pub resource: String,
    /// The action, e.g. `read`.
    pub action: String,
    /// Text for the agent that runs it (at most 16 KiB).
    #[serde(default)]
    pub input: String,
    /// The agent to run it (a did:key); default: the most trusted connected
    /// agent offering the resource.
    pub to: Option<String>,
    /// The runner needs at least this trust, 0–1000 (default 400).
    pub min_trust: Option<u16>,
    /// The answer is due within this many seconds (default 600).
    pub deadline_secs: Option<u64>,
    /// Wait at most this many seconds for the answer (default 300); the
    /// task goes on after that, and `get_task` follows it.
    pub wait_secs: Option<u64>,
}

/// A task's id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskArgs {
    /// The task's id (64 hex digits, from `delegate_task`).
    pub id: String,
}

/// An agent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentArgs {
    /// The agent's did:key.
    pub did: String,
}

/// A record of this agent's log.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordArgs {
    /// The record's index in this agent's log.
    pub index: u64,
}

fn answer(result: Result<Value, ClientError>) -> Result<CallToolResult, ErrorData> {
    match result {
        Ok(value) => Ok(CallToolResult::success(vec![ContentBlock::text(
            serde_json::to_string_pretty(&value).unwrap_or_default(),
        )])),
        // The caller's model reads the refusal: its rule, the field.
        Err(e @ ClientError::Api { .. }) => Ok(CallToolResult::error(vec![ContentBlock::text(
            e.to_string(),
        )])),
        Err(e) => Err(ErrorData::internal_error(e.to_string(), None)),
    }
}

#[tool_router]
impl MeshTools {
    /// Tools over the agent API `api` reaches.
    pub fn new(api: ApiClient) -> Self {
        MeshTools {
            api,
            tool_router: Self::tool_router(),
        }
    }

    /// Delegate a task and wait for its answer.
    #[tool(
        description = "Delegate a task to another agent in the mesh (a named one, or the most trusted connected agent offering the resource) and wait for its answer. The task and its answer are co-signed records in both agents' logs. Returns the task: state (succeeded, failed, cancelled, expired, overdue, or running if the wait ran out), output, and the records' indexes."
    )]
    pub async fn delegate_task(
        &self,
        Parameters(args): Parameters<DelegateArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.delegate(args).await)
    }

    /// A task's state.
    #[tool(
        description = "The state of a task delegated earlier (by its id), with its output once answered."
    )]
    pub async fn get_task(
        &self,
        Parameters(args): Parameters<TaskArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.api.get(&format!("/v1/tasks/{}", args.id)).await)
    }

    /// Cancel a task.
    #[tool(
        description = "Cancel a task delegated earlier: the agent running it stops and answers `cancelled`."
    )]
    pub async fn cancel_task(
        &self,
        Parameters(args): Parameters<TaskArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let path = format!("/v1/tasks/{}/cancel", args.id);
        answer(self.api.post(&path, &json!({})).await.map(|(_, v)| v))
    }

    /// The peers and our trust in them.
    #[tool(
        description = "The agents this agent holds an authenticated session with: name, organisation, trust score (0-1000), tier and the capabilities they offer."
    )]
    pub async fn list_peers(&self) -> Result<CallToolResult, ErrorData> {
        answer(self.api.get("/v1/peers").await)
    }

    /// What a score is made of.
    #[tool(
        description = "Explain this agent's trust in another agent: the score and tier, the parts from its own evidence and from others' reports, and the latest evidence."
    )]
    pub async fn explain_trust(
        &self,
        Parameters(args): Parameters<AgentArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.api.get(&format!("/v1/trust/{}", args.did)).await)
    }

    /// A record's inclusion proof.
    #[tool(
        description = "A record of this agent's ledger with its Merkle inclusion proof (RFC 9162) against the log's current size, and whether it verifies."
    )]
    pub async fn prove_record(
        &self,
        Parameters(args): Parameters<RecordArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            self.api
                .get(&format!("/v1/records/{}/proof", args.index))
                .await,
        )
    }
}

impl MeshTools {
    async fn delegate(&self, args: DelegateArgs) -> Result<Value, ClientError> {
        let mut body =
            json!({"resource": args.resource, "action": args.action, "input": args.input});
        if let Some(to) = args.to {
            body["to"] = json!(to);
        }
        if let Some(m) = args.min_trust {
            body["min_trust"] = json!(m);
        }
        if let Some(d) = args.deadline_secs {
            body["deadline_secs"] = json!(d);
        }
        let (_, mut task) = self.api.post("/v1/tasks", &body).await?;
        let id = task["id"].as_str().unwrap_or_default().to_string();
        let until = tokio::time::Instant::now()
            + Duration::from_secs(args.wait_secs.unwrap_or(DEFAULT_WAIT_SECS));
        while task["state"] == "running" {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let wait = left.as_secs().clamp(1, crate::agent_api::tasks_max_wait());
            task = self
                .api
                .get(&format!("/v1/tasks/{id}?wait_secs={wait}"))
                .await?;
        }
        Ok(task)
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "mesh-node",
    instructions = "Tools of an agent in a trust mesh: delegate tasks to other agents (gated by trust, recorded in co-signed ledgers), list peers with their trust, explain a score, prove a record."
)]
impl ServerHandler for MeshTools {}

/// Serve the tools on stdin/stdout until the client closes them.
pub async fn serve_stdio(api: ApiClient) -> Result<(), std::io::Error> {
    let running = MeshTools::new(api)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}
