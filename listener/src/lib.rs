//! Serving a warp filter on a TCP listener that survives idle and half-sent connections
//! (ATTACKS F20). warp's own server waits for a request's headers for ever and takes every
//! connection offered, so a few hundred sockets that send nothing exhaust the process's file
//! descriptors. Here every request's headers must arrive within a deadline (hyper's
//! header-read timeout, which needs a timer warp does not give it), and open connections are
//! capped in total and per source address: past a cap a new connection is closed at once, so
//! the clients already served go on. WebSocket upgrades work as with warp's server.
//!
//! Every request carries a [`Peer`] in its extensions (`warp::ext::get::<Peer>()`): warp's own
//! `addr::remote` is only filled in by warp's server, and per-source or per-connection request
//! limits need to know who is asking.
//!
//! With a [`Tls`] (the `tls` setting, [`TlsFiles`]) every accepted connection is a TLS server
//! connection before hyper sees it, and its handshake must complete within the same header-read
//! deadline: a client that opens a handshake and never finishes it is dropped like one that
//! sends no headers.

mod tls;
pub use tls::{Tls, TlsError, TlsFiles};

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use warp::{Filter, Rejection, Reply};

/// What one listener puts up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerLimits {
    /// Milliseconds a client has to send a request's headers once it starts one (or connects).
    pub header_read_timeout_ms: u64,
    /// Connections open at once, all sources together.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_source: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_read_timeout_ms: 10_000,
            max_connections: 8_192,
            max_connections_per_source: 2_048,
        }
    }
}

/// Who sent a request: the connection's remote address and an id unique among the connections
/// this listener accepted (keep-alive requests on one connection share it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub connection: u64,
}

/// Puts the connection's [`Peer`] into each request before the inner service sees it.
struct WithPeer<S> {
    inner: S,
    peer: Peer,
}

impl<S> Service<Request<Incoming>> for WithPeer<S>
where
    S: Service<Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.peer);
        self.inner.call(req)
    }
}

/// Open connections, in total and per source.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_source: HashMap<IpAddr, usize>,
}

/// A connection's place under the caps, given back when it ends.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

fn locked(m: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Slot {
    /// A slot for a connection from `ip`, if both caps allow one more.
    fn take(counts: &Arc<Mutex<Counts>>, ip: IpAddr, limits: &ListenerLimits) -> Option<Slot> {
        let mut c = locked(counts);
        let here = c.per_source.get(&ip).copied().unwrap_or(0);
        if c.total >= limits.max_connections || here >= limits.max_connections_per_source {
            return None;
        }
        c.total += 1;
        c.per_source.insert(ip, here + 1);
        Some(Slot {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = locked(&self.counts);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_source.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_source.remove(&self.ip);
            }
        }
    }
}

/// Serves `filter` on `listener` under `limits` until `shutdown` resolves; then stops accepting
/// and waits for the connections in flight.
pub async fn serve<F, R>(
    filter: F,
    listener: TcpListener,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()> + Send,
) where
    F: Filter<Extract = (R,), Error = Rejection> + Clone + Send + Sync + 'static,
    R: Reply,
{
    serve_tls(filter, listener, limits, None, shutdown).await
}

/// [`serve`] over TLS when `tls` is given, plain otherwise.
pub async fn serve_tls<F, R>(
    filter: F,
    listener: TcpListener,
    limits: ListenerLimits,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send,
) where
    F: Filter<Extract = (R,), Error = Rejection> + Clone + Send + Sync + 'static,
    R: Reply,
{
    let make = move || TowerToHyperService::new(warp::service(filter.clone()));
    run(make, listener, limits, tls, shutdown).await
}

/// [`serve`] for a filter that recovers every rejection itself.
pub async fn serve_recovered<F, R>(
    filter: F,
    listener: TcpListener,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()> + Send,
) where
    F: Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    R: Reply,
{
    serve_recovered_tls(filter, listener, limits, None, shutdown).await
}

/// [`serve_recovered`] over TLS when `tls` is given, plain otherwise.
pub async fn serve_recovered_tls<F, R>(
    filter: F,
    listener: TcpListener,
    limits: ListenerLimits,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send,
) where
    F: Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    R: Reply,
{
    let make = move || TowerToHyperService::new(warp::service(filter.clone()));
    run(make, listener, limits, tls, shutdown).await
}

async fn run<S, B>(
    make: impl Fn() -> S,
    listener: TcpListener,
    limits: ListenerLimits,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let counts = Arc::new(Mutex::new(Counts::default()));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let header_timeout = Duration::from_millis(limits.header_read_timeout_ms.max(1));
    let mut accepted_count: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = Slot::take(&counts, peer.ip(), &limits) else {
            tracing::debug!(%peer, "connection refused: too many open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        accepted_count += 1;
        let service = WithPeer {
            inner: make(),
            peer: Peer {
                addr: peer,
                connection: accepted_count,
            },
        };
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            // hyper's deadline starts with the first byte (the protocol sniff waits before it):
            // a socket that sends nothing at all is dropped here, and so is one whose TLS
            // handshake has not completed by the same deadline.
            let deadline = tokio::time::Instant::now() + header_timeout;
            let mut first = [0u8; 1];
            match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return drop(slot),
            }
            match tls {
                None => serve_connection(stream, service, header_timeout, watcher, peer).await,
                Some(tls) => {
                    let accepted =
                        tokio::time::timeout_at(deadline, tls.acceptor.accept(stream)).await;
                    match accepted {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, service, header_timeout, watcher, peer).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Serves one accepted connection (plain or TLS) with hyper until it ends.
async fn serve_connection<I, S, B>(
    io: I,
    service: S,
    header_timeout: Duration,
    watcher: hyper_util::server::graceful::Watcher,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// Registers `build_info{version="…"} 1` (under the registry's prefix, e.g.
/// `sluice_hub_build_info`): which build a daemon runs, the same way on every daemon.
pub fn register_build_info(registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
    let info = prometheus::IntGaugeVec::new(
        prometheus::Opts::new("build_info", "The running build; always 1"),
        &["version"],
    )?;
    info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    registry.register(Box::new(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_hold_both_caps_and_come_back() {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let limits = ListenerLimits {
            header_read_timeout_ms: 1,
            max_connections: 3,
            max_connections_per_source: 2,
        };
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let a1 = Slot::take(&counts, a, &limits).unwrap();
        let _a2 = Slot::take(&counts, a, &limits).unwrap();
        assert!(Slot::take(&counts, a, &limits).is_none(), "per source");
        let _b1 = Slot::take(&counts, b, &limits).unwrap();
        assert!(Slot::take(&counts, b, &limits).is_none(), "in total");
        drop(a1);
        assert!(Slot::take(&counts, b, &limits).is_some(), "given back");
    }
}
