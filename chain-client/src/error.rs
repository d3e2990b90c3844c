use sluice_protocol::rpc::RpcError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the chain node at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("chain node answered HTTP {0}")]
    Http(u16),
    #[error("chain node refused: {0}")]
    Rpc(#[from] RpcError),
    #[error("unexpected answer from the chain node: {0}")]
    BadResponse(String),
    #[error("subscription failed: {0}")]
    WebSocket(String),
    #[error("subscription closed by the node")]
    SubscriptionClosed,
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("transaction {id} failed on chain: {reason}")]
    TxFailed { id: String, reason: String },
}

impl ClientError {
    /// Whether the node rejected a transaction at admission (as opposed to being unreachable).
    pub fn is_rejection(&self) -> bool {
        matches!(self, ClientError::Rpc(e) if e.code == sluice_protocol::rpc::code::TX_REJECTED)
    }
}
