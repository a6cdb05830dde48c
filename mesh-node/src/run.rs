//! `mesh-node run --config node.toml`: one agent's node until Ctrl-C or
//! SIGTERM, then a graceful shutdown (checkpoint, ledger closed).

use std::path::Path;

use anyhow::{Context, Result};
use mesh_dashboards::DashboardConfig;
use mesh_iatp::envelope::PROTOCOL_VERSION;
use mesh_iatp::handshake::LocalAgent;
use mesh_iatp::{AgentCard, CapabilityPattern, SignedCredential, TrustBundle};
use mesh_node::config::NodeConfigFile;
use mesh_node::node::{Node, NodeEvent, serve_dashboard};
use mesh_node::{keyfile, revoked};

/// Largest credential file read.
const MAX_CREDENTIAL_FILE: u64 = 4096;

/// Build the agent from the config's key and credential files.
fn agent_from(config: &NodeConfigFile) -> Result<LocalAgent> {
    let identity = keyfile::read(&config.identity)?;
    let len = std::fs::metadata(&config.credential)
        .with_context(|| format!("credential: {}", config.credential.display()))?
        .len();
    if len > MAX_CREDENTIAL_FILE {
        anyhow::bail!(
            "credential: {} is {len} bytes, too large to be a credential",
            config.credential.display()
        );
    }
    let credential = SignedCredential(
        std::fs::read(&config.credential)
            .with_context(|| format!("credential: {}", config.credential.display()))?,
    );
    let cred = credential.verify_signature().with_context(|| {
        format!(
            "credential: {} is not a valid org credential",
            config.credential.display()
        )
    })?;
    let now = crate::unix_now()?;
    match cred.validity(now) {
        mesh_iatp::Validity::Valid { expires_in } => {
            if expires_in < crate::validity::EXPIRY_WARNING_SECS {
                tracing::warn!(
                    "credential {} expires {} (in {}): peers will refuse this agent after that; issue a new one (mesh-node org issue)",
                    config.credential.display(),
                    cred.expires.utc(),
                    crate::validity::span(expires_in)
                );
            }
        }
        _ => anyhow::bail!(
            "credential: {} is {}; peers would refuse every handshake (issue a new one with mesh-node org issue)",
            config.credential.display(),
            crate::validity::describe(&cred, now).0
        ),
    }
    if &cred.agent != identity.did() {
        anyhow::bail!(
            "credential: {} is for {}, but the identity is {}",
            config.credential.display(),
            cred.agent,
            identity.did()
        );
    }
    let card = AgentCard {
        did: identity.did().clone(),
        name: config.name.clone(),
        credential,
        capabilities: config
            .capabilities
            .iter()
            .map(|c| {
                CapabilityPattern::parse(c).map_err(|e| anyhow::anyhow!("capabilities: {c}: {e}"))
            })
            .collect::<Result<_>>()?,
        versions: vec![PROTOCOL_VERSION],
        lineage: vec![],
    };
    LocalAgent::new(identity, card).map_err(|e| anyhow::anyhow!("agent card: {e}"))
}

pub async fn run(path: &Path) -> Result<()> {
    let config = NodeConfigFile::load(path)?;
    let agent = agent_from(&config)?;
    let text = std::fs::read_to_string(&config.trust_bundle)
        .with_context(|| format!("trust_bundle: {}", config.trust_bundle.display()))?;
    let bundle = TrustBundle::from_toml_str(&text).with_context(|| {
        format!(
            "trust_bundle: {} is not a valid trust bundle",
            config.trust_bundle.display()
        )
    })?;
    let mut builder = Node::builder()
        .agent(agent)
        .bundle(bundle)
        .data_dir(&config.data_dir)
        .mdns(config.mdns);
    if let Some(file) = &config.revoked_credentials {
        let list = revoked::read(file).context("revoked_credentials")?;
        builder = builder.revoked_credentials(list);
    }
    for addr in &config.listen {
        builder = builder.listen(addr.clone());
    }
    for addr in &config.bootstrap {
        builder = builder.bootstrap(addr.clone());
    }
    let node = builder.build().await?;
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
