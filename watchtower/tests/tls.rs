//! The tower's API over TLS, with a certificate from a CA made at test time.

use sluice_listener::TlsFiles;
use sluice_test_support::TestCa;
use sluice_watchtower::{config, Config, StartError};

#[tokio::test]
async fn the_api_speaks_tls_and_a_bad_key_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    // No node listens there: the API works without the chain.
    config::init(dir.path(), 1, Some("127.0.0.1:1")).unwrap();
    let ca = TestCa::generate().unwrap();
    ca.issue()
        .unwrap()
        .write(dir.path(), "tower.crt", "tower.tls.key")
        .unwrap();
    ca.write_cert(&dir.path().join("ca.crt")).unwrap();
    let mut cfg = Config::load(dir.path()).unwrap();
    cfg.listen_addr = "127.0.0.1:0".into();

    let mut bad = cfg.clone();
    bad.tls = Some(TlsFiles {
        cert_file: "tower.crt".into(),
        key_file: "absent.key".into(),
    });
    let err = sluice_watchtower::start(dir.path(), bad)
        .await
        .err()
        .expect("a missing key file");
    assert!(matches!(err, StartError::Tls(_)), "{err}");
    assert!(err.to_string().contains("absent.key"), "{err}");

    cfg.tls = Some(TlsFiles {
        cert_file: "tower.crt".into(),
        key_file: "tower.tls.key".into(),
    });
    let run = sluice_watchtower::start(dir.path(), cfg).await.unwrap();
    let url = format!("https://127.0.0.1:{}/health", run.addr.port());
    let tls = sluice_home::tls::client_config(Some(&dir.path().join("ca.crt"))).unwrap();
    let trusting = sluice_home::tls::http_client_builder(tls).build().unwrap();
    let status = trusting.get(&url).send().await.expect("/health over TLS");
    // Disconnected from the chain: 503, but answered over TLS.
    assert_eq!(status.status(), 503);
    let err = sluice_home::tls::http_client()
        .get(&url)
        .send()
        .await
        .expect_err("a client without the CA is refused");
    assert!(err.is_connect(), "{err}");
    run.stop().await;
}
