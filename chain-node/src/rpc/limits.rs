//! Request-rate limits on JSON-RPC calls, per source IP address and per connection (governor's
//! GCRA: a steady rate with a burst above it).
//!
//! The listener's connection caps bound how many sockets a host holds open, not how much work
//! it asks for over them: without a rate one host could keep the node busy answering `events`
//! or `account` calls while the hub and towers wait. Every call counts, each entry of a batch and
//! every notification included, whether or not it turns out valid; a call over a limit is not
//! executed and is answered with [`code::RATE_LIMITED`].
//!
//! State is kept per key only while it differs from a fresh key's (a key whose allowance has
//! refilled is dropped by [`RateLimits::prune_forever`]), so a flood of sources or connections
//! costs memory for the last few seconds of them only.

use crate::config::NodeConfig;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde_json::Value;
use sluice_listener::Peer;
use sluice_protocol::rpc::{code, RpcError};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// How often idle keys are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// A rate and the burst above it, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_sec: u32,
    pub burst: u32,
}

impl Rate {
    /// Zero is refused by the config's validation; here it is taken as one rather than panic.
    fn quota(self) -> Quota {
        let nz = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(nz(self.per_sec)).allow_burst(nz(self.burst))
    }
}

/// Which limit refused a call, and when the caller may try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimited {
    #[error(
        "rate limit exceeded: at most {} calls per second (burst {}) per source address; retry in {retry_ms} ms",
        .rate.per_sec,
        .rate.burst
    )]
    Source { rate: Rate, retry_ms: u64 },
    #[error(
        "rate limit exceeded: at most {} calls per second (burst {}) per connection; retry in {retry_ms} ms",
        .rate.per_sec,
        .rate.burst
    )]
    Connection { rate: Rate, retry_ms: u64 },
}

impl RateLimited {
    pub fn code(&self) -> i64 {
        code::RATE_LIMITED
    }

    pub fn rpc_error(&self) -> RpcError {
        RpcError {
            code: self.code(),
            message: self.to_string(),
        }
    }

    /// The answer to a refused call with this `id`; none for a notification, which gets no
    /// answer whatever happens to it.
    pub fn reply(&self, id: Option<Value>) -> Option<Value> {
        id.map(|id| super::jsonrpc::err_response(id, &self.rpc_error()))
    }
}

/// Who is calling, as the limiters see it: one per HTTP request or WebSocket connection.
#[derive(Clone)]
pub struct Caller {
    pub limits: Arc<RateLimits>,
    /// Set by the listener on every request; `None` only when served some other way.
    pub peer: Option<Peer>,
}

impl Caller {
    /// Takes the place of one call (see [`RateLimits::admit`]).
    pub fn admit(&self) -> Result<(), RateLimited> {
        self.limits.admit(self.peer.as_ref())
    }
}

/// The node's limiters, shared by every HTTP request and WebSocket connection.
pub struct RateLimits {
    per_source: DefaultKeyedRateLimiter<IpAddr>,
    /// Keyed by the listener's connection id, which a WebSocket shares with its upgrade request.
    per_connection: DefaultKeyedRateLimiter<u64>,
    source: Rate,
    connection: Rate,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(source: Rate, connection: Rate) -> Self {
        RateLimits {
            per_source: DefaultKeyedRateLimiter::keyed(source.quota()),
            per_connection: DefaultKeyedRateLimiter::keyed(connection.quota()),
            source,
            connection,
            clock: DefaultClock::default(),
        }
    }

    pub fn from_config(cfg: &NodeConfig) -> Self {
        Self::new(
            Rate {
                per_sec: cfg.rpc_rate_per_source,
                burst: cfg.rpc_burst_per_source,
            },
            Rate {
                per_sec: cfg.rpc_rate_per_connection,
                burst: cfg.rpc_burst_per_connection,
            },
        )
    }

    /// Takes one call's place under both limits, or says which one refused it. A request whose
    /// peer is unknown (not served through the listener) is not limited.
    pub fn admit(&self, peer: Option<&Peer>) -> Result<(), RateLimited> {
        let Some(peer) = peer else { return Ok(()) };
        let retry_ms = |not_until: governor::NotUntil<_>| {
            let wait = not_until.wait_time_from(self.clock.now());
            u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)
        };
        self.per_connection
            .check_key(&peer.connection)
            .map_err(|n| RateLimited::Connection {
                rate: self.connection,
                retry_ms: retry_ms(n),
            })?;
        self.per_source
            .check_key(&peer.addr.ip())
            .map_err(|n| RateLimited::Source {
                rate: self.source,
                retry_ms: retry_ms(n),
            })
    }

    /// Drops every key whose allowance has refilled: it behaves as a fresh key would.
    pub fn prune(&self) {
        self.per_source.retain_recent();
        self.per_source.shrink_to_fit();
        self.per_connection.retain_recent();
        self.per_connection.shrink_to_fit();
    }

    /// Keys held, sources and connections together (for tests and logs).
    pub fn keys(&self) -> usize {
        self.per_source.len() + self.per_connection.len()
    }

    /// Prunes every [`PRUNE_EVERY`] until the task is aborted.
    pub async fn prune_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.prune();
            tracing::trace!(keys = self.keys(), "rate limiter pruned");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn peer(ip: [u8; 4], connection: u64) -> Peer {
        Peer {
            addr: SocketAddr::from((ip, 1000)),
            connection,
        }
    }

    #[test]
    fn each_limit_refuses_past_its_burst_and_names_itself() {
        let limits = RateLimits::new(
            Rate {
                per_sec: 1,
                burst: 3,
            },
            Rate {
                per_sec: 1,
                burst: 2,
            },
        );
        let (a1, a2, b) = (
            peer([10, 0, 0, 1], 1),
            peer([10, 0, 0, 1], 2),
            peer([10, 0, 0, 2], 3),
        );
        assert!(limits.admit(Some(&a1)).is_ok());
        assert!(limits.admit(Some(&a1)).is_ok());
        let e = limits.admit(Some(&a1)).unwrap_err();
        assert!(matches!(e, RateLimited::Connection { .. }), "{e}");
        assert!(e.to_string().contains("per connection"), "{e}");
        assert!(limits.admit(Some(&a2)).is_ok(), "another connection");
        let e = limits.admit(Some(&a2)).unwrap_err();
        assert!(matches!(e, RateLimited::Source { .. }), "{e}");
        assert_eq!(e.code(), code::RATE_LIMITED);
        assert!(limits.admit(Some(&b)).is_ok(), "another source");
        assert!(limits.admit(None).is_ok(), "unknown peers are not limited");
        assert_eq!(e.reply(None), None, "a notification gets no answer");
        assert!(e.reply(Some(Value::from(7))).is_some());
    }

    #[test]
    fn keys_whose_allowance_refilled_are_dropped() {
        // A burst of one at a thousand a second refills within a millisecond.
        let fast = Rate {
            per_sec: 1_000,
            burst: 1,
        };
        let limits = RateLimits::new(fast, fast);
        for i in 0..=255u8 {
            let _ = limits.admit(Some(&peer([10, 0, 1, i], u64::from(i))));
        }
        assert_eq!(limits.keys(), 512);
        std::thread::sleep(Duration::from_millis(20));
        limits.prune();
        assert_eq!(limits.keys(), 0);
    }
}
