//! The revoked-credentials file `run` reads (`revoked_credentials` in
//! node.toml) and re-reads on SIGHUP: one credential digest per line, as
//! `mesh-node org issue` and `org show` print it (64 hex digits, the
//! SHA-256 of the signed credential), `#` starting a comment, blank lines
//! ignored. Any other line is an error naming it; the file is read whole
//! or not at all.

use std::io::Read;
use std::path::{Path, PathBuf};

use mesh_iatp::RevokedCredentials;

/// Largest file read: room for ~15,000 digests with comments.
pub const MAX_FILE: u64 = 1024 * 1024;

/// Why the file was not taken.
#[derive(Debug, thiserror::Error)]
pub enum RevokedListError {
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Over [`MAX_FILE`].
    #[error("{path} is over {MAX_FILE} bytes; not read")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A line that is not a digest.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Read the file at `path`.
pub fn read(path: &Path) -> Result<RevokedCredentials, RevokedListError> {
    let io = |source| RevokedListError::Io {
        path: path.to_owned(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_FILE {
        return Err(RevokedListError::TooLarge {
            path: path.to_owned(),
        });
    }
    parse(&text).map_err(|(line, reason)| RevokedListError::Line {
        path: path.to_owned(),
        line,
        reason,
    })
}

/// Parse the file's text; an error is `(1-based line, reason)`.
pub fn parse(text: &str) -> Result<RevokedCredentials, (usize, String)> {
    let mut revoked = RevokedCredentials::default();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(entry, &mut digest).map_err(|_| {
            (
                i + 1,
                format!("{entry:?} is not a credential digest (64 hex digits)"),
            )
        })?;
        revoked.revoke(digest);
    }
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_comments_and_blank_lines() {
        let a = "ab".repeat(32);
        let b = "0F".repeat(32);
        let text = format!("# revoked 2026-12-03\n{a}\n\n  {b}  # lost laptop\n");
        let revoked = parse(&text).unwrap();
        assert!(revoked.is_revoked(&[0xab; 32]));
        assert!(revoked.is_revoked(&[0x0f; 32]));
        assert!(!revoked.is_revoked(&[0; 32]));
    }

    #[test]
    fn a_bad_line_is_named() {
        let text = format!("{}\nnot-a-digest\n", "ab".repeat(32));
        let (line, reason) = parse(&text).unwrap_err();
        assert_eq!(line, 2);
        assert!(reason.contains("not-a-digest"), "{reason}");
        assert_eq!(parse(&"ab".repeat(31)).unwrap_err().0, 1, "too short");
    }

    #[test]
    fn an_oversized_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.txt");
        std::fs::write(&path, "#".repeat(MAX_FILE as usize + 1)).unwrap();
        assert!(matches!(
            read(&path),
            Err(RevokedListError::TooLarge { .. })
        ));
        assert!(matches!(
            read(&dir.path().join("missing")),
            Err(RevokedListError::Io { .. })
        ));
    }
}
