//! `mesh-node run` daemons for the tests that run separate processes:
//! provisioning keys, credentials and configs, starting (optionally in a
//! network namespace) and stopping them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mesh_iatp::testing::identity;
use mesh_iatp::{Identity, OrgCredential, Timestamp};
use mesh_node::keyfile;

/// The wall clock (daemons run on real time).
pub fn now() -> Timestamp {
    use mesh_node::node::Clock;
    mesh_node::node::SystemClock.now()
}

/// A running daemon.
pub struct Daemon {
    pub child: Child,
    pub addr: libp2p::Multiaddr,
    /// The dashboard's URL, when the config asks for one (its port as
    /// bound: `127.0.0.1:0` picks a free one without a race).
    pub dashboard: Option<String>,
}

/// Where and how a provisioned daemon listens.
pub struct Listening<'a> {
    /// Its libp2p listen address.
    pub listen: &'a str,
    /// Addresses it bootstraps from.
    pub bootstrap: Vec<String>,
    /// Its HTTP API's address, if any.
    pub http: Option<&'a str>,
}

/// Write an agent's key, credential and config into `dir`, listening on
/// loopback and bootstrapping from `bootstrap`.
pub fn provision(
    dir: &Path,
    org: &Identity,
    name: &str,
    bootstrap: Option<&libp2p::Multiaddr>,
) -> (PathBuf, Identity) {
    provision_at(
        dir,
        org,
        name,
        Listening {
            listen: "/ip4/127.0.0.1/tcp/0",
            bootstrap: bootstrap.map(ToString::to_string).into_iter().collect(),
            http: None,
        },
    )
}

/// [`provision`] with the addresses given.
pub fn provision_at(
    dir: &Path,
    org: &Identity,
    name: &str,
    at: Listening<'_>,
) -> (PathBuf, Identity) {
    std::fs::create_dir_all(dir).unwrap();
    let id = identity(&format!("agent {name} (processes)"));
    keyfile::write(&dir.join("agent.key"), &id).unwrap();
    let cred = credential(org, &id, "worker");
    keyfile::write_new(&dir.join("agent.cred"), &cred.0, 0o644).unwrap();
    let boot = if at.bootstrap.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = at.bootstrap.iter().map(|a| format!("\"{a}\"")).collect();
        format!("bootstrap = [{}]\n", list.join(", "))
    };
    let http = at
        .http
        .map(|h| format!("http = \"{h}\"\n"))
        .unwrap_or_default();
    let config = format!(
        "identity = \"agent.key\"\ncredential = \"agent.cred\"\nname = \"{name}\"\ntrust_bundle = \"../bundle.toml\"\ndata_dir = \"data\"\nlisten = [\"{}\"]\n{boot}{http}",
        at.listen
    );
    std::fs::write(dir.join("node.toml"), config).unwrap();
    (dir.join("node.toml"), id)
}

/// Start `mesh-node run` and read its listen address from stdout.
pub fn start(config: &Path, log: &Path) -> Daemon {
    start_in(None, config, log)
}

/// [`start`], inside the network namespace `netns` if given.
pub fn start_in(netns: Option<&str>, config: &Path, log: &Path) -> Daemon {
    let binary = env!("CARGO_BIN_EXE_mesh-node");
    let mut command = match netns {
        // `ip netns exec` execs the binary: the child is the daemon.
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, binary]);
            c
        }
        None => Command::new(binary),
    };
    let mut child = command
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("mesh-node runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(super::WAIT).unwrap_or_else(|_| {
            panic!("no {what} from {}: see {}", config.display(), log.display())
        })
    };
    let line = loop {
        let line = next("listen address");
        if let Some(rest) = line.strip_prefix("listening ") {
            break rest.to_string();
        }
    };
    // `/ip4/…/tcp/N/p2p/Qm…`: dial the address part.
    let addr: libp2p::Multiaddr = line.split("/p2p/").next().unwrap().parse().unwrap();
    let wants_dashboard = std::fs::read_to_string(config)
        .unwrap()
        .lines()
        .any(|l| l.starts_with("http = "));
    let dashboard = wants_dashboard.then(|| {
        loop {
            let line = next("dashboard URL");
            if let Some(url) = line.strip_prefix("dashboard ") {
                break url.trim_end_matches('/').to_string();
            }
        }
    });
    Daemon {
        child,
        addr,
        dashboard,
    }
}

/// Stop a daemon with SIGTERM, within the usual bound.
pub fn terminate(d: &mut Daemon) {
    let _ = Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + super::WAIT;
    while std::time::Instant::now() < deadline {
        if d.child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = d.child.kill();
    panic!("a daemon did not stop on SIGTERM");
}

/// `org`'s credential for `agent` with one role, valid for the hour
/// around now.
fn credential(org: &Identity, agent: &Identity, role: &str) -> mesh_iatp::SignedCredential {
    let t = now();
    OrgCredential {
        org: org.did().clone(),
        agent: agent.did().clone(),
        roles: vec![role.into()],
        not_before: t.minus_secs(60),
        expires: t.plus_secs(3600),
    }
    .sign(org)
    .unwrap()
}

/// An agent of `org` for a node in the test process, on the wall clock.
pub fn local_agent(org: &Identity, name: &str) -> mesh_iatp::handshake::LocalAgent {
    let id = identity(&format!("agent {name} (processes)"));
    let credential = credential(org, &id, "driver");
    let card = mesh_iatp::AgentCard {
        did: id.did().clone(),
        name: name.into(),
        credential,
        capabilities: vec![],
        versions: vec![mesh_iatp::envelope::PROTOCOL_VERSION],
        lineage: vec![],
    };
    mesh_iatp::handshake::LocalAgent::new(id, card).unwrap()
}

/// A two-org trust bundle (acme 600/900, globex 500/800, both `search`).
pub fn bundle(acme: &Identity, globex: &Identity) -> String {
    format!(
        "[[org]]\nname = \"acme\"\nroot = \"{}\"\ninitial_trust = 600\ntrust_ceiling = 900\ncapabilities = [\"search\"]\n\n[[org]]\nname = \"globex\"\nroot = \"{}\"\ninitial_trust = 500\ntrust_ceiling = 800\ncapabilities = [\"search\"]\n",
        acme.did(),
        globex.did()
    )
}
