//! Starting a hub: store, key, chain connection, the session listener (`/ws` only), the admin
//! listener (`/api/v1`, `/metrics`, behind the admin token) and the chain tasks.

use crate::config::{HubConfig, ADDR_FILE, ADMIN_ADDR_FILE};
use crate::metrics::Metrics;
use crate::payments::{handoff, recovery};
use crate::shared::Shared;
use crate::store::{Store, StoreError};
use crate::{admin, chain, keyfile, session};
use sluice_chain_client::{ChainClient, TxSender};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;
use warp::Filter;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Key(#[from] keyfile::KeyFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot reach the chain node: {0}")]
    Chain(#[from] sluice_chain_client::ClientError),
    #[error("bad listen address {0:?}")]
    Listen(String),
    #[error("cannot bind or record the listen address: {0}")]
    Io(#[from] std::io::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    AdminToken(#[from] admin::token::TokenError),
    #[error(transparent)]
    Tls(#[from] sluice_listener::TlsError),
}

/// A running hub; dropping it does not stop it, [`Hub::shutdown`] does.
pub struct Hub {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub shared: Arc<Shared>,
    stop: Option<watch::Sender<bool>>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Hub {
    /// Starts a hub from `cfg` with its files under `home`; writes `home/hub.addr` once listening.
    pub async fn start(home: &Path, cfg: HubConfig) -> Result<Hub, StartError> {
        cfg.validate()?;
        let tls = cfg.tls.as_ref().map(|t| t.load(home)).transpose()?;
        let key = keyfile::load(&cfg.key_path(home))?;
        let store = Store::connect(&cfg.store_url(home), cfg.store_max_connections).await?;
        let (chain_id, sender) = match cfg.chain_rpc.is_empty() {
            true => (cfg.chain_id, None),
            false => {
                let client = ChainClient::new(&cfg.chain_rpc);
                let info = client.chain_info().await?;
                let sender = TxSender::new(client, key.clone(), info.chain_id, cfg.tx_fee);
                (info.chain_id, Some(Arc::new(sender)))
            }
        };
        let listen = parse_listen(&cfg.listen)?;
        let admin_listen = parse_listen(&cfg.admin_listen)?;
        let token = admin::token::load_or_create(&cfg.admin_token_path(home))?;
        let sh = Arc::new(Shared::new(
            key,
            chain_id,
            cfg,
            store,
            Metrics::new()?,
            sender,
        ));
        let (stop, stopped) = watch::channel(false);
        let listener = listen_nodelay(listen)?;
        let addr = listener.local_addr()?;
        let admin_listener = tokio::net::TcpListener::bind(admin_listen).await?;
        let admin_addr = admin_listener.local_addr()?;
        let servers = vec![
            tokio::spawn(sluice_listener::serve_tls(
                routes(sh.clone()),
                listener,
                sh.cfg.listener,
                tls.clone(),
                until(stopped.clone()),
            )),
            tokio::spawn(sluice_listener::serve_recovered_tls(
                admin::routes(sh.clone(), token),
                admin_listener,
                sh.cfg.listener,
                tls.clone(),
                until(stopped),
            )),
        ];
        if sh.chain.is_some() {
            chain::spawn(sh.clone());
        }
        tokio::spawn(recovery::run(sh.clone()));
        tokio::spawn(handoff::run(sh.clone()));
        std::fs::write(home.join(ADMIN_ADDR_FILE), admin_addr.to_string())?;
        std::fs::write(home.join(ADDR_FILE), addr.to_string())?;
        tracing::info!(%addr, %admin_addr, hub = %sh.address(), chain_id, store = sh.store.kind(), tls = tls.is_some(), "hub listening");
        Ok(Hub {
            addr,
            admin_addr,
            shared: sh,
            stop: Some(stop),
            servers,
        })
    }

    /// Stops as an operator asks (SIGTERM): no new session or payment, the updates and payments
    /// under way finish (within `limits.drain_timeout_ms`), then sessions end and the hub stops.
    pub async fn drain(self) {
        if let Some(s) = &self.stop {
            let _ = s.send(true);
        }
        let bound = std::time::Duration::from_millis(self.shared.cfg.limits.drain_timeout_ms);
        let left = self.shared.work.drain(bound).await;
        match left {
            0 => tracing::info!("drained: no update under way"),
            n => tracing::warn!(
                left = n,
                "drain timed out; what is left resumes at the next start"
            ),
        }
        self.shared.sessions.end_all();
        if let Err(e) = self
            .shared
            .store
            .process_stopped(&self.shared.process)
            .await
        {
            tracing::warn!(error = %e, "cannot withdraw this process's sessions from the store");
        }
        self.shutdown().await;
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        for server in self.servers.drain(..) {
            server.abort();
            let _ = server.await;
        }
        self.shared.store.close().await;
    }
}

fn parse_listen(addr: &str) -> Result<SocketAddr, StartError> {
    addr.parse().map_err(|_| StartError::Listen(addr.into()))
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn until(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Binds the client listener with Nagle's algorithm off. warp takes a plain `TcpListener` and
/// leaves accepted sockets as they come; Linux hands each accepted socket the listener's
/// `TCP_NODELAY`. Without it a small frame written while the previous one is unacknowledged
/// waits for the client's delayed ACK (~40 ms), and every hub reply is a small frame.
fn listen_nodelay(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The session listener serves `/ws` and nothing else.
fn routes(
    sh: Arc<Shared>,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    warp::path("ws")
        .and(warp::path::end())
        .and(warp::ws())
        .map(move |ws: warp::ws::Ws| {
            let sh = sh.clone();
            ws.max_message_size(session::HARD_FRAME_LIMIT)
                .max_frame_size(session::HARD_FRAME_LIMIT)
                .on_upgrade(move |socket| session::run(socket, sh))
        })
}
