//! What every task of one hub process shares: key, settings, store, sessions, per-channel update
//! locks and the waiters for replies to the hub's own proposals.

use crate::config::HubConfig;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{now_ms, PaymentKey, Store};
use crate::updater::Prepared;
use sluice_chain_client::TxSender;
use sluice_protocol::update::Context;
use sluice_protocol::wire::hub::ErrorCode;
use sluice_protocol::{Address, ChainId, Hash32, Height, Keypair, Signature};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The payee's answer to the hub's lock, for the payment's router task.
pub struct Unlocked {
    /// The secret, or `None` if the payee removed the lock instead.
    pub secret: Option<Hash32>,
    /// The hub's claim on the payer's channel, reserved in the same commit as the unlock.
    pub claim: Option<Prepared>,
}

/// A client's answer to a hub proposal.
#[derive(Debug, Clone)]
pub enum Reply {
    Accept(Signature),
    /// Code, reason, and the highest version the client says it signed.
    Reject(ErrorCode, String, u64),
}

struct Waiter {
    version: u64,
    client: Address,
    tx: oneshot::Sender<Reply>,
}

pub struct Shared {
    pub key: Keypair,
    /// This process among the hub processes sharing the store (random per start).
    pub process: String,
    pub chain_id: ChainId,
    pub cfg: HubConfig,
    pub store: Store,
    pub sessions: Registry,
    pub metrics: Metrics,
    pub chain: Option<Arc<TxSender>>,
    pub connections: AtomicUsize,
    pub inflight_payments: AtomicUsize,
    /// Updates under way, and whether the hub is draining for a stop.
    pub work: Arc<crate::drain::Work>,
    height: AtomicU64,
    /// When `height` was last confirmed by the node (unix ms).
    height_at: AtomicU64,
    channel_locks: Mutex<HashMap<Hash32, Arc<tokio::sync::Mutex<()>>>>,
    /// By channel: the channel lock keeps at most one hub proposal in flight per channel.
    waiters: Mutex<HashMap<Hash32, Waiter>>,
    unlocks: Mutex<HashMap<PaymentKey, oneshot::Sender<Unlocked>>>,
    /// Payments a task of this process is driving (routing, claiming, releasing).
    routing: RoutingSet,
    /// Payments in flight per payer.
    pub payer_slots: PayerSlots,
}

/// The payments tasks of this process drive.
#[derive(Default)]
pub struct RoutingSet(Mutex<HashSet<PaymentKey>>);

impl RoutingSet {
    /// Marks the payment as driven until the guard drops; `None` if it already is.
    pub fn start(&self, key: PaymentKey) -> Option<Routing<'_>> {
        // No guard may be built unless the payment was free (dropping one frees it), and none
        // while the set's lock is held (dropping one takes that lock).
        let fresh = locked(&self.0).insert(key);
        if !fresh {
            return None;
        }
        Some(Routing { set: self, key })
    }

    pub fn contains(&self, key: &PaymentKey) -> bool {
        locked(&self.0).contains(key)
    }
}

/// This process drives the payment while it is held (see [`RoutingSet::start`]).
pub struct Routing<'a> {
    set: &'a RoutingSet,
    key: PaymentKey,
}

impl Drop for Routing<'_> {
    fn drop(&mut self) {
        locked(&self.set.0).remove(&self.key);
    }
}

/// How many payments of each payer this process routes, so that one payer cannot take every
/// routing slot of the hub (ATTACKS F18).
#[derive(Default)]
pub struct PayerSlots(Mutex<HashMap<Address, usize>>);

impl PayerSlots {
    pub fn count(&self, payer: &Address) -> usize {
        locked(&self.0).get(payer).copied().unwrap_or(0)
    }

    /// Counts one payment of `payer` until the slot drops.
    pub fn take(&self, payer: Address) -> PayerSlot<'_> {
        *locked(&self.0).entry(payer).or_default() += 1;
        PayerSlot { slots: self, payer }
    }
}

/// One payment counted against its payer (see [`PayerSlots::take`]).
pub struct PayerSlot<'a> {
    slots: &'a PayerSlots,
    payer: Address,
}

impl Drop for PayerSlot<'_> {
    fn drop(&mut self) {
        let mut map = locked(&self.slots.0);
        if let Some(n) = map.get_mut(&self.payer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.payer);
            }
        }
    }
}

