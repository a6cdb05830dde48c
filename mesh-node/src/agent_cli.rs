//! `mesh-node task|grant|revoke|spawn`: the local agent API from the
//! shell, for a node started with `mesh-node run` and `api` in its config.
//! Plain lines by default, `--json` for the API's own JSON.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use mesh_node::agent_api::ApiAddr;
use mesh_node::agent_api::client::ApiClient;
use serde_json::{Value, json};

/// Which node's API, and how to print.
#[derive(Args)]
pub struct Target {
    /// The node's config (its `api` and `api_token_file`).
    #[arg(long, value_name = "FILE", default_value = "node.toml", global = true)]
    config: PathBuf,
    /// The API's address instead (`127.0.0.1:7800` or `unix:PATH`); needs --token-file.
    #[arg(long, value_name = "ADDR", requires = "token_file", global = true)]
    api: Option<String>,
    /// The token file, with --api.
    #[arg(long, value_name = "FILE", global = true)]
    token_file: Option<PathBuf>,
    /// Print the API's JSON.
    #[arg(long, global = true)]
    json: bool,
}

impl Target {
    fn client(&self) -> Result<ApiClient> {
        match (&self.api, &self.token_file) {
            (Some(api), Some(file)) => {
                let addr: ApiAddr = api
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("--api: {e}"))?;
                let token = mesh_node::agent_api::token::read(file)?;
                Ok(ApiClient::new(addr, token))
            }
            _ => Ok(ApiClient::from_config(&self.config)?),
        }
    }

    fn print(&self, value: &Value, lines: impl FnOnce(&Value) -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", lines(value));
        }
    }
}

/// Tasks this agent delegates.
#[derive(Subcommand)]
pub enum TaskCmd {
    /// Delegate a task (to --to, or to the best candidate connected) and
    /// print it once accepted, or once answered with --wait.
    Send {
        /// The delegatee's DID; default: drawn among the trusted peers offering
        /// the resource (TRUST.md §5b).
        #[arg(long, value_name = "DID")]
        to: Option<String>,
        /// The resource, e.g. `search`.
        #[arg(long)]
        resource: String,
        /// The action, e.g. `read`.
        #[arg(long)]
        action: String,
        /// Text for the delegatee.
        #[arg(long, default_value = "")]
        input: String,
        /// Answer due within this many seconds (default 600).
        #[arg(long, value_name = "SECS")]
        deadline: Option<u64>,
        /// The delegatee needs at least this trust (default 400).
        #[arg(long, value_name = "SCORE")]
        min_trust: Option<u16>,
        /// Wait up to this many seconds for the answer (at most 60).
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        wait: u64,
        #[command(flatten)]
        target: Target,
    },
    /// The tasks delegated through the API, newest first.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// One task; --wait waits while it runs.
    Show {
        /// Its id (64 hex digits).
        id: String,
        /// Wait up to this many seconds while it runs (at most 60).
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        wait: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Cancel a task: the delegatee stops it and answers `cancelled`.
    Cancel {
        /// Its id (64 hex digits).
        id: String,
        #[command(flatten)]
        target: Target,
    },
}

fn task_line(t: &Value) -> String {
    let s = |k: &str| t[k].as_str().unwrap_or("").to_string();
    let mut line = format!(
        "{}  {}  {}:{}  to {}",
        s("id"),
        s("state"),
        s("resource"),
        s("action"),
        s("to")
    );
    if let Some(out) = t["output"].as_str() {
        line.push_str(&format!("\n  output: {out}"));
    }
    line
}

/// Run a `task` subcommand.
pub async fn task(cmd: TaskCmd) -> Result<()> {
    match cmd {
        TaskCmd::Send {
            to,
            resource,
            action,
            input,
            deadline,
            min_trust,
            wait,
            target,
        } => {
            let mut body =
                json!({"resource": resource, "action": action, "input": input, "wait_secs": wait});
            if let Some(to) = to {
                body["to"] = json!(to);
            }
            if let Some(d) = deadline {
                body["deadline_secs"] = json!(d);
            }
            if let Some(m) = min_trust {
                body["min_trust"] = json!(m);
            }
            let (_, t) = target.client()?.post("/v1/tasks", &body).await?;
            target.print(&t, task_line);
        }
        TaskCmd::List { target } => {
            let list = target.client()?.get("/v1/tasks").await?;
            target.print(&list, |l| {
                let tasks = l["tasks"].as_array().cloned().unwrap_or_default();
                if tasks.is_empty() {
                    "no tasks".into()
                } else {
                    tasks.iter().map(task_line).collect::<Vec<_>>().join("\n")
                }
            });
        }
        TaskCmd::Show { id, wait, target } => {
            let t = target
                .client()?
                .get(&format!("/v1/tasks/{id}?wait_secs={wait}"))
                .await?;
            target.print(&t, task_line);
        }
        TaskCmd::Cancel { id, target } => {
            let (_, t) = target
                .client()?
                .post(&format!("/v1/tasks/{id}/cancel"), &json!({}))
                .await?;
            target.print(&t, task_line);
        }
    }
    Ok(())
}

/// `mesh-node grant`.
pub async fn grant(
    to: String,
    capabilities: Vec<String>,
    lifetime: u64,
    depth: u8,
    min_trust: Option<u16>,
    target: Target,
) -> Result<()> {
    let mut body =
        json!({"to": to, "capabilities": capabilities, "lifetime_secs": lifetime, "depth": depth});
    if let Some(m) = min_trust {
        body["min_trust"] = json!(m);
    }
    let (_, g) = target.client()?.post("/v1/grants", &body).await?;
    target.print(&g, |g| {
        format!(
            "grant {}\nrecord {}",
            g["grant"].as_str().unwrap_or(""),
            g["record"]
        )
    });
    Ok(())
}

/// `mesh-node revoke`.
pub async fn revoke(link: String, reason: Option<String>, target: Target) -> Result<()> {
    let mut body = json!({"link": link});
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    let (_, r) = target.client()?.post("/v1/revocations", &body).await?;
    target.print(&r, |r| {
        format!(
            "revoked {}\nrecord {}",
            r["link"].as_str().unwrap_or(""),
            r["record"]
        )
    });
    Ok(())
}

/// `mesh-node spawn`: the child's key goes to a new owner-only file, never
/// to the terminal.
pub async fn spawn(
    capabilities: Vec<String>,
    trust_ceiling: Option<u16>,
    lifetime: u64,
    key_out: PathBuf,
    target: Target,
) -> Result<()> {
    if key_out.exists() {
        anyhow::bail!(
            "{} exists; the child's key is never written over a file",
            key_out.display()
        );
    }
    let mut body = json!({"capabilities": capabilities, "lifetime_secs": lifetime});
    if let Some(t) = trust_ceiling {
        body["trust_ceiling"] = json!(t);
    }
    let (_, mut child) = target.client()?.post("/v1/spawn", &body).await?;
    let pem = child["key_pem"]
        .as_str()
        .context("the API's answer has no key_pem")?
        .to_string();
    mesh_node::keyfile::write_new(&key_out, pem.as_bytes(), 0o600)?;
    if let Some(o) = child.as_object_mut() {
        o.remove("key_pem");
        o.insert("key_file".into(), json!(key_out.display().to_string()));
    }
    target.print(&child, |c| {
        format!(
            "child {}\ncertificate {}\nkey {}",
            c["child"].as_str().unwrap_or(""),
            c["certificate"].as_str().unwrap_or(""),
            key_out.display()
        )
    });
    Ok(())
}
