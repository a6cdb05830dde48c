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

/// Read a key file, refusing it if group or others have any access.
pub fn read(path: &Path) -> Result<Identity, KeyFileError> {
    let meta = fs::metadata(path).map_err(io(path))?;
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
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
            len: meta.len(),
        });
    }
    let text = zeroize::Zeroizing::new(fs::read_to_string(path).map_err(io(path))?);
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
}
