//! Watchtowers, the persisted appointment queue and the receipts towers signed.

use super::{amount, now, parse, parse_json, to_json, Store};
use crate::error::Result;
use sluice_protocol::wire::tower::{Appointment, Receipt};
use sluice_protocol::{Address, Hash32, Snapshot};

/// A registered watchtower.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TowerRow {
    /// The tower's key (signs receipts).
    pub address: Address,
    /// Its HTTP base URL.
    pub url: String,
    /// Newest receipted version per channel.
    pub receipts: Vec<Receipt>,
}

/// An appointment waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedAppointment {
    /// Queue row id.
    pub id: i64,
    /// Target tower.
    pub tower: Address,
    /// Its URL.
    pub url: String,
    /// The appointment.
    pub appointment: Appointment,
    /// Failed deliveries so far.
    pub attempts: u32,
}

impl Store {
    /// Adds (or re-points) a tower and queues the latest state of every channel for it, in one
    /// transaction: a crash in between cannot leave a registered tower missing a channel, and
    /// the snapshots are read after the tower row took the write lock, so an update committing
    /// meanwhile is either queued here or by its own commit.
    pub async fn add_tower(&self, address: &Address, url: &str, owner: &Address) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO towers (address, url, added_at) VALUES (?, ?, ?) \
             ON CONFLICT(address) DO UPDATE SET url = excluded.url",
        )
        .bind(address.to_string())
        .bind(url)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT hub, salt, snapshot FROM channels WHERE version > 0")
                .fetch_all(&mut *tx)
                .await?;
        for (hub, salt, snapshot) in rows {
            let ap = Appointment {
                a: *owner,
                b: parse("hub address", &hub)?,
                salt: parse("salt", &salt)?,
                snapshot: parse_json::<Snapshot>("snapshot", &snapshot)?,
            };
            let state = ap.snapshot.state();
            sqlx::query(
                "INSERT INTO appointment_queue (tower, channel_id, version, body, attempts) \
                 VALUES (?, ?, ?, ?, 0) ON CONFLICT(tower, channel_id) DO NOTHING",
            )
            .bind(address.to_string())
            .bind(state.channel_id.to_string())
            .bind(state.version as i64)
            .bind(to_json(&ap))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every tower with its receipts.
    pub async fn towers(&self) -> Result<Vec<TowerRow>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT address, url FROM towers ORDER BY added_at, address")
                .fetch_all(self.pool())
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (address, url) in rows {
            let receipts: Vec<(String,)> =
                sqlx::query_as("SELECT receipt FROM receipts WHERE tower = ? ORDER BY channel_id")
                    .bind(&address)
                    .fetch_all(self.pool())
                    .await?;
            out.push(TowerRow {
                address: parse("tower address", &address)?,
                url,
                receipts: receipts
                    .iter()
                    .map(|(r,)| parse_json("receipt", r))
                    .collect::<Result<_>>()?,
            });
        }
        Ok(out)
    }

    /// Up to `limit` queued appointments, oldest first.
    pub async fn queued_appointments(&self, limit: u32) -> Result<Vec<QueuedAppointment>> {
        let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT q.id, q.tower, t.url, q.body, q.attempts FROM appointment_queue q \
             JOIN towers t ON t.address = q.tower ORDER BY q.id LIMIT ?",
        )
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(id, tower, url, body, attempts)| {
                Ok(QueuedAppointment {
                    id,
                    tower: parse("tower address", &tower)?,
                    url,
                    appointment: parse_json("appointment", &body)?,
                    attempts: amount("attempts", attempts)?.min(u32::MAX as u64) as u32,
                })
            })
            .collect()
    }

    /// Stores the receipt and drops the delivered appointment from the queue, atomically.
    pub async fn store_receipt(&self, queued: &QueuedAppointment, receipt: &Receipt) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO receipts (tower, channel_id, version, receipt) VALUES (?, ?, ?, ?) \
             ON CONFLICT(tower, channel_id) DO UPDATE SET version = excluded.version, \
             receipt = excluded.receipt WHERE excluded.version > receipts.version",
        )
        .bind(receipt.tower.to_string())
        .bind(receipt.channel_id.to_string())
        .bind(receipt.version as i64)
        .bind(to_json(receipt))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM appointment_queue WHERE id = ? AND version = ?")
            .bind(queued.id)
            .bind(receipt.version as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Counts a failed delivery.
    pub async fn appointment_failed(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE appointment_queue SET attempts = attempts + 1 WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// How many appointments wait for delivery.
    pub async fn queue_len(&self) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM appointment_queue")
            .fetch_one(self.pool())
            .await?;
        amount("queue length", n)
    }

    /// The newest receipt a tower gave for a channel.
    pub async fn receipt(&self, tower: &Address, channel_id: &Hash32) -> Result<Option<Receipt>> {
        let r: Option<(String,)> =
            sqlx::query_as("SELECT receipt FROM receipts WHERE tower = ? AND channel_id = ?")
                .bind(tower.to_string())
                .bind(channel_id.to_string())
                .fetch_optional(self.pool())
                .await?;
        r.map(|(s,)| parse_json("receipt", &s)).transpose()
    }
}
