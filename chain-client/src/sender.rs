//! Signs and submits transactions for one key, numbering them from the account's nonce.

use crate::client::ChainClient;
use crate::error::ClientError;
use sluice_protocol::rpc::TxInfo;
use sluice_protocol::{Amount, ChainId, Hash32, Keypair, Transaction, TxKind};
use std::time::Duration;
use tokio::sync::Mutex;

/// Submits transactions from one account. Nonces are handed out under a lock, and re-read from
/// the chain after a rejection so that a lost or replaced transaction never wedges the sender.
pub struct TxSender {
    client: ChainClient,
    key: Keypair,
    chain_id: ChainId,
    fee: Amount,
    next_nonce: Mutex<Option<u64>>,
}

impl TxSender {
    pub fn new(client: ChainClient, key: Keypair, chain_id: ChainId, fee: Amount) -> Self {
        TxSender {
            client,
            key,
            chain_id,
            fee,
            next_nonce: Mutex::new(None),
        }
    }

    pub fn client(&self) -> &ChainClient {
        &self.client
    }

    pub fn key(&self) -> &Keypair {
        &self.key
    }

    /// Signs `kind` with the next nonce and submits it; returns the transaction id.
    pub async fn submit(&self, kind: TxKind) -> Result<Hash32, ClientError> {
        self.submit_with_fee(kind, self.fee).await
    }

    pub async fn submit_with_fee(&self, kind: TxKind, fee: Amount) -> Result<Hash32, ClientError> {
        let mut guard = self.next_nonce.lock().await;
        let nonce = match *guard {
            Some(n) => n,
            None => self.client.account(&self.key.address()).await?.nonce,
        };
        let tx = Transaction {
            chain_id: self.chain_id,
            from: self.key.address(),
            nonce,
            fee,
            kind,
        };
        match self.client.submit(&tx.sign(&self.key)).await {
            Ok(id) => {
                *guard = Some(nonce + 1);
                Ok(id)
            }
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }

    /// Submits and waits until included successfully.
    pub async fn send(&self, kind: TxKind, timeout: Duration) -> Result<TxInfo, ClientError> {
        let id = self.submit(kind).await?;
        self.client.wait_for_success(&id, timeout).await
    }
}
