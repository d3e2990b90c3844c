//! What the store holds, as the rest of the hub sees it.

use serde::{Deserialize, Serialize};
use sluice_protocol::{Address, Amount, Hash32, Height, Snapshot};

/// A channel's life on chain, as far as the hub has followed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelPhase {
    Open,
    Closing,
    Settled,
}

impl ChannelPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelPhase::Open => "open",
            ChannelPhase::Closing => "closing",
            ChannelPhase::Settled => "settled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => ChannelPhase::Open,
            "closing" => ChannelPhase::Closing,
            "settled" => ChannelPhase::Settled,
            _ => return None,
        })
    }
}

/// A channel toward the hub: the client is party `a`, the hub party `b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRow {
    pub id: Hash32,
    pub client: Address,
    pub deposit_a: Amount,
    pub deposit_b: Amount,
    pub challenge_period: Height,
    pub phase: ChannelPhase,
    pub snapshot: Snapshot,
    /// The hub's own proposal in flight or in doubt on this channel, if any (see
    /// [`Reservation`]).
    pub pending: Option<Reservation>,
    /// The highest version either side is known to have signed: the next state goes above it.
    pub floor: u64,
    /// Unix seconds of the last change to the row (a committed state, a deposit): how long its
    /// collateral has been idle.
    pub updated_at: u64,
}

impl ChannelRow {
    pub fn version(&self) -> u64 {
        self.snapshot.state().version
    }

    /// The latest co-signed position, as `apply` wants it.
    pub fn position(&self) -> sluice_protocol::Position {
        sluice_protocol::Position {
            state: *self.snapshot.state(),
            locks: self.snapshot.locks.clone(),
        }
    }
}

/// A hub proposal, with the hub's signature, stored (and the channel's floor raised to its
/// version) before that signature leaves the process. While its proposer waits (`until_ms`), no
/// other update runs on the channel. Once the client accepted it, it is committed; once the
/// client rejected it or went silent, it stays here *in doubt* (the client holds the hub's
/// signature and may have co-signed it) until it is dead: superseded by a co-signed higher
/// state (a `Bump` the client co-signs, which the hub sends before its next proposal on the
/// channel, or the client's resync with the completed state), or, for a lock,
/// expired with no secret registered before its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The proposed state and locks; `sig_b` is the hub's, `sig_a` is zero.
    pub snapshot: Snapshot,
    /// Unix milliseconds until which the proposer waits for the client's answer.
    pub until_ms: u64,
}

impl Reservation {
    pub fn version(&self) -> u64 {
        self.snapshot.state().version
    }

    /// Whether the proposer may still be waiting for the client's answer.
    pub fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }

    /// Whether `snap` is the reserved state (its signatures are checked separately).
    pub fn is_completed_by(&self, snap: &Snapshot) -> bool {
        snap.cosigned.state == self.snapshot.cosigned.state && snap.locks == self.snapshot.locks
    }
}

/// A routed payment's progress, as recorded in its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// The payer's lock toward the hub is co-signed.
    Pending,
    /// The hub's lock toward the payee is co-signed.
    Forwarded,
    /// The payee unlocked: the hub knows the secret and is owed by the payer.
    SecretKnown,
    /// The payer's lock is unlocked to the hub.
    Completed,
    /// The payment cannot complete; the payer's lock is (being) released.
    Failed,
}

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Pending => "pending",
            PaymentState::Forwarded => "forwarded",
            PaymentState::SecretKnown => "secret_known",
            PaymentState::Completed => "completed",
            PaymentState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => PaymentState::Pending,
            "forwarded" => PaymentState::Forwarded,
            "secret_known" => PaymentState::SecretKnown,
            "completed" => PaymentState::Completed,
            "failed" => PaymentState::Failed,
            _ => return None,
        })
    }
}

/// A payment's identity: its payee and its hashlock. Two payees' invoices may share a
/// hashlock (anyone can copy one into an invoice of their own); keyed by the hashlock alone,
/// the copy paid first would make the real invoice unpayable through the hub (ATTACKS F15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PaymentKey {
    pub payee: Address,
    pub hashlock: Hash32,
}

/// Where a listing of payments (newest first) left off: the last payment shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentCursor {
    pub created_at: u64,
    pub key: PaymentKey,
}

impl PaymentCursor {
    pub fn of(p: &PaymentRecord) -> Self {
        PaymentCursor {
            created_at: p.created_at,
            key: p.key(),
        }
    }
}

