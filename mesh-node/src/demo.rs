//! `mesh-node demo`: agents of two organisations as real nodes on loopback,
//! with embedded SQLite ledgers. They handshake (an outsider is refused),
//! gossip trust, delegate tasks (one agent always fails and loses trust
//! until the gate refuses it), spawn a child that joins with its own node,
//! delegate along a chain and revoke it, co-sign and witness; at the end
//! every ledger is verified with the code `mesh-ledger verify` runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mesh_dashboards::{Dashboard, DashboardConfig};
use mesh_delegation::{Capability, SpawnPolicy};
use mesh_iatp::envelope::PROTOCOL_VERSION;
use mesh_iatp::handshake::LocalAgent;
use mesh_iatp::{
    AgentCard, CapabilityPattern, Identity, OrgCredential, OrgPolicy, Score, Timestamp, TrustBundle,
};
use mesh_ledger::checkpoint::witness_verifier;
use mesh_ledger::store::Store;
use mesh_ledger::verify::verify_log;
use mesh_node::agent_api::{self, AgentApi, AgentApiConfig, ApiAddr, token};
use mesh_node::node::{
    DelegateOptions, GrantOptions, LEDGER_FILE, Node, NodeError, SpawnOptions, SystemClock, Task,
    TaskOutcome, serve_dashboard,
};
use serde_bytes::ByteBuf;

/// What `demo` was asked for.
pub struct DemoOptions {
    /// Agents (4 to 32), half per organisation.
    pub agents: usize,
    /// Where the ledgers go (created; must be empty if it exists).
    pub data_dir: Option<PathBuf>,
    /// How long the delegation rounds run.
    pub seconds: u64,
    /// Serve the first agent's dashboard here.
    pub http: Option<SocketAddr>,
    /// Serve the first agent's local agent API here (docs/API.md §8).
    pub api: Option<SocketAddr>,
    /// With the dashboard or the API: how long the mesh keeps running after
    /// the story (`None`: until Ctrl-C or SIGTERM).
    pub linger: Option<u64>,
}

struct Agent {
    name: String,
    org: &'static str,
    node: Node,
    bad: bool,
}

fn now() -> Timestamp {
    use mesh_node::node::Clock;
    SystemClock.now()
}

fn policy(
    name: &str,
    root: &Identity,
    initial: u16,
    ceiling: u16,
    caps: &[&str],
) -> Result<OrgPolicy> {
    Ok(OrgPolicy {
        name: name.into(),
        root: root.did().clone(),
        initial_trust: Score::new(initial).context("initial trust")?,
        trust_ceiling: Score::new(ceiling).context("trust ceiling")?,
        capabilities: caps
            .iter()
            .map(|c| CapabilityPattern::parse(c).map_err(|e| anyhow::anyhow!("{c}: {e}")))
            .collect::<Result<_>>()?,
    })
}

/// An agent of `org` with a day-long credential.
fn local_agent(
    org: &Identity,
    identity: Identity,
    name: &str,
    offers: &[&str],
) -> Result<LocalAgent> {
    let t = now();
    let credential = OrgCredential {
        org: org.did().clone(),
        agent: identity.did().clone(),
        roles: vec!["worker".into()],
        not_before: t.minus_secs(60),
        expires: t.plus_secs(86_400),
    }
    .sign(org)?;
    let card = AgentCard {
        did: identity.did().clone(),
        name: name.into(),
        credential,
        capabilities: offers
            .iter()
            .map(|c| CapabilityPattern::parse(c).map_err(|e| anyhow::anyhow!("{c}: {e}")))
            .collect::<Result<_>>()?,
        versions: vec![PROTOCOL_VERSION],
        lineage: vec![],
    };
    LocalAgent::new(identity, card).map_err(|e| anyhow::anyhow!("agent card: {e}"))
}

fn fresh_identity() -> Identity {
    use getrandom::SysRng;
    use getrandom::rand_core::UnwrapErr;
    Identity::generate(&mut UnwrapErr(SysRng))
}

fn data_dir(chosen: Option<PathBuf>) -> Result<PathBuf> {
    let dir = match chosen {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("mesh-demo-{}", now().0)),
    };
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut r| r.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "--data-dir {}: the directory is not empty; give a new or empty one (the demo never mixes its ledgers with existing data)",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

