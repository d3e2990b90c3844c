//! Prometheus text metrics, kept as plain atomics (no registry crate needed for a handful).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Metrics {
    pub height: AtomicU64,
    pub blocks: AtomicU64,
    pub txs_included: AtomicU64,
    pub txs_failed: AtomicU64,
    pub txs_skipped: AtomicU64,
    pub txs_admitted: AtomicU64,
    pub txs_rejected: AtomicU64,
    pub mempool_size: AtomicU64,
    pub last_block_ms: AtomicU64,
    pub rpc_requests: AtomicU64,
    pub rpc_errors: AtomicU64,
    pub ws_connections: AtomicU64,
    pub subscriptions: AtomicU64,
    pub subscribers_dropped: AtomicU64,
}

impl Metrics {
    pub fn inc(c: &AtomicU64, by: u64) {
        c.fetch_add(by, Relaxed);
    }

    /// The exposition text for `GET /metrics`.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 14] = [
            (
                "sluice_node_height",
                "gauge",
                "Height of the last committed block.",
                &self.height,
            ),
            (
                "sluice_node_blocks_total",
                "counter",
                "Blocks committed since start.",
                &self.blocks,
            ),
            (
                "sluice_node_txs_included_total",
                "counter",
                "Transactions included in blocks.",
                &self.txs_included,
            ),
            (
                "sluice_node_txs_failed_total",
                "counter",
                "Included transactions with a failure receipt.",
                &self.txs_failed,
            ),
            (
                "sluice_node_txs_skipped_total",
                "counter",
                "Selected transactions left out as not includable.",
                &self.txs_skipped,
            ),
            (
                "sluice_node_txs_admitted_total",
                "counter",
                "Transactions admitted to the mempool.",
                &self.txs_admitted,
            ),
            (
                "sluice_node_txs_rejected_total",
                "counter",
                "Transactions refused by the mempool.",
                &self.txs_rejected,
            ),
            (
                "sluice_node_mempool_size",
                "gauge",
                "Pending transactions.",
                &self.mempool_size,
            ),
            (
                "sluice_node_last_block_milliseconds",
                "gauge",
                "Time to build and durably commit the last block.",
                &self.last_block_ms,
            ),
            (
                "sluice_node_rpc_requests_total",
                "counter",
                "JSON-RPC calls handled.",
                &self.rpc_requests,
            ),
            (
                "sluice_node_rpc_errors_total",
                "counter",
                "JSON-RPC calls answered with an error.",
                &self.rpc_errors,
            ),
            (
                "sluice_node_ws_connections",
                "gauge",
                "Open WebSocket connections.",
                &self.ws_connections,
            ),
            (
                "sluice_node_subscriptions",
                "gauge",
                "Active subscriptions.",
                &self.subscriptions,
            ),
            (
                "sluice_node_subscribers_dropped_total",
                "counter",
                "Subscribers dropped for falling behind.",
                &self.subscribers_dropped,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Relaxed)
            );
        }
        out
    }
}