/// A fresh name for this process: its pid, start time and key, hashed.
fn process_id(key: &Keypair) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = format!("{} {nanos} {}", std::process::id(), key.address());
    sluice_protocol::sha256(seed.as_bytes()).to_string()[..16].to_string()
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(
        key: Keypair,
        chain_id: ChainId,
        cfg: HubConfig,
        store: Store,
        metrics: Metrics,
        chain: Option<Arc<TxSender>>,
    ) -> Self {
        Shared {
            process: process_id(&key),
            key,
            chain_id,
            cfg,
            store,
            sessions: Registry::default(),
            metrics,
            chain,
            connections: AtomicUsize::new(0),
            inflight_payments: AtomicUsize::new(0),
            work: Default::default(),
            height: AtomicU64::new(0),
            height_at: AtomicU64::new(0),
            channel_locks: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            unlocks: Mutex::new(HashMap::new()),
            routing: RoutingSet::default(),
            payer_slots: PayerSlots::default(),
        }
    }

    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// The hub's view of the chain height.
    pub fn height(&self) -> Height {
        self.height.load(Ordering::Acquire)
    }

    /// The height, if the node was heard from within `guard.max_height_age_ms` (always, for a
    /// hub without a chain): decisions that depend on lock expiries take it from here.
    pub fn live_height(&self) -> Result<Height, StaleHeight> {
        let age_ms = now_ms().saturating_sub(self.height_at.load(Ordering::Acquire));
        match self.chain.is_some() && age_ms > self.cfg.guard.max_height_age_ms {
            true => Err(StaleHeight { age_ms }),
            false => Ok(self.height()),
        }
    }

    pub fn set_height(&self, h: Height) {
        self.height_at.store(now_ms(), Ordering::Release);
        let prev = self.height.fetch_max(h, Ordering::AcqRel);
        self.metrics.chain_height.set(prev.max(h) as i64);
    }

    /// The update context for a channel with these deposits, at the current height.
    pub fn context(&self, deposit_a: u64, deposit_b: u64) -> Context {
        Context {
            deposit_a,
            deposit_b,
            height: self.height(),
            policy: self.cfg.terms.policy,
        }
    }

    /// The in-process lock that keeps one update in flight per channel.
    pub fn channel_lock(&self, id: &Hash32) -> Arc<tokio::sync::Mutex<()>> {
        locked(&self.channel_locks).entry(*id).or_default().clone()
    }

    /// Registers interest in the client's reply to the hub's proposal of `version`.
    pub fn expect_reply(
        &self,
        channel: Hash32,
        version: u64,
        client: Address,
    ) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        let w = Waiter {
            version,
            client,
            tx,
        };
        locked(&self.waiters).insert(channel, w);
        rx
    }

    /// Whether a hub proposal on `channel` is waiting for the client's reply.
    pub fn proposal_pending(&self, channel: &Hash32) -> bool {
        locked(&self.waiters).contains_key(channel)
    }

    pub fn forget_reply(&self, channel: &Hash32, version: u64) {
        let mut map = locked(&self.waiters);
        if map.get(channel).is_some_and(|w| w.version == version) {
            map.remove(channel);
        }
    }

    /// Hands a reply from `from` to the waiting proposer; false if nobody waits for it.
    pub fn deliver_reply(
        &self,
        from: &Address,
        channel: Hash32,
        version: u64,
        reply: Reply,
    ) -> bool {
        let mut map = locked(&self.waiters);
        match map.get(&channel) {
            Some(w) if w.client == *from && w.version == version => {}
            _ => return false,
        }
        map.remove(&channel)
            .is_some_and(|w| w.tx.send(reply).is_ok())
    }

    /// Waits for the payee's answer to the hub's lock.
    pub fn expect_unlock(&self, key: PaymentKey) -> oneshot::Receiver<Unlocked> {
        let (tx, rx) = oneshot::channel();
        locked(&self.unlocks).insert(key, tx);
        rx
    }

    pub fn forget_unlock(&self, key: &PaymentKey) {
        locked(&self.unlocks).remove(key);
    }

    /// Whether a router task waits for the payee's answer on `key`.
    pub fn unlock_awaited(&self, key: &PaymentKey) -> bool {
        locked(&self.unlocks).contains_key(key)
    }

    /// Hands the payee's answer to the waiting router task; gives it back if nobody waits (the
    /// payment is then driven on by `recovery::payee_answered`).
    pub fn deliver_unlock(&self, key: &PaymentKey, answer: Unlocked) -> Option<Unlocked> {
        match locked(&self.unlocks).remove(key) {
            Some(tx) => tx.send(answer).err(),
            None => Some(answer),
        }
    }

    /// Marks the payment as driven by the caller until the guard drops; `None` if another task
    /// of this process already drives it.
    pub fn start_routing(&self, key: PaymentKey) -> Option<Routing<'_>> {
        self.routing.start(key)
    }

    /// Whether a task of this process drives the payment.
    pub fn is_routing(&self, key: &PaymentKey) -> bool {
        self.routing.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payer_slots_count_until_dropped() {
        let slots = PayerSlots::default();
        let (a, b) = (Address([1; 32]), Address([2; 32]));
        let first = slots.take(a);
        let second = slots.take(a);
        assert_eq!((slots.count(&a), slots.count(&b)), (2, 0));
        drop(first);
        assert_eq!(slots.count(&a), 1);
        drop(second);
        assert_eq!(slots.count(&a), 0);
        assert!(locked(&slots.0).is_empty(), "no entry left behind");
    }

    #[test]
    fn a_payment_is_driven_by_one_task_at_a_time() {
        let set = RoutingSet::default();
        let h = PaymentKey {
            payee: Address([1; 32]),
            hashlock: Hash32([7; 32]),
        };
        let first = set.start(h).expect("free");
        // A second start neither succeeds nor frees the first (nor deadlocks).
        assert!(set.start(h).is_none());
        assert!(set.contains(&h));
        drop(first);
        assert!(!set.contains(&h));
        assert!(set.start(h).is_some());
        // Another payee's invoice with the same hashlock is another payment.
        let other = PaymentKey {
            payee: Address([2; 32]),
            ..h
        };
        let _held = set.start(h).expect("free again");
        assert!(set.start(other).is_some());
    }
}

/// The hub has not heard from the chain node for too long to judge lock expiries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the hub's view of the chain is {age_ms} ms old; retry shortly")]
pub struct StaleHeight {
    pub age_ms: u64,
}
