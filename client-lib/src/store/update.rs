//! Committing a new co-signed state: the snapshot, every payment or invoice change it causes,
//! the events that announce them and the watchtower appointments it needs, in one SQLite
//! transaction (a crash leaves either all of it or none).

use super::events::append_in;
use super::payments::{insert_payment_in, set_status_in};
use super::{to_json, ChannelStatus, PaymentDirection, PaymentRow, PaymentStatus, Store};
use crate::error::Result;
use crate::events::{StoredEvent, WalletEvent};
use sluice_protocol::wire::tower::Appointment;
use sluice_protocol::{Address, Hash32, Snapshot};

/// A side effect of a committed update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A new payment row (an incoming lock this wallet accepted).
    Insert(PaymentRow),
    /// A pending payment is done; `secret` is the proof.
    Completed {
        /// Payment hashlock.
        hashlock: Hash32,
        /// Its direction.
        direction: PaymentDirection,
        /// The preimage.
        secret: Hash32,
    },
    /// A pending payment did not happen.
    Failed {
        /// Payment hashlock.
        hashlock: Hash32,
        /// Its direction.
        direction: PaymentDirection,
        /// Why.
        reason: String,
    },
    /// An invoice was paid.
    InvoicePaid(Hash32),
    /// The channel changes status.
    Status(ChannelStatus),
}

impl Store {
    /// Stores `snapshot` as the channel's latest co-signed state (only if newer than the stored
    /// one; it also raises the signed record, since the wallet co-signed it), applies `effects`,
    /// appends `events` to the event log and queues the new appointment for every watchtower.
    /// Returns the stored events, to announce now that they are durable, or `None` (nothing
    /// written) if the snapshot was not newer.
    pub async fn commit_update(
        &self,
        owner: &Address,
        hub: &Address,
        salt: &Hash32,
        snapshot: &Snapshot,
        effects: &[Effect],
        events: &[WalletEvent],
    ) -> Result<Option<Vec<StoredEvent>>> {
        let state = snapshot.state();
        let id = state.channel_id.to_string();
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE channels SET snapshot = ?, version = ?, \
             signed_final = CASE WHEN ? > signed_version THEN ? ELSE signed_final OR ? END, \
             signed_version = MAX(signed_version, ?) WHERE id = ? AND version < ?",
        )
        .bind(to_json(snapshot))
        .bind(state.version as i64)
        .bind(state.version as i64)
        .bind(state.is_final)
        .bind(state.is_final)
        .bind(state.version as i64)
        .bind(&id)
        .bind(state.version as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            return Ok(None);
        }
        for effect in effects {
            apply_effect(&mut tx, &id, effect).await?;
        }
        let stored = append_in(&mut tx, events).await?;
        let appointment = Appointment {
            a: *owner,
            b: *hub,
            salt: *salt,
            snapshot: snapshot.clone(),
        };
        enqueue_in(&mut tx, &id, state.version, &to_json(&appointment)).await?;
        tx.commit().await?;
        Ok(Some(stored))
    }
}

async fn apply_effect(tx: &mut sqlx::SqliteConnection, id: &str, effect: &Effect) -> Result<()> {
    match effect {
        Effect::Insert(row) => insert_payment_in(tx, row).await,
        Effect::Completed {
            hashlock,
            direction,
            secret,
        } => {
            let done = PaymentStatus::Completed;
            set_status_in(tx, hashlock, *direction, done, Some(secret), None).await?;
            Ok(())
        }
        Effect::Failed {
            hashlock,
            direction,
            reason,
        } => {
            let failed = PaymentStatus::Failed;
            set_status_in(tx, hashlock, *direction, failed, None, Some(reason)).await?;
            Ok(())
        }
        Effect::InvoicePaid(hashlock) => {
            sqlx::query("UPDATE invoices SET paid = 1 WHERE hashlock = ?")
                .bind(hashlock.to_string())
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Effect::Status(status) => {
            sqlx::query("UPDATE channels SET status = ? WHERE id = ?")
                .bind(status.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
    }
}

/// Queues an appointment for every tower, replacing an older undelivered one for the channel
/// (a tower keeps only the newest version anyway), so the queue is bounded by towers × channels.
async fn enqueue_in(
    tx: &mut sqlx::SqliteConnection,
    channel_id: &str,
    version: u64,
    body: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO appointment_queue (tower, channel_id, version, body, attempts) \
         SELECT address, ?, ?, ?, 0 FROM towers WHERE true \
         ON CONFLICT(tower, channel_id) DO UPDATE SET version = excluded.version, \
         body = excluded.body, attempts = 0 WHERE excluded.version > appointment_queue.version",
    )
    .bind(channel_id)
    .bind(version as i64)
    .bind(body)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
