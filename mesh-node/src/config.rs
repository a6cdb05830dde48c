//! `node.toml`: what `mesh-node run` starts. Paths are relative to the
//! file's directory. Every error names the field, with line and column.
//!
//! ```toml
//! identity = "agent.key"             # PKCS#8 PEM (mesh-node identity new)
//! credential = "agent.cred"          # from `mesh-node org issue`
//! name = "worker-1"                  # the name on the agent card
//! capabilities = ["search"]          # what the agent offers (default none)
//! trust_bundle = "bundle.toml"       # the organisations accepted
//! data_dir = "data"                  # the ledger (SQLite) lives here
//! listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
//! bootstrap = ["/ip4/10.0.0.5/tcp/4001"]   # peers to dial (default none)
//! mdns = false                       # LAN discovery (default false)
//! max_sessions = 64                  # sessions held at most; beyond, idle ones
//!                                    # are closed, untrusted first (default 64)
//! http = "127.0.0.1:7777"            # dashboard address (default: no dashboard)
//! http_token = "…"                   # bearer token for the dashboard's writes
//!                                    # (revoke); none: read-only. The file must
//!                                    # then be its owner's only (chmod 600).
//! revoked_credentials = "revoked.txt"  # credential digests refused (default
//!                                    # none); re-read on SIGHUP
//! api = "127.0.0.1:7800"             # the local agent API (or "unix:api.sock");
//!                                    # default: none (docs/API.md §8)
//! api_token_file = "api-token"       # its bearer token, owner-only; made on
//!                                    # first start (default DATA_DIR/api-token)
//! serve_tasks = true                 # tasks delegated to this agent go to the
//!                                    # API's inbox for an agent process (needs
//!                                    # `api`; default false: refused, no_handler)
//! ```

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use libp2p::Multiaddr;
use mesh_iatp::toml_location::line_col;
use serde::Deserialize;
use toml::Spanned;

/// A config problem, located.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML of the expected shape (unknown key, wrong type…).
    #[error("{path}:{line}:{column}: {message}")]
    Toml {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What toml says.
        message: String,
    },
    /// The file holds a secret (`http_token`) and others may read it.
    #[error(
        "{path} holds `http_token` and has permissions {mode:03o}, so other users can read the token; \
         run `chmod 600 {path}` (and change the token if others could read it)"
    )]
    InsecurePermissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// A field's value is wrong.
    #[error("{path}:{line}:{column}: `{field}`: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    identity: Spanned<String>,
    credential: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    capabilities: Vec<Spanned<String>>,
    trust_bundle: Spanned<String>,
    data_dir: Spanned<String>,
    #[serde(default)]
    listen: Vec<Spanned<String>>,
    #[serde(default)]
    bootstrap: Vec<Spanned<String>>,
    #[serde(default)]
    mdns: bool,
    max_sessions: Option<Spanned<i64>>,
    http: Option<Spanned<String>>,
    http_token: Option<Spanned<String>>,
    revoked_credentials: Option<Spanned<String>>,
    api: Option<Spanned<String>>,
    api_token_file: Option<Spanned<String>>,
    serve_tasks: Option<Spanned<bool>>,
}

/// A validated node config, paths resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfigFile {
    /// The key file.
    pub identity: PathBuf,
    /// The credential file.
    pub credential: PathBuf,
    /// The card's name.
    pub name: String,
    /// Offered capabilities (patterns, checked when the card is built).
    pub capabilities: Vec<String>,
    /// The bundle file.
    pub trust_bundle: PathBuf,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial.
    pub bootstrap: Vec<Multiaddr>,
    /// mDNS on?
    pub mdns: bool,
    /// Sessions held at most (`Limits::max_sessions`); none: the default.
    pub max_sessions: Option<u32>,
    /// Dashboard address.
    pub http: Option<SocketAddr>,
    /// Bearer token for the dashboard's writes.
    pub http_token: Option<String>,
    /// The file of revoked credential digests, if any.
    pub revoked_credentials: Option<PathBuf>,
    /// The local agent API's address (a Unix socket path resolved).
    pub api: Option<crate::agent_api::ApiAddr>,
    /// Its token file.
    pub api_token_file: PathBuf,
    /// Tasks delegated to this agent go to the API's inbox.
    pub serve_tasks: bool,
}

