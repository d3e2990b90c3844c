//! The hub's signing key: 32 secret bytes as hex in a file only the owner can read.

use sluice_protocol::{hex, Keypair};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot access key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {0} does not hold a valid secret key")]
    Invalid(PathBuf),
    #[error("key file {0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
}

pub fn load(path: &Path) -> Result<Keypair, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.into(),
        source,
    })?;
    let secret =
        hex::decode_array::<32>(text.trim()).map_err(|_| KeyFileError::Invalid(path.into()))?;
    Keypair::from_secret(&secret).map_err(|_| KeyFileError::Invalid(path.into()))
}

/// Writes a fresh key (mode 0600); never overwrites an existing one.
pub fn create(path: &Path) -> Result<Keypair, KeyFileError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Err(KeyFileError::Exists(path.into()));
    }
    let key = Keypair::generate();
    let io = |source| KeyFileError::Io {
        path: path.into(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(hex::encode(&key.secret_bytes()).as_bytes())
        .map_err(io)?;
    Ok(key)
}
