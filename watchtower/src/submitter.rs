//! Signs and submits the tower's own transactions, choosing their nonces itself. A challenge
//! that lingers must be *replaced* at its nonce with a higher fee (the mempool takes a
//! same-nonce replacement paying ≥ 10% more): a retry at a fresh nonce would queue behind the
//! stuck one and never be included before it.

use sluice_chain_client::{ChainClient, ClientError};
use sluice_protocol::{Amount, ChainId, Hash32, Keypair, Transaction, TxKind};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

pub struct Submitter {
    client: ChainClient,
    key: Keypair,
    chain_id: ChainId,
    /// The next fresh nonce, once known; `None` re-reads the account after a refusal.
    next: Mutex<Option<u64>>,
    /// No fresh nonce below this: held by a pending transaction of a previous run (resumed
    /// responses), which the account's committed nonce does not show.
    floor: AtomicU64,
}

/// The smallest fee that replaces one paying `fee`: double it, and never less than the
/// mempool's +10% (and +1).
pub fn bumped(fee: Amount) -> Amount {
    fee.saturating_mul(2)
        .max(fee.saturating_add((fee / 10).max(1)))
}

impl Submitter {
    pub fn new(client: ChainClient, key: Keypair, chain_id: ChainId) -> Self {
        Submitter {
            client,
            key,
            chain_id,
            next: Mutex::new(None),
            floor: AtomicU64::new(0),
        }
    }

    pub fn client(&self) -> &ChainClient {
        &self.client
    }

    /// Records that `nonce` is taken by a resumed response's transaction.
    pub fn note_pending(&self, nonce: u64) {
        self.floor
            .fetch_max(nonce.saturating_add(1), Ordering::Relaxed);
    }

    fn sign(&self, nonce: u64, fee: Amount, kind: TxKind) -> sluice_protocol::SignedTx {
        Transaction {
            chain_id: self.chain_id,
            from: self.key.address(),
            nonce,
            fee,
            kind,
        }
        .sign(&self.key)
    }

    /// Reads the account's nonce now unless already known.
    pub async fn prime(&self) -> Result<(), ClientError> {
        let mut next = self.next.lock().await;
        if next.is_none() {
            *next = Some(self.client.account(&self.key.address()).await?.nonce);
        }
        Ok(())
    }

    /// Submits `kind` at the next unused nonce; returns its id and nonce.
    pub async fn submit_new(
        &self,
        kind: TxKind,
        fee: Amount,
    ) -> Result<(Hash32, u64), ClientError> {
        let mut next = self.next.lock().await;
        let nonce = match *next {
            Some(n) => n,
            None => self.client.account(&self.key.address()).await?.nonce,
        }
        .max(self.floor.load(Ordering::Relaxed));
        match self.client.submit(&self.sign(nonce, fee, kind)).await {
            Ok(id) => {
                *next = Some(nonce + 1);
                Ok((id, nonce))
            }
            Err(e) => {
                *next = None;
                Err(e)
            }
        }
    }

    /// Submits `kind` at `nonce`, replacing whatever of ours waits there (or filling the gap if
    /// the node dropped it).
    pub async fn replace(
        &self,
        nonce: u64,
        kind: TxKind,
        fee: Amount,
    ) -> Result<Hash32, ClientError> {
        self.client.submit(&self.sign(nonce, fee, kind)).await
    }

    /// Whether a transaction at `nonce` was already included (so it can no longer be replaced).
    pub async fn nonce_spent(&self, nonce: u64) -> Result<bool, ClientError> {
        Ok(self.client.account(&self.key.address()).await?.nonce > nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_always_clears_the_mempool_replacement_rule() {
        for fee in [0, 1, 5, 10, 1_000, u64::MAX / 2] {
            let need = fee.saturating_add((fee / 10).max(1));
            assert!(bumped(fee) >= need, "fee {fee}");
        }
        assert_eq!(bumped(10), 20);
        assert_eq!(bumped(u64::MAX), u64::MAX);
    }
}
