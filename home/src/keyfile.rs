//! Key files, one format for every binary: 32 secret bytes as hex and a newline, in a file only
//! the owner can read (0600), written durably (file and directory synced: a lost key is lost
//! money) and never overwritten.

use sluice_protocol::{hex, Keypair};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("no key file at {0}; run `init` first")]
    Missing(PathBuf),
    #[error("cannot access key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {0} does not hold 32 hex-encoded secret bytes of a valid key")]
    Invalid(PathBuf),
    #[error("key file {0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
}

/// Reads the 32 secret bytes at `path`.
pub fn load_secret(path: &Path) -> Result<[u8; 32], KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => KeyFileError::Missing(path.into()),
        _ => KeyFileError::Io {
            path: path.into(),
            source,
        },
    })?;
    hex::decode_array::<32>(text.trim()).map_err(|_| KeyFileError::Invalid(path.into()))
}

/// Reads the signing key at `path`.
pub fn load(path: &Path) -> Result<Keypair, KeyFileError> {
    Keypair::from_secret(&load_secret(path)?).map_err(|_| KeyFileError::Invalid(path.into()))
}

/// Writes a fresh signing key at `path`.
pub fn create(path: &Path) -> Result<Keypair, KeyFileError> {
    let key = Keypair::generate();
    write_secret(path, &key.secret_bytes())?;
    Ok(key)
}

/// Loads the key at `path`, creating one there first if there is none.
pub fn load_or_create(path: &Path) -> Result<Keypair, KeyFileError> {
    match create(path) {
        Ok(key) => Ok(key),
        Err(KeyFileError::Exists(_)) => load(path),
        Err(e) => Err(e),
    }
}

/// Writes `secret` at `path` (0600, synced); refuses to replace an existing file.
pub fn write_secret(path: &Path, secret: &[u8; 32]) -> Result<(), KeyFileError> {
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::AlreadyExists => KeyFileError::Exists(path.into()),
        _ => KeyFileError::Io {
            path: path.into(),
            source,
        },
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    writeln!(f, "{}", hex::encode(secret)).map_err(io)?;
    f.sync_all().map_err(io)?;
    // The new name must survive a crash too.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_created_key_loads_back_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.key");
        let a = create(&path).unwrap();
        assert_eq!(load(&path).unwrap().address(), a.address());
        assert_eq!(load_or_create(&path).unwrap().address(), a.address());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(create(&path), Err(KeyFileError::Exists(_))));
    }

    #[test]
    fn bad_or_missing_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.key");
        assert!(matches!(load(&path), Err(KeyFileError::Missing(_))));
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::Invalid(_))));
        std::fs::write(&path, "00".repeat(32)).unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::Invalid(_))));
        std::fs::write(&path, "ab".repeat(33)).unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::Invalid(_))));
    }
}
