//! Where a daemon's own transactions go: the [`Broadcaster`] trait, implemented by
//! [`TxSender`](crate::TxSender) for the chain and by [`Recorder`], a double that sends nothing
//! and records everything, so what a guard or responder decides can be tested without a node.

use crate::ClientError;
use sluice_protocol::rpc::{code, RpcError};
use sluice_protocol::{tagged_hash, Amount, Hash32, Tag, TxKind};
use std::future::Future;
use std::sync::Mutex;

pub trait Broadcaster: Send + Sync {
    /// Signs `kind` at the next fresh nonce with `fee` and submits it: its id and nonce.
    fn submit(
        &self,
        kind: TxKind,
        fee: Amount,
    ) -> impl Future<Output = Result<(Hash32, u64), ClientError>> + Send;

    /// Signs `kind` at `nonce` with `fee`, replacing our transaction waiting there.
    fn replace(
        &self,
        nonce: u64,
        kind: TxKind,
        fee: Amount,
    ) -> impl Future<Output = Result<Hash32, ClientError>> + Send;
}

impl Broadcaster for crate::TxSender {
    async fn submit(&self, kind: TxKind, fee: Amount) -> Result<(Hash32, u64), ClientError> {
        self.submit_numbered(kind, fee).await
    }

    async fn replace(&self, nonce: u64, kind: TxKind, fee: Amount) -> Result<Hash32, ClientError> {
        crate::TxSender::replace(self, nonce, kind, fee).await
    }
}

/// One transaction a [`Recorder`] was handed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    pub nonce: u64,
    pub fee: Amount,
    pub kind: TxKind,
    /// Whether it replaced one at its nonce.
    pub replaces: bool,
}

/// A broadcaster that records instead of sending. Fresh nonces count up from 0; replacements
/// are taken unless [`refuse_replacements`](Recorder::refuse_replacements) was called, as a
/// node refuses one whose nonce was already included.
#[derive(Debug, Default)]
pub struct Recorder {
    state: Mutex<RecorderState>,
}

#[derive(Debug, Default)]
struct RecorderState {
    next: u64,
    sent: Vec<Broadcast>,
    refuse_replacements: bool,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything handed over so far, in order.
    pub fn sent(&self) -> Vec<Broadcast> {
        self.lock().sent.clone()
    }

    /// From now on a replacement is refused.
    pub fn refuse_replacements(&self) {
        self.lock().refuse_replacements = true;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecorderState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(st: &mut RecorderState, b: Broadcast) -> Hash32 {
        let id = tagged_hash(Tag::Tx, &(st.sent.len() as u64).to_le_bytes());
        st.sent.push(b);
        id
    }
}

impl Broadcaster for Recorder {
    async fn submit(&self, kind: TxKind, fee: Amount) -> Result<(Hash32, u64), ClientError> {
        let mut st = self.lock();
        let nonce = st.next;
        st.next += 1;
        let b = Broadcast {
            nonce,
            fee,
            kind,
            replaces: false,
        };
        Ok((Self::record(&mut st, b), nonce))
    }

    async fn replace(&self, nonce: u64, kind: TxKind, fee: Amount) -> Result<Hash32, ClientError> {
        let mut st = self.lock();
        if st.refuse_replacements {
            return Err(ClientError::Rpc(RpcError {
                code: code::TX_REJECTED,
                message: format!("nonce {nonce} already included"),
            }));
        }
        let b = Broadcast {
            nonce,
            fee,
            kind,
            replaces: true,
        };
        Ok(Self::record(&mut st, b))
    }
}
