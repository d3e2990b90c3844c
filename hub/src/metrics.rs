//! Prometheus metrics, served as text on `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub sessions: IntGauge,
    pub connections: IntGauge,
    /// Channel updates by outcome (`accepted`, `rejected`, `committed`, `conflict`), and
    /// `reserved_with_update`: hub proposals reserved in the commit of a client's update.
    pub updates: IntCounterVec,
    /// Payments reaching a final or notable status.
    pub payments: IntCounterVec,
    pub payment_seconds: Histogram,
    /// Frames refused (`malformed`, `too_large`, `rate_limited`, ...).
    pub refused: IntCounterVec,
    pub chain_height: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("sluice_hub".into()), None)?;
        let m = Metrics {
            sessions: IntGauge::new("sessions", "authenticated client sessions")?,
            connections: IntGauge::new("connections", "open WebSocket connections")?,
            updates: IntCounterVec::new(
                Opts::new("updates_total", "channel updates"),
                &["result"],
            )?,
            payments: IntCounterVec::new(
                Opts::new("payments_total", "routed payments by status"),
                &["status"],
            )?,
            payment_seconds: Histogram::with_opts(
                HistogramOpts::new("payment_seconds", "time from payer lock to completion")
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                    ]),
            )?,
            refused: IntCounterVec::new(Opts::new("refused_total", "refused frames"), &["why"])?,
            chain_height: IntGauge::new("chain_height", "last chain height seen")?,
            registry,
        };
        m.registry.register(Box::new(m.sessions.clone()))?;
        m.registry.register(Box::new(m.connections.clone()))?;
        m.registry.register(Box::new(m.updates.clone()))?;
        m.registry.register(Box::new(m.payments.clone()))?;
        m.registry.register(Box::new(m.payment_seconds.clone()))?;
        m.registry.register(Box::new(m.refused.clone()))?;
        m.registry.register(Box::new(m.chain_height.clone()))?;
        Ok(m)
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
