//! Pending transactions: admission rules, ordering, replace-by-fee and eviction.
//!
//! - **Order.** Per sender by nonce; across senders by fee (higher first, then arrival).
//! - **Nonces.** A transaction below the account nonce is a replay; one more than
//!   `max_nonce_gap` above it is refused. Gapped transactions wait until the gap fills.
//! - **Balance.** A sender's pending costs (amount + fee) together must fit its balance.
//! - **Replace-by-fee.** Same sender and nonce replaces the pending one if the fee rises by at
//!   least 10% (and at least 1).
//! - **Caps.** Past the per-account or global cap, a transaction is admitted only by evicting
//!   the lowest-fee one (per account: of that sender; global: of anyone) with a strictly lower
//!   fee; an evicted transaction takes its sender's later nonces with it, as they could no longer
//!   execute. Past the global cap, a gapped transaction (one that cannot execute yet) goes
//!   before any executable one, whatever its fee: an executable newcomer evicts the cheapest
//!   gapped one, so a pool stuffed with gapped transactions still takes a minimum-fee
//!   `Challenge` (ATTACKS F4).
//! - **Age.** A gapped transaction lives at most `max_gapped_blocks` commits; then it goes.
//!
//! Signatures are checked before admission ([`VerifiedTx`]); the pool only holds verified ones.

use crate::sigverify::VerifiedTx;
use sluice_protocol::amount::{self, Amount};
use sluice_protocol::rpc::Account;
use sluice_protocol::{Address, ChainId, Hash32, TxKind};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolLimits {
    pub max_txs: usize,
    pub max_per_account: usize,
    pub max_nonce_gap: u64,
    /// Commits a gapped transaction may wait for its gap to fill.
    pub max_gapped_blocks: u64,
}

/// Chain rules the pool checks at the door.
#[derive(Debug, Clone, Copy)]
pub struct AdmitRules {
    pub chain_id: ChainId,
    pub min_fee: Amount,
}

/// Why a transaction was refused. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("wrong chain id {got}, this chain is {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("fee {fee} below the minimum {min}")]
    FeeTooLow { fee: Amount, min: Amount },
    #[error("amount plus fee overflows")]
    CostOverflow,
    #[error("{0} is not a valid account key")]
    InvalidAddress(Address),
    #[error("transaction {0} is already pending")]
    AlreadyKnown(Hash32),
    #[error("nonce {got} already used: the account's next nonce is {next}")]
    NonceTooLow { got: u64, next: u64 },
    #[error("nonce {got} is too far ahead: the account's next nonce is {next}, max gap {max_gap}")]
    NonceGap { got: u64, next: u64, max_gap: u64 },
    #[error("replacement fee {got} too low: must be at least {need}")]
    ReplacementUnderpriced { got: Amount, need: Amount },
    #[error("insufficient balance: pending costs {need} exceed balance {have}")]
    InsufficientBalance { need: Amount, have: Amount },
    #[error("sender has {0} pending transactions and none with a lower fee to evict")]
    AccountFull(usize),
    #[error("mempool is full ({0} transactions) and none has a lower fee to evict")]
    PoolFull(usize),
}

#[derive(Debug, Clone)]
struct Entry {
    tx: Arc<VerifiedTx>,
    fee: Amount,
    cost: Amount,
    seq: u64,
    /// The pool's commit count when it was admitted (its age, in blocks).
    born: u64,
    /// When the slot was first taken (Unix ms): a replacement keeps its predecessor's arrival.
    arrived_ms: u64,
}

#[derive(Debug, Default)]
struct Sender {
    /// The account's committed nonce, as last read from the ledger or a committed block.
    base_nonce: u64,
    txs: BTreeMap<u64, Entry>,
}

/// Eviction order: lowest fee first; among equal fees the newest goes first.
type FeeKey = (Amount, Reverse<u64>, Address, u64);

