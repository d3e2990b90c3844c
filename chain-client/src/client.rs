//! Typed JSON-RPC calls over HTTP `POST /`.

use crate::error::ClientError;
use crate::subscription::{self, EventStream, HeadStream};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sluice_protocol::encoding::Canonical;
use sluice_protocol::onchain::ChannelRecord;
use sluice_protocol::rpc::{
    self, method, Account, ChainInfo, Event, EventFilter, RpcError, TxInfo,
};
use sluice_protocol::{hex, Address, Hash32, Height, SignedTx};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A handle on one chain node. Cheap to clone.
#[derive(Clone)]
pub struct ChainClient {
    http: reqwest::Client,
    /// `http://host:port` or `https://host:port`
    url: Arc<str>,
    next_id: Arc<AtomicU64>,
    /// TLS for `wss://` subscriptions (the same roots as `http`).
    ws_tls: tokio_tungstenite::Connector,
}

#[derive(Deserialize)]
struct Response<R> {
    result: Option<R>,
    error: Option<RpcError>,
}

#[derive(Serialize)]
struct Request<'a, P> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: P,
}

impl ChainClient {
    /// `addr` is `host:port` or a full `http://host:port` or `https://host:port` URL; an
    /// `https` node must show a certificate the webpki roots vouch for.
    pub fn new(addr: &str) -> Self {
        Self::with_tls(addr, sluice_home::tls::default_client_config())
    }

