//! `mesh-node`: run and administer a mesh node.
//!
//! Run a node from a config file (`run`), run the demo mesh (`demo`),
//! create and inspect agent identities, create organisation roots, issue
//! org credentials, and check trust bundles.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use mesh_iatp::{Did, Identity, OrgCredential, Timestamp, TrustBundle};
use mesh_node::keyfile;

mod agent_cli;
mod demo;
mod run;

/// What `mesh-node run --help` adds: every key of node.toml.
const RUN_HELP: &str = r#"The config file (TOML; paths relative to it; a bad value is reported with
its field, line and column):

  identity = "alice.pem"                   the agent's key (mesh-node identity new)
  credential = "alice.cred"                its org credential (mesh-node org issue)
  name = "alice"                           the name on its card
  capabilities = ["search"]                resource patterns it offers (optional)
  trust_bundle = "bundle.toml"             the organisations it accepts (mesh-node bundle check)
  data_dir = "alice-data"                  its ledger and state (created 700)
  listen = ["/ip4/0.0.0.0/tcp/4001"]       multiaddrs to listen on (optional;
                                           QUIC: /ip4/0.0.0.0/udp/4001/quic-v1)
  bootstrap = ["/ip4/10.0.0.5/tcp/4001"]   peers to dial first (optional)
  mdns = false                             find peers on the LAN (optional)
  max_sessions = 64                        beyond it idle sessions close, untrusted first
  http = "127.0.0.1:7777"                  the dashboard (optional)
  http_token = "…"                         >= 16 characters; lets the dashboard revoke
                                           (then the file must be chmod 600)
  revoked_credentials = "revoked.txt"      credential digests refused (kill -HUP re-reads)
  api = "127.0.0.1:7800"                   the local agent API, or "unix:api.sock" (optional)
  api_token_file = "api-token"             its bearer token (default DATA_DIR/api-token)
  serve_tasks = false                      tasks delegated here go to the API's inbox

More: README.md (a tour), docs/API.md (dashboard and agent API),
docs/PROTOCOL.md (the wire protocol), docs/SECURITY.md (limits)."#;

/// A node of the agent mesh: run it, run the demo mesh, manage identities
/// and credentials, delegate through a running node.
#[derive(Parser)]
#[command(
    name = "mesh-node",
    version,
    about = "A node of the agent mesh (IATP handshakes, trust gossip, delegation, co-signed \
             ledgers over libp2p): run one, run the demo mesh, manage identities, org \
             credentials and trust bundles, and delegate through a running node. \
             The tour: README.md.",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node from a config file until Ctrl-C (logs: RUST_LOG, default info).
    #[command(after_help = RUN_HELP)]
    Run {
        /// The node's config (TOML; its keys are listed below).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run the demo mesh: agents of two organisations on loopback.
    Demo {
        /// How many agents (4 to 32).
        #[arg(long, default_value_t = 6)]
        agents: usize,
        /// Where to keep the ledgers (new or empty; default a new temporary directory).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// How long the delegation rounds run, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Serve the first agent's dashboard here (loopback; port 0 picks one).
        #[arg(
            long,
            value_name = "ADDR",
            default_value = "127.0.0.1:7777",
            conflicts_with = "no_http"
        )]
        http: std::net::SocketAddr,
        /// No dashboard (with `--no-api` too, the demo ends once its story is told).
        #[arg(long)]
        no_http: bool,
        /// Serve the first agent's local agent API here (loopback; port 0
        /// picks one; bearer token in DATA_DIR/api-token; docs/API.md §8).
        #[arg(
            long,
            value_name = "ADDR",
            default_value = "127.0.0.1:7778",
            conflicts_with = "no_api"
        )]
        api: std::net::SocketAddr,
        /// No agent API.
        #[arg(long)]
        no_api: bool,
        /// With the dashboard or the agent API: keep the mesh running this
        /// many seconds after the story (default: until Ctrl-C).
        #[arg(long, value_name = "SECONDS")]
        linger: Option<u64>,
    },
    /// Create and inspect agent identities (Ed25519 keys as did:key).
    #[command(subcommand)]
    Identity(IdentityCmd),
    /// Create organisation roots and issue credentials to their agents.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Check trust bundles (which organisations a node accepts).
    #[command(subcommand)]
    Bundle(BundleCmd),
    /// Delegate tasks and follow them, through a running node's agent API.
    #[command(subcommand)]
    Task(agent_cli::TaskCmd),
    /// Grant capabilities to another agent (a root grant, co-signed into both logs).
    Grant {
        /// The audience's DID.
        #[arg(long, value_name = "DID")]
        to: String,
        /// A `resource:action` pattern; repeat for several.
        #[arg(long = "capability", value_name = "CAP", required = true)]
        capabilities: Vec<String>,
        /// Valid this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 3600)]
        lifetime: u64,
        /// How many more times the audience may re-delegate.
        #[arg(long, default_value_t = 0)]
        depth: u8,
        /// The audience must keep at least this trust (default 400).
        #[arg(long, value_name = "SCORE")]
        min_trust: Option<u16>,
        #[command(flatten)]
        target: agent_cli::Target,
    },
    /// Revoke a grant or spawn certificate this agent issued.
    Revoke {
        /// The link's hash (64 hex digits).
        link: String,
        /// Why (signed into the revocation).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        target: agent_cli::Target,
    },
    /// Serve the mesh as MCP tools on stdin/stdout (for MCP-capable agents),
    /// through the agent API of the node --config names.
    Mcp {
        /// The node's config (its `api` and `api_token_file`).
        #[arg(long, value_name = "FILE", default_value = "node.toml")]
        config: PathBuf,
    },
    /// Spawn a child agent: its key goes to --key-out (mode 0600).
    Spawn {
        /// A `resource:action` pattern the child may use; repeat for several.
        #[arg(long = "capability", value_name = "CAP", required = true)]
        capabilities: Vec<String>,
        /// Its score never exceeds this (default 600).
        #[arg(long, value_name = "SCORE")]
        trust_ceiling: Option<u16>,
        /// Its certificate is valid this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 86_400)]
        lifetime: u64,
        /// Where to write the child's key (a new file).
        #[arg(long, value_name = "FILE")]
        key_out: PathBuf,
        #[command(flatten)]
        target: agent_cli::Target,
    },
}

