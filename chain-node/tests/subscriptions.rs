//! Subscriptions over WebSocket: history replayed from `from_height`, then live events, with no
//! gap and no duplicate across the switch; heads in order; slow subscribers dropped.

mod common;

use common::*;
use serde_json::{json, Value};
use sluice_protocol::encoding::Canonical;
use sluice_protocol::hex;
use sluice_protocol::rpc::{code, BlockHeader, Event};
use std::time::Duration;

/// Submits `rounds` rounds of one transfer from each of `senders`, one `submit_txs` per round.
async fn load(
    node_addr: String,
    senders: Vec<u32>,
    first_nonce: u64,
    rounds: u64,
    pause: Duration,
) {
    let http = sluice_home::tls::http_client();
    for r in 0..rounds {
        let txs: Vec<String> = senders
            .iter()
            .map(|n| {
                hex::encode(
                    &transfer(&key(*n), first_nonce + r, key(99).address(), 1, 1).to_bytes(),
                )
            })
            .collect();
        let body = json!({"jsonrpc":"2.0","id":1,"method":"submit_txs","params":{"txs": txs}});
        let resp: Value = http
            .post(&node_addr)
            .json(&body)
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("json");
        assert!(
            resp["result"]
                .as_array()
                .expect("outcomes")
                .iter()
                .all(|o| o.get("id").is_some()),
            "{resp}"
        );
        tokio::time::sleep(pause).await;
    }
}

#[tokio::test]
async fn replay_then_live_without_gap_or_duplicate() {
    let node = Node::start(Opts::default());
    let senders = vec![1, 2, 3, 4];
    // History first.
    load(
        node.addr.clone(),
        senders.clone(),
        0,
        5,
        Duration::from_millis(30),
    )
    .await;
    node.wait_nonce(4, 5).await;
    // Subscribe from height 1 while more blocks are being made.
    let live = tokio::spawn(load(
        node.addr.clone(),
        senders.clone(),
        5,
        30,
        Duration::from_millis(15),
    ));
    let mut heads = node.ws().await;
    let sub = heads.call(1, "subscribe_heads", json!({})).await;
    assert!(sub["result"].is_u64(), "{sub}");
    let mut events = node.ws().await;
    let sub = events
        .call(1, "subscribe_events", json!({"from_height": 1}))
        .await;
    assert!(sub["result"].is_u64(), "{sub}");
    live.await.expect("load");
    node.wait_nonce(4, 35).await;
    let tip = node.height().await;
    let expected: Vec<Event> = node
        .ok("events", json!({"from_height": 1, "to_height": tip}))
        .await;
    assert_eq!(expected.len(), 35 * 4);
    let mut got: Vec<Event> = Vec::new();
    while got.len() < expected.len() {
        let m = events
            .next(Duration::from_secs(10))
            .await
            .expect("event notification");
        assert_eq!(m["method"], "events", "{m}");
        got.push(serde_json::from_value(m["params"]["result"].clone()).expect("event"));
    }
    assert_eq!(got, expected);
    assert!(
        events.next(Duration::from_millis(300)).await.is_none(),
        "no extra events"
    );

    // Heads arrive in order without holes from the first one seen.
    let mut last: Option<u64> = None;
    while let Some(m) = heads.next(Duration::from_millis(300)).await {
        let h: BlockHeader = serde_json::from_value(m["params"]["result"].clone()).expect("header");
        if let Some(l) = last {
            assert_eq!(h.height, l + 1);
        }
        last = Some(h.height);
    }
    assert_eq!(last, Some(tip));

    // A filtered subscription from the future gets only later, matching events.
    let mut filtered = node.ws().await;
    let sub = filtered
        .call(
            1,
            "subscribe_events",
            json!({"from_height": tip + 2, "filter": {"participant": key(2).address()}}),
        )
        .await;
    assert!(sub["result"].is_u64());
    for nonce in 35..38 {
        node.exec(&transfer(&key(1), nonce, key(99).address(), 1, 1))
            .await;
        node.exec(&transfer(&key(2), nonce, key(99).address(), 1, 1))
            .await;
    }
    let mut seen = Vec::new();
    while let Some(m) = filtered.next(Duration::from_millis(400)).await {
        let e: Event = serde_json::from_value(m["params"]["result"].clone()).expect("event");
        assert!(e.height >= tip + 2 && e.participants.contains(&key(2).address()));
        seen.push(e);
    }
    assert!(!seen.is_empty() && seen.len() <= 3, "{seen:?}");
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_is_dropped_and_production_goes_on() {
    let node = Node::start(Opts {
        env: vec![
            ("SLUICE_NODE_WS_QUEUE_LEN", "8".into()),
            ("SLUICE_NODE_MEMPOOL_MAX_NONCE_GAP", "1000".into()),
        ],
        ..Opts::default()
    });
    let mut slow = node.ws().await;
    let sub = slow
        .call(1, "subscribe_events", json!({"from_height": 1}))
        .await;
    assert!(sub["result"].is_u64());
    // Plenty of events, never read by `slow`, enough to fill socket buffers and the queue.
    load(
        node.addr.clone(),
        vec![1, 2, 3, 4],
        0,
        200,
        Duration::from_millis(2),
    )
    .await;
    node.wait_nonce(4, 200).await;
    // Blocks kept coming; now the slow reader finds an error and a closed connection.
    let mut dropped = false;
    while let Some(m) = slow.next(Duration::from_secs(5)).await {
        if let Some(e) = m.get("error") {
            assert_eq!(e["code"].as_i64(), Some(code::LIMIT_EXCEEDED), "{m}");
            dropped = true;
        }
    }
    assert!(dropped, "slow subscriber should have been dropped");
    let metrics = node
        .http
        .get(format!("{}/metrics", node.addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("sluice_node_subscribers_dropped_total 1"),
        "{metrics}"
    );
}
