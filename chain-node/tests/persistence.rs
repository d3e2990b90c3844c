//! Durability: a clean restart resumes at the last block; a SIGKILL under load leaves a ledger
//! equal to the replay of its committed blocks, keeping everything that was reported included.

mod common;

use common::*;
use serde_json::{json, Value};
use sluice_protocol::encoding::Canonical;
use sluice_protocol::hex;
use sluice_protocol::rpc::TxInfo;
use sluice_protocol::Hash32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn restart_resumes_at_the_last_committed_block() {
    let mut node = Node::start(Opts::default());
    let (a, b) = (key(1), key(2));
    for n in 0..3 {
        node.exec(&transfer(&a, n, b.address(), 10, 1)).await;
    }
    let before: Value = node.ok("chain_info", json!({})).await;
    let acct = node.account(&b.address()).await;
    node.restart();
    let after: Value = node.ok("chain_info", json!({})).await;
    assert_eq!(before, after);
    assert_eq!(node.account(&b.address()).await, acct);
    // The chain goes on from there, and nonces are remembered.
    assert!(node
        .submit(&transfer(&a, 2, b.address(), 10, 1))
        .await
        .is_err());
    let info = node.exec(&transfer(&a, 3, b.address(), 10, 1)).await;
    assert_eq!(info.height, after["height"].as_u64().expect("height") + 1);
    node.stop();
    let report = node.verify();
    assert_eq!(report["txs"], 4);
}

/// Submits one transfer per sender per round, from each sender's `nonces`, until `stop`.
fn spawn_load(
    addr: String,
    senders: Vec<u32>,
    mut nonces: Vec<u64>,
    stop: Arc<AtomicBool>,
    submitted: Arc<std::sync::Mutex<Vec<Hash32>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = sluice_home::tls::http_client();
        while !stop.load(Ordering::Relaxed) {
            let txs: Vec<_> = senders
                .iter()
                .zip(&nonces)
                .map(|(n, nonce)| transfer(&key(*n), *nonce, key(99).address(), 1, 1))
                .collect();
            let hexes: Vec<String> = txs.iter().map(|t| hex::encode(&t.to_bytes())).collect();
            let body =
                json!({"jsonrpc":"2.0","id":1,"method":"submit_txs","params":{"txs": hexes}});
            match http.post(&addr).json(&body).send().await {
                Ok(r) if r.status().is_success() => {}
                _ => break, // the node is gone
            }
            submitted
                .lock()
                .expect("lock")
                .extend(txs.iter().map(|t| t.id()));
            nonces.iter_mut().for_each(|n| *n += 1);
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    })
}

#[tokio::test]
async fn sigkill_under_load_leaves_a_ledger_equal_to_its_replay() {
    let senders: Vec<u32> = (1..=24).collect();
    let mut node = Node::start(Opts {
        funded: senders
            .iter()
            .map(|n| (key(*n).address(), 1_000_000))
            .collect(),
        block_time_ms: 20,
        env: vec![("SLUICE_NODE_MEMPOOL_MAX_NONCE_GAP", "100000".into())],
        ..Opts::default()
    });
    let mut confirmed: Vec<TxInfo> = Vec::new();
    // Several crash points, each at a different moment of the block cycle.
    for (cycle, extra_ms) in [0u64, 7, 13].into_iter().enumerate() {
        let mut nonces = Vec::new();
        for n in &senders {
            nonces.push(node.account(&key(*n).address()).await.nonce);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let submitted: Arc<std::sync::Mutex<Vec<Hash32>>> = Arc::default();
        let loader = spawn_load(
            node.addr.clone(),
            senders.clone(),
            nonces,
            stop.clone(),
            submitted.clone(),
        );
        let start = node.height().await;
        node.wait_height(start + 10).await;
        let ids: Vec<Hash32> = submitted.lock().expect("lock").clone();
        for id in ids.iter().step_by(11) {
            if let Some(info) = node.ok::<Option<TxInfo>>("tx", json!({"id": id})).await {
                confirmed.push(info);
            }
        }
        let seen_height = node.height().await;
        tokio::time::sleep(Duration::from_millis(extra_ms)).await;
        node.kill9();
        stop.store(true, Ordering::Relaxed);
        let _ = loader.await;

        // Offline check: every block re-executes to its state root; the stored state equals
        // the replay; supply is conserved.
        let report = node.verify();
        let height = report["height"].as_u64().expect("height");
        assert!(
            height >= seen_height,
            "cycle {cycle}: lost blocks: {height} < {seen_height}"
        );
        assert_eq!(report["supply"].as_u64(), Some(24 * 1_000_000));

        // Back up: everything reported included is still there, at the same place.
        node.relaunch();
        assert_eq!(node.height().await, height);
        for info in &confirmed {
            let again: Option<TxInfo> = node.ok("tx", json!({"id": info.id})).await;
            assert_eq!(again.as_ref(), Some(info));
        }
    }
    assert!(!confirmed.is_empty());
    let k = key(1);
    let nonce = node.account(&k.address()).await.nonce;
    assert!(
        node.exec(&transfer(&k, nonce, key(2).address(), 1, 1))
            .await
            .receipt
            .success
    );
    node.stop();
    node.verify();
}
