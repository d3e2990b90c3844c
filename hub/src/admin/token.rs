//! The admin API's bearer token: 32 random bytes, hex, in a 0600 file `init` writes (and a start
//! creates if missing), made like a key file. Only its digest is kept in memory and compared.

use sluice_protocol::{hex, sha256, Hash32};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("admin token file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin token file {0} does not hold 32 bytes of hex")]
    Invalid(PathBuf),
}

/// What a request's `Authorization: Bearer …` must carry.
#[derive(Clone)]
pub struct AdminToken {
    digest: Hash32,
}

impl AdminToken {
    /// Whether `header` (the whole `Authorization` value) carries the token.
    pub fn admits(&self, header: Option<&str>) -> bool {
        let given = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        // Digests are compared, so the time taken says nothing about the token's bytes.
        given.is_some_and(|t| sha256(t.as_bytes()) == self.digest)
    }

    fn of(text: &str) -> Self {
        AdminToken {
            digest: sha256(text.as_bytes()),
        }
    }
}

/// Reads the token at `path`, writing a fresh one first (mode 0600) if there is none.
pub fn load_or_create(path: &Path) -> Result<AdminToken, TokenError> {
    let io = |source| TokenError::Io {
        path: path.into(),
        source,
    };
    if !path.exists() {
        // Random 32 bytes, hex, mode 0600, never overwriting: what a fresh key file is.
        use sluice_home::keyfile::{write_secret, KeyFileError};
        // A key's secret is 32 good random bytes.
        match write_secret(path, &sluice_protocol::Keypair::generate().secret_bytes()) {
            // Another start wrote it meanwhile: read that one.
            Ok(()) | Err(KeyFileError::Exists(_)) => {}
            Err(KeyFileError::Io { source, .. }) => return Err(io(source)),
            Err(KeyFileError::Invalid(p) | KeyFileError::Missing(p)) => {
                return Err(TokenError::Invalid(p))
            }
        }
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let text = text.trim();
    if hex::decode_array::<32>(text).is_err() {
        return Err(TokenError::Invalid(path.into()));
    }
    Ok(AdminToken::of(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_written_token_is_admitted_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        let token = load_or_create(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(token.admits(Some(&format!("Bearer {text}"))));
        assert!(!token.admits(Some(&format!("Bearer {text}0"))));
        assert!(!token.admits(Some(&text)), "the scheme is required");
        assert!(!token.admits(None));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(&path).unwrap();
        assert!(again.admits(Some(&format!("Bearer {text}"))), "kept");
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(load_or_create(&path), Err(TokenError::Invalid(_))));
    }
}
