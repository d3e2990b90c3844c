//! The listener over TLS: a client that trusts the certificate is served, and one that opens a
//! handshake and never finishes it is dropped at the header-read deadline.

use rustls::pki_types::{CertificateDer, ServerName};
use sluice_listener::{ListenerLimits, TlsFiles};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warp::Filter;

const DEADLINE_MS: u64 = 300;

/// A TLS listener serving `GET /hi`; returns its address and the certificate to trust.
async fn start(dir: &std::path::Path) -> (std::net::SocketAddr, CertificateDer<'static>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    let files = TlsFiles {
        cert_file: "cert.pem".into(),
        key_file: "key.pem".into(),
    };
    let tls = files.load(dir).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ListenerLimits {
        header_read_timeout_ms: DEADLINE_MS,
        ..ListenerLimits::default()
    };
    let routes = warp::path("hi").map(|| "hello");
    tokio::spawn(sluice_listener::serve_tls(
        routes,
        listener,
        limits,
        Some(tls),
        std::future::pending(),
    ));
    (addr, cert.cert.der().clone())
}

#[tokio::test]
async fn a_client_that_trusts_the_certificate_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, cert) = start(dir.path()).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /hi HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    tls.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("hello"), "{reply}");
}

#[tokio::test]
async fn a_handshake_that_never_completes_is_dropped_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _) = start(dir.path()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The first bytes of a ClientHello record, and then nothing.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("the listener must drop a stalled handshake");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(DEADLINE_MS / 2) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}
