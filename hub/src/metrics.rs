//! Prometheus metrics, served as text on `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
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
    /// The hub's on-chain account balance, in base units, as of the last guard round.
    pub wallet_balance: IntGauge,
    /// By channel phase (`open`, `closing`): channels, the hub's side and the clients' side of
    /// their latest co-signed states, in base units (refreshed when metrics are read).
    pub channels: IntGaugeVec,
    pub collateral: IntGaugeVec,
    pub client_balance: IntGaugeVec,
    /// Routing fees (what the payer locked above what the payee received) of the payments this
    /// process completed, in base units.
    pub fees_earned: IntCounter,
}

/// Sets a gauge of base units or counts, saturating at the gauge's range.
pub fn set_saturating(gauge: &IntGauge, v: impl TryInto<i64>) {
    gauge.set(v.try_into().unwrap_or(i64::MAX));
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("sluice_hub".into()), None)?;
        sluice_listener::register_build_info(&registry)?;
        let by_phase = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["phase"]);
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
            wallet_balance: IntGauge::new(
                "wallet_balance_units",
                "the hub's on-chain account balance, in base units",
            )?,
            channels: by_phase("channels", "channels by phase")?,
            collateral: by_phase(
                "collateral_units",
                "the hub's side of its channels by phase, in base units",
            )?,
            client_balance: by_phase(
                "client_balance_units",
                "the clients' side of the hub's channels by phase, in base units",
            )?,
            fees_earned: IntCounter::new(
                "fees_earned_units_total",
                "routing fees of completed payments, in base units",
            )?,
            registry,
        };
        m.registry.register(Box::new(m.sessions.clone()))?;
        m.registry.register(Box::new(m.connections.clone()))?;
        m.registry.register(Box::new(m.updates.clone()))?;
        m.registry.register(Box::new(m.payments.clone()))?;
        m.registry.register(Box::new(m.payment_seconds.clone()))?;
        m.registry.register(Box::new(m.refused.clone()))?;
        m.registry.register(Box::new(m.chain_height.clone()))?;
        m.registry.register(Box::new(m.wallet_balance.clone()))?;
        m.registry.register(Box::new(m.channels.clone()))?;
        m.registry.register(Box::new(m.collateral.clone()))?;
        m.registry.register(Box::new(m.client_balance.clone()))?;
        m.registry.register(Box::new(m.fees_earned.clone()))?;
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