#[derive(Subcommand)]
enum BundleCmd {
    /// Validate a trust bundle TOML file and list its organisations;
    /// errors name the line, column and field.
    Check {
        /// The bundle file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum IdentityCmd {
    /// Generate a new agent key (PKCS#8 PEM, mode 0600) and print its DID.
    New {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print a key file's DID, libp2p PeerId and public key.
    Show {
        /// The key file (PKCS#8 PEM, e.g. from `identity new` or `openssl genpkey -algorithm ed25519`).
        file: PathBuf,
        /// Print JSON instead of `key: value` lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OrgCmd {
    /// Generate a new organisation root key (PEM, mode 0600) and print its DID.
    New {
        /// Where to write the org root key; never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign a credential vouching for an agent; prints the credential digest.
    Issue {
        /// The organisation root key file.
        #[arg(long, value_name = "KEY")]
        org: PathBuf,
        /// The agent's DID (`did:key:z6Mk…`, see `identity show`).
        #[arg(long, value_name = "DID")]
        agent: String,
        /// A role for the agent; repeat for several (at most 16).
        #[arg(long = "role", value_name = "R", required = true)]
        roles: Vec<String>,
        /// Validity in days from now.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=3650))]
        days: u64,
        /// Where to write the signed credential (CBOR envelope); never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Verify a credential file's signature and print what it says, with
    /// whether it is valid now (exit code 3 if expired or not yet valid).
    Show {
        /// The credential file written by `org issue`.
        file: PathBuf,
        /// Print JSON instead of `key: value` lines.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", mesh_iatp::error_chain::one_line(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Run { config } => {
            init_logging("info");
            runtime()?.block_on(run::run(&config))?;
        }
        Command::Demo {
            agents,
            data_dir,
            seconds,
            http,
            no_http,
            api,
            no_api,
            linger,
        } => {
            init_logging("warn");
            let sound = runtime()?.block_on(demo::run(demo::DemoOptions {
                agents,
                data_dir,
                seconds,
                http: (!no_http).then_some(http),
                api: (!no_api).then_some(api),
                linger,
            }))?;
            if !sound {
                bail!("a ledger did not verify");
            }
        }
        Command::Task(cmd) => runtime()?.block_on(agent_cli::task(cmd))?,
        Command::Mcp { config } => {
            // stdout carries the protocol: logs go to stderr only.
            init_logging("warn");
            let api = mesh_node::agent_api::client::ApiClient::from_config(&config)?;
            runtime()?.block_on(mesh_node::mcp::serve_stdio(api))?;
        }
        Command::Grant {
            to,
            capabilities,
            lifetime,
            depth,
            min_trust,
            target,
        } => runtime()?.block_on(agent_cli::grant(
            to,
            capabilities,
            lifetime,
            depth,
            min_trust,
            target,
        ))?,
        Command::Revoke {
            link,
            reason,
            target,
        } => runtime()?.block_on(agent_cli::revoke(link, reason, target))?,
        Command::Spawn {
            capabilities,
            trust_ceiling,
            lifetime,
            key_out,
            target,
        } => runtime()?.block_on(agent_cli::spawn(
            capabilities,
            trust_ceiling,
            lifetime,
            key_out,
            target,
        ))?,
        Command::Identity(IdentityCmd::New { out }) | Command::Org(OrgCmd::New { out }) => {
            let id = Identity::generate(&mut UnwrapErr(SysRng));
            keyfile::write(&out, &id)?;
            println!("{}", id.did());
        }
        Command::Identity(IdentityCmd::Show { file, json }) => {
            let id = keyfile::read(&file)?;
            print_fields(
                &[
                    ("did", id.did().to_string().into()),
                    ("peer_id", id.peer_id().to_base58().into()),
                    (
                        "public_key_hex",
                        hex::encode(id.did().public_key_bytes()).into(),
                    ),
                ],
                json,
            )?;
        }
        Command::Org(OrgCmd::Issue {
            org,
            agent,
            roles,
            days,
            out,
        }) => {
            let org_key = keyfile::read(&org)?;
            let agent: Did = agent
                .parse()
                .with_context(|| format!("--agent {agent:?} is not an Ed25519 did:key"))?;
            let now = unix_now()?;
            let credential = OrgCredential {
                org: org_key.did().clone(),
                agent,
                roles,
                not_before: now,
                expires: now.plus_secs(days * 86_400),
            };
            let signed = credential.sign(&org_key)?;
            keyfile::write_new(&out, &signed.0, 0o644)?;
            println!("{}", hex::encode(signed.digest()));
        }
        Command::Org(OrgCmd::Show { file, json }) => {
            let (signed, cred) = mesh_node::load::credential(&file)?;
            let (status, valid) = mesh_node::validity::describe(&cred, unix_now()?);
            print_fields(
                &[
                    ("org", cred.org.to_string().into()),
                    ("agent", cred.agent.to_string().into()),
                    ("roles", cred.roles.clone().into()),
                    ("not_before", cred.not_before.0.into()),
                    ("not_before_utc", cred.not_before.utc().into()),
                    ("expires", cred.expires.0.into()),
                    ("expires_utc", cred.expires.utc().into()),
                    ("status", status.clone().into()),
                    ("valid", valid.into()),
                    ("digest", hex::encode(signed.digest()).into()),
                ],
                json,
            )?;
            if !valid {
                eprintln!("error: {}: {status}", file.display());
                return Ok(std::process::ExitCode::from(
                    mesh_node::validity::EXIT_NOT_VALID,
                ));
            }
        }
        Command::Bundle(BundleCmd::Check { file }) => {
            let text = fs::read_to_string(&file).with_context(|| format!("{}", file.display()))?;
            let bundle = TrustBundle::from_toml_str(&text)
                .with_context(|| format!("{} is not a valid trust bundle", file.display()))?;
            if bundle.orgs().is_empty() {
                bail!(
                    "{} accepts no organisation, so a node using it would refuse every peer; \
                     add an [[org]] table with name, root, initial_trust, trust_ceiling and \
                     capabilities",
                    file.display()
                );
            }
            let mut out = std::io::stdout().lock();
            for org in bundle.orgs() {
                let caps: Vec<&str> = org.capabilities.iter().map(|c| c.as_str()).collect();
                writeln!(
                    out,
                    "{}: root {} initial_trust {} trust_ceiling {} capabilities [{}]",
                    org.name,
                    org.root,
                    org.initial_trust,
                    org.trust_ceiling,
                    caps.join(", ")
                )?;
            }
            writeln!(out, "ok: {} organisation(s)", bundle.orgs().len())?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Logs to stderr, filtered by RUST_LOG (default `level` for our crates,
/// warnings for the rest).
/// Logs to stderr at `level` for our own crates and `warn` for libraries
/// (`RUST_LOG` overrides), coloured only on a terminal and without
/// `NO_COLOR`, so a log file holds no escape codes.
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // libp2p-kad warns "Failed to trigger bootstrap: No known peers"
        // whenever its own automatic walk finds an empty routing table: a
        // node started alone, or first in a mesh, is not in trouble.
        tracing_subscriber::EnvFilter::new(format!(
            "warn,libp2p_kad::behaviour=error,mesh_node={level},mesh={level}"
        ))
    });
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `key: value` lines, or one JSON object (numbers, booleans and lists
/// keep their JSON types; a list is comma-joined in a line).
fn print_fields(fields: &[(&str, serde_json::Value)], json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        writeln!(out, "{}", serde_json::Value::Object(map))?;
    } else {
        for (k, v) in fields {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            writeln!(out, "{k}: {text}")?;
        }
    }
    Ok(())
}

fn unix_now() -> Result<Timestamp> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock is before 1970")?
        .as_secs();
    Ok(Timestamp(secs))
}