    /// [`ChainClient::new`] that also trusts the certificates in `ca_file` (PEM), if given.
    pub fn with_ca_file(
        addr: &str,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, sluice_home::tls::TlsError> {
        Ok(Self::with_tls(
            addr,
            sluice_home::tls::client_config(ca_file)?,
        ))
    }

    /// [`ChainClient::new`] speaking `tls` (see `sluice_home::tls::client_config`) to an
    /// `https` node and its `wss` subscriptions.
    pub fn with_tls(addr: &str, tls: sluice_home::tls::ClientConfig) -> Self {
        let url = match addr.starts_with("http://") || addr.starts_with("https://") {
            true => addr.trim_end_matches('/').to_string(),
            false => format!("http://{addr}"),
        };
        let http = sluice_home::tls::http_client_builder(tls.clone())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        ChainClient {
            http,
            url: url.into(),
            next_id: Arc::new(AtomicU64::new(1)),
            ws_tls: sluice_home::tls::ws_connector(tls),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The WebSocket endpoint for subscriptions.
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.url.replacen("http", "ws", 1))
    }

    /// One JSON-RPC call; a JSON-RPC error becomes [`ClientError::Rpc`].
    pub async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let req = Request {
            jsonrpc: "2.0",
            id,
            method,
            params,
        };
        let resp = self
            .http
            .post(self.url.as_ref())
            .json(&req)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.url.to_string(),
                source,
            })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| ClientError::BadResponse(e.to_string()))?;
        let parsed: Response<R> = serde_json::from_slice(&body).map_err(|e| {
            if status.is_success() {
                ClientError::BadResponse(e.to_string())
            } else {
                ClientError::Http(status.as_u16())
            }
        })?;
        match (parsed.result, parsed.error) {
            (_, Some(err)) => Err(ClientError::Rpc(err)),
            (Some(result), None) => Ok(result),
            (None, None) => serde_json::from_value(serde_json::Value::Null)
                .map_err(|_| ClientError::BadResponse("response without result".into())),
        }
    }

    pub async fn chain_info(&self) -> Result<ChainInfo, ClientError> {
        self.call(method::CHAIN_INFO, serde_json::json!({})).await
    }

    pub async fn account(&self, address: &Address) -> Result<Account, ClientError> {
        self.call(method::ACCOUNT, rpc::AccountParams { address: *address })
            .await
    }

    /// Submits one signed transaction; returns its id once the mempool admitted it.
    pub async fn submit(&self, tx: &SignedTx) -> Result<Hash32, ClientError> {
        let params = rpc::SubmitTxParams {
            tx: hex::encode(&tx.to_bytes()),
        };
        let r: rpc::Submitted = self.call(method::SUBMIT_TX, params).await?;
        Ok(r.id)
    }

    /// Submits many transactions in one request; one outcome per transaction, in order.
    pub async fn submit_many(
        &self,
        txs: &[SignedTx],
    ) -> Result<Vec<rpc::SubmitOutcome>, ClientError> {
        let params = rpc::SubmitTxsParams {
            txs: txs.iter().map(|t| hex::encode(&t.to_bytes())).collect(),
        };
        self.call(method::SUBMIT_TXS, params).await
    }

    pub async fn tx(&self, id: &Hash32) -> Result<Option<TxInfo>, ClientError> {
        self.call(method::TX, rpc::IdParams { id: *id }).await
    }

    pub async fn block(&self, height: Height) -> Result<Option<rpc::Block>, ClientError> {
        self.call(method::BLOCK, rpc::HeightParams { height }).await
    }

    pub async fn channel(&self, channel_id: &Hash32) -> Result<Option<ChannelRecord>, ClientError> {
        self.call(
            method::CHANNEL,
            rpc::ChannelParams {
                channel_id: *channel_id,
            },
        )
        .await
    }

    pub async fn secret(&self, hashlock: &Hash32) -> Result<Option<rpc::SecretInfo>, ClientError> {
        self.call(
            method::SECRET,
            rpc::SecretParams {
                hashlock: *hashlock,
            },
        )
        .await
    }

    pub async fn events(
        &self,
        from_height: Height,
        to_height: Height,
        filter: EventFilter,
    ) -> Result<Vec<Event>, ClientError> {
        self.call(
            method::EVENTS,
            rpc::EventsParams {
                from_height,
                to_height,
                filter,
            },
        )
        .await
    }

    /// Every event in `[from_height, to_height]` matching `filter`, however many: a range the
    /// node refuses as too large (more events than it returns per query, or too many heights)
    /// is split in halves until each part fits (ATTACKS F8). Only a single height holding more
    /// matching events than the node's limit stays an error.
    pub async fn all_events(
        &self,
        from_height: Height,
        to_height: Height,
        filter: &EventFilter,
    ) -> Result<Vec<Event>, ClientError> {
        let mut out = Vec::new();
        let mut spans = vec![(from_height, to_height)];
        while let Some((from, to)) = spans.pop() {
            match self.events(from, to, filter.clone()).await {
                Ok(evs) => out.extend(evs),
                Err(ClientError::Rpc(e)) if e.code == rpc::code::LIMIT_EXCEEDED && from < to => {
                    let mid = from + (to - from) / 2;
                    // Popped last first: the lower half is read first, so events stay in order.
                    spans.push((mid + 1, to));
                    spans.push((from, mid));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Polls until the transaction is included; returns its info whether it succeeded or not.
    pub async fn wait_for_tx(&self, id: &Hash32, timeout: Duration) -> Result<TxInfo, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(info) = self.tx(id).await? {
                return Ok(info);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!("transaction {id}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Like [`wait_for_tx`](Self::wait_for_tx) but a failure receipt is an error.
    pub async fn wait_for_success(
        &self,
        id: &Hash32,
        timeout: Duration,
    ) -> Result<TxInfo, ClientError> {
        let info = self.wait_for_tx(id, timeout).await?;
        match info.receipt.success {
            true => Ok(info),
            false => Err(ClientError::TxFailed {
                id: id.to_string(),
                reason: info.receipt.error.clone().unwrap_or_default(),
            }),
        }
    }

    /// Polls until the chain reaches `height`.
    pub async fn wait_for_height(
        &self,
        height: Height,
        timeout: Duration,
    ) -> Result<ChainInfo, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let info = self.chain_info().await?;
            if info.height >= height {
                return Ok(info);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!("height {height}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Streams events matching `filter` from `from_height` on: history first, then live.
    pub async fn subscribe_events(
        &self,
        filter: EventFilter,
        from_height: Height,
    ) -> Result<EventStream, ClientError> {
        subscription::events(&self.ws_url(), self.ws_tls.clone(), filter, from_height).await
    }

    /// Streams new block headers.
    pub async fn subscribe_heads(&self) -> Result<HeadStream, ClientError> {
        subscription::heads(&self.ws_url(), self.ws_tls.clone()).await
    }
}
