//! TLS on a listener: the `tls = { cert_file = "...", key_file = "..." }` setting every daemon
//! takes, loaded once at start into a [`Tls`] acceptor. rustls on the `ring` provider; HTTP/1.1
//! only (the listener serves nothing else).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a listener's certificate and key are: PEM files; relative paths are under the daemon's
/// home. The certificate file holds the server's certificate first, then any intermediates.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsFiles {
    pub cert_file: String,
    pub key_file: String,
}

/// Why a listener's TLS files cannot be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.{setting} must not be empty")]
    Unset { setting: &'static str },
    #[error("tls.cert_file {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("tls.key_file {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("tls.key_file {key} does not fit tls.cert_file {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// A loaded certificate and key, ready to accept connections. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl TlsFiles {
    /// Loads both files, resolving relative paths under `home`.
    pub fn load(&self, home: &Path) -> Result<Tls, TlsError> {
        if self.cert_file.is_empty() {
            return Err(TlsError::Unset {
                setting: "cert_file",
            });
        }
        if self.key_file.is_empty() {
            return Err(TlsError::Unset {
                setting: "key_file",
            });
        }
        let cert = home.join(&self.cert_file);
        let key = home.join(&self.key_file);
        let certs = read_certs(&cert)?;
        let private = PrivateKeyDer::from_pem_file(&key).map_err(|e| TlsError::Key {
            path: key.clone(),
            reason: e.to_string(),
        })?;
        let provider = sluice_home::tls::provider();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Certificate {
                path: cert.clone(),
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_single_cert(certs, private)
            .map_err(|e| TlsError::Mismatch {
                cert: cert.clone(),
                key: key.clone(),
                reason: e.to_string(),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tracing::info!(cert_file = %cert.display(), "TLS on");
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// The certificate chain, read the one way every Sluice TLS file is read (`sluice_home::tls`).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    sluice_home::tls::read_certificates(path).map_err(|e| match e {
        sluice_home::tls::TlsError::CaFile { path, reason } => {
            TlsError::Certificate { path, reason }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> TlsFiles {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
        TlsFiles {
            cert_file: "cert.pem".into(),
            key_file: "key.pem".into(),
        }
    }

    #[test]
    fn good_files_load_relative_to_home() {
        let dir = tempfile::tempdir().unwrap();
        files(dir.path()).load(dir.path()).unwrap();
    }

    #[test]
    fn a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = files(dir.path());
        let err = |f: &TlsFiles| f.load(dir.path()).unwrap_err().to_string();

        let missing = TlsFiles {
            cert_file: "missing.pem".into(),
            ..good.clone()
        };
        assert!(err(&missing).contains("missing.pem"), "{}", err(&missing));

        std::fs::write(dir.path().join("junk.pem"), "junk").unwrap();
        let junk_key = TlsFiles {
            key_file: "junk.pem".into(),
            ..good.clone()
        };
        let e = err(&junk_key);
        assert!(e.contains("tls.key_file") && e.contains("junk.pem"), "{e}");

        let other = rcgen::generate_simple_self_signed(vec!["other".into()]).unwrap();
        std::fs::write(dir.path().join("other.pem"), other.key_pair.serialize_pem()).unwrap();
        let mismatch = TlsFiles {
            key_file: "other.pem".into(),
            ..good.clone()
        };
        let e = err(&mismatch);
        assert!(e.contains("does not fit") && e.contains("other.pem"), "{e}");

        let unset = TlsFiles {
            cert_file: String::new(),
            ..good
        };
        assert!(err(&unset).contains("tls.cert_file"));
    }
}
