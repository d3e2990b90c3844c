//! What the wallet tells the app as it happens.
//!
//! Every event that records a change of the wallet's money or channels is appended to the
//! store's event log, with a sequence number, before it is announced (in the same SQLite
//! transaction as the change itself where the wallet commits one): an app that was not
//! listening, or restarted, catches up from its last cursor with [`crate::Wallet::events_since`]
//! or [`crate::Wallet::subscribe_from`]. The connection notices ([`WalletEvent::is_transient`])
//! only go to live subscribers ([`crate::Wallet::subscribe`]).

use crate::error::{Result, WalletError};
use crate::store::{Store, EVENT_PAGE_MAX};
use serde::{Deserialize, Serialize};
use sluice_protocol::{Amount, Hash32, Height};
use std::collections::VecDeque;
use tokio::sync::broadcast;

/// Capacity of the event channels; a live subscriber that falls further behind misses the
/// oldest (an [`EventStream`] reads those back from the store instead).
pub const EVENT_CAPACITY: usize = 1024;

/// Something the app may want to show or act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WalletEvent {
    /// The hub session is up (after a connect or a reconnect and resync). Transient.
    Connected,
    /// The hub session dropped; the wallet reconnects with backoff. Transient.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// An invoice of ours was paid.
    PaymentReceived {
        /// The invoice's hashlock.
        hashlock: Hash32,
        /// Amount received.
        amount: Amount,
    },
    /// A payment we sent completed; `secret` is the proof.
    PaymentSent {
        /// The invoice's hashlock.
        hashlock: Hash32,
        /// The preimage.
        secret: Hash32,
    },
    /// A payment (sent or received) failed; locked funds are back.
    PaymentFailed {
        /// The invoice's hashlock.
        hashlock: Hash32,
        /// Why.
        reason: String,
    },
    /// A channel is closing on chain.
    ChannelClosing {
        /// Channel id.
        channel_id: Hash32,
        /// Version the close was made with.
        version: u64,
        /// First height at which it may settle.
        settle_after: Height,
    },
    /// The wallet challenged a stale close with its newer state.
    ChallengeSubmitted {
        /// Channel id.
        channel_id: Hash32,
        /// Version submitted.
        version: u64,
    },
    /// The wallet registered a payment secret on chain (the hub did not take the unlock).
    SecretRegistered {
        /// The lock's hashlock.
        hashlock: Hash32,
    },
    /// The hub's terms are beyond this wallet's caps; the session was not used. Transient.
    TermsRefused {
        /// Which term and why.
        reason: String,
    },
    /// A withdrawal from a channel was co-signed (ours, or the hub taking back its own
    /// collateral); the channel's balance already shows it.
    WithdrawalAgreed {
        /// Channel id.
        channel_id: Hash32,
        /// Whether the hub withdrew (from its side) rather than this wallet.
        by_hub: bool,
        /// Amount withdrawn.
        amount: Amount,
    },
    /// The chain paid a withdrawal of ours to the wallet's account.
    WithdrawalPaid {
        /// Channel id.
        channel_id: Hash32,
        /// Amount paid.
        amount: Amount,
        /// The paying transaction.
        tx: Hash32,
    },
    /// A channel was paid out on chain.
    Settled {
        /// Channel id.
        channel_id: Hash32,
        /// Paid to this wallet.
        payout_a: Amount,
        /// Paid to the hub.
        payout_b: Amount,
    },
}

impl WalletEvent {
    /// Whether this is a connection notice, announced to live subscribers only and never
    /// stored. `Connected`, `Disconnected` and `TermsRefused` describe the hub session at one
    /// moment and are repeated at every reconnect attempt (every few seconds while the hub is
    /// down or its terms stay refused), which would flood the log with nothing an app needs
    /// later: the current state is [`crate::Wallet::is_connected`], and a refusal of the first
    /// connect is the error [`crate::Wallet::connect`] returns. None of them changes money.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            WalletEvent::Connected
                | WalletEvent::Disconnected { .. }
                | WalletEvent::TermsRefused { .. }
        )
    }
}

/// An event as the store's event log holds it.
///
/// `seq` numbers only grow and are never reused, so an app that keeps the last `seq` it
/// handled resumes exactly there. The log is at-least-once for facts the chain reports: after
/// a restart the chain follower may replay a block and announce a close or settlement again
/// under a new `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When it was stored, in Unix seconds.
    pub at: i64,
    /// The event.
    pub event: WalletEvent,
}

