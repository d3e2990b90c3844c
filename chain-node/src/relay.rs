//! Mempool gossip: every transaction this node newly admits is forwarded, in batches, to the
//! JSON-RPC `submit_txs` of the configured peers, so a transaction sent to any node (a full
//! node included) reaches every proposer's mempool. A peer that already holds a transaction
//! rejects the duplicate and does not forward it again, so relaying ends after one hop.

use serde_json::json;
use sluice_protocol::hex;
use sluice_protocol::rpc::method;
use std::time::Duration;
use tokio::sync::mpsc;

/// Batches queued for relay before new ones are dropped (the origin node still holds them).
pub const RELAY_QUEUE: usize = 1024;

/// Forwards admitted transactions until the sender side closes.
pub async fn run(peers: Vec<String>, batch: usize, mut rx: mpsc::Receiver<Vec<Vec<u8>>>) {
    let tls = sluice_home::tls::default_client_config();
    let http = match sluice_home::tls::http_client_builder(tls)
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "relay disabled: no HTTP client");
            return;
        }
    };
    while let Some(first) = rx.recv().await {
        let mut txs = first;
        // Coalesce what is already queued into one request per peer.
        while txs.len() < batch {
            match rx.try_recv() {
                Ok(more) => txs.extend(more),
                Err(_) => break,
            }
        }
        for chunk in txs.chunks(batch.max(1)) {
            let body = json!({
                "jsonrpc": "2.0",
                "id": 1,
                "method": method::SUBMIT_TXS,
                "params": { "txs": chunk.iter().map(|t| hex::encode(t)).collect::<Vec<_>>() },
            });
            let sends = peers.iter().map(|p| {
                let req = http.post(p).json(&body);
                async move {
                    if let Err(e) = req.send().await {
                        tracing::debug!(peer = %p, error = %e, "relay to peer failed");
                    }
                }
            });
            futures::future::join_all(sends).await;
        }
    }
}