impl NodeConfigFile {
    /// Read and validate `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let config = Self::parse(&text, &path.display().to_string(), base)?;
        if config.http_token.is_some() {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?
                .permissions()
                .mode()
                & 0o777;
            if mode & 0o077 != 0 {
                return Err(ConfigError::InsecurePermissions {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
        Ok(config)
    }

    /// Parse `text` (named `shown` in errors), resolving paths against `base`.
    pub fn parse(text: &str, shown: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let (line, column) = line_col(text, e.span().unwrap_or(0..0));
            ConfigError::Toml {
                path: shown.into(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        let invalid = |span: Range<usize>, field: &str, reason: String| {
            let (line, column) = line_col(text, span);
            ConfigError::Invalid {
                path: shown.into(),
                line,
                column,
                field: field.into(),
                reason,
            }
        };
        let file = |v: &Spanned<String>, field: &str| -> Result<PathBuf, ConfigError> {
            if v.get_ref().trim().is_empty() {
                return Err(invalid(v.span(), field, "must not be empty".into()));
            }
            Ok(base.join(v.get_ref()))
        };
        let addrs =
            |list: &[Spanned<String>], field: &str| -> Result<Vec<Multiaddr>, ConfigError> {
                list.iter()
                    .enumerate()
                    .map(|(i, a)| {
                        a.get_ref().parse::<Multiaddr>().map_err(|e| {
                            invalid(
                                a.span(),
                                &format!("{field}[{i}]"),
                                format!(
                                    "not a multiaddr ({e}); write e.g. \"/ip4/127.0.0.1/tcp/4101\" \
                                     or \"/ip4/0.0.0.0/udp/4101/quic-v1\""
                                ),
                            )
                        })
                    })
                    .collect()
            };
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() || name.len() > 64 {
            return Err(invalid(
                raw.name.span(),
                "name",
                "must be 1 to 64 characters".into(),
            ));
        }
        for (i, c) in raw.capabilities.iter().enumerate() {
            mesh_iatp::CapabilityPattern::parse(c.get_ref())
                .map_err(|e| invalid(c.span(), &format!("capabilities[{i}]"), e.to_string()))?;
        }
        let listen = addrs(&raw.listen, "listen")?;
        if listen.is_empty() {
            return Err(invalid(
                0..0,
                "listen",
                "give at least one listen address".into(),
            ));
        }
        let http = raw
            .http
            .as_ref()
            .map(|h| {
                h.get_ref()
                    .parse::<SocketAddr>()
                    .map_err(|e| invalid(h.span(), "http", format!("not host:port: {e}")))
            })
            .transpose()?;
        let http_token = match &raw.http_token {
            None => None,
            Some(t) if http.is_none() => {
                return Err(invalid(
                    t.span(),
                    "http_token",
                    "a token without `http`: there is no dashboard to guard".into(),
                ));
            }
            Some(t) if t.get_ref().len() < mesh_dashboards::server::MIN_TOKEN_LEN => {
                return Err(invalid(
                    t.span(),
                    "http_token",
                    format!(
                        "{} characters; give at least {} (e.g. `openssl rand -hex 32`)",
                        t.get_ref().len(),
                        mesh_dashboards::server::MIN_TOKEN_LEN
                    ),
                ));
            }
            Some(t) => Some(t.get_ref().clone()),
        };
        let api = raw
            .api
            .as_ref()
            .map(|a| {
                a.get_ref()
                    .parse::<crate::agent_api::ApiAddr>()
                    .map(|addr| match addr {
                        crate::agent_api::ApiAddr::Unix(p) => {
                            crate::agent_api::ApiAddr::Unix(base.join(p))
                        }
                        tcp => tcp,
                    })
                    .map_err(|e| invalid(a.span(), "api", e))
            })
            .transpose()?;
        let serve_tasks = raw.serve_tasks.as_ref().is_some_and(|s| *s.get_ref());
        if let Some(s) = raw
            .serve_tasks
            .as_ref()
            .filter(|_| serve_tasks && api.is_none())
        {
            return Err(invalid(
                s.span(),
                "serve_tasks",
                "tasks go to the agent API's inbox: set `api` too".into(),
            ));
        }
        let max_sessions = raw
            .max_sessions
            .as_ref()
            .map(|m| {
                u32::try_from(*m.get_ref())
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        invalid(
                            m.span(),
                            "max_sessions",
                            format!(
                                "{} is not a count of sessions: give at least 1 (a node \
                                 with no session cannot take part), e.g. 64",
                                m.get_ref()
                            ),
                        )
                    })
            })
            .transpose()?;
        let data_dir = file(&raw.data_dir, "data_dir")?;
        let api_token_file = match &raw.api_token_file {
            Some(f) => file(f, "api_token_file")?,
            None => data_dir.join("api-token"),
        };
        Ok(NodeConfigFile {
            identity: file(&raw.identity, "identity")?,
            credential: file(&raw.credential, "credential")?,
            name,
            capabilities: raw
                .capabilities
                .iter()
                .map(|c| c.get_ref().clone())
                .collect(),
            trust_bundle: file(&raw.trust_bundle, "trust_bundle")?,
            data_dir,
            listen,
            bootstrap: addrs(&raw.bootstrap, "bootstrap")?,
            mdns: raw.mdns,
            max_sessions,
            http,
            http_token,
            revoked_credentials: raw
                .revoked_credentials
                .as_ref()
                .map(|f| file(f, "revoked_credentials"))
                .transpose()?,
            api,
            api_token_file,
            serve_tasks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
identity = "agent.key"
credential = "agent.cred"
name = "worker-1"
capabilities = ["search"]
trust_bundle = "bundle.toml"
data_dir = "data"
listen = ["/ip4/127.0.0.1/tcp/0"]
bootstrap = ["/ip4/127.0.0.1/tcp/4001"]
http = "127.0.0.1:7777"
http_token = "0123456789abcdef0123"
"#;

    fn parse(text: &str) -> Result<NodeConfigFile, ConfigError> {
        NodeConfigFile::parse(text, "node.toml", Path::new("/etc/mesh"))
    }

    #[test]
    fn a_good_config_resolves_paths_against_its_directory() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.identity, PathBuf::from("/etc/mesh/agent.key"));
        assert_eq!(c.data_dir, PathBuf::from("/etc/mesh/data"));
        assert_eq!(c.listen.len(), 1);
        assert_eq!(c.bootstrap.len(), 1);
        assert!(!c.mdns);
        assert_eq!(c.http.unwrap().port(), 7777);
        assert_eq!(c.http_token.as_deref(), Some("0123456789abcdef0123"));
    }

    #[test]
    fn errors_name_the_field_line_and_column() {
        let cases = [
            (
                GOOD.replace("name = \"worker-1\"", "name = \"\""),
                "`name`",
                4,
            ),
            (
                GOOD.replace("/ip4/127.0.0.1/tcp/4001", "not-an-addr"),
                "`bootstrap[0]`",
                9,
            ),
            (GOOD.replace("127.0.0.1:7777", "nowhere"), "`http`", 10),
            (
                GOOD.replace("0123456789abcdef0123", "short"),
                "`http_token`",
                11,
            ),
            (
                GOOD.replace("http = \"127.0.0.1:7777\"\n", ""),
                "`http_token`",
                10,
            ),
            (
                GOOD.replace("[\"search\"]", "[\"a**\"]"),
                "`capabilities[0]`",
                5,
            ),
        ];
        for (text, field, line) in cases {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
            assert!(e.starts_with(&format!("node.toml:{line}:")), "{e}");
        }
        let e = parse(&format!("{GOOD}colour = \"blue\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field") && e.contains("colour"), "{e}");
        let e = parse(&GOOD.replace("data_dir = \"data\"\n", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("data_dir"), "{e}");
        let e = parse(&GOOD.replace("listen = [\"/ip4/127.0.0.1/tcp/0\"]", "listen = []"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`listen`"), "{e}");
        // A host:port where a multiaddr belongs gets an example of one.
        let e = parse(&GOOD.replace("/ip4/127.0.0.1/tcp/0", "127.0.0.1:4101"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`listen[0]`") && e.contains("\"/ip4/127.0.0.1/tcp/4101\""),
            "{e}"
        );
    }

    #[test]
    fn max_sessions_is_optional_and_at_least_one() {
        assert_eq!(parse(GOOD).unwrap().max_sessions, None);
        let c = parse(&format!("{GOOD}max_sessions = 24\n")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.max_sessions, Some(24));
        let e = parse(&format!("{GOOD}max_sessions = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`max_sessions`") && e.contains("at least 1"),
            "{e}"
        );
        let e = parse(&format!("{GOOD}max_sessions = -3\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`max_sessions`") && e.contains("-3"), "{e}");
    }

    #[test]
    fn the_agent_api_listens_on_loopback_or_a_socket_beside_the_config() {
        let c = parse(&format!(
            "{GOOD}api = \"unix:run/api.sock\"\nserve_tasks = true\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.api,
            Some(crate::agent_api::ApiAddr::Unix(
                "/etc/mesh/run/api.sock".into()
            ))
        );
        assert!(c.serve_tasks);
        assert_eq!(c.api_token_file, Path::new("/etc/mesh/data/api-token"));
        let c =
            parse(&format!("{GOOD}api = \"127.0.0.1:7800\"\n")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!c.serve_tasks);
        for (extra, field) in [
            ("api = \"0.0.0.0:7800\"\n", "`api`"),
            ("api = \"unix:\"\n", "`api`"),
            ("serve_tasks = true\n", "`serve_tasks`"),
        ] {
            match parse(&format!("{GOOD}{extra}")) {
                Err(e) => assert!(e.to_string().contains(field), "{e}"),
                Ok(_) => panic!("{extra} accepted"),
            }
        }
    }

    #[test]
    fn a_config_holding_a_token_must_be_its_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, GOOD).unwrap();
        for mode in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = NodeConfigFile::load(&path).unwrap_err().to_string();
            assert!(
                e.contains(&format!("has permissions {mode:03o}")) && e.contains("chmod 600"),
                "{e}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(NodeConfigFile::load(&path).is_ok());
        // Without a token there is no secret in it.
        let public = GOOD.replace("http_token = \"0123456789abcdef0123\"\n", "");
        std::fs::write(&path, public).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(NodeConfigFile::load(&path).is_ok());
    }
}
