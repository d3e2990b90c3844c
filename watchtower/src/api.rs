//! The HTTP API (warp). JSON bodies, bounded by `max_body`; errors are `TowerError` JSON with a
//! matching status. `GET /appointments` and `DELETE /appointments/{channel_id}` carry their
//! `UserAuth` as JSON in the `X-Sluice-Auth` header (actions `list` with an all-zero body digest,
//! and `delete` with the channel id as body digest).
//!
//! - `POST /register` (`RegisterRequest`) → `Registered`
//! - `POST /appointments` (`AppointmentRequest`) → `Receipt`
//! - `GET /appointments` → `[AppointmentSummary]`
//! - `DELETE /appointments/{channel_id}` → `{"deleted": channel_id}`
//! - `GET /health` → `Health`; `GET /metrics` → Prometheus text
//!
//! Registrations and appointment submissions are rate-limited per source IP address
//! ([`ApiLimits`]); a request over its limit is answered 429 `rate_limited` before its body is
//! parsed or any signature checked.

use crate::config::Config;
use crate::error::ApiError;
use crate::tower::Tower;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_listener::Peer;
use sluice_protocol::wire::tower::UserAuth;
use sluice_protocol::Hash32;
use std::convert::Infallible;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

pub const AUTH_HEADER: &str = "x-sluice-auth";

/// The limits and who is asking, handed to a limited route.
type Gate = (Arc<ApiLimits>, Option<Peer>);

/// How often sources whose allowance has refilled are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// One per-source limit: a rate per second and the burst above it.
struct SourceLimit {
    /// Named in the refusal: `registration` or `appointment`.
    what: &'static str,
    per_sec: u32,
    burst: u32,
    keyed: DefaultKeyedRateLimiter<IpAddr>,
}

impl SourceLimit {
    /// Zero is refused by the config's validation; here it is taken as one rather than panic.
    fn new(what: &'static str, per_sec: u32, burst: u32) -> Self {
        let nz = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(nz(per_sec)).allow_burst(nz(burst));
        SourceLimit {
            what,
            per_sec,
            burst,
            keyed: DefaultKeyedRateLimiter::keyed(quota),
        }
    }

    fn check(&self, ip: IpAddr, clock: &DefaultClock) -> Result<(), ApiError> {
        self.keyed.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(clock.now());
            ApiError::RateLimited {
                what: self.what,
                per_sec: self.per_sec,
                burst: self.burst,
                retry_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
            }
        })
    }

    fn prune(&self) {
        self.keyed.retain_recent();
        self.keyed.shrink_to_fit();
    }
}

/// Per-source request-rate limits (ATTACKS F20): the listener caps how many connections a host
/// holds, these cap how many registrations and appointments it can make the tower verify and
/// store. A source is remembered only while its allowance is not full again, and forgotten at
/// the next prune after that (at most every [`PRUNE_EVERY`], done by the requests themselves),
/// so a flood of addresses costs memory for the last few seconds of them only.
pub struct ApiLimits {
    register: SourceLimit,
    submit: SourceLimit,
    clock: DefaultClock,
    last_prune: Mutex<Instant>,
}

/// Which limit a request is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Register,
    Submit,
}

impl ApiLimits {
    pub fn new(cfg: &Config) -> Self {
        ApiLimits {
            register: SourceLimit::new(
                "registration",
                cfg.register_rate_per_source,
                cfg.register_burst_per_source,
            ),
            submit: SourceLimit::new(
                "appointment",
                cfg.submit_rate_per_source,
                cfg.submit_burst_per_source,
            ),
            clock: DefaultClock::default(),
            last_prune: Mutex::new(Instant::now()),
        }
    }

    /// Takes one request's place under `which` limit for the peer's address. A request whose
    /// peer is unknown (not served through the listener) is not limited.
    pub fn check(&self, which: Limited, peer: Option<Peer>) -> Result<(), ApiError> {
        self.maybe_prune();
        let Some(peer) = peer else { return Ok(()) };
        let limit = match which {
            Limited::Register => &self.register,
            Limited::Submit => &self.submit,
        };
        limit.check(peer.addr.ip(), &self.clock)
    }

    /// Sources remembered, both limits together.
    pub fn sources(&self) -> usize {
        self.register.keyed.len() + self.submit.keyed.len()
    }

    /// Forgets every source whose allowance has refilled (it behaves as a new one would).
    pub fn prune(&self) {
        self.register.prune();
        self.submit.prune();
    }

    /// Prunes if the last prune is [`PRUNE_EVERY`] old; a request that finds another one
    /// pruning goes on without waiting.
    fn maybe_prune(&self) {
        let Ok(mut last) = self.last_prune.try_lock() else {
            return;
        };
        if last.elapsed() >= PRUNE_EVERY {
            *last = Instant::now();
            self.prune();
        }
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Malformed(e.to_string()))
}

fn auth(header: Option<String>) -> Result<UserAuth, ApiError> {
    let header = header.ok_or(ApiError::MissingAuth)?;
    serde_json::from_str(&header).map_err(|e| ApiError::Malformed(format!("auth header: {e}")))
}

fn error_reply(e: &ApiError) -> Response {
    let reply = warp::reply::with_status(warp::reply::json(&e.body()), e.status());
    match e.retry_after_secs() {
        Some(secs) => {
            warp::reply::with_header(reply, "retry-after", secs.to_string()).into_response()
        }
        None => reply.into_response(),
    }
}

fn respond<T: Serialize>(tower: &Tower, r: Result<T, ApiError>) -> Response {
    match r {
        Ok(v) => warp::reply::json(&v).into_response(),
        Err(e) => {
            tower.metrics.refused.with_label_values(&[e.code()]).inc();
            tracing::debug!(code = e.code(), error = %e, "request refused");
            error_reply(&e)
        }
    }
}

