//! `/health` and `/metrics` of a real dev node: a node whose producer does not get to a waiting
//! transaction in time answers 503 with the reason; one that includes it answers 200; the
//! metrics carry the build and the work done.

mod common;

use common::{key, transfer, Node, Opts};
use serde_json::Value;
use std::time::{Duration, Instant};

async fn health(node: &Node) -> (u16, Value) {
    let r = node
        .http
        .get(format!("{}/health", node.addr))
        .send()
        .await
        .expect("health");
    let status = r.status().as_u16();
    (status, r.json().await.expect("health json"))
}

async fn metrics(node: &Node) -> String {
    node.http
        .get(format!("{}/metrics", node.addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test]
async fn a_transaction_waiting_past_the_bound_makes_the_node_unhealthy() {
    // The dev producer's first tick comes at start; the next only after an hour.
    let node = Node::start(Opts {
        block_time_ms: 3_600_000,
        env: vec![("SLUICE_NODE_HEALTH_MAX_STALL_MS", "300".into())],
        ..Opts::default()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = health(&node).await;
    assert_eq!(
        status, 200,
        "an idle node without blocks is healthy: {body}"
    );

    node.submit(&transfer(&key(1), 0, key(2).address(), 5, 1))
        .await
        .expect("submit");
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = health(&node).await;
        if status == 503 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "never unhealthy: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["status"], "unhealthy", "{body}");
    assert_eq!(body["reason"], "stalled", "{body}");
    assert_eq!(body["max_stall_ms"], 300, "{body}");
    assert!(
        body["waited_ms"].as_u64().expect("waited_ms") > 300,
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not advancing")),
        "{body}"
    );
}

#[tokio::test]
async fn a_node_that_includes_transactions_is_healthy_and_counts_them() {
    let node = Node::start(Opts {
        env: vec![("SLUICE_NODE_HEALTH_MAX_STALL_MS", "2000".into())],
        ..Opts::default()
    });
    for nonce in 0..3 {
        node.exec(&transfer(&key(1), nonce, key(2).address(), 5, 1))
            .await;
    }
    let (status, body) = health(&node).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");

    let text = metrics(&node).await;
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!(
            "sluice_node_build_info{{version=\"{version}\"}} 1"
        )),
        "{text}"
    );
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
    };
    assert!(value("sluice_node_txs_included_total") >= 3.0, "{text}");
    assert!(value("sluice_node_txs_admitted_total") >= 3.0, "{text}");
    assert!(value("sluice_node_height") >= 1.0, "{text}");
    assert!(value("sluice_node_blocks_total") >= 1.0, "{text}");
    assert!(value("sluice_node_last_block_seconds") > 0.0, "{text}");
    assert!(value("sluice_node_rpc_requests_total") >= 3.0, "{text}");
}

/// RPC over TLS with a certificate made at test time: a client that trusts the CA calls the
/// node over `https://` and follows heads over `wss://`; a plain-HTTP client gets nothing.
#[tokio::test]
async fn rpc_speaks_tls_to_a_client_that_trusts_the_ca() {
    let certs = tempfile::tempdir().unwrap();
    let ca = sluice_test_support::TestCa::generate().unwrap();
    ca.issue()
        .unwrap()
        .write(certs.path(), "node.crt", "node.key")
        .unwrap();
    let ca_file = certs.path().join("ca.crt");
    ca.write_cert(&ca_file).unwrap();
    let path = |name: &str| certs.path().join(name).display().to_string();
    let mut node = Node::start(Opts {
        env: vec![
            ("SLUICE_NODE_TLS__CERT_FILE", path("node.crt")),
            ("SLUICE_NODE_TLS__KEY_FILE", path("node.key")),
        ],
        ..Opts::default()
    });
    let plain = node.addr.clone();
    assert!(
        node.http
            .get(format!("{plain}/health"))
            .send()
            .await
            .is_err(),
        "a plain request to a TLS listener must fail"
    );
    let hostport = plain.trim_start_matches("http://").to_string();
    node.addr = format!("https://{hostport}");
    let trusted = sluice_home::tls::client_config(Some(&ca_file)).unwrap();
    node.http = sluice_home::tls::http_client_builder(trusted)
        .build()
        .unwrap();
    let (status, body) = health(&node).await;
    assert_eq!(status, 200, "{body}");

    let client =
        sluice_chain_client::ChainClient::with_ca_file(&node.addr, Some(&ca_file)).unwrap();
    let info = client.chain_info().await.expect("chain_info over https");
    assert_eq!(info.chain_id, common::CHAIN);
    let mut heads = client.subscribe_heads().await.expect("heads over wss");
    client
        .submit(&transfer(&key(1), 0, key(2).address(), 5, 1))
        .await
        .expect("submit over https");
    let head = tokio::time::timeout(Duration::from_secs(10), heads.next())
        .await
        .expect("a head within 10 s")
        .expect("a head over wss");
    assert!(head.height >= 1);
}
