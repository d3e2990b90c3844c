//! Request-rate limits and notifications against a real node: calls over a limit get the typed
//! `RATE_LIMITED` error (never a dropped connection), another source, another connection or a
//! later call is served again, and the node stays healthy; calls without an `id` are executed
//! and never answered, over HTTP and WebSocket.

mod common;

use common::*;
use serde_json::{json, Value};
use sluice_protocol::encoding::Canonical;
use sluice_protocol::hex;
use sluice_protocol::rpc::code;
use std::net::IpAddr;
use std::time::Duration;

/// A node whose limits are `(rate, burst)` per source and per connection.
fn limited_node(source: (u32, u32), connection: (u32, u32)) -> Node {
    Node::start(Opts {
        env: vec![
            ("SLUICE_NODE_RPC_RATE_PER_SOURCE", source.0.to_string()),
            ("SLUICE_NODE_RPC_BURST_PER_SOURCE", source.1.to_string()),
            (
                "SLUICE_NODE_RPC_RATE_PER_CONNECTION",
                connection.0.to_string(),
            ),
            (
                "SLUICE_NODE_RPC_BURST_PER_CONNECTION",
                connection.1.to_string(),
            ),
        ],
        ..Opts::default()
    })
}

fn chain_info(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "chain_info", "params": {}})
}

/// A client whose connections leave from `ip` (any 127/8 address works on loopback).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    sluice_home::tls::http_client_builder(sluice_home::tls::default_client_config())
        .local_address(IpAddr::from(ip))
        .build()
        .expect("client")
}

