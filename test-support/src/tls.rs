//! A certificate authority made at test time (rcgen): its certificate for clients to trust, and
//! server certificates it signs for `localhost` and `127.0.0.1`.

use crate::SupportError;
use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};
use std::path::Path;

/// A throwaway CA.
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
}

/// A server certificate and its private key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

fn failed(e: rcgen::Error) -> SupportError {
    SupportError::Failed(format!("generate a test certificate: {e}"))
}

impl TestCa {
    pub fn generate() -> Result<Self, SupportError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Sluice test CA");
        let key = KeyPair::generate().map_err(failed)?;
        let cert = params.self_signed(&key).map_err(failed)?;
        Ok(TestCa { cert, key })
    }

    /// The CA certificate, PEM: what a client trusts.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes [`TestCa::cert_pem`] to `path`.
    pub fn write_cert(&self, path: &Path) -> Result<(), SupportError> {
        std::fs::write(path, self.cert_pem())
            .map_err(SupportError::io(format!("write {}", path.display())))
    }

    /// A server certificate for `localhost` and `127.0.0.1`, signed by this CA.
    pub fn issue(&self) -> Result<Issued, SupportError> {
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).map_err(failed)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().map_err(failed)?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(failed)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl Issued {
    /// Writes the certificate and the key (0600) under `dir` as `cert` and `key`.
    pub fn write(&self, dir: &Path, cert: &str, key: &str) -> Result<(), SupportError> {
        use std::os::unix::fs::PermissionsExt;
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map_err(SupportError::io(format!("write {}", path.display())))
        };
        write(cert, &self.cert_pem)?;
        write(key, &self.key_pem)?;
        let key_path = dir.join(key);
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
            .map_err(SupportError::io(format!("chmod {}", key_path.display())))
    }
}