async fn start_node(
    agent: LocalAgent,
    bundle: &TrustBundle,
    dir: &Path,
    bad: bool,
    spawn: Option<SpawnPolicy>,
) -> Result<Node> {
    let mut b = Node::builder()
        .agent(agent)
        .bundle(bundle.clone())
        .data_dir(dir)
        .intervals(Duration::from_millis(1000), Duration::from_millis(1500))
        .heartbeat(Duration::from_millis(300))
        .listen("/ip4/127.0.0.1/tcp/0".parse()?);
    if bad {
        b = b.task_handler(|_: &mesh_iatp::Did, _: &Task| TaskOutcome {
            success: false,
            output: ByteBuf::from(b"sorry".to_vec()),
            stopped: None,
        });
    } else {
        b = b.task_handler(|_: &mesh_iatp::Did, t: &Task| TaskOutcome {
            success: true,
            output: ByteBuf::from(format!("{} {} done", t.action, t.resource).into_bytes()),
            stopped: None,
        });
    }
    if let Some(policy) = spawn {
        b = b.spawn_policy(policy);
    }
    Ok(b.build().await?)
}

async fn addr_of(node: &Node) -> Result<libp2p::Multiaddr> {
    node.listen_addrs()
        .await?
        .into_iter()
        .next()
        .context("the node listens nowhere")
}

/// `text` with each demo agent's DID replaced by its name.
fn named(text: &str, agents: &[Agent]) -> String {
    agents.iter().fold(text.to_owned(), |t, a| {
        t.replace(a.node.did().as_str(), &a.name)
    })
}

fn short(did: &mesh_iatp::Did) -> String {
    let s = did.as_str();
    format!(
        "{}…{}",
        &s[..14.min(s.len())],
        &s[s.len().saturating_sub(4)..]
    )
}

/// Run the demo; returns whether every ledger verified.
pub async fn run(mut options: DemoOptions) -> Result<bool> {
    if !(4..=32).contains(&options.agents) {
        bail!("--agents {}: give between 4 and 32 agents", options.agents);
    }
    let made_here = options.data_dir.is_none();
    let dir = data_dir(options.data_dir.take())?;
    let told = tell(options, &dir).await;
    // A temporary directory the demo made for a run that failed (a port
    // in use, say) holds nothing anyone asked for: it goes. A directory
    // the user named stays, with whatever was written.
    if told.is_err() && made_here {
        let _ = std::fs::remove_dir_all(&dir);
    }
    told
}

