//! Payments sent and received, keyed by hashlock and direction.

use super::events::append_in;
use super::{amount, now, parse, Store};
use crate::error::Result;
use crate::events::{StoredEvent, WalletEvent};
use sluice_protocol::{Amount, Hash32};

/// Which way a payment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentDirection {
    /// This wallet pays.
    Out,
    /// This wallet is paid.
    In,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Locked, not yet resolved.
    Pending,
    /// Done; for outgoing payments the secret is the proof.
    Completed,
    /// Did not happen; locked funds are back.
    Failed,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),* }) => {
        impl $t {
            /// The stored name.
            pub fn as_str(self) -> &'static str { match self { $(Self::$v => $s),* } }
        }
        impl std::str::FromStr for $t {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> { match s { $($s => Ok(Self::$v),)* _ => Err(()) } }
        }
    };
}
text_enum!(PaymentDirection { Out => "out", In => "in" });
text_enum!(PaymentStatus { Pending => "pending", Completed => "completed", Failed => "failed" });

/// One payment as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentRow {
    /// The payment's hashlock.
    pub hashlock: Hash32,
    /// Sent or received.
    pub direction: PaymentDirection,
    /// The channel its lock lives in.
    pub channel_id: Hash32,
    /// Amount the payee gets.
    pub amount: Amount,
    /// Hub fee paid on top (outgoing only).
    pub fee: Amount,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The preimage once known (the proof of payment).
    pub secret: Option<Hash32>,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// The invoice string (outgoing only).
    pub invoice: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct Raw {
    hashlock: String,
    direction: String,
    channel_id: String,
    amount: i64,
    fee: i64,
    status: String,
    secret: Option<String>,
    reason: Option<String>,
    invoice: Option<String>,
    created_at: i64,
}

impl Raw {
    fn into_row(self) -> Result<PaymentRow> {
        Ok(PaymentRow {
            hashlock: parse("hashlock", &self.hashlock)?,
            direction: parse("direction", &self.direction)?,
            channel_id: parse("channel id", &self.channel_id)?,
            amount: amount("amount", self.amount)?,
            fee: amount("fee", self.fee)?,
            status: parse("payment status", &self.status)?,
            secret: self.secret.map(|s| parse("secret", &s)).transpose()?,
            reason: self.reason,
            invoice: self.invoice,
            created_at: self.created_at,
        })
    }
}

const COLUMNS: &str =
    "hashlock, direction, channel_id, amount, fee, status, secret, reason, invoice, created_at";

impl Store {
    /// Records a payment about to be proposed; stored before anything is signed for it.
    pub async fn insert_payment(&self, p: &PaymentRow) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        insert_payment_in(&mut tx, p).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One payment.
    pub async fn payment(
        &self,
        hashlock: &Hash32,
        direction: PaymentDirection,
    ) -> Result<Option<PaymentRow>> {
        let q = format!("SELECT {COLUMNS} FROM payments WHERE hashlock = ? AND direction = ?");
        let raw: Option<Raw> = sqlx::query_as(&q)
            .bind(hashlock.to_string())
            .bind(direction.as_str())
            .fetch_optional(self.pool())
            .await?;
        raw.map(Raw::into_row).transpose()
    }

    /// Every payment, newest first.
    pub async fn payments(&self) -> Result<Vec<PaymentRow>> {
        let q = format!("SELECT {COLUMNS} FROM payments ORDER BY created_at DESC, hashlock");
        let raws: Vec<Raw> = sqlx::query_as(&q).fetch_all(self.pool()).await?;
        raws.into_iter().map(Raw::into_row).collect()
    }

    /// Pending payments of one channel.
    pub async fn pending_payments(&self, channel_id: &Hash32) -> Result<Vec<PaymentRow>> {
        let q =
            format!("SELECT {COLUMNS} FROM payments WHERE channel_id = ? AND status = 'pending'");
        let raws: Vec<Raw> = sqlx::query_as(&q)
            .bind(channel_id.to_string())
            .fetch_all(self.pool())
            .await?;
        raws.into_iter().map(Raw::into_row).collect()
    }