async fn post(http: &reqwest::Client, node: &Node, body: &Value) -> (u16, Value) {
    let resp = http
        .post(&node.addr)
        .json(body)
        .send()
        .await
        .expect("an answer, not a dropped connection");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

/// Splits a batch's answers into served calls and rate-limit refusals, checking each refusal
/// names `which` limit.
fn served_and_refused(answers: &Value, which: &str) -> (usize, usize) {
    let answers = answers.as_array().expect("batch answer");
    let refused: Vec<&Value> = answers
        .iter()
        .filter(|a| a.get("error").is_some())
        .collect();
    for r in &refused {
        let (c, m) = error_of(r);
        assert_eq!(c, code::RATE_LIMITED, "{r}");
        assert!(m.contains(which) && m.contains("per second"), "{m}");
    }
    (answers.len() - refused.len(), refused.len())
}

async fn assert_healthy(node: &Node) {
    let health = node.health().await;
    assert_eq!(health["status"], "ok", "{health}");
    assert!(!node.log().contains("panicked"), "{}", node.log());
}

#[tokio::test]
async fn calls_over_the_source_limit_are_refused_then_served_again() {
    // One call a second with a burst of 5 from each address; connections are not the limit.
    let node = limited_node((1, 5), (10_000, 10_000));
    let here = client_from([127, 0, 0, 1]);
    let batch: Vec<Value> = (1..=8).map(chain_info).collect();
    let (status, answers) = post(&here, &node, &json!(batch)).await;
    assert_eq!(status, 200, "part of the batch was served");
    assert_eq!(served_and_refused(&answers, "per source address"), (5, 3));
    // A single call over the limit: HTTP 429 carrying the JSON-RPC error, its id kept.
    let (status, single) = post(&here, &node, &chain_info(9)).await;
    assert_eq!(status, 429);
    assert_eq!(single["id"], 9);
    assert_eq!(error_of(&single).0, code::RATE_LIMITED);
    // Fresh connections from the same address share its limit.
    let (status, _) = post(&client_from([127, 0, 0, 1]), &node, &chain_info(10)).await;
    assert_eq!(status, 429);
    // Another source has its own allowance.
    let there = client_from([127, 0, 0, 2]);
    let (status, other) = post(&there, &node, &chain_info(11)).await;
    assert_eq!(status, 200);
    assert!(other["result"]["height"].is_u64(), "{other}");
    // A second later the first source has earned a call back.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, again) = post(&here, &node, &chain_info(12)).await;
    assert_eq!(status, 200, "{again}");
    assert!(again["result"]["height"].is_u64(), "{again}");
    // Malformed bodies count too, and are refused with the same error.
    let _ = post(&here, &node, &chain_info(13)).await;
    let refused = here
        .post(&node.addr)
        .body("{not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status().as_u16(), 429);
    assert_healthy(&node).await;
}

#[tokio::test]
async fn calls_over_the_connection_limit_are_refused_on_that_connection_only() {
    let node = limited_node((10_000, 10_000), (1, 3));
    let mut ws = node.ws().await;
    ws.send(json!((1..=5).map(chain_info).collect::<Vec<_>>()))
        .await;
    let answers = ws
        .next(Duration::from_secs(10))
        .await
        .expect("batch answer");
    assert_eq!(served_and_refused(&answers, "per connection"), (3, 2));
    // The connection stays open and typed-refuses single calls too.
    let refused = ws.call(6, "chain_info", json!({})).await;
    assert_eq!(error_of(&refused).0, code::RATE_LIMITED);
    // Another connection from the same address is served at once.
    let mut other = node.ws().await;
    let served = other.call(7, "chain_info", json!({})).await;
    assert!(served["result"]["height"].is_u64(), "{served}");
    // And the first one is served again once its allowance refills.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let served = ws.call(8, "chain_info", json!({})).await;
    assert!(served["result"]["height"].is_u64(), "{served}");
    // Over HTTP keep-alive: one connection's calls share its limit.
    let http = sluice_home::tls::http_client();
    let batch: Vec<Value> = (1..=5).map(chain_info).collect();
    let (_, answers) = post(&http, &node, &json!(batch)).await;
    assert_eq!(served_and_refused(&answers, "per connection"), (3, 2));
    assert_healthy(&node).await;
}

fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

fn submit_notification(tx: &sluice_protocol::SignedTx) -> Value {
    notification("submit_tx", json!({"tx": hex::encode(&tx.to_bytes())}))
}

/// POSTs a body and returns the status and the raw body text.
async fn post_raw(node: &Node, body: &Value) -> (u16, String) {
    let resp = node
        .http
        .post(&node.addr)
        .json(body)
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

#[tokio::test]
async fn http_notifications_are_executed_and_never_answered() {
    let node = Node::start(Opts::default());
    let to = key(9).address();
    // A single notification: 204, empty body, and it did run.
    let (status, body) =
        post_raw(&node, &submit_notification(&transfer(&key(1), 0, to, 5, 1))).await;
    assert_eq!((status, body.as_str()), (204, ""));
    node.wait_nonce(1, 1).await;
    // A batch of notifications only: no body either.
    let only = json!([
        submit_notification(&transfer(&key(1), 1, to, 5, 1)),
        notification("chain_info", json!({})),
    ]);
    let (status, body) = post_raw(&node, &only).await;
    assert_eq!((status, body.as_str()), (204, ""));
    node.wait_nonce(1, 2).await;
    // A mixed batch: entries for the requests only. `"id": null` is a request, not a notification.
    let mixed = json!([
        notification("chain_info", json!({})),
        chain_info(1),
        {"jsonrpc": "2.0", "id": null, "method": "chain_info", "params": {}},
        notification("no_such_method", json!({})),
    ]);
    let (status, body) = post_raw(&node, &mixed).await;
    assert_eq!(status, 200);
    let answers: Value = serde_json::from_str(&body).expect("json");
    let ids: Vec<&Value> = answers
        .as_array()
        .expect("array")
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(ids, [&json!(1), &Value::Null], "{answers}");
    assert!(answers[1]["result"]["height"].is_u64(), "{answers}");
    // A malformed entry without an id is still answered (it cannot be told a notification).
    let (status, body) = post_raw(&node, &json!({"jsonrpc": "2.0", "method": 5})).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(error_of(&answer).0, code::INVALID_REQUEST);
    assert_healthy(&node).await;
}

#[tokio::test]
async fn ws_notifications_are_executed_and_never_answered() {
    let node = Node::start(Opts::default());
    let to = key(9).address();
    let mut ws = node.ws().await;
    ws.send(submit_notification(&transfer(&key(2), 0, to, 5, 1)))
        .await;
    ws.send(json!([
        notification("chain_info", json!({})),
        submit_notification(&transfer(&key(2), 1, to, 5, 1)),
    ]))
    .await;
    // A subscription asked in a notification is not started (its id would be its answer).
    ws.send(notification("subscribe_heads", json!({}))).await;
    // The next message on the socket is the answer to the next request with an id.
    ws.send(chain_info(42)).await;
    let first = ws.next(Duration::from_secs(10)).await.expect("an answer");
    assert_eq!(first["id"], 42, "{first}");
    assert!(first["result"]["height"].is_u64(), "{first}");
    // Both notified transfers ran, and one more sent after the subscribe: blocks were made
    // since, yet no heads were pushed.
    ws.send(submit_notification(&transfer(&key(2), 2, to, 5, 1)))
        .await;
    node.wait_nonce(2, 3).await;
    assert_eq!(
        ws.next(Duration::from_millis(300)).await,
        None,
        "nothing else is sent"
    );
    // The connection is still served.
    let again = ws.call(43, "chain_info", json!({})).await;
    assert!(again["result"]["height"].as_u64() >= Some(1), "{again}");
    assert_healthy(&node).await;
}
