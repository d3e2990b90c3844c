//! Wiring: store, chain view, responder, ingest, chain monitor and the HTTP server, started
//! from a [`Config`]. Used by the binary and by in-process tests and benchmarks.

use crate::api;
use crate::chain_monitor::ChainMonitor;
use crate::chain_view::ChainView;
use crate::config::{Config, ConfigError, ADDR_FILE};
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::nonces;
use crate::responder::{Responder, ResponderSettings};
use crate::store::{Store, StoreError};
use crate::submitter::Submitter;
use crate::tower::{Policy, Tower};
use sluice_chain_client::ChainClient;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] sluice_listener::TlsError),
}

/// A running tower; dropping it without [`Running::stop`] leaves its tasks to the runtime.
pub struct Running {
    pub addr: SocketAddr,
    pub tower: Arc<Tower>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    monitor: JoinHandle<()>,
    pruner: JoinHandle<()>,
    sweeper: JoinHandle<()>,
}

impl Running {
    /// Stops accepting requests, lets those in flight finish, stops following the chain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.monitor.abort();
        self.pruner.abort();
        self.sweeper.abort();
        let _ = (&mut self.server).await;
    }

    /// Waits until the server ends (after a shutdown signal).
    pub async fn wait(&mut self) {
        let _ = (&mut self.server).await;
    }

    pub fn shutdown_handle(&mut self) -> Option<oneshot::Sender<()>> {
        self.shutdown.take()
    }
}

/// Starts everything and writes the bound address to `HOME/tower.addr`.
pub async fn start(home: &Path, cfg: Config) -> Result<Running, StartError> {
    let key = cfg.load_key()?;
    let tls = cfg.tls.as_ref().map(|t| t.load(home)).transpose()?;
    let store = Arc::new(Store::connect(&cfg.store_url, cfg.store_connections).await?);
    let view = Arc::new(ChainView::new(store.cursor().await?.unwrap_or(0)));
    let metrics = Arc::new(Metrics::new()?);
    let client = ChainClient::new(&cfg.node_rpc);
    let submitter = Submitter::new(client.clone(), key.clone(), cfg.chain_id);
    let settings = ResponderSettings {
        fee: cfg.fee,
        max_fee: cfg.max_fee,
        retry_blocks: cfg.retry_blocks,
        poll: Duration::from_millis(cfg.poll_ms),
        max_tracked: cfg.max_responses,
        max_attempts: cfg.max_attempts,
    };
    let responder = Arc::new(Responder::new(
        store.clone(),
        submitter,
        view.clone(),
        metrics.clone(),
        settings,
    ));
    let resumed = responder.resume().await?;
    let ingest = Ingest::spawn(
        store.clone(),
        view.clone(),
        cfg.ingest_queue,
        cfg.ingest_batch,
    );
    let tower = Arc::new(Tower::new(
        cfg.chain_id,
        key,
        Policy {
            quota: cfg.quota,
            nonce_window_secs: cfg.nonce_window_secs,
            health_max_behind: cfg.health_max_behind,
        },
        store.clone(),
        view.clone(),
        metrics.clone(),
        ingest,
        responder.clone(),
    ));
    let monitor = ChainMonitor {
        client,
        chain_id: cfg.chain_id,
        store,
        view,
        metrics,
        responder,
    };
    let sweeper = tokio::spawn(
        monitor
            .responder
            .clone()
            .sweep_forever(Duration::from_secs(5)),
    );
    let monitor = tokio::spawn(monitor.run());
    let pruner = tokio::spawn(nonces::prune_forever(
        tower.store.clone(),
        cfg.nonce_window_secs,
    ));
    let listener = tokio::net::TcpListener::bind(&cfg.listen_addr)
        .await
        .map_err(|source| StartError::Io {
            what: format!("listen on {}", cfg.listen_addr),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Io {
        what: "read bound address".into(),
        source,
    })?;
    let (shutdown, signal) = oneshot::channel::<()>();
    let limits = Arc::new(api::ApiLimits::new(&cfg));
    let routes = api::routes(tower.clone(), cfg.max_body, limits);
    let tls_on = tls.is_some();
    let server = tokio::spawn(sluice_listener::serve_recovered_tls(
        routes,
        listener,
        cfg.listener,
        tls,
        async move {
            let _ = signal.await;
        },
    ));
    write_addr(home, addr)?;
    tracing::info!(%addr, tower = %tower.address(), chain_id = cfg.chain_id, store = tower.store.backend(), resumed, tls = tls_on, "watchtower listening");
    Ok(Running {
        addr,
        tower,
        shutdown: Some(shutdown),
        server,
        monitor,
        pruner,
        sweeper,
    })
}

/// Written via a temporary file and a rename, so readers never see a partial address.
fn write_addr(home: &Path, addr: SocketAddr) -> Result<(), StartError> {
    let tmp = home.join(format!("{ADDR_FILE}.tmp"));
    let io = |what: &str| {
        let what = what.to_string();
        move |source| StartError::Io { what, source }
    };
    std::fs::write(&tmp, addr.to_string()).map_err(io("write tower.addr"))?;
    std::fs::rename(&tmp, home.join(ADDR_FILE)).map_err(io("rename tower.addr"))
}