/// Stored events after a cursor, then live ones as they are stored, without a gap or a
/// duplicate; from [`crate::Wallet::subscribe_from`].
///
/// It listens before it reads, and the log is the authority: a live event that does not
/// directly follow the last one delivered (the subscriber lagged, or two tasks announced out
/// of order) makes it read the missing ones back from the store. It keeps working while the
/// wallet that made it runs; once that wallet is dropped, [`EventStream::next`] delivers what
/// is stored and then ends with [`WalletError::Shutdown`].
#[derive(Debug)]
pub struct EventStream {
    store: Store,
    live: broadcast::Receiver<StoredEvent>,
    cursor: u64,
    ready: VecDeque<StoredEvent>,
    caught_up: bool,
}

impl EventStream {
    pub(crate) fn new(store: Store, live: broadcast::Receiver<StoredEvent>, cursor: u64) -> Self {
        EventStream {
            store,
            live,
            cursor,
            ready: VecDeque::new(),
            caught_up: false,
        }
    }

    /// The `seq` of the last event delivered (or the starting cursor): what an app keeps to
    /// resume after a restart.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The next event after the cursor, waiting for it if none is stored yet.
    pub async fn next(&mut self) -> Result<StoredEvent> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                self.cursor = ev.seq;
                return Ok(ev);
            }
            if !self.caught_up {
                self.read_page().await?;
                continue;
            }
            match self.live.recv().await {
                Ok(ev) if ev.seq <= self.cursor => {}
                Ok(ev) if ev.seq == self.cursor + 1 => {
                    self.cursor = ev.seq;
                    return Ok(ev);
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.caught_up = false,
                Err(broadcast::error::RecvError::Closed) => return Err(WalletError::Shutdown),
            }
        }
    }

    /// Reads the next page of the log; caught up once a page comes back short.
    async fn read_page(&mut self) -> Result<()> {
        let page = self.store.events_since(self.cursor, EVENT_PAGE_MAX).await?;
        self.caught_up = page.len() < EVENT_PAGE_MAX as usize;
        self.ready.extend(page);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u8) -> WalletEvent {
        WalletEvent::SecretRegistered {
            hashlock: Hash32([i; 32]),
        }
    }

    async fn append(store: &Store, range: std::ops::RangeInclusive<u8>) -> Vec<StoredEvent> {
        let mut out = Vec::new();
        for i in range {
            out.push(store.append_event(&event(i)).await.unwrap());
        }
        out
    }

    async fn take(stream: &mut EventStream, n: usize) -> Vec<u64> {
        let mut seqs = Vec::new();
        for _ in 0..n {
            seqs.push(stream.next().await.unwrap().seq);
        }
        seqs
    }

    /// Stored events first, then live ones; announcements out of order, repeated or lost to
    /// lag are mended from the log, so each `seq` comes exactly once and in order.
    #[tokio::test]
    async fn a_stream_has_no_gap_and_no_duplicate_whatever_the_broadcast_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("wallet.db")).await.unwrap();
        let (tx, _) = broadcast::channel(2);
        let first = append(&store, 1..=3).await;
        let mut stream = EventStream::new(store.clone(), tx.subscribe(), 0);
        for s in [&first[2], &first[0], &first[1]] {
            let _ = tx.send(s.clone());
        }
        assert_eq!(take(&mut stream, 3).await, vec![1, 2, 3]);

        let later = append(&store, 4..=5).await;
        let _ = tx.send(later[1].clone());
        let _ = tx.send(later[0].clone());
        assert_eq!(take(&mut stream, 2).await, vec![4, 5]);

        for s in append(&store, 6..=10).await {
            let _ = tx.send(s);
        }
        assert_eq!(take(&mut stream, 5).await, vec![6, 7, 8, 9, 10]);
        assert_eq!(stream.cursor(), 10);

        let live = append(&store, 11..=11).await.remove(0);
        let _ = tx.send(live.clone());
        assert_eq!(stream.next().await.unwrap(), live);

        drop(tx);
        assert!(matches!(stream.next().await, Err(WalletError::Shutdown)));
    }

    #[tokio::test]
    async fn a_stream_resumes_after_its_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("wallet.db")).await.unwrap();
        let (tx, _) = broadcast::channel(8);
        append(&store, 1..=4).await;
        let mut stream = EventStream::new(store, tx.subscribe(), 2);
        assert_eq!(take(&mut stream, 2).await, vec![3, 4]);
    }

    #[test]
    fn events_read_back_as_they_were_written() {
        let ev = WalletEvent::PaymentFailed {
            hashlock: Hash32([3; 32]),
            reason: "payee is offline".into(),
        };
        let stored = StoredEvent {
            seq: 7,
            at: 1,
            event: ev,
        };
        let json = serde_json::to_string(&stored).unwrap();
        assert_eq!(serde_json::from_str::<StoredEvent>(&json).unwrap(), stored);
        assert!(WalletEvent::Connected.is_transient());
        assert!(!stored.event.is_transient());
    }
}
