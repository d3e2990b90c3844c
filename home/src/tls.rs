//! The TLS every Sluice client speaks: rustls on the `ring` provider, trusting the webpki roots
//! and, when a PEM file is given (`ca_file`), the certificates in it as well, e.g. the private CA
//! that signed a hub's or a node's certificate. [`client_config`] builds the one rustls config;
//! [`http_client_builder`] hands it to reqwest and [`ws_connector`] to tungstenite, so neither
//! picks a provider or roots of its own. `http://` and `ws://` URLs stay plain.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
pub use rustls::ClientConfig;
use rustls::RootCertStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a client's `ca_file` cannot be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("ca_file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
}

/// The crypto provider of every TLS connection Sluice makes or accepts.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes [`provider`] the process default, once; later calls do nothing. Code that builds a
/// reqwest client without [`http_client_builder`] needs it (reqwest picks no provider itself).
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificates of a PEM file, at least one.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    match certs.is_empty() {
        true => Err(bad("no PEM certificate in it".into())),
        false => Ok(certs),
    }
}

/// The client config: webpki roots, plus every certificate of `ca_file` if given.
pub fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        for cert in read_certificates(path)? {
            roots.add(cert).map_err(|e| TlsError::CaFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        tracing::debug!(ca_file = %path.display(), "trusting an extra CA");
    }
    Ok(with_roots(roots))
}

/// The client config with the webpki roots only.
pub fn default_client_config() -> ClientConfig {
    with_roots(RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
}

fn with_roots(roots: RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports every safe default protocol version")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Whether a connection failed because the server's certificate was not trusted (unknown
/// issuer, wrong name, expired): the case where a private CA's `ca_file` may be missing.
pub fn is_certificate_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)))
}

/// A reqwest builder speaking `config` (from [`client_config`]) for `https://` URLs.
pub fn http_client_builder(config: ClientConfig) -> reqwest::ClientBuilder {
    install_default_provider();
    reqwest::Client::builder().tls_backend_preconfigured(config)
}

/// A reqwest client with the webpki roots and no other setting, for tools and tests.
pub fn http_client() -> reqwest::Client {
    install_default_provider();
    reqwest::Client::new()
}

/// The tungstenite connector speaking `config` (from [`client_config`]) for `wss://` URLs.
pub fn ws_connector(config: ClientConfig) -> tokio_tungstenite::Connector {
    tokio_tungstenite::Connector::Rustls(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = client_config(Some(&missing)).unwrap_err().to_string();
        assert!(err.contains("nope.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(Some(&empty)).unwrap_err().to_string();
        assert!(err.contains("empty.pem") && err.contains("no PEM"), "{err}");
    }

    #[test]
    fn the_plain_config_builds() {
        assert!(client_config(None).is_ok());
        let _ = http_client();
    }
}
