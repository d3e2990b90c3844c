//! The wallet's key file: 32 secret bytes as hex, created with owner-only permissions.

use crate::error::{Result, WalletError};
use sluice_protocol::{hex, Keypair};
use std::path::Path;

/// Loads the key at `path`, or creates a fresh one there if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<Keypair> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(WalletError::io(format!("read key file {}", path.display()))(e)),
    }
}

/// Loads an existing key; a missing file is an error telling the user to run `init`.
pub fn load(path: &Path) -> Result<Keypair> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => WalletError::Config(format!(
            "no key at {}; run `sluice-wallet init` first",
            path.display()
        )),
        _ => WalletError::io(format!("read key file {}", path.display()))(e),
    })?;
    parse(path, &text)
}

fn parse(path: &Path, text: &str) -> Result<Keypair> {
    let bad = || WalletError::BadKeyFile(path.display().to_string());
    let bytes = hex::decode_array::<32>(text.trim()).map_err(|_| bad())?;
    Keypair::from_secret(&bytes).map_err(|_| bad())
}

fn create(path: &Path) -> Result<Keypair> {
    let key = Keypair::generate();
    let body = format!("{}\n", hex::encode(&key.secret_bytes()));
    write_private(path, body.as_bytes())?;
    tracing::info!(address = %key.address(), "created a new wallet key");
    Ok(key)
}

/// Writes a file readable only by its owner, durably (a lost key is lost money).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let what = format!("create key file {}", path.display());
    let mut f = opts.open(path).map_err(WalletError::io(what.clone()))?;
    f.write_all(bytes).map_err(WalletError::io(what.clone()))?;
    f.sync_all().map_err(WalletError::io(what))
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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_key_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.key");
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(load(&path), Err(WalletError::BadKeyFile(_))));
        std::fs::write(&path, "00".repeat(32)).unwrap();
        assert!(matches!(load(&path), Err(WalletError::BadKeyFile(_))));
    }

    #[test]
    fn missing_key_says_to_init() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("init"));
    }
}
