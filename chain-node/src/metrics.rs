//! Prometheus metrics, served as text on `/metrics`; every name starts `sluice_node_`.

use prometheus::{Encoder, Gauge, IntCounter, IntGauge, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// Height of the last committed block.
    pub height: IntGauge,
    pub blocks: IntCounter,
    pub txs_included: IntCounter,
    /// Included transactions with a failure receipt.
    pub txs_failed: IntCounter,
    /// Selected transactions left out as not includable.
    pub txs_skipped: IntCounter,
    pub txs_admitted: IntCounter,
    pub txs_rejected: IntCounter,
    /// Pending transactions.
    pub mempool_size: IntGauge,
    /// Time to build (dev producer) or re-check (consensus) and durably commit the last block.
    pub last_block_seconds: Gauge,
    pub rpc_requests: IntCounter,
    pub rpc_errors: IntCounter,
    pub ws_connections: IntGauge,
    pub subscriptions: IntGauge,
    pub subscribers_dropped: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("sluice_node".into()), None)?;
        let counter = |name: &str, help: &str| IntCounter::new(name, help);
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        sluice_listener::register_build_info(&registry)?;
        let m = Metrics {
            height: gauge("height", "Height of the last committed block")?,
            blocks: counter("blocks_total", "Blocks committed since start")?,
            txs_included: counter("txs_included_total", "Transactions included in blocks")?,
            txs_failed: counter(
                "txs_failed_total",
                "Included transactions with a failure receipt",
            )?,
            txs_skipped: counter(
                "txs_skipped_total",
                "Selected transactions left out as not includable",
            )?,
            txs_admitted: counter("txs_admitted_total", "Transactions admitted to the mempool")?,
            txs_rejected: counter("txs_rejected_total", "Transactions refused by the mempool")?,
            mempool_size: gauge("mempool_size", "Pending transactions")?,
            last_block_seconds: Gauge::new(
                "last_block_seconds",
                "Time to build or check and durably commit the last block",
            )?,
            rpc_requests: counter("rpc_requests_total", "JSON-RPC calls handled")?,
            rpc_errors: counter("rpc_errors_total", "JSON-RPC calls answered with an error")?,
            ws_connections: gauge("ws_connections", "Open WebSocket connections")?,
            subscriptions: gauge("subscriptions", "Active subscriptions")?,
            subscribers_dropped: counter(
                "subscribers_dropped_total",
                "Subscribers dropped for falling behind",
            )?,
            registry,
        };
        for c in [
            &m.blocks,
            &m.txs_included,
            &m.txs_failed,
            &m.txs_skipped,
            &m.txs_admitted,
            &m.txs_rejected,
            &m.rpc_requests,
            &m.rpc_errors,
            &m.subscribers_dropped,
        ] {
            m.registry.register(Box::new(c.clone()))?;
        }
        for g in [
            &m.height,
            &m.mempool_size,
            &m.ws_connections,
            &m.subscriptions,
        ] {
            m.registry.register(Box::new(g.clone()))?;
        }
        m.registry
            .register(Box::new(m.last_block_seconds.clone()))?;
        Ok(m)
    }

    /// Counts `n` on `counter` (sizes of batches arrive as `usize` or `u64`).
    pub fn add(counter: &IntCounter, n: impl TryInto<u64>) {
        counter.inc_by(n.try_into().unwrap_or(u64::MAX));
    }

    /// Sets `gauge` to a count or height.
    pub fn set(gauge: &IntGauge, v: impl TryInto<i64>) {
        gauge.set(v.try_into().unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_with_the_build_version() {
        let m = Metrics::new().expect("metrics register");
        Metrics::add(&m.blocks, 2usize);
        Metrics::set(&m.height, 7u64);
        m.last_block_seconds.set(0.25);
        let text = m.render();
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            text.contains(&format!(
                "sluice_node_build_info{{version=\"{version}\"}} 1"
            )),
            "{text}"
        );
        assert!(text.contains("sluice_node_blocks_total 2"), "{text}");
        assert!(text.contains("sluice_node_height 7"), "{text}");
        assert!(
            text.contains("sluice_node_last_block_seconds 0.25"),
            "{text}"
        );
        assert!(
            text.contains("sluice_node_subscribers_dropped_total 0"),
            "{text}"
        );
    }
}
