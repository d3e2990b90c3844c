//! Signs and submits the tower's own transactions, choosing their nonces itself. A challenge
//! that lingers must be *replaced* at its nonce with a higher fee (the mempool takes a
//! same-nonce replacement paying ≥ 10% more): a retry at a fresh nonce would queue behind the
//! stuck one and never be included before it.

use sluice_chain_client::{Broadcaster, ChainClient, ClientError};
use sluice_protocol::{Amount, ChainId, Hash32, Keypair, Transaction, TxKind};
use std::collections::BTreeSet;
use tokio::sync::Mutex;

pub struct Submitter {
    client: ChainClient,
    key: Keypair,
    chain_id: ChainId,
    /// The next fresh nonce, once known; `None` re-reads the account after a refusal.
    next: Mutex<Option<u64>>,
    /// Nonces of our transactions that may still wait in the pool (pending responses, this
    /// run's or a previous one's), which the account's committed nonce does not show. A fresh
    /// nonce is always above them, so a retry never replaces another channel's challenge (F18).
    live: std::sync::Mutex<BTreeSet<u64>>,
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
            live: std::sync::Mutex::new(BTreeSet::new()),
        }
    }

    pub fn client(&self) -> &ChainClient {
        &self.client
    }

    /// The account the tower pays challenge fees from.
    pub fn address(&self) -> sluice_protocol::Address {
        self.key.address()
    }

    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Records that `nonce` is taken by a pending response's transaction.
    pub fn note_pending(&self, nonce: u64) {
        if let Ok(mut live) = self.live.lock() {
            live.insert(nonce);
        }
    }

    /// The response holding `nonce` is over: the nonce is spent, or its transaction may go.
    pub fn release(&self, nonce: u64) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&nonce);
        }
    }

    /// The lowest nonce that is neither committed nor held by a live transaction of ours.
    fn fresh(&self, committed: u64) -> u64 {
        let Ok(mut live) = self.live.lock() else {
            return committed;
        };
        live.retain(|&n| n >= committed);
        live.last()
            .map_or(committed, |&n| committed.max(n.saturating_add(1)))
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
            None => self.fresh(self.client.account(&self.key.address()).await?.nonce),
        };
        match self.client.submit(&self.sign(nonce, fee, kind)).await {
            Ok(id) => {
                *next = Some(nonce + 1);
                self.note_pending(nonce);
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

/// The tower's responder sends through this, as the hub's and the wallet's send through
/// `TxSender`: one contract for a daemon's own transactions.
impl Broadcaster for Submitter {
    async fn submit(&self, kind: TxKind, fee: Amount) -> Result<(Hash32, u64), ClientError> {
        self.submit_new(kind, fee).await
    }

    async fn replace(&self, nonce: u64, kind: TxKind, fee: Amount) -> Result<Hash32, ClientError> {
        Submitter::replace(self, nonce, kind, fee).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_nonce_is_above_every_live_one_and_spent_ones_are_forgotten() {
        let s = Submitter::new(ChainClient::new("127.0.0.1:1"), Keypair::generate(), 1);
        assert_eq!(s.fresh(5), 5);
        s.note_pending(5);
        s.note_pending(7);
        assert_eq!(s.fresh(5), 8, "never 5 or 6: 5 and 7 still wait");
        s.release(7);
        assert_eq!(s.fresh(5), 6);
        assert_eq!(s.fresh(9), 9, "committed past them: nothing live");
        assert_eq!(s.live.lock().map(|l| l.len()).unwrap_or(9), 0);
    }

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