#[derive(Debug)]
pub struct Mempool {
    limits: MempoolLimits,
    senders: HashMap<Address, Sender>,
    ids: HashMap<Hash32, (Address, u64)>,
    by_fee: BTreeSet<FeeKey>,
    next_seq: u64,
    /// Blocks committed since the pool started.
    commits: u64,
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Self {
        Mempool {
            limits,
            senders: HashMap::new(),
            ids: HashMap::new(),
            by_fee: BTreeSet::new(),
            next_seq: 0,
            commits: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, id: &Hash32) -> bool {
        self.ids.contains_key(id)
    }

    /// The pending transaction with this id, already verified at admission.
    pub fn get(&self, id: &Hash32) -> Option<Arc<VerifiedTx>> {
        let (addr, nonce) = self.ids.get(id)?;
        self.senders.get(addr)?.txs.get(nonce).map(|e| e.tx.clone())
    }

    /// Checks that need no state: chain, fee, cost, addresses.
    pub fn stateless_checks(tx: &VerifiedTx, rules: &AdmitRules) -> Result<Amount, AdmitError> {
        let t = &tx.tx.tx;
        if t.chain_id != rules.chain_id {
            return Err(AdmitError::WrongChain {
                expected: rules.chain_id,
                got: t.chain_id,
            });
        }
        if t.fee < rules.min_fee {
            return Err(AdmitError::FeeTooLow {
                fee: t.fee,
                min: rules.min_fee,
            });
        }
        match &t.kind {
            TxKind::Transfer { to, .. } if !to.is_valid_key() => {
                return Err(AdmitError::InvalidAddress(*to))
            }
            TxKind::OpenChannel { counterparty, .. } if !counterparty.is_valid_key() => {
                return Err(AdmitError::InvalidAddress(*counterparty))
            }
            _ => {}
        }
        t.total_cost().map_err(|_| AdmitError::CostOverflow)
    }

    /// Admits `tx`, arriving at `now_ms`, given its sender's committed `account`. Returns the
    /// ids it evicted.
    pub fn admit(
        &mut self,
        tx: VerifiedTx,
        account: Account,
        rules: &AdmitRules,
        now_ms: u64,
    ) -> Result<Vec<Hash32>, AdmitError> {
        let cost = Self::stateless_checks(&tx, rules)?;
        if self.ids.contains_key(&tx.id) {
            return Err(AdmitError::AlreadyKnown(tx.id));
        }
        let (from, nonce, fee) = (tx.tx.tx.from, tx.tx.tx.nonce, tx.tx.tx.fee);
        self.check_nonce(nonce, account.nonce)?;
        self.observe_nonce(&from, account.nonce);
        let queued = self.senders.get(&from).map(|s| &s.txs);
        let replaced = queued.and_then(|q| q.get(&nonce)).cloned();
        if let Some(old) = &replaced {
            let need = old.fee.saturating_add((old.fee / 10).max(1));
            if fee < need {
                return Err(AdmitError::ReplacementUnderpriced { got: fee, need });
            }
        }
        let pending = queued
            .into_iter()
            .flat_map(|q| q.values())
            .filter(|e| e.tx.tx.tx.nonce != nonce)
            .try_fold(cost, |acc, e| amount::add(acc, e.cost))
            .map_err(|_| AdmitError::CostOverflow)?;
        if pending > account.balance {
            return Err(AdmitError::InsufficientBalance {
                need: pending,
                have: account.balance,
            });
        }
        let mut evicted = Vec::new();
        let mut arrived_ms = now_ms;
        if let Some(old) = replaced {
            self.remove_one(&from, old.tx.tx.tx.nonce);
            evicted.push(old.tx.id);
            arrived_ms = arrived_ms.min(old.arrived_ms);
        } else {
            let executable = self.would_execute(&from, nonce, account.nonce);
            self.make_room(&from, fee, executable, &mut evicted)?;
        }
        self.insert(tx, fee, cost, account.nonce, arrived_ms);
        Ok(evicted)
    }

    /// Records `addr`'s committed nonce and drops its transactions below it.
    fn observe_nonce(&mut self, addr: &Address, committed: u64) {
        let stale: Vec<u64> = match self.senders.get_mut(addr) {
            Some(s) => {
                s.base_nonce = committed;
                s.txs.range(..committed).map(|(n, _)| *n).collect()
            }
            None => return,
        };
        for n in stale {
            self.remove_one(addr, n);
        }
    }

    fn check_nonce(&self, nonce: u64, next: u64) -> Result<(), AdmitError> {
        if nonce < next {
            return Err(AdmitError::NonceTooLow { got: nonce, next });
        }
        if nonce - next > self.limits.max_nonce_gap {
            return Err(AdmitError::NonceGap {
                got: nonce,
                next,
                max_gap: self.limits.max_nonce_gap,
            });
        }
        Ok(())
    }

    /// Whether `from`'s transaction at `nonce` could execute now: every nonce from the
    /// account's one up to it is there.
    fn would_execute(&self, from: &Address, nonce: u64, base: u64) -> bool {
        let txs = self.senders.get(from).map(|s| &s.txs);
        (base..nonce).all(|n| txs.is_some_and(|t| t.contains_key(&n)))
    }

    /// Whether the pending transaction of `addr` at `nonce` waits for a gap to fill.
    fn is_gapped(&self, addr: &Address, nonce: u64) -> bool {
        let Some(s) = self.senders.get(addr) else {
            return false;
        };
        !(s.base_nonce..nonce).all(|n| s.txs.contains_key(&n))
    }

    /// The cheapest gapped transaction (the newest among equal fees), below `fee` unless the
    /// newcomer is executable.
    fn gapped_victim(&self, fee: Amount, executable: bool) -> Option<(Address, u64)> {
        self.by_fee
            .iter()
            .take_while(|k| executable || k.0 < fee)
            .find(|k| self.is_gapped(&k.2, k.3))
            .map(|k| (k.2, k.3))
    }

    /// Frees a slot for a new transaction from `from` paying `fee`, evicting if the caps demand.
    fn make_room(
        &mut self,
        from: &Address,
        fee: Amount,
        executable: bool,
        evicted: &mut Vec<Hash32>,
    ) -> Result<(), AdmitError> {
        let count = self.senders.get(from).map_or(0, |s| s.txs.len());
        if count >= self.limits.max_per_account {
            let victim = self
                .senders
                .get(from)
                .and_then(|s| s.txs.values().min_by_key(|e| (e.fee, Reverse(e.seq))))
                .filter(|e| e.fee < fee)
                .map(|e| e.tx.tx.tx.nonce)
                .ok_or(AdmitError::AccountFull(count))?;
            self.evict_from(from, victim, evicted);
        }
        if self.len() >= self.limits.max_txs {
            if let Some((vaddr, vnonce)) = self.gapped_victim(fee, executable) {
                self.evict_from(&vaddr, vnonce, evicted);
                return Ok(());
            }
            let (vfee, _, vaddr, vnonce) = *self
                .by_fee
                .first()
                .filter(|k| k.0 < fee)
                .ok_or(AdmitError::PoolFull(self.len()))?;
            debug_assert!(vfee < fee);
            self.evict_from(&vaddr, vnonce, evicted);
        }
        Ok(())
    }

    /// Evicts `addr`'s transaction at `victim` and its later nonces.
    fn evict_from(&mut self, addr: &Address, victim: u64, evicted: &mut Vec<Hash32>) {
        let nonces: Vec<u64> = self
            .senders
            .get(addr)
            .map(|s| s.txs.range(victim..).map(|(n, _)| *n).collect())
            .unwrap_or_default();
        for n in nonces {
            if let Some(e) = self.remove_one(addr, n) {
                evicted.push(e.tx.id);
            }
        }
    }

    fn insert(
        &mut self,
        tx: VerifiedTx,
        fee: Amount,
        cost: Amount,
        base_nonce: u64,
        arrived_ms: u64,
    ) {
        let (from, nonce) = (tx.tx.tx.from, tx.tx.tx.nonce);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ids.insert(tx.id, (from, nonce));
        self.by_fee.insert((fee, Reverse(seq), from, nonce));
        let entry = Entry {
            tx: Arc::new(tx),
            fee,
            cost,
            seq,
            born: self.commits,
            arrived_ms,
        };
        let sender = self.senders.entry(from).or_default();
        sender.base_nonce = base_nonce;
        sender.txs.insert(nonce, entry);
    }

    fn remove_one(&mut self, addr: &Address, nonce: u64) -> Option<Entry> {
        let sender = self.senders.get_mut(addr)?;
        let e = sender.txs.remove(&nonce)?;
        if sender.txs.is_empty() {
            self.senders.remove(addr);
        }
        self.ids.remove(&e.tx.id);
        self.by_fee.remove(&(e.fee, Reverse(e.seq), *addr, nonce));
        Some(e)
    }

    /// When the longest-waiting transaction that could execute now arrived (Unix ms): the
    /// earliest arrival among each sender's next nonce. Gapped transactions are not counted;
    /// they wait for their sender, not for the chain.
    pub fn oldest_executable_ms(&self) -> Option<u64> {
        self.senders
            .values()
            .filter_map(|s| s.txs.get(&s.base_nonce))
            .map(|e| e.arrived_ms)
            .min()
    }

    /// Up to `max` executable transactions: each sender's run of consecutive nonces from its
    /// account nonce, interleaved across senders by fee (highest first, then arrival).
    pub fn select(&self, max: usize) -> Vec<Arc<VerifiedTx>> {
        let mut heap = BinaryHeap::new();
        for (addr, s) in &self.senders {
            if let Some(e) = s.txs.get(&s.base_nonce) {
                heap.push((e.fee, Reverse(e.seq), *addr, s.base_nonce));
            }
        }
        let mut out = Vec::with_capacity(max.min(self.len()));
        while out.len() < max {
            let Some((_, _, addr, nonce)) = heap.pop() else {
                break;
            };
            let Some(s) = self.senders.get(&addr) else {
                continue;
            };
            let Some(e) = s.txs.get(&nonce) else { continue };
            out.push(e.tx.clone());
            if let Some(next) = nonce.checked_add(1).and_then(|n| s.txs.get(&n)) {
                heap.push((next.fee, Reverse(next.seq), addr, nonce + 1));
            }
        }
        out
    }

    /// After a commit: records each touched account's new nonce, drops what it made stale, and
    /// drops transactions the block could not include.
    pub fn on_commit<'a>(
        &mut self,
        accounts: impl IntoIterator<Item = (&'a Address, &'a Account)>,
        skipped: &[Hash32],
    ) {
        self.commits += 1;
        for (addr, acct) in accounts {
            self.observe_nonce(addr, acct.nonce);
        }
        for id in skipped {
            if let Some((addr, nonce)) = self.ids.get(id).copied() {
                self.remove_one(&addr, nonce);
            }
        }
        self.drop_old_gapped();
    }

