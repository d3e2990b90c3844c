//! The ledger state a block reads and writes (accounts, channels, secret registry), the overlay a
//! block executes against, and the state root each block header commits to.
//!
//! **State root.** `root(h) = tagged_hash("sluice/state-root", root(h-1) || digest(writes(h)))`
//! with `root(-1) = 0` (genesis is block 0). `digest` is the SHA-256 of every key/value pair the
//! block wrote, in a fixed order (accounts, then channels, then secrets; each sorted by key) and a
//! fixed encoding (see [`encode_account`], [`encode_channel`], [`encode_secret`]). It is an
//! incremental commitment: cheap (proportional to what a block touched, not to the whole state),
//! and two nodes with equal roots applied equal write sequences from the same genesis. It does not
//! support membership proofs; a Merkle tree can replace it later without changing the header.

use sluice_protocol::hash::{tagged_hash, Hash32, Tag};
use sluice_protocol::onchain::ChannelRecord;
use sluice_protocol::rpc::{Account, SecretInfo};
use sluice_protocol::Address;
use std::collections::BTreeMap;

/// A failure to read or decode stored state. Fatal for block production: execution must never
/// guess around a storage error, or two nodes could disagree.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Fjall(#[from] fjall::Error),
    #[error("corrupt stored {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("{0}")]
    Io(String),
}

/// Read access to committed (or overlaid) state.
pub trait StateRead {
    fn account(&self, address: &Address) -> Result<Account, StoreError>;
    fn channel(&self, id: &Hash32) -> Result<Option<ChannelRecord>, StoreError>;
    fn secret(&self, hashlock: &Hash32) -> Result<Option<SecretInfo>, StoreError>;
}

/// Every state write of one block, sorted by key (so the digest is deterministic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateWrites {
    pub accounts: BTreeMap<Address, Account>,
    pub channels: BTreeMap<Hash32, ChannelRecord>,
    pub secrets: BTreeMap<Hash32, SecretInfo>,
}

impl StateWrites {
    /// SHA-256 over the canonical encoding of every write.
    pub fn digest(&self) -> Hash32 {
        let mut buf = Vec::with_capacity(64 + self.accounts.len() * 49);
        for (addr, acct) in &self.accounts {
            buf.push(b'A');
            buf.extend_from_slice(&addr.0);
            buf.extend_from_slice(&encode_account(acct));
        }
        for (id, rec) in &self.channels {
            let value = encode_channel(rec);
            buf.push(b'C');
            buf.extend_from_slice(&id.0);
            buf.extend_from_slice(&(value.len() as u32).to_be_bytes());
            buf.extend_from_slice(&value);
        }
        for (hashlock, info) in &self.secrets {
            buf.push(b'S');
            buf.extend_from_slice(&hashlock.0);
            buf.extend_from_slice(&encode_secret(info));
        }
        sluice_protocol::sha256(&buf)
    }

    /// Folds these writes onto `prev`: the state root after the block that made them.
    pub fn next_root(&self, prev: &Hash32) -> Hash32 {
        let mut pre = [0u8; 64];
        pre[..32].copy_from_slice(&prev.0);
        pre[32..].copy_from_slice(&self.digest().0);
        tagged_hash(Tag::StateRoot, &pre)
    }
}

/// Block-local view: reads see this block's earlier writes first, then the base state.
///
/// Writes since the last [`checkpoint`](Overlay::checkpoint) can be undone with
/// [`rollback`](Overlay::rollback), which is how a failed transaction keeps only its fee charge.
pub struct Overlay<'a, S: StateRead> {
    base: &'a S,
    pub writes: StateWrites,
    undo: Vec<Undo>,
}

enum Undo {
    Account(Address, Option<Account>),
    Channel(Hash32, Option<ChannelRecord>),
    Secret(Hash32, Option<SecretInfo>),
}

impl<'a, S: StateRead> Overlay<'a, S> {
    pub fn new(base: &'a S) -> Self {
        Overlay {
            base,
            writes: StateWrites::default(),
            undo: Vec::new(),
        }
    }
    pub fn put_account(&mut self, address: Address, account: Account) {
        let prev = self.writes.accounts.insert(address, account);
        self.undo.push(Undo::Account(address, prev));
    }
    pub fn put_channel(&mut self, record: ChannelRecord) {
        let id = record.id;
        let prev = self.writes.channels.insert(id, record);
        self.undo.push(Undo::Channel(id, prev));
    }
    pub fn put_secret(&mut self, hashlock: Hash32, info: SecretInfo) {
        let prev = self.writes.secrets.insert(hashlock, info);
        self.undo.push(Undo::Secret(hashlock, prev));
    }
    /// Makes every write so far permanent for this block.
    pub fn checkpoint(&mut self) {
        self.undo.clear();
    }
    /// Undoes every write since the last checkpoint.
    pub fn rollback(&mut self) {
        while let Some(u) = self.undo.pop() {
            match u {
                Undo::Account(k, Some(v)) => {
                    self.writes.accounts.insert(k, v);
                }
                Undo::Account(k, None) => {
                    self.writes.accounts.remove(&k);
                }
                Undo::Channel(k, Some(v)) => {
                    self.writes.channels.insert(k, v);
                }
                Undo::Channel(k, None) => {
                    self.writes.channels.remove(&k);
                }
                Undo::Secret(k, Some(v)) => {
                    self.writes.secrets.insert(k, v);
                }
                Undo::Secret(k, None) => {
                    self.writes.secrets.remove(&k);
                }
            }
        }
    }
    pub fn into_writes(self) -> StateWrites {
        self.writes
    }
}

