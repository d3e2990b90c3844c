//! The wallet's key file, in the one format every Sluice key file has (`sluice_home::keyfile`).

use crate::error::{Result, WalletError};
use sluice_home::keyfile::{self, KeyFileError};
use sluice_protocol::Keypair;
use std::path::Path;

/// Loads the key at `path`, or creates a fresh one there if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<Keypair> {
    match keyfile::load(path) {
        Err(KeyFileError::Missing(_)) => {
            let key = keyfile::create(path).map_err(wallet_error)?;
            tracing::info!(address = %key.address(), "created a new wallet key");
            Ok(key)
        }
        other => other.map_err(wallet_error),
    }
}

/// Loads an existing key; a missing file is an error telling the user to run `init`.
pub fn load(path: &Path) -> Result<Keypair> {
    keyfile::load(path).map_err(wallet_error)
}

fn wallet_error(e: KeyFileError) -> WalletError {
    match e {
        KeyFileError::Missing(path) => WalletError::Config(format!(
            "no key at {}; run `sluice-wallet init` first",
            path.display()
        )),
        KeyFileError::Invalid(path) => WalletError::BadKeyFile(path.display().to_string()),
        KeyFileError::Io { path, source } => WalletError::Io {
            what: format!("key file {}", path.display()),
            source,
        },
        KeyFileError::Exists(path) => {
            WalletError::Config(format!("{} already exists", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.key");
        let a = load_or_create(&path).unwrap();
        let b = load(&path).unwrap();
        assert_eq!(a.address(), b.address());
    }

    #[test]
    fn corrupt_key_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.key");
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(load(&path), Err(WalletError::BadKeyFile(_))));
    }

    #[test]
    fn missing_key_says_to_init() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("init"));
    }
}
