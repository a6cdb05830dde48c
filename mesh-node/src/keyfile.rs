//! Private key files: PKCS#8 PEM, owner-only permissions, never overwritten.
//!
//! A key file readable by anyone but its owner is refused on load (as ssh
//! does), naming the file and the fix, because a leaked agent key lets anyone
//! act, sign ledger records and spend trust as that agent.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use mesh_iatp::{Identity, IdentityError};

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Refusing to replace an existing file (a key may be the only copy).
    #[error("{path} already exists; refusing to overwrite it (move it away first)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Group or others can read or write the key.
    #[error(
        "{path} has permissions {mode:03o}, so other users can read this private key; \
         run `chmod 600 {path}` (and consider the key compromised if others could read it)"
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not an Ed25519 PKCS#8 PEM key.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        source: IdentityError,
    },
    /// Not a private key at all (a credential, a config, a binary file).
    #[error(
        "{path} is not a private key: it holds {found}; expected an Ed25519 PKCS#8 PEM \
         key (`-----BEGIN PRIVATE KEY-----`, as `mesh-node identity new` and `org new` write)"
    )]
    NotAKey {
        /// The file.
        path: PathBuf,
        /// What it holds instead, as far as can be told.
        found: String,
    },
    /// Larger than any PEM key; not read.
    #[error("{path} is {len} bytes, too large to be an Ed25519 PEM key")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
}

/// Largest key file we read (an Ed25519 PKCS#8 PEM is ~120 bytes).
const MAX_KEY_FILE: u64 = 16 * 1024;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Write `identity` to a new file at `path` with mode 0600, durably.
pub fn write(path: &Path, identity: &Identity) -> Result<(), KeyFileError> {
    let pem = identity
        .to_pkcs8_pem()
        .map_err(|source| KeyFileError::Format {
            path: path.to_owned(),
            source,
        })?;
    write_new(path, pem.as_bytes(), 0o600)
}

/// Create `path` with permission bits `mode`, refusing to replace anything,
/// and write `bytes` durably (fsync before returning). Used for key files
/// (0600) and any other file the CLI must never overwrite.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyFileError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists {
                path: path.to_owned(),
            }
        } else {
            io(path)(e)
        }
    })?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    Ok(())
}

/// What a file that is not a PEM private key holds, for the error.
fn what_it_holds(bytes: &[u8]) -> Option<String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some("binary data".into());
    };
    let label = |line: &str| {
        line.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
            .map(str::to_owned)
    };
    match text.lines().find_map(label) {
        Some(l) if l == "PRIVATE KEY" => None,
        Some(l) => Some(format!("a PEM block `{l}`")),
        None if text.trim().is_empty() => Some("nothing".into()),
        None => {
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let first: String = first.chars().take(40).collect();
            Some(format!("text starting `{first}`"))
        }
    }
}

/// Read a key file: first that it is one at all, then refusing it if
/// group or others have any access.
pub fn read(path: &Path) -> Result<Identity, KeyFileError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
            len: meta.len(),
        });
    }
    let bytes = zeroize::Zeroizing::new(fs::read(path).map_err(io(path))?);
    if let Some(found) = what_it_holds(&bytes) {
        return Err(KeyFileError::NotAKey {
            path: path.to_owned(),
            found,
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::InsecurePermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    // what_it_holds found a PEM private key, so the bytes are UTF-8.
    let text = String::from_utf8_lossy(&bytes);
    Identity::from_pkcs8_pem(&text).map_err(|source| KeyFileError::Format {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn written_keys_are_owner_only_and_load_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.pem");
        let id = mesh_iatp::testing::identity("keyfile");
        write(&path, &id).expect("writes");
        let mode = fs::metadata(&path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read(&path).expect("reads").did(), id.did());
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.pem");
        let id = mesh_iatp::testing::identity("keyfile");
        write(&path, &id).expect("writes");
        assert!(matches!(
            write(&path, &id),
            Err(KeyFileError::Exists { .. })
        ));
    }

    #[test]
    fn refuses_group_or_world_readable_keys_naming_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.pem");
        write(&path, &mesh_iatp::testing::identity("k")).expect("writes");
        for mode in [0o640, 0o604, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            let err = read(&path).expect_err("refused");
            assert!(matches!(err, KeyFileError::InsecurePermissions { .. }));
            let msg = err.to_string();
            assert!(
                msg.contains("chmod 600") && msg.contains("agent.pem"),
                "{msg}"
            );
        }
    }

    #[test]
    fn a_file_that_is_no_key_is_named_as_such_before_its_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases: [(&[u8], &str); 4] = [
            (b"# Agent mesh\nsome text\n", "text starting `# Agent mesh`"),
            (
                b"-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n",
                "a PEM block `CERTIFICATE`",
            ),
            (&[0xa3, 0x01, 0xff, 0x00], "binary data"),
            (b"", "nothing"),
        ];
        for (i, (bytes, found)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("f{i}"));
            fs::write(&path, bytes).expect("write");
            // World-readable, as a README or a credential is.
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
            let err = read(&path).expect_err("refused");
            let msg = err.to_string();
            assert!(
                matches!(err, KeyFileError::NotAKey { .. })
                    && msg.contains(found)
                    && msg.contains("BEGIN PRIVATE KEY"),
                "{msg}"
            );
        }
    }
}