impl<S: StateRead> StateRead for Overlay<'_, S> {
    fn account(&self, address: &Address) -> Result<Account, StoreError> {
        match self.writes.accounts.get(address) {
            Some(a) => Ok(*a),
            None => self.base.account(address),
        }
    }
    fn channel(&self, id: &Hash32) -> Result<Option<ChannelRecord>, StoreError> {
        match self.writes.channels.get(id) {
            Some(c) => Ok(Some(c.clone())),
            None => self.base.channel(id),
        }
    }
    fn secret(&self, hashlock: &Hash32) -> Result<Option<SecretInfo>, StoreError> {
        match self.writes.secrets.get(hashlock) {
            Some(s) => Ok(Some(s.clone())),
            None => self.base.secret(hashlock),
        }
    }
}

/// A whole state in memory: used by replay verification and unit tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemState(pub StateWrites);

impl MemState {
    pub fn apply(&mut self, w: &StateWrites) {
        self.0
            .accounts
            .extend(w.accounts.iter().map(|(k, v)| (*k, *v)));
        self.0
            .channels
            .extend(w.channels.iter().map(|(k, v)| (*k, v.clone())));
        self.0
            .secrets
            .extend(w.secrets.iter().map(|(k, v)| (*k, v.clone())));
    }
}

impl StateRead for MemState {
    fn account(&self, address: &Address) -> Result<Account, StoreError> {
        Ok(self.0.accounts.get(address).copied().unwrap_or_default())
    }
    fn channel(&self, id: &Hash32) -> Result<Option<ChannelRecord>, StoreError> {
        Ok(self.0.channels.get(id).cloned())
    }
    fn secret(&self, hashlock: &Hash32) -> Result<Option<SecretInfo>, StoreError> {
        Ok(self.0.secrets.get(hashlock).cloned())
    }
}

/// `balance (u64 BE) || nonce (u64 BE)`.
pub fn encode_account(a: &Account) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.balance.to_be_bytes());
    out[8..].copy_from_slice(&a.nonce.to_be_bytes());
    out
}

pub fn decode_account(bytes: &[u8]) -> Result<Account, StoreError> {
    let arr: [u8; 16] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        what: "account",
        detail: format!("{} bytes", bytes.len()),
    })?;
    let (b, n) = arr.split_at(8);
    Ok(Account {
        balance: u64::from_be_bytes(b.try_into().unwrap_or_default()),
        nonce: u64::from_be_bytes(n.try_into().unwrap_or_default()),
    })
}

/// The channel record as JSON. serde_json writes struct fields in declaration order, so the bytes
/// are a function of the record alone.
pub fn encode_channel(c: &ChannelRecord) -> Vec<u8> {
    serde_json::to_vec(c).unwrap_or_default()
}

pub fn decode_channel(bytes: &[u8]) -> Result<ChannelRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: "channel",
        detail: e.to_string(),
    })
}

/// `secret (32 bytes) || height (u64 BE)`.
pub fn encode_secret(s: &SecretInfo) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&s.secret.0);
    out[32..].copy_from_slice(&s.height.to_be_bytes());
    out
}

pub fn decode_secret(bytes: &[u8]) -> Result<SecretInfo, StoreError> {
    if bytes.len() != 40 {
        return Err(StoreError::Corrupt {
            what: "secret",
            detail: format!("{} bytes", bytes.len()),
        });
    }
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&bytes[..32]);
    let mut h = [0u8; 8];
    h.copy_from_slice(&bytes[32..]);
    Ok(SecretInfo {
        secret: Hash32(secret),
        height: u64::from_be_bytes(h),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() {
        let a = Account {
            balance: 7,
            nonce: 9,
        };
        assert_eq!(decode_account(&encode_account(&a)).unwrap(), a);
        let s = SecretInfo {
            secret: Hash32([3; 32]),
            height: 44,
        };
        assert_eq!(decode_secret(&encode_secret(&s)).unwrap(), s);
        assert!(decode_account(&[1, 2]).is_err());
    }

    #[test]
    fn rollback_restores_the_checkpoint() {
        let base = MemState::default();
        let mut ov = Overlay::new(&base);
        let a = Address([1; 32]);
        ov.put_account(
            a,
            Account {
                balance: 5,
                nonce: 1,
            },
        );
        ov.checkpoint();
        ov.put_account(
            a,
            Account {
                balance: 1,
                nonce: 1,
            },
        );
        ov.put_account(
            Address([2; 32]),
            Account {
                balance: 4,
                nonce: 0,
            },
        );
        ov.rollback();
        assert_eq!(ov.account(&a).unwrap().balance, 5);
        assert_eq!(ov.writes.accounts.len(), 1);
    }

    #[test]
    fn root_depends_on_prev_and_writes() {
        let mut w = StateWrites::default();
        let zero = Hash32::default();
        let empty = w.next_root(&zero);
        w.accounts.insert(Address([1; 32]), Account::default());
        assert_ne!(w.next_root(&zero), empty);
        assert_ne!(w.next_root(&empty), w.next_root(&zero));
    }
}