/// The demo's story, its data in `dir`.
async fn tell(options: DemoOptions, dir: &Path) -> Result<bool> {
    let dir = dir.to_path_buf();
    println!(
        "mesh demo: {} agents of two organisations, data in {}",
        options.agents,
        dir.display()
    );

    // Two organisations and the bundle every node uses.
    let acme = fresh_identity();
    let globex = fresh_identity();
    let bundle = TrustBundle::new(vec![
        policy("acme", &acme, 600, 950, &["tools/*", "search"])?,
        policy("globex", &globex, 550, 850, &["search", "tools/*"])?,
    ])?;
    std::fs::write(dir.join("bundle.toml"), bundle_toml(&bundle))?;

    // The agents: half acme, half globex; the last globex agent fails
    // every task it is given.
    let mut agents: Vec<Agent> = Vec::new();
    let mut dashboard: Option<Dashboard> = None;
    let mut api: Option<AgentApi> = None;
    let n_acme = options.agents.div_ceil(2);
    for i in 0..options.agents {
        let (org_name, org_key, k) = if i < n_acme {
            ("acme", &acme, i + 1)
        } else {
            ("globex", &globex, i - n_acme + 1)
        };
        let name = format!("{org_name}-{k}");
        let bad = i == options.agents - 1;
        let spawn = (i == 0).then(|| SpawnPolicy {
            threshold: Score::saturating(500),
            budgets: vec![(Score::saturating(500), 2)],
            max_depth: 2,
        });
        let node = start_node(
            local_agent(org_key, fresh_identity(), &name, &["search", "tools/*"])?,
            &bundle,
            &dir.join(&name),
            bad,
            spawn,
        )
        .await?;
        let addr = addr_of(&node).await?;
        println!(
            "  started {name:<9} {} on {addr}{}",
            short(node.did()),
            if bad { "  (will fail its tasks)" } else { "" }
        );
        if i == 0
            && let Some(addr) = options.http
        {
            dashboard = Some(start_dashboard(&node, addr, &dir).await?);
        }
        if i == 0
            && let Some(addr) = options.api
        {
            api = Some(start_api(&node, addr, &dir).await?);
        }
        agents.push(Agent {
            name,
            org: org_name,
            node,
            bad,
        });
    }

    // Everyone connects to everyone before them: a full mesh.
    println!("handshakes:");
    for i in 0..agents.len() {
        for j in 0..i {
            let addr = addr_of(&agents[j].node).await?;
            agents[i].node.connect(addr).await.with_context(|| {
                format!("{} could not connect to {}", agents[i].name, agents[j].name)
            })?;
        }
    }
    for a in &agents {
        let peers = a.node.peers().await?;
        let orgs: std::collections::BTreeSet<&str> = peers.iter().map(|p| p.org.as_str()).collect();
        println!(
            "  {:<9} holds {} authenticated sessions (orgs: {})",
            a.name,
            peers.len(),
            orgs.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    // An organisation no bundle lists is refused.
    let rogue = fresh_identity();
    let outsider = start_node(
        local_agent(&rogue, fresh_identity(), "rogue-1", &[])?,
        &bundle,
        &dir.join("rogue-1"),
        false,
        None,
    )
    .await?;
    match outsider.connect(addr_of(&agents[0].node).await?).await {
        Err(e) => println!("  rogue-1 (org outside the bundle) refused: {e}"),
        Ok(_) => bail!("the outsider was accepted"),
    }
    outsider.shutdown().await?;

    // Delegation rounds: each agent hands a task to the next ones in turn.
    println!("delegating tasks for {} s:", options.seconds);
    let bad_did = agents.iter().find(|a| a.bad).map(|a| a.node.did().clone());
    let started = Instant::now();
    let mut round = 0usize;
    let opts = DelegateOptions {
        min_trust: Score::saturating(450),
        ..DelegateOptions::default()
    };
    let mut refused_bad = false;
    // Whose trust in the failing agent each round shows: the first
    // agent's, then that of the agent whose gate refused it, so the
    // figure and the refusal are one agent's view.
    let mut viewer = 0;
    while started.elapsed() < Duration::from_secs(options.seconds) || !refused_bad && round < 200 {
        round += 1;
        let stats = delegation_round(&agents, round, &opts).await;
        if let Some((from, to, denial)) = stats.refused_bad.filter(|_| !refused_bad) {
            refused_bad = true;
            viewer = agents.iter().position(|a| a.name == from).unwrap_or(0);
            println!("  the gate at {from} refuses to delegate to {to}: {denial}");
        }
        let bad_view = match &bad_did {
            Some(d) => Some(agents[viewer].node.trust_of(d).await?.get()),
            None => None,
        };
        println!(
            "  round {round:>2}: {} tasks succeeded, {} failed, {} refused by the gate{}",
            stats.ok,
            stats.failed,
            stats.refused,
            bad_view
                .map(|s| format!("; {} trusts the failing agent at {s}", agents[viewer].name))
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    // Spawning: acme-1 spawns a child, which runs its own node.
    println!("spawning:");
    let parent = &agents[0];
    let child = parent
        .node
        .spawn(SpawnOptions {
            capabilities: vec![Capability::parse("search:query").map_err(anyhow::Error::msg)?],
            trust_ceiling: Score::saturating(700),
            lifetime_secs: 3600,
        })
        .await?;
    let child_name = format!("{}-child", parent.name);
    let child_node = start_node(
        local_agent(&acme, child.identity.clone(), &child_name, &["search"])?,
        &bundle,
        &dir.join(&child_name),
        false,
        None,
    )
    .await?;
    child_node.connect(addr_of(&parent.node).await?).await?;
    println!(
        "  {} spawned {child_name} {} (certificate {}), which joined the mesh with its own node",
        parent.name,
        short(child.identity.did()),
        &mesh_delegation::grant::hex(&child.certificate.hash())[..12]
    );

    // A chain acme-1 → acme-2 → acme-3, then revoked.
    println!("delegation chain and revocation:");
    let (a, b, c) = (&agents[0], &agents[1], &agents[2]);
    let grant = a
        .node
        .grant(
            b.node.did(),
            GrantOptions {
                depth: 1,
                ..GrantOptions::new(vec![
                    Capability::parse("tools/github/*:read").map_err(anyhow::Error::msg)?,
                ])
            },
        )
        .await?;
    let chain_opts = DelegateOptions {
        authority: Some(grant.chain.clone()),
        ..DelegateOptions::default()
    };
    let task = Task {
        resource: "tools/github/mesh".into(),
        action: "read".into(),
        input: ByteBuf::new(),
    };
    let done = b
        .node
        .delegate_task(c.node.did(), task.clone(), chain_opts.clone())
        .await?;
    println!(
        "  {} granted {} tools/github/*:read; {} delegated a read to {} under it: {}",
        a.name,
        b.name,
        b.name,
        c.name,
        String::from_utf8_lossy(&done.outcome.output)
    );
    a.node.revoke(&grant.hash, "demo: rotation").await?;
    let wait = Instant::now();
    while !b.node.is_revoked(&grant.hash).await? && wait.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match b.node.delegate_task(c.node.did(), task, chain_opts).await {
        Err(NodeError::Denied(d)) => println!(
            "  {} revoked the grant; {}'s next delegation is refused: {}",
            a.name,
            b.name,
            d.rule()
        ),
        Err(e) => println!("  after the revocation: {e}"),
        Ok(_) => bail!("a revoked chain still worked"),
    }

    // Checkpoints and witnessing.
    println!("checkpoints (each agent signs one; its peers witness it):");
    for a in agents.iter() {
        a.node.checkpoint().await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for a in agents.iter() {
        let note = a.node.latest_checkpoint().await?;
        let (size, cosigned) = note
            .as_deref()
            .and_then(|n| mesh_ledger::note::Note::parse(n).ok())
            .and_then(|n| {
                let size = mesh_ledger::checkpoint::Checkpoint::parse_body(&n.text)
                    .ok()?
                    .size;
                Some((size, n.signatures.len().saturating_sub(1)))
            })
            .unwrap_or_default();
        println!(
            "  {:<9} signed its log at {size} records; {cosigned} witnesses cosigned it",
            a.name
        );
    }

    // Trust as each org sees it.
    println!("trust as {} sees it now:", agents[0].name);
    for a in &agents[1..] {
        let s = agents[0].node.trust_of(a.node.did()).await?;
        let tier = agents[0].node.tier_of(a.node.did()).await?;
        println!(
            "  {:<9} ({:<6}) {:>4}  {:?}{}",
            a.name,
            a.org,
            s.get(),
            tier,
            if a.bad { "  ← failed its tasks" } else { "" }
        );
    }

    if dashboard.is_some() || api.is_some() {
        let serving = Serving {
            dashboard: dashboard.as_ref().map(|d| d.url()),
            api: api.as_ref().map(|a| a.addr().to_string()),
        };
        keep_running(&agents, &serving, round, &opts, options.linger).await?;
    }

    // Shut down (flushing the ledgers), then verify each one offline.
    if let Some(a) = api {
        a.shutdown().await;
    }
    if let Some(d) = dashboard {
        d.shutdown().await;
    }
    let mut witnesses: Vec<mesh_iatp::Did> = agents.iter().map(|a| a.node.did().clone()).collect();
    witnesses.push(child_node.did().clone());
    // Every ledger, the spawned child's too.
    let mut names: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
    names.push(child_name.clone());
    let mut origins: Vec<String> = agents
        .iter()
        .map(|a| a.node.did().as_str().to_string())
        .collect();
    origins.push(child_node.did().as_str().to_string());
    for a in agents {
        a.node.shutdown().await?;
    }
    child_node.shutdown().await?;
    println!("verifying every ledger (the checks `mesh-ledger verify` runs):");
    let verifiers = witnesses
        .iter()
        .map(|d| witness_verifier(d.as_str(), d.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut all_sound = true;
    for (name, origin) in names.iter().zip(&origins) {
        let path = dir.join(name).join(LEDGER_FILE);
        let store = Store::open_read_only(&path.to_string_lossy()).await?;
        let report = verify_log(&store, origin, &verifiers, |_, _| {}).await?;
        store.close().await;
        all_sound &= report.is_sound();
        println!(
            "  {name:<12} {:>4} records, {} checkpoints, {} witness cosignatures verified: {}",
            report.records,
            report.checkpoints,
            report.cosignatures,
            if report.is_sound() {
                "sound".to_string()
            } else {
                format!("FAULTS: {:?}", report.faults)
            }
        );
    }
    println!("data: {}", dir.display());
    println!("verify again, e.g.:");
    println!(
        "  cargo run -p mesh-ledger -- verify {} {}",
        dir.join(&names[0]).join(LEDGER_FILE).display(),
        witnesses[1..]
            .iter()
            .map(|d| format!("--witness-did {d}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(all_sound)
}

/// The bundle as TOML (written next to the ledgers for auditors).
fn bundle_toml(bundle: &TrustBundle) -> String {
    let mut out = String::new();
    for o in bundle.orgs() {
        out.push_str(&format!(
            "[[org]]\nname = \"{}\"\nroot = \"{}\"\ninitial_trust = {}\ntrust_ceiling = {}\ncapabilities = [{}]\n\n",
            o.name,
            o.root,
            o.initial_trust.get(),
            o.trust_ceiling.get(),
            o.capabilities.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
        ));
    }
    out
}

/// What one delegation round did.
struct RoundStats {
    ok: usize,
    failed: usize,
    refused: usize,
    /// The first refusal of the failing agent: (from, to, rule and reason).
    refused_bad: Option<(String, String, String)>,
}

/// Each agent hands a task to another, in turn.
async fn delegation_round(agents: &[Agent], round: usize, opts: &DelegateOptions) -> RoundStats {
    let mut stats = RoundStats {
        ok: 0,
        failed: 0,
        refused: 0,
        refused_bad: None,
    };
    for i in 0..agents.len() {
        let j = (i + 1 + round % (agents.len() - 1)) % agents.len();
        if i == j {
            continue;
        }
        let task = Task {
            resource: "search".into(),
            action: "query".into(),
            input: ByteBuf::from(format!("round {round}").into_bytes()),
        };
        match agents[i]
            .node
            .delegate_task(agents[j].node.did(), task, opts.clone())
            .await
        {
            Ok(d) if d.outcome.success => stats.ok += 1,
            Ok(_) => stats.failed += 1,
            Err(NodeError::Denied(denial)) => {
                stats.refused += 1;
                if agents[j].bad && stats.refused_bad.is_none() {
                    stats.refused_bad = Some((
                        agents[i].name.clone(),
                        agents[j].name.clone(),
                        named(&format!("{} ({denial})", denial.rule()), agents),
                    ));
                }
            }
            Err(e) => println!("  {} → {}: {e}", agents[i].name, agents[j].name),
        }
    }
    stats
}

/// Serve `node`'s dashboard on `addr`, with a fresh write token saved
/// (0600) in the data directory.
async fn start_dashboard(node: &Node, addr: SocketAddr, dir: &Path) -> Result<Dashboard> {
    let token_file = dir.join("http-token");
    let token = token::read_or_create(&token_file)?;
    let dashboard = serve_dashboard(
        node,
        DashboardConfig {
            addr,
            token: Some(token),
            ..DashboardConfig::default()
        },
    )
    .await
    .with_context(|| {
        format!("--http {addr}: the dashboard cannot start (give another address, or --no-http)")
    })?;
    println!(
        "dashboard: {} (the first agent's node; write token in {})",
        dashboard.url(),
        token_file.display()
    );
    Ok(dashboard)
}

/// Serve `node`'s local agent API on `addr` (loopback), with a fresh
/// bearer token saved (0600) in the data directory.
async fn start_api(node: &Node, addr: SocketAddr, dir: &Path) -> Result<AgentApi> {
    let token_file = dir.join("api-token");
    let token = token::read_or_create(&token_file)?;
    let api = agent_api::serve(
        node,
        None,
        AgentApiConfig {
            addr: ApiAddr::Tcp(addr),
            token,
            limits: Default::default(),
        },
    )
    .await
    .with_context(|| {
        format!("--api {addr}: the agent API cannot start (give another address, or --no-api)")
    })?;
    println!(
        "agent API: {} (the first agent's node; bearer token in {})",
        api.addr(),
        token_file.display()
    );
    Ok(api)
}

/// What the first agent serves while the mesh keeps running.
struct Serving {
    dashboard: Option<String>,
    api: Option<String>,
}

impl std::fmt::Display for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            self.dashboard.as_ref().map(|u| format!("dashboard at {u}")),
            self.api.as_ref().map(|a| format!("agent API at {a}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        f.write_str(&parts.join(", "))
    }
}

/// After the story: keep delegating (quietly) so the dashboard stays live
/// and the agent API has a mesh to act in, until Ctrl-C, SIGTERM or
/// `linger` seconds.
async fn keep_running(
    agents: &[Agent],
    serving: &Serving,
    mut round: usize,
    opts: &DelegateOptions,
    linger: Option<u64>,
) -> Result<()> {
    match linger {
        Some(s) => println!("the mesh keeps running for {s} s; {serving}"),
        None => println!(
            "the mesh keeps running; {serving} — Ctrl-C stops it and verifies every ledger"
        ),
    }
    let until = linger.map(|s| Instant::now() + Duration::from_secs(s));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let (mut ok, mut failed, mut refused) = (0, 0, 0);
    loop {
        if until.is_some_and(|u| Instant::now() >= u) {
            break;
        }
        round += 1;
        let stats = delegation_round(agents, round, opts).await;
        (ok, failed, refused) = (
            ok + stats.ok,
            failed + stats.failed,
            refused + stats.refused,
        );
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(1000)) => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    println!(
        "stopping: {ok} more tasks succeeded, {failed} failed, {refused} refused while the mesh kept running"
    );
    Ok(())
}
