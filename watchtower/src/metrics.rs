//! Prometheus counters and gauges, served as text at `/metrics`.

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// Requests refused, by error code.
    pub refused: IntCounterVec,
    pub appointments_accepted: IntCounter,
    pub registrations: IntCounter,
    pub challenges_submitted: IntCounter,
    /// Appointment rows the store could not read back, set aside so the monitor goes on.
    pub quarantined: IntCounter,
    /// Responses left for the next sweep because every follower was busy.
    pub responses_deferred: IntCounter,
    /// Responses finished, by outcome.
    pub responses: IntCounterVec,
    pub tip_height: IntGauge,
    pub processed_height: IntGauge,
    /// Balance of the account challenge fees are paid from, in base units (as of the last tip).
    pub wallet_balance: IntGauge,
}

/// Sets a gauge of base units, saturating at the gauge's range.
pub fn set_units(gauge: &IntGauge, units: impl TryInto<i64>) {
    gauge.set(units.try_into().unwrap_or(i64::MAX));
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("sluice_tower".into()), None)?;
        let refused = IntCounterVec::new(
            Opts::new(
                "requests_refused_total",
                "API requests refused, by error code",
            ),
            &["code"],
        )?;
        let responses = IntCounterVec::new(
            Opts::new(
                "responses_total",
                "Challenge responses finished, by outcome",
            ),
            &["outcome"],
        )?;
        let counter = |name: &str, help: &str| IntCounter::new(name, help);
        sluice_listener::register_build_info(&registry)?;
        let m = Metrics {
            appointments_accepted: counter("appointments_accepted_total", "Appointments stored")?,
            registrations: counter("registrations_total", "Registration requests accepted")?,
            challenges_submitted: counter("challenges_submitted_total", "Challenge txs sent")?,
            quarantined: counter(
                "appointments_quarantined_total",
                "Unreadable appointment rows set aside",
            )?,
            responses_deferred: counter(
                "responses_deferred_total",
                "Responses waiting for a free follower",
            )?,
            tip_height: IntGauge::new("chain_tip_height", "Chain tip as last seen")?,
            processed_height: IntGauge::new("processed_height", "Last fully processed height")?,
            wallet_balance: IntGauge::new(
                "wallet_balance_units",
                "Balance of the challenge fee account, in base units",
            )?,
            refused,
            responses,
            registry,
        };
        m.registry.register(Box::new(m.refused.clone()))?;
        m.registry.register(Box::new(m.responses.clone()))?;
        for c in [
            &m.appointments_accepted,
            &m.registrations,
            &m.challenges_submitted,
            &m.quarantined,
            &m.responses_deferred,
        ] {
            m.registry.register(Box::new(c.clone()))?;
        }
        for g in [&m.tip_height, &m.processed_height, &m.wallet_balance] {
            m.registry.register(Box::new(g.clone()))?;
        }
        Ok(m)
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
