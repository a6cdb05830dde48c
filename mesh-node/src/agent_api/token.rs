//! The agent API's bearer token, in a file only its owner may read: made
//! (64 hex digits from the OS's randomness, mode 0600) the first time, read
//! after that — by the node, the CLI and any SDK.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Others may read it.
    #[error(
        "{path} has permissions {mode:03o}, so other users can read the agent API's token; \
         run `chmod 600 {path}` (and delete the file to get a fresh token if others could read it)"
    )]
    Insecure {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a token.
    #[error("{path} does not hold a token (one line of at least 16 printable characters)")]
    Malformed {
        /// The file.
        path: String,
    },
    /// No randomness.
    #[error("the OS gave no randomness for a token: {0}")]
    Random(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TokenError + '_ {
    move |source| TokenError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Read the token in `path`.
pub fn read(path: &Path) -> Result<String, TokenError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TokenError::Insecure {
            path: path.display().to_string(),
            mode,
        });
    }
    if meta.len() > 4096 {
        return Err(TokenError::Malformed {
            path: path.display().to_string(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let token = text.trim();
    if token.len() < 16 || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(TokenError::Malformed {
            path: path.display().to_string(),
        });
    }
    Ok(token.to_string())
}

/// Read the token in `path`, or make one there if there is no file.
pub fn read_or_create(path: &Path) -> Result<String, TokenError> {
    if path.exists() {
        return read(path);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = hex::encode(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    writeln!(file, "{token}").map_err(io(path))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_owner_only_and_refused_when_others_can_read_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("api-token");
        let made = read_or_create(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(made.len(), 64);
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        assert_eq!(read_or_create(&path).ok(), Some(made));
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
        assert!(matches!(
            read(&path),
            Err(TokenError::Insecure { mode: 0o644, .. })
        ));
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        let _ = std::fs::write(&path, "short\n");
        assert!(matches!(read(&path), Err(TokenError::Malformed { .. })));
    }
}