/// `CREATED_AT.HASHLOCK.PAYEE` (decimal, hex, hex): opaque to API users, who only pass it back.
impl std::fmt::Display for PaymentCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.created_at, self.key.hashlock, self.key.payee
        )
    }
}

impl std::str::FromStr for PaymentCursor {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let mut parts = s.split('.');
        let (Some(at), Some(h), Some(p), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(());
        };
        Ok(PaymentCursor {
            // A time the store can hold (a signed 64-bit column).
            created_at: at
                .parse::<i64>()
                .ok()
                .and_then(|t| u64::try_from(t).ok())
                .ok_or(())?,
            key: PaymentKey {
                hashlock: h.parse().map_err(|_| ())?,
                payee: p.parse().map_err(|_| ())?,
            },
        })
    }
}

impl std::fmt::Display for PaymentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.payee, self.hashlock)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentRecord {
    pub hashlock: Hash32,
    pub payer: Address,
    pub payee: Address,
    pub channel_in: Hash32,
    pub channel_out: Option<Hash32>,
    /// What the payee receives.
    pub amount: Amount,
    /// What the payer locked (amount + fee).
    pub amount_in: Amount,
    pub expiry_in: Height,
    pub expiry_out: Option<Height>,
    pub state: PaymentState,
    pub reason: Option<String>,
    /// Never serialized: it is the payer's proof of payment, and the admin API must not hand
    /// it to whoever asks (ATTACKS F16).
    #[serde(skip_serializing)]
    pub secret: Option<Hash32>,
    pub created_at: u64,
    pub updated_at: u64,
}

impl PaymentRecord {
    pub fn key(&self) -> PaymentKey {
        PaymentKey {
            payee: self.payee,
            hashlock: self.hashlock,
        }
    }
}

/// One recorded transition of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentEvent {
    pub state: PaymentState,
    pub reason: Option<String>,
    pub at: u64,
}

/// A payment write that rides in the same transaction as a channel update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentWrite {
    Insert(PaymentRecord),
    Transition {
        key: PaymentKey,
        state: PaymentState,
        reason: Option<String>,
        channel_out: Option<(Hash32, Height)>,
        secret: Option<Hash32>,
    },
}

impl PaymentWrite {
    pub fn to(key: PaymentKey, state: PaymentState) -> Self {
        PaymentWrite::Transition {
            key,
            state,
            reason: None,
            channel_out: None,
            secret: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting to be (re)submitted.
    Queued,
    /// Submitted as `tx_id`; waiting for inclusion.
    Submitted,
    Done,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Submitted => "submitted",
            JobStatus::Done => "done",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "submitted" => JobStatus::Submitted,
            "done" => JobStatus::Done,
            _ => return None,
        })
    }
}

/// What a collateral job moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Deposit `amount` into the channel.
    Deposit,
    /// Withdraw the hub's idle collateral until the hub has withdrawn `amount` in all.
    Reclaim,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Deposit => "deposit",
            JobKind::Reclaim => "reclaim",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "deposit" => JobKind::Deposit,
            "reclaim" => JobKind::Reclaim,
            _ => return None,
        })
    }
}

/// An on-chain collateral move of the hub's on one channel: a deposit it owes, or a reclaim of
/// idle collateral. At most one live job per channel, whatever its kind, so the two never race.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollateralJob {
    pub channel_id: Hash32,
    pub kind: JobKind,
    /// A deposit's amount; for a reclaim, the hub's withdrawn total it brings the channel to.
    pub amount: Amount,
    pub status: JobStatus,
    pub tx_id: Option<Hash32>,
    pub attempts: u64,
    pub last_error: Option<String>,
    /// Unix seconds of the last change (for a submitted job: when it was submitted).
    pub updated_at: u64,
}

/// A change the chain watcher makes; applied with the cursor advance in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainWrite {
    /// A channel opened toward the hub (inserted once; replays are no-ops).
    Opened(Box<ChannelRow>),
    /// `party`'s deposit into the channel now totals `total` (from the `Deposited` event
    /// itself: no chain query per event, so deposit spam costs the hub one write each).
    Deposit {
        id: Hash32,
        party: Address,
        total: Amount,
    },
    Phase {
        id: Hash32,
        phase: ChannelPhase,
    },
}

impl ChainWrite {
    /// The channel it writes.
    pub fn channel(&self) -> &Hash32 {
        match self {
            ChainWrite::Opened(row) => &row.id,
            ChainWrite::Deposit { id, .. } | ChainWrite::Phase { id, .. } => id,
        }
    }
}