    /// Gapped transactions older than `max_gapped_blocks` commits go (with their later nonces).
    fn drop_old_gapped(&mut self) {
        let max_age = self.limits.max_gapped_blocks;
        let mut old = Vec::new();
        for (addr, s) in &self.senders {
            // Past the first missing nonce, every transaction of the sender is gapped.
            let mut next = s.base_nonce;
            let mut gapped = s.txs.iter().skip_while(|(n, _)| {
                let run = **n == next;
                next += 1;
                run
            });
            if let Some((n, _)) =
                gapped.find(|(_, e)| self.commits.saturating_sub(e.born) > max_age)
            {
                old.push((*addr, *n));
            }
        }
        let mut evicted = Vec::new();
        for (addr, nonce) in old {
            self.evict_from(&addr, nonce, &mut evicted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::encoding::Canonical;
    use sluice_protocol::{Keypair, Transaction};

    const RULES: AdmitRules = AdmitRules {
        chain_id: 1,
        min_fee: 1,
    };

    fn key(n: u8) -> Keypair {
        Keypair::from_secret(&[n; 32]).unwrap()
    }

    fn tx(k: &Keypair, nonce: u64, fee: u64, amount: u64) -> VerifiedTx {
        let stx = Transaction {
            chain_id: 1,
            from: k.address(),
            nonce,
            fee,
            kind: TxKind::Transfer {
                to: key(99).address(),
                amount,
            },
        }
        .sign(k);
        VerifiedTx::check(stx.to_bytes(), 1 << 16).unwrap()
    }

    fn acct(balance: u64, nonce: u64) -> Account {
        Account { balance, nonce }
    }

    fn pool(max_txs: usize, per: usize) -> Mempool {
        Mempool::new(MempoolLimits {
            max_txs,
            max_per_account: per,
            max_nonce_gap: 4,
            max_gapped_blocks: 3,
        })
    }

    #[test]
    fn nonce_rules() {
        let mut p = pool(100, 10);
        let k = key(1);
        let a = acct(1000, 3);
        assert_eq!(
            p.admit(tx(&k, 2, 1, 1), a, &RULES, 0),
            Err(AdmitError::NonceTooLow { got: 2, next: 3 })
        );
        assert!(matches!(
            p.admit(tx(&k, 8, 1, 1), a, &RULES, 0),
            Err(AdmitError::NonceGap { .. })
        ));
        let t = tx(&k, 3, 1, 1);
        let id = t.id;
        p.admit(t.clone(), a, &RULES, 0).unwrap();
        assert_eq!(p.admit(t, a, &RULES, 0), Err(AdmitError::AlreadyKnown(id)));
    }

    #[test]
    fn balance_counts_pending() {
        let mut p = pool(100, 10);
        let k = key(1);
        p.admit(tx(&k, 0, 1, 50), acct(100, 0), &RULES, 0).unwrap();
        assert_eq!(
            p.admit(tx(&k, 1, 1, 50), acct(100, 0), &RULES, 0),
            Err(AdmitError::InsufficientBalance {
                need: 102,
                have: 100
            })
        );
    }

    #[test]
    fn a_pool_stuffed_with_gapped_transactions_still_takes_a_minimum_fee_one() {
        let mut p = pool(4, 10);
        // Four senders each park a high-fee transaction one nonce ahead: none can execute.
        for n in 1..=4 {
            p.admit(tx(&key(n), 1, 1_000, 1), acct(10_000, 0), &RULES, 0)
                .unwrap();
        }
        assert_eq!(p.len(), 4);
        assert!(p.select(10).is_empty());
        // A minimum-fee executable transaction evicts one of them.
        let urgent = tx(&key(9), 0, 1, 1);
        let id = urgent.id;
        let evicted = p.admit(urgent, acct(100, 0), &RULES, 0).unwrap();
        assert_eq!(evicted.len(), 1);
        assert_eq!(
            p.select(10).iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![id]
        );
        // A gapped newcomer may not push out the executable one, only a cheaper gapped one.
        let gapped = tx(&key(10), 2, 1, 1);
        assert_eq!(
            p.admit(gapped, acct(100, 0), &RULES, 0),
            Err(AdmitError::PoolFull(4))
        );
        assert!(p.contains(&id));
    }

    #[test]
    fn gapped_transactions_expire_after_a_bounded_number_of_blocks() {
        let mut p = pool(100, 10);
        let (k, other) = (key(1), key(2));
        p.admit(tx(&k, 1, 5, 1), acct(100, 0), &RULES, 0).unwrap();
        p.admit(tx(&other, 0, 5, 1), acct(100, 0), &RULES, 0)
            .unwrap();
        for _ in 0..3 {
            p.on_commit(std::iter::empty(), &[]);
        }
        assert_eq!(p.len(), 2, "still within its time");
        p.on_commit(std::iter::empty(), &[]);
        assert_eq!(p.len(), 1, "the gapped one went; the executable one stays");
        assert_eq!(p.select(10)[0].tx.tx.from, other.address());
    }

    #[test]
    fn replace_by_fee() {
        let mut p = pool(100, 10);
        let k = key(1);
        p.admit(tx(&k, 0, 10, 5), acct(100, 0), &RULES, 0).unwrap();
        assert_eq!(
            p.admit(tx(&k, 0, 10, 6), acct(100, 0), &RULES, 0),
            Err(AdmitError::ReplacementUnderpriced { got: 10, need: 11 })
        );
        let evicted = p.admit(tx(&k, 0, 11, 6), acct(100, 0), &RULES, 0).unwrap();
        assert_eq!(evicted.len(), 1);
        assert_eq!(p.len(), 1);
        assert_eq!(p.select(10)[0].tx.tx.fee, 11);
    }

    #[test]
    fn selection_orders_by_nonce_then_fee() {
        let mut p = pool(100, 10);
        let (k1, k2) = (key(1), key(2));
        p.admit(tx(&k1, 1, 100, 1), acct(1000, 0), &RULES, 0)
            .unwrap();
        p.admit(tx(&k1, 0, 1, 1), acct(1000, 0), &RULES, 0).unwrap();
        p.admit(tx(&k2, 0, 50, 1), acct(1000, 0), &RULES, 0)
            .unwrap();
        p.admit(tx(&k2, 3, 500, 1), acct(1000, 0), &RULES, 0)
            .unwrap(); // gapped: waits
        let sel: Vec<(Address, u64)> = p
            .select(10)
            .iter()
            .map(|t| (t.tx.tx.from, t.tx.tx.nonce))
            .collect();
        assert_eq!(
            sel,
            vec![(k2.address(), 0), (k1.address(), 0), (k1.address(), 1)]
        );
    }

    #[test]
    fn caps_evict_lowest_fee() {
        let mut p = pool(2, 10);
        let (k1, k2, k3) = (key(1), key(2), key(3));
        p.admit(tx(&k1, 0, 5, 1), acct(100, 0), &RULES, 0).unwrap();
        p.admit(tx(&k2, 0, 3, 1), acct(100, 0), &RULES, 0).unwrap();
        assert_eq!(
            p.admit(tx(&k3, 0, 3, 1), acct(100, 0), &RULES, 0),
            Err(AdmitError::PoolFull(2))
        );
        let ev = p.admit(tx(&k3, 0, 4, 1), acct(100, 0), &RULES, 0).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(p.len(), 2);

        let mut p = pool(100, 2);
        p.admit(tx(&k1, 0, 5, 1), acct(100, 0), &RULES, 0).unwrap();
        p.admit(tx(&k1, 1, 2, 1), acct(100, 0), &RULES, 0).unwrap();
        assert_eq!(
            p.admit(tx(&k1, 2, 2, 1), acct(100, 0), &RULES, 0),
            Err(AdmitError::AccountFull(2))
        );
        assert_eq!(
            p.admit(tx(&k1, 2, 3, 1), acct(100, 0), &RULES, 0)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn commit_prunes_stale_and_skipped() {
        let mut p = pool(100, 10);
        let k = key(1);
        p.admit(tx(&k, 0, 1, 1), acct(100, 0), &RULES, 0).unwrap();
        let t1 = tx(&k, 1, 1, 1);
        p.admit(t1.clone(), acct(100, 0), &RULES, 0).unwrap();
        p.on_commit([(&k.address(), &acct(98, 1))], &[]);
        assert_eq!(p.len(), 1);
        assert_eq!(p.select(10)[0].id, t1.id);
        p.on_commit(std::iter::empty(), &[t1.id]);
        assert!(p.is_empty());
    }

    #[test]
    fn the_oldest_wait_counts_executable_transactions_and_survives_replacement() {
        let mut p = pool(100, 10);
        let (k1, k2) = (key(1), key(2));
        assert_eq!(p.oldest_executable_ms(), None);
        p.admit(tx(&k1, 3, 1, 1), acct(100, 0), &RULES, 10).unwrap(); // gapped
        assert_eq!(
            p.oldest_executable_ms(),
            None,
            "a gapped one waits for its sender"
        );
        p.admit(tx(&k2, 0, 1, 1), acct(100, 0), &RULES, 20).unwrap();
        p.admit(tx(&k1, 0, 1, 1), acct(100, 0), &RULES, 30).unwrap();
        assert_eq!(p.oldest_executable_ms(), Some(20));
        p.admit(tx(&k2, 0, 5, 1), acct(100, 0), &RULES, 40).unwrap(); // replace by fee
        assert_eq!(
            p.oldest_executable_ms(),
            Some(20),
            "the slot has waited since 20"
        );
        p.on_commit([(&k2.address(), &acct(94, 1))], &[]);
        assert_eq!(p.oldest_executable_ms(), Some(30));
    }
}
