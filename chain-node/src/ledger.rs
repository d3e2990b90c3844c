//! The fjall ledger. Keyspaces:
//!
//! | keyspace | key | value |
//! |---|---|---|
//! | `meta` | `tip`, `genesis` | tip header JSON; genesis hash |
//! | `blocks` | height (u64 BE) | `rpc::Block` JSON |
//! | `txs` | tx id | height, index, receipt, canonical `SignedTx` bytes |
//! | `accounts` | address | balance, nonce |
//! | `channels` | channel id | `ChannelRecord` JSON |
//! | `secrets` | hashlock | secret, height |
//! | `events` | height, tx index, event index | `rpc::Event` JSON |
//! | `ev_channel` | channel id, height, tx index, event index | empty |
//! | `ev_party` | address, height, tx index, event index | empty |
//! | `certs` | height (u64 BE) | the consensus commit certificate (borsh) |
//!
//! A block is committed as **one** write batch (all keyspaces, the tip included) persisted with
//! `PersistMode::SyncAll` before anyone hears of it, so after a crash the ledger holds exactly the
//! blocks whose commit returned, and the journal replays whole batches or nothing.

use crate::block::SealedBlock;
use crate::state::{self, StateRead, StoreError};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use sluice_protocol::onchain::ChannelRecord;
use sluice_protocol::rpc::{
    Account, Block, BlockHeader, Event, EventFilter, SecretInfo, TxInfo, TxReceipt,
};
use sluice_protocol::{Address, Hash32, Height};
use std::path::Path;

const TIP: &[u8] = b"tip";
const GENESIS: &[u8] = b"genesis";

pub struct Ledger {
    db: Database,
    meta: Keyspace,
    blocks: Keyspace,
    txs: Keyspace,
    accounts: Keyspace,
    channels: Keyspace,
    secrets: Keyspace,
    events: Keyspace,
    ev_channel: Keyspace,
    ev_party: Keyspace,
    certs: Keyspace,
}

/// A stored transaction: where it was included, how it ended, and its canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTx {
    pub height: Height,
    pub index: u32,
    pub receipt: TxReceipt,
    pub bytes: Vec<u8>,
}

fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

fn event_key(height: Height, tx_index: u32, index: u32) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&height.to_be_bytes());
    k[8..12].copy_from_slice(&tx_index.to_be_bytes());
    k[12..].copy_from_slice(&index.to_be_bytes());
    k
}