    /// Marks a pending payment failed (outside an update, e.g. refused before any lock) and logs
    /// its `PaymentFailed` event in the same transaction. Returns the event to announce, or
    /// `None` if the payment was no longer pending (nothing changed, nothing to announce).
    pub async fn fail_payment(
        &self,
        hashlock: &Hash32,
        direction: PaymentDirection,
        reason: &str,
    ) -> Result<Option<StoredEvent>> {
        let failed = PaymentStatus::Failed;
        let event = WalletEvent::PaymentFailed {
            hashlock: *hashlock,
            reason: reason.to_string(),
        };
        self.resolve(hashlock, direction, (failed, None, Some(reason)), event)
            .await
    }

    /// Moves a pending payment to its outcome and logs `event` with it, in one transaction.
    async fn resolve(
        &self,
        hashlock: &Hash32,
        direction: PaymentDirection,
        (status, secret, reason): (PaymentStatus, Option<&Hash32>, Option<&str>),
        event: WalletEvent,
    ) -> Result<Option<StoredEvent>> {
        let mut tx = self.pool().begin().await?;
        if !set_status_in(&mut tx, hashlock, direction, status, secret, reason).await? {
            return Ok(None);
        }
        let stored = append_in(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(stored.into_iter().next())
    }

    /// Remembers the hub's reason for a failure it announced, before the lock is removed.
    pub async fn note_payment_reason(&self, hashlock: &Hash32, reason: &str) -> Result<()> {
        sqlx::query("UPDATE payments SET reason = ? WHERE hashlock = ? AND direction = 'out'")
            .bind(reason)
            .bind(hashlock.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

pub(crate) async fn insert_payment_in(
    tx: &mut sqlx::SqliteConnection,
    p: &PaymentRow,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO payments (hashlock, direction, channel_id, amount, fee, status, secret, \
         reason, invoice, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT(hashlock, direction) DO UPDATE SET channel_id = excluded.channel_id, \
         amount = excluded.amount, fee = excluded.fee, status = excluded.status, \
         reason = NULL, updated_at = excluded.updated_at",
    )
    .bind(p.hashlock.to_string())
    .bind(p.direction.as_str())
    .bind(p.channel_id.to_string())
    .bind(p.amount as i64)
    .bind(p.fee as i64)
    .bind(p.status.as_str())
    .bind(p.secret.map(|s| s.to_string()))
    .bind(p.reason.as_deref())
    .bind(p.invoice.as_deref())
    .bind(p.created_at)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Moves a *pending* payment to `status`; a payment already resolved stays as it is. Returns
/// whether it moved.
pub(crate) async fn set_status_in(
    tx: &mut sqlx::SqliteConnection,
    hashlock: &Hash32,
    direction: PaymentDirection,
    status: PaymentStatus,
    secret: Option<&Hash32>,
    reason: Option<&str>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE payments SET status = ?, secret = COALESCE(?, secret), \
         reason = COALESCE(?, reason), updated_at = ? \
         WHERE hashlock = ? AND direction = ? AND status = 'pending'",
    )
    .bind(status.as_str())
    .bind(secret.map(|s| s.to_string()))
    .bind(reason)
    .bind(now())
    .bind(hashlock.to_string())
    .bind(direction.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    /// Completes a pending outgoing payment whose secret was learned from the chain, logging its
    /// `PaymentSent` event in the same transaction; returns the event to announce, or `None` if
    /// the payment was no longer pending.
    pub async fn complete_payment(
        &self,
        hashlock: &Hash32,
        secret: &Hash32,
    ) -> Result<Option<StoredEvent>> {
        let done = PaymentStatus::Completed;
        let event = WalletEvent::PaymentSent {
            hashlock: *hashlock,
            secret: *secret,
        };
        let out = PaymentDirection::Out;
        self.resolve(hashlock, out, (done, Some(secret), None), event)
            .await
    }
}
