//! A Rust agent beside its own `mesh-node run`, through the local agent
//! API only (the same door a Python or any other agent uses): it serves
//! the tasks delegated to it, and delegates one of its own.
//!
//! ```sh
//! cargo run -p mesh-node --example api_agent -- node.toml serve
//! cargo run -p mesh-node --example api_agent -- node.toml ask "rust sans-io" [DID]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mesh_node::agent_api::client::ApiClient;
use serde_json::json;

/// The agent's real work.
fn handle(input: &str) -> String {
    format!(
        "rust agent: {} words in {input:?}",
        input.split_whitespace().count()
    )
}

/// Take tasks from the inbox and answer them, until killed.
async fn serve(api: &ApiClient) -> Result<()> {
    let me = api.get("/v1/agent").await?;
    println!("serving tasks for {}", me["did"].as_str().unwrap_or(""));
    loop {
        let (status, task) = api
            .post("/v1/inbox/next", &json!({"wait_secs": 5, "lease_secs": 60}))
            .await?;
        if status == 204 {
            continue;
        }
        let id = task["id"].as_str().context("a task without an id")?;
        let output = handle(task["input"].as_str().unwrap_or(""));
        let path = format!("/v1/inbox/{id}/result");
        api.post(&path, &json!({"success": true, "output": output}))
            .await?;
        println!("answered {id}");
    }
}

/// Delegate one task (to `to`, or the best candidate) and print its answer.
async fn ask(api: &ApiClient, input: &str, to: Option<&str>) -> Result<()> {
    let mut body = json!({"resource": "search", "action": "read", "input": input});
    if let Some(to) = to {
        body["to"] = json!(to);
    }
    let (_, mut task) = api.post("/v1/tasks", &body).await?;
    let id = task["id"].as_str().context("no id")?.to_string();
    let until = tokio::time::Instant::now() + Duration::from_secs(120);
    while task["state"] == "running" && tokio::time::Instant::now() < until {
        task = api.get(&format!("/v1/tasks/{id}?wait_secs=30")).await?;
    }
    println!(
        "{} by {}: {}",
        task["state"].as_str().unwrap_or(""),
        task["to"].as_str().unwrap_or(""),
        task["output"].as_str().unwrap_or("")
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(config), Some(command)) = (args.first(), args.get(1)) else {
        bail!("usage: api_agent NODE_TOML serve | ask TEXT [DID]");
    };
    let api = ApiClient::from_config(&PathBuf::from(config))?;
    match command.as_str() {
        "serve" => serve(&api).await,
        "ask" => {
            let input = args.get(2).map(String::as_str).unwrap_or("");
            ask(&api, input, args.get(3).map(String::as_str)).await
        }
        other => bail!("unknown command {other:?}: serve or ask"),
    }
}
