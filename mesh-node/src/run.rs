//! `mesh-node run --config node.toml`: one agent's node until Ctrl-C or
//! SIGTERM, then a graceful shutdown (checkpoint, ledger closed).

use std::path::Path;

use anyhow::{Context, Result};
use mesh_dashboards::DashboardConfig;
use mesh_node::config::NodeConfigFile;
use mesh_node::node::{Node, NodeBuilder, NodeEvent, serve_dashboard};
use mesh_node::revoked;

pub async fn run(path: &Path) -> Result<()> {
    let config = NodeConfigFile::load(path)?;
    let node = NodeBuilder::from_config_file(&config)?.build().await?;
    let mut events = node.events();
    tracing::info!(did = %node.did(), peer_id = %node.peer_id(), "node started");
    // Until the local agent API (issue 15) hands tasks to an agent
    // process, a daemon runs none: it refuses them rather than claim work.
    tracing::info!("no task handler: tasks delegated to this agent are refused (no_handler)");
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