/// All routes, with warp's own rejections turned into `TowerError` JSON.
pub fn routes(
    tower: Arc<Tower>,
    max_body: u64,
    limits: Arc<ApiLimits>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let t = warp::any().map(move || tower.clone());
    let body = warp::body::content_length_limit(max_body).and(warp::body::bytes());
    let header = warp::header::optional::<String>(AUTH_HEADER);
    // The listener tells who is asking.
    let gate = warp::ext::optional::<Peer>().map(move |peer| (limits.clone(), peer));

    let register = warp::path!("register")
        .and(warp::post())
        .and(t.clone())
        .and(gate.clone())
        .and(body)
        .then(
            |t: Arc<Tower>, (l, peer): Gate, b: warp::hyper::body::Bytes| async move {
                let r = async {
                    l.check(Limited::Register, peer)?;
                    t.register(parse(&b)?).await
                }
                .await;
                respond(&t, r)
            },
        );
    let submit = warp::path!("appointments")
        .and(warp::post())
        .and(t.clone())
        .and(gate)
        .and(body)
        .then(
            |t: Arc<Tower>, (l, peer): Gate, b: warp::hyper::body::Bytes| async move {
                let r = async {
                    l.check(Limited::Submit, peer)?;
                    t.submit(parse(&b)?).await
                }
                .await;
                respond(&t, r)
            },
        );
    let list = warp::path!("appointments")
        .and(warp::get())
        .and(t.clone())
        .and(header)
        .then(|t: Arc<Tower>, h: Option<String>| async move {
            let r = async { t.list(auth(h)?).await }.await;
            respond(&t, r)
        });
    let delete = warp::path!("appointments" / String)
        .and(warp::delete())
        .and(t.clone())
        .and(header)
        .then(|id: String, t: Arc<Tower>, h: Option<String>| async move {
            let r = async {
                let channel_id: Hash32 = id
                    .parse()
                    .map_err(|_| ApiError::Malformed(format!("channel id {id:?}")))?;
                t.delete(auth(h)?, channel_id).await?;
                Ok(serde_json::json!({ "deleted": channel_id }))
            }
            .await;
            respond(&t, r)
        });
    let health =
        warp::path!("health")
            .and(warp::get())
            .and(t.clone())
            .then(|t: Arc<Tower>| async move {
                match t.health().await {
                    Ok(h) => {
                        let status = match h.ok {
                            true => StatusCode::OK,
                            false => StatusCode::SERVICE_UNAVAILABLE,
                        };
                        warp::reply::with_status(warp::reply::json(&h), status).into_response()
                    }
                    r => respond(&t, r),
                }
            });
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(t)
        .map(|t: Arc<Tower>| t.metrics.render().into_response());

    register
        .or(submit)
        .unify()
        .or(list)
        .unify()
        .or(delete)
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .recover(move |r: Rejection| rejection(r, max_body))
        .unify()
}

async fn rejection(r: Rejection, max_body: u64) -> Result<Response, Infallible> {
    use warp::reject::{LengthRequired, MethodNotAllowed, PayloadTooLarge};
    let e = if r.find::<PayloadTooLarge>().is_some() {
        ApiError::TooLarge(max_body)
    } else if r.find::<LengthRequired>().is_some() {
        ApiError::LengthRequired
    } else if r.find::<MethodNotAllowed>().is_some() {
        return Ok(status_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ));
    } else if r.is_not_found() {
        ApiError::NotFound
    } else {
        ApiError::Malformed(format!("{r:?}"))
    };
    Ok(error_reply(&e))
}

fn status_error(status: StatusCode, code: &str) -> Response {
    let body = sluice_protocol::wire::tower::TowerError {
        code: code.into(),
        message: status.canonical_reason().unwrap_or("error").into(),
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn peer(ip: [u8; 4]) -> Option<Peer> {
        Some(Peer {
            addr: SocketAddr::from((ip, 1000)),
            connection: 1,
        })
    }

    fn limits(register: (u32, u32), submit: (u32, u32)) -> ApiLimits {
        ApiLimits::new(&Config {
            register_rate_per_source: register.0,
            register_burst_per_source: register.1,
            submit_rate_per_source: submit.0,
            submit_burst_per_source: submit.1,
            ..Config::default()
        })
    }

    #[test]
    fn each_limit_is_per_source_and_names_itself() {
        let l = limits((1, 2), (1, 3));
        for _ in 0..2 {
            assert!(l.check(Limited::Register, peer([10, 0, 0, 1])).is_ok());
        }
        let e = l.check(Limited::Register, peer([10, 0, 0, 1])).unwrap_err();
        assert_eq!(
            (e.code(), e.status()),
            ("rate_limited", StatusCode::TOO_MANY_REQUESTS)
        );
        assert!(e.to_string().contains("registration"), "{e}");
        assert!(e.retry_after_secs().is_some());
        assert!(
            l.check(Limited::Register, peer([10, 0, 0, 2])).is_ok(),
            "another source"
        );
        assert!(
            l.check(Limited::Submit, peer([10, 0, 0, 1])).is_ok(),
            "another limit"
        );
        assert!(
            l.check(Limited::Register, None).is_ok(),
            "unknown peers are not limited"
        );
    }

    #[test]
    fn sources_whose_allowance_refilled_are_forgotten() {
        // A burst of one at a thousand a second refills within a millisecond.
        let l = limits((1_000, 1), (1_000, 1));
        for i in 0..=255 {
            let _ = l.check(Limited::Register, peer([10, 0, 1, i]));
        }
        assert_eq!(l.sources(), 256);
        std::thread::sleep(Duration::from_millis(20));
        l.prune();
        assert_eq!(l.sources(), 0);
    }
}