fn indexed_key(prefix: &[u8; 32], ev: &[u8; 16]) -> [u8; 48] {
    let mut k = [0u8; 48];
    k[..32].copy_from_slice(prefix);
    k[32..].copy_from_slice(ev);
    k
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        let db = Database::builder(dir).open()?;
        let ks = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        Ok(Ledger {
            meta: ks("meta")?,
            blocks: ks("blocks")?,
            txs: ks("txs")?,
            accounts: ks("accounts")?,
            channels: ks("channels")?,
            secrets: ks("secrets")?,
            events: ks("events")?,
            ev_channel: ks("ev_channel")?,
            ev_party: ks("ev_party")?,
            certs: ks("certs")?,
            db,
        })
    }

    /// The last committed header, or `None` for an empty ledger.
    pub fn tip(&self) -> Result<Option<BlockHeader>, StoreError> {
        match self.meta.get(TIP)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| corrupt("tip", e)),
            None => Ok(None),
        }
    }

    pub fn genesis_hash(&self) -> Result<Option<Hash32>, StoreError> {
        match self.meta.get(GENESIS)? {
            Some(v) => {
                let arr: [u8; 32] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| corrupt("genesis hash", "length"))?;
                Ok(Some(Hash32(arr)))
            }
            None => Ok(None),
        }
    }

    /// Commits one block atomically and durably. `genesis` is set only for block 0.
    pub fn commit(&self, block: &SealedBlock, genesis: Option<&Hash32>) -> Result<(), StoreError> {
        self.commit_certified(block, genesis, None)
    }

    /// Commits one block together with the commit certificate that decided it, in one batch.
    pub fn commit_certified(
        &self,
        block: &SealedBlock,
        genesis: Option<&Hash32>,
        certificate: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let n_items = 2 + block.txs.len() + block.events.len() * 4 + block.writes.accounts.len();
        let mut batch = fjall::OwnedWriteBatch::with_capacity(self.db.clone(), n_items)
            .durability(Some(PersistMode::SyncAll));
        let h = &block.header;
        if let Some(g) = genesis {
            batch.insert(&self.meta, GENESIS, g.0.to_vec());
        }
        if let Some(c) = certificate {
            batch.insert(&self.certs, block.header.height.to_be_bytes(), c.to_vec());
        }
        let tip = serde_json::to_vec(h).map_err(|e| corrupt("tip", e))?;
        batch.insert(&self.meta, TIP, tip);
        let stored = Block {
            header: h.clone(),
            txs: block.txs.iter().map(|t| t.id).collect(),
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| corrupt("block", e))?;
        batch.insert(&self.blocks, h.height.to_be_bytes(), bytes);
        for (i, tx) in block.txs.iter().enumerate() {
            let v = encode_stored_tx(h.height, i as u32, &tx.receipt, &tx.bytes);
            batch.insert(&self.txs, tx.id.0, v);
        }
        for (addr, acct) in &block.writes.accounts {
            batch.insert(&self.accounts, addr.0, state::encode_account(acct).to_vec());
        }
        for (id, rec) in &block.writes.channels {
            batch.insert(&self.channels, id.0, state::encode_channel(rec));
        }
        for (hl, info) in &block.writes.secrets {
            batch.insert(&self.secrets, hl.0, state::encode_secret(info).to_vec());
        }
        for ev in &block.events {
            let key = event_key(ev.height, ev.tx_index, ev.index);
            let v = serde_json::to_vec(ev).map_err(|e| corrupt("event", e))?;
            batch.insert(&self.events, key, v);
            if let Some(c) = ev.event.channel_id() {
                batch.insert(&self.ev_channel, indexed_key(&c.0, &key), Vec::new());
            }
            for p in &ev.participants {
                batch.insert(&self.ev_party, indexed_key(&p.0, &key), Vec::new());
            }
        }
        batch.commit()?;
        Ok(())
    }

    pub fn block(&self, height: Height) -> Result<Option<Block>, StoreError> {
        match self.blocks.get(height.to_be_bytes())? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| corrupt("block", e)),
            None => Ok(None),
        }
    }

    /// The stored commit certificate of a consensus-decided block.
    pub fn certificate(&self, height: Height) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.certs.get(height.to_be_bytes())?.map(|v| v.to_vec()))
    }

    pub fn stored_tx(&self, id: &Hash32) -> Result<Option<StoredTx>, StoreError> {
        match self.txs.get(id.0)? {
            Some(v) => decode_stored_tx(&v).map(Some),
            None => Ok(None),
        }
    }

    /// The RPC view of an included transaction.
    pub fn tx_info(&self, id: &Hash32) -> Result<Option<TxInfo>, StoreError> {
        use sluice_protocol::encoding::Canonical;
        let Some(st) = self.stored_tx(id)? else {
            return Ok(None);
        };
        let stx = sluice_protocol::SignedTx::from_bytes(&st.bytes).map_err(|e| corrupt("tx", e))?;
        Ok(Some(TxInfo {
            id: *id,
            height: st.height,
            index: st.index,
            from: stx.tx.from,
            kind: stx.tx.kind.name().to_string(),
            receipt: st.receipt,
        }))
    }

    /// Events in `[from, to]` matching `filter`, in chain order. More than `max` is an error
    /// (the caller narrows the range) rather than a silently truncated answer.
    pub fn events(
        &self,
        from: Height,
        to: Height,
        filter: &EventFilter,
        max: usize,
    ) -> Result<Vec<Event>, EventsError> {
        let lo = event_key(from, 0, 0);
        let hi = event_key(to, u32::MAX, u32::MAX);
        let mut out = Vec::new();
        let push = |ev: Event, out: &mut Vec<Event>| -> Result<(), EventsError> {
            if filter.matches(&ev) {
                if out.len() >= max {
                    return Err(EventsError::TooMany(max));
                }
                out.push(ev);
            }
            Ok(())
        };
        let index = match (filter.channel_id, filter.participant) {
            (Some(c), _) => Some((&self.ev_channel, c.0)),
            (None, Some(p)) => Some((&self.ev_party, p.0)),
            (None, None) => None,
        };
        match index {
            Some((ks, prefix)) => {
                for guard in ks.range(indexed_key(&prefix, &lo)..=indexed_key(&prefix, &hi)) {
                    let key = guard.key().map_err(StoreError::from)?;
                    let Some(v) = self.events.get(&key[32..]).map_err(StoreError::from)? else {
                        return Err(corrupt("event index", "dangling entry").into());
                    };
                    push(decode_event(&v)?, &mut out)?;
                }
            }
            None => {
                for guard in self.events.range(lo..=hi) {
                    let v = guard.value().map_err(StoreError::from)?;
                    push(decode_event(&v)?, &mut out)?;
                }
            }
        }
        Ok(out)
    }

    /// Every stored account, channel and secret (for replay verification).
    pub fn full_state(&self) -> Result<state::StateWrites, StoreError> {
        let mut w = state::StateWrites::default();
        for g in self.accounts.iter() {
            let (k, v) = g.into_inner()?;
            w.accounts
                .insert(Address(key32(&k)?), state::decode_account(&v)?);
        }
        for g in self.channels.iter() {
            let (k, v) = g.into_inner()?;
            w.channels
                .insert(Hash32(key32(&k)?), state::decode_channel(&v)?);
        }
        for g in self.secrets.iter() {
            let (k, v) = g.into_inner()?;
            w.secrets
                .insert(Hash32(key32(&k)?), state::decode_secret(&v)?);
        }
        Ok(w)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("more than {0} events match; narrow the height range or the filter")]
    TooMany(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn key32(k: &[u8]) -> Result<[u8; 32], StoreError> {
    k.try_into()
        .map_err(|_| corrupt("key", format!("{} bytes", k.len())))
}

fn decode_event(v: &[u8]) -> Result<Event, StoreError> {
    serde_json::from_slice(v).map_err(|e| corrupt("event", e))
}

/// `height u64 | index u32 | success u8 | error_len u32 | error | tx bytes`.
fn encode_stored_tx(height: Height, index: u32, r: &TxReceipt, bytes: &[u8]) -> Vec<u8> {
    let err = r.error.as_deref().unwrap_or("").as_bytes();
    let mut v = Vec::with_capacity(17 + err.len() + bytes.len());
    v.extend_from_slice(&height.to_be_bytes());
    v.extend_from_slice(&index.to_be_bytes());
    v.push(r.success as u8);
    v.extend_from_slice(&(err.len() as u32).to_be_bytes());
    v.extend_from_slice(err);
    v.extend_from_slice(bytes);
    v
}

fn decode_stored_tx(v: &[u8]) -> Result<StoredTx, StoreError> {
    let bad = || corrupt("tx", "truncated");
    if v.len() < 17 {
        return Err(bad());
    }
    let height = u64::from_be_bytes(v[..8].try_into().map_err(|_| bad())?);
    let index = u32::from_be_bytes(v[8..12].try_into().map_err(|_| bad())?);
    let success = v[12] == 1;
    let len = u32::from_be_bytes(v[13..17].try_into().map_err(|_| bad())?) as usize;
    let err = v.get(17..17 + len).ok_or_else(bad)?;
    let error = match success {
        true => None,
        false => Some(String::from_utf8_lossy(err).into_owned()),
    };
    Ok(StoredTx {
        height,
        index,
        receipt: TxReceipt { success, error },
        bytes: v[17 + len..].to_vec(),
    })
}

impl StateRead for Ledger {
    fn account(&self, address: &Address) -> Result<Account, StoreError> {
        match self.accounts.get(address.0)? {
            Some(v) => state::decode_account(&v),
            None => Ok(Account::default()),
        }
    }
    fn channel(&self, id: &Hash32) -> Result<Option<ChannelRecord>, StoreError> {
        match self.channels.get(id.0)? {
            Some(v) => state::decode_channel(&v).map(Some),
            None => Ok(None),
        }
    }
    fn secret(&self, hashlock: &Hash32) -> Result<Option<SecretInfo>, StoreError> {
        match self.secrets.get(hashlock.0)? {
            Some(v) => state::decode_secret(&v).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_tx_round_trips() {
        let r = TxReceipt {
            success: false,
            error: Some("nope".into()),
        };
        let v = encode_stored_tx(5, 2, &r, &[9, 9, 9]);
        let st = decode_stored_tx(&v).unwrap();
        assert_eq!(
            (st.height, st.index, st.receipt, st.bytes),
            (5, 2, r, vec![9, 9, 9])
        );
        assert!(decode_stored_tx(&v[..10]).is_err());
    }
}
