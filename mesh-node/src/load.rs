//! Loading an agent from the files `mesh-node run` reads — key,
//! credential, trust bundle, revoked list, `node.toml` — for embedders as
//! much as for the daemon: [`NodeBuilder::from_config`] is `run` without
//! the dashboard and the signals.
//!
//! Every file is bounded before it is read, and every error names the file
//! and the field of `node.toml` it came from.
//!
//! [`NodeBuilder::from_config`]: crate::node::NodeBuilder::from_config

use std::path::{Path, PathBuf};

use mesh_iatp::envelope::PROTOCOL_VERSION;
use mesh_iatp::handshake::LocalAgent;
use mesh_iatp::{
    AgentCard, CapabilityPattern, OrgCredential, SignedCredential, Timestamp, TrustBundle, Validity,
};

use crate::config::{ConfigError, NodeConfigFile};
use crate::keyfile::{self, KeyFileError};
use crate::revoked::RevokedListError;

/// Largest credential file read.
pub const MAX_CREDENTIAL_FILE: u64 = 4096;
/// Largest trust bundle file read.
pub const MAX_BUNDLE_FILE: u64 = 1 << 20;

/// Why an agent could not be loaded from its files.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `node.toml` itself.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key file (`identity`).
    #[error("identity: {0}")]
    Key(#[from] KeyFileError),
    /// A file could not be read.
    #[error("{field}: {path}: {source}")]
    Read {
        /// The `node.toml` field naming it.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file over its bound.
    #[error("{field}: {path} is {len} bytes, over the {limit} a {field} may be")]
    TooLarge {
        /// The `node.toml` field naming it.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The bound.
        limit: u64,
    },
    /// The credential does not verify or does not fit the key.
    #[error("credential: {path}: {reason}")]
    Credential {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The credential is expired or not yet valid: peers would refuse
    /// every handshake.
    #[error(
        "credential: {path} is {state}; peers would refuse every handshake (issue a new one with mesh-node org issue)"
    )]
    NotValid {
        /// The file.
        path: PathBuf,
        /// Expired when, or valid from when.
        state: String,
    },
    /// The trust bundle does not parse.
    #[error("trust_bundle: {path} is not a valid trust bundle: {reason}")]
    Bundle {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A capability in `node.toml` is not a pattern, or the card is over
    /// its limits.
    #[error("{0}")]
    Card(String),
    /// The revoked-credentials file.
    #[error("revoked_credentials: {0}")]
    Revoked(#[from] RevokedListError),
}

/// Read `path` (named by `field` in `node.toml`), at most `limit` bytes.
fn read_bounded(field: &'static str, path: &Path, limit: u64) -> Result<Vec<u8>, LoadError> {
    let io = |source| LoadError::Read {
        field,
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > limit {
        return Err(LoadError::TooLarge {
            field,
            path: path.to_owned(),
            len,
            limit,
        });
    }
    std::fs::read(path).map_err(io)
}

/// A credential file: its signature checked, not its window (see
/// [`OrgCredential::validity`]).
pub fn credential(path: &Path) -> Result<(SignedCredential, OrgCredential), LoadError> {
    let signed = SignedCredential(read_bounded("credential", path, MAX_CREDENTIAL_FILE)?);
    let cred = signed
        .verify_signature()
        .map_err(|e| LoadError::Credential {
            path: path.to_owned(),
            reason: format!("not a valid org credential: {e}"),
        })?;
    Ok((signed, cred))
}

/// A trust bundle file.
pub fn bundle(path: &Path) -> Result<TrustBundle, LoadError> {
    let bytes = read_bounded("trust_bundle", path, MAX_BUNDLE_FILE)?;
    let text = String::from_utf8(bytes).map_err(|_| LoadError::Bundle {
        path: path.to_owned(),
        reason: "not UTF-8 text".into(),
    })?;
    TrustBundle::from_toml_str(&text).map_err(|e| LoadError::Bundle {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The agent `config` describes, its credential valid at `now`: key,
/// credential (for that key), card with the configured name and
/// capabilities.
pub fn local_agent(config: &NodeConfigFile, now: Timestamp) -> Result<LocalAgent, LoadError> {
    let identity = keyfile::read(&config.identity)?;
    let (credential, cred) = self::credential(&config.credential)?;
    match cred.validity(now) {
        Validity::Valid { expires_in } => {
            if expires_in < crate::validity::EXPIRY_WARNING_SECS {
                tracing::warn!(
                    "credential {} expires {} (in {}): peers will refuse this agent after that; issue a new one (mesh-node org issue)",
                    config.credential.display(),
                    cred.expires.utc(),
                    crate::validity::span(expires_in)
                );
            }
        }
        _ => {
            return Err(LoadError::NotValid {
                path: config.credential.clone(),
                state: crate::validity::describe(&cred, now).0,
            });
        }
    }
    if &cred.agent != identity.did() {
        return Err(LoadError::Credential {
            path: config.credential.clone(),
            reason: format!(
                "it is for {}, but the identity is {}",
                cred.agent,
                identity.did()
            ),
        });
    }
    let capabilities = config
        .capabilities
        .iter()
        .map(|c| {
            CapabilityPattern::parse(c)
                .map_err(|e| LoadError::Card(format!("capabilities: {c}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let card = AgentCard {
        did: identity.did().clone(),
        name: config.name.clone(),
        credential,
        capabilities,
        versions: vec![PROTOCOL_VERSION],
        lineage: vec![],
    };
    LocalAgent::new(identity, card).map_err(|e| LoadError::Card(format!("agent card: {e}")))
}
