//! Signs and submits transactions for one key, numbering them from the account's nonce.

use crate::client::ChainClient;
use crate::error::ClientError;
use sluice_protocol::rpc::TxInfo;
use sluice_protocol::{Amount, ChainId, Hash32, Keypair, SignedTx, Transaction, TxKind};
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

    /// The fee each transaction of this sender pays unless told otherwise.
    pub fn fee(&self) -> Amount {
        self.fee
    }

    /// Signs `kind` with the next nonce and submits it; returns the transaction id.
    pub async fn submit(&self, kind: TxKind) -> Result<Hash32, ClientError> {
        self.submit_with_fee(kind, self.fee).await
    }

    pub async fn submit_with_fee(&self, kind: TxKind, fee: Amount) -> Result<Hash32, ClientError> {
        Ok(self.submit_numbered(kind, fee).await?.0)
    }

    /// [`TxSender::submit_with_fee`], also returning the nonce it used, so that the
    /// transaction can be replaced by a higher fee ([`TxSender::replace`]) while it waits.
    pub async fn submit_numbered(
        &self,
        kind: TxKind,
        fee: Amount,
    ) -> Result<(Hash32, u64), ClientError> {
        let mut guard = self.next_nonce.lock().await;
        let mut nonce = match *guard {
            Some(n) => n,
            None => self.account_nonce().await?,
        };
        let mut result = self
            .client
            .submit(&self.sign(nonce, kind.clone(), fee))
            .await;
        if is_rejection(&result) {
            // The node refused it, so nothing was accepted: the key may have sent elsewhere
            // (another copy of the wallet, a tool). Once, take the chain's count and try again
            // if it differs from the one used. Not after a lost answer: that transaction may
            // be in, and sending it again at the next nonce would send it twice.
            if let Ok(fresh) = self.account_nonce().await {
                if fresh != nonce {
                    nonce = fresh;
                    result = self.client.submit(&self.sign(nonce, kind, fee)).await;
                }
            }
        }
        match result {
            Ok(id) => {
                *guard = Some(nonce + 1);
                Ok((id, nonce))
            }
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }

    async fn account_nonce(&self) -> Result<u64, ClientError> {
        Ok(self.client.account(&self.key.address()).await?.nonce)
    }

    /// Signs `kind` at `nonce` (a transaction of ours still waiting there) with a higher `fee`,
    /// so the pool replaces it; the next nonce handed out is unchanged.
    pub async fn replace(
        &self,
        nonce: u64,
        kind: TxKind,
        fee: Amount,
    ) -> Result<Hash32, ClientError> {
        self.client.submit(&self.sign(nonce, kind, fee)).await
    }

    fn sign(&self, nonce: u64, kind: TxKind, fee: Amount) -> SignedTx {
        let tx = Transaction {
            chain_id: self.chain_id,
            from: self.key.address(),
            nonce,
            fee,
            kind,
        };
        tx.sign(&self.key)
    }

    /// Submits and waits until included successfully.
    pub async fn send(&self, kind: TxKind, timeout: Duration) -> Result<TxInfo, ClientError> {
        let id = self.submit(kind).await?;
        self.client.wait_for_success(&id, timeout).await
    }
}

/// Whether the node answered the submission with a refusal of the transaction itself.
fn is_rejection<T>(result: &Result<T, ClientError>) -> bool {
    matches!(result, Err(ClientError::Rpc(e)) if e.code == sluice_protocol::rpc::code::TX_REJECTED)
}
