//! `mesh-node run --config node.toml`: one agent's node until Ctrl-C or
//! SIGTERM, then a graceful shutdown (checkpoint, ledger closed).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use mesh_dashboards::DashboardConfig;
use mesh_node::agent_api::{self, AgentApiConfig, token};
use mesh_node::config::NodeConfigFile;
use mesh_node::node::{Inbox, Node, NodeBuilder, NodeEvent, serve_dashboard};
use mesh_node::revoked;

pub async fn run(path: &Path) -> Result<()> {
    let config = NodeConfigFile::load(path)?;
    // Tasks delegated to this agent go to an agent process through the
    // API's inbox, or are refused: the daemon never claims work itself.
    let inbox = config.serve_tasks.then(|| Arc::new(Inbox::new()));
    let mut builder = NodeBuilder::from_config_file(&config)?;
    if let Some(inbox) = &inbox {
        builder = builder.task_inbox(inbox.clone());
    }
    let node = builder.build().await?;
    let mut events = node.events();
    tracing::info!(did = %node.did(), peer_id = %node.peer_id(), "node started");
    if inbox.is_none() {
        tracing::info!(
            "tasks delegated to this agent are refused (no_handler): set `serve_tasks = true` \
             to hand them to an agent process through the agent API"
        );
    }
    for addr in node.listen_addrs().await? {
        // One line per address on stdout, for scripts and tests.
        println!("listening {addr}/p2p/{}", node.peer_id());
    }
    println!("agent {}", node.did());
    let dashboard = match config.http {
        Some(addr) => {
            let d = serve_dashboard(
                &node,
                DashboardConfig {
                    addr,
                    token: config.http_token.clone(),
                    ..DashboardConfig::default()
                },
            )
            .await
            .with_context(|| format!("http: {addr}"))?;
            println!("dashboard {}", d.url());
            Some(d)
        }
        None => None,
    };
    let api = match &config.api {
        Some(addr) => {
            let token = token::read_or_create(&config.api_token_file)?;
            let api = agent_api::serve(
                &node,
                inbox.clone(),
                AgentApiConfig {
                    addr: addr.clone(),
                    token,
                    limits: Default::default(),
                },
            )
            .await?;
            println!("api {}", api.addr());
            println!("api-token {}", config.api_token_file.display());
            Some(api)
        }
        None => None,
    };

    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => reload_revoked(&node, config.revoked_credentials.as_deref()).await,
            event = events.recv() => match event {
                // Sessions, refusals and equivocations are logged by the
                // node itself.
                Ok(NodeEvent::Recorded { index, kind, with }) => {
                    tracing::info!(index, kind = mesh_agent::kind_name(kind), %with, "recorded");
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "event log lagged");
                }
                Err(_) => break,
            },
        }
    }
    tracing::info!("shutting down");
    if let Some(api) = api {
        api.shutdown().await;
    }
    if let Some(d) = dashboard {
        d.shutdown().await;
    }
    node.shutdown().await?;
    Ok(())
}

/// SIGHUP: read the revoked-credentials file again and hand it to the node,
/// which cuts off any peer it names. A file that does not read keeps the
/// list in force (and says why): a typo must not unrevoke anyone.
async fn reload_revoked(node: &Node, file: Option<&Path>) {
    let Some(file) = file else {
        tracing::info!("SIGHUP: no revoked_credentials file configured; nothing to reload");
        return;
    };
    match revoked::read(file) {
        Ok(list) => match node.set_revoked_credentials(list).await {
            Ok(()) => tracing::info!(file = %file.display(), "revoked credentials reloaded"),
            Err(e) => tracing::error!("revoked credentials not applied: {e}"),
        },
        Err(e) => tracing::error!("revoked credentials not reloaded, the old list stays: {e}"),
    }
}
