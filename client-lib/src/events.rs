//! What the wallet tells the app as it happens, over a tokio broadcast channel.

use serde::Serialize;
use sluice_protocol::{Amount, Hash32, Height};

/// Capacity of the event channel; a subscriber that falls further behind misses the oldest.
pub const EVENT_CAPACITY: usize = 1024;

/// Something the app may want to show or act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WalletEvent {
    /// The hub session is up (after a connect or a reconnect and resync).
    Connected,
    /// The hub session dropped; the wallet reconnects with backoff.
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
    /// The hub's terms are beyond this wallet's caps; the session was not used.
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
