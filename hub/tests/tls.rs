//! TLS on the hub's two listeners (sessions and admin API) with a certificate made at test time,
//! and the hub's store on a real Postgres server that takes TLS connections only.

mod common;

use common::*;
use futures::StreamExt;
use sluice_hub::store::Store;
use sluice_hub::{Hub, HubConfig, StartError};
use sluice_listener::TlsFiles;
use sluice_protocol::wire;
use sluice_protocol::wire::hub::{SessionMsg, MAX_SESSION_FRAME};
use sluice_test_support::{PostgresOptions, TempPostgres, TestCa};
use std::path::Path;
use tokio_tungstenite::tungstenite::Message;

/// A CA, and a hub home holding a certificate it signed (`tls.crt`, `tls.key`).
fn ca_and_files(home: &Path) -> (TestCa, TlsFiles) {
    let ca = TestCa::generate().unwrap();
    ca.issue()
        .unwrap()
        .write(home, "tls.crt", "tls.key")
        .unwrap();
    ca.write_cert(&home.join("ca.crt")).unwrap();
    let files = TlsFiles {
        cert_file: "tls.crt".into(),
        key_file: "tls.key".into(),
    };
    (ca, files)
}

fn tls_config(files: TlsFiles) -> HubConfig {
    HubConfig {
        tls: Some(files),
        ..quick_config()
    }
}

#[tokio::test]
async fn sessions_and_the_admin_api_speak_tls_to_a_client_that_trusts_the_ca() {
    let home = tempfile::tempdir().unwrap();
    let (_ca, files) = ca_and_files(home.path());
    let hub = start_hub(home.path(), tls_config(files)).await;
    let trusted = sluice_home::tls::client_config(Some(&home.path().join("ca.crt"))).unwrap();

    let url = format!("wss://127.0.0.1:{}/ws", hub.addr.port());
    let connector = sluice_home::tls::ws_connector(trusted.clone());
    let (mut ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(&url, None, false, Some(connector))
            .await
            .expect("a TLS session");
    let Some(Ok(Message::Text(first))) = ws.next().await else {
        panic!("no first frame over TLS");
    };
    let msg: SessionMsg = wire::decode(first.as_bytes(), MAX_SESSION_FRAME).unwrap();
    assert!(matches!(msg, SessionMsg::Challenge { .. }), "{msg:?}");

    let token = std::fs::read_to_string(home.path().join("admin.token")).unwrap();
    let admin = sluice_home::tls::http_client_builder(trusted)
        .build()
        .unwrap();
    let reply = admin
        .get(format!(
            "https://127.0.0.1:{}/api/v1/channels",
            hub.admin_addr.port()
        ))
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("the admin API over TLS");
    assert_eq!(reply.status(), 200);
    hub.shutdown().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let (_ca, files) = ca_and_files(home.path());
    let hub = start_hub(home.path(), tls_config(files)).await;
    let url = format!("wss://127.0.0.1:{}/ws", hub.addr.port());
    let connector = sluice_home::tls::ws_connector(sluice_home::tls::default_client_config());
    let err = tokio_tungstenite::connect_async_tls_with_config(&url, None, false, Some(connector))
        .await
        .expect_err("an unknown issuer must be refused");
    assert!(err.to_string().contains("certificate"), "{err}");
    // A plain client gets no session from a TLS listener.
    let plain = format!("ws://127.0.0.1:{}/ws", hub.addr.port());
    assert!(tokio_tungstenite::connect_async(plain).await.is_err());
    hub.shutdown().await;
}

#[tokio::test]
async fn a_bad_certificate_or_key_file_stops_the_start_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    sluice_hub::keyfile::create(&home.path().join("hub.key")).unwrap();
    let (_ca, files) = ca_and_files(home.path());
    let start = |files: TlsFiles| Hub::start(home.path(), tls_config(files));

    let missing = TlsFiles {
        cert_file: "nowhere.crt".into(),
        ..files.clone()
    };
    let err = start(missing).await.err().expect("a missing certificate");
    assert!(matches!(err, StartError::Tls(_)), "{err}");
    assert!(err.to_string().contains("nowhere.crt"), "{err}");

    std::fs::write(home.path().join("garbage.key"), "not a key").unwrap();
    let garbage = TlsFiles {
        key_file: "garbage.key".into(),
        ..files
    };
    let err = start(garbage).await.err().expect("a key that is no key");
    assert!(err.to_string().contains("garbage.key"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_reaches_a_tls_only_postgres_and_a_plain_connection_is_refused() {
    let pg =
        tokio::task::spawn_blocking(|| TempPostgres::start_with(PostgresOptions { tls: true }))
            .await
            .unwrap()
            .expect("start a TLS-only Postgres");
    let url = pg.create_database("hub_tls").unwrap();
    let ca = pg.ca_file().unwrap().display().to_string();

    let required = Store::connect(&format!("{url}?sslmode=require"), 2)
        .await
        .expect("sslmode=require connects");
    required.close().await;
    let verified = Store::connect(&format!("{url}?sslmode=verify-full&sslrootcert={ca}"), 2)
        .await
        .expect("sslmode=verify-full with the server's CA connects");
    verified.close().await;
    let refused = Store::connect(&format!("{url}?sslmode=disable"), 2)
        .await
        .expect_err("sslmode=disable must be refused");
    assert!(
        refused.to_string().contains("pg_hba.conf rejects"),
        "{refused}"
    );

    // A whole hub on that store.
    let home = tempfile::tempdir().unwrap();
    let cfg = HubConfig {
        store_url: format!("{url}?sslmode=require"),
        ..quick_config()
    };
    let hub = start_hub(home.path(), cfg).await;
    assert_eq!(hub.shared.store.kind(), "postgres");
    hub.shutdown().await;
}
