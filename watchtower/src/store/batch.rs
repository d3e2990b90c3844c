//! Committing appointments in batches (the group commit behind [`crate::ingest`]). Each item
//! costs one read (user, nonce, stored version, watch and close at once) and two to four
//! writes; a user's channel count lives in its `users` row, so the quota check never counts.

use super::rows::{self, Precheck};
use super::StoreError;
use super::{
    int, stamp, uint, Accepted, BeginWrite, Closing, NewAppointment, Pool, Refusal, Store,
};
use sluice_protocol::Height;

const PRECHECK: &str = "SELECT u.quota, u.channels, \
    (SELECT COUNT(*) FROM used_nonces n WHERE n.user_key = u.user_key AND n.nonce = $2) AS used, \
    (SELECT a.version FROM appointments a WHERE a.channel_id = $3) AS stored, \
    (SELECT COUNT(*) FROM watches w WHERE w.user_key = u.user_key AND w.channel_id = $3) AS watching, \
    (SELECT c.version FROM closings c WHERE c.channel_id = $3) AS closing_version, \
    (SELECT c.settle_after FROM closings c WHERE c.channel_id = $3) AS settle_after \
    FROM users u WHERE u.user_key = $1";

/// What the precheck decided for one item.
enum Verdict {
    Refuse(Refusal),
    /// Accept; `new_watch` when the user does not watch the channel yet (counts to its quota).
    Accept {
        new_watch: bool,
        closing: Option<Closing>,
    },
}

fn judge(row: Option<Precheck>, version: u64) -> Result<Verdict, StoreError> {
    let Some(row) = row else {
        return Ok(Verdict::Refuse(Refusal::Unregistered));
    };
    if row.used > 0 {
        return Ok(Verdict::Refuse(Refusal::ReplayedNonce));
    }
    if let Some(stored) = row.stored.map(uint).transpose()? {
        if version <= stored {
            return Ok(Verdict::Refuse(Refusal::StaleVersion {
                stored,
                got: version,
            }));
        }
    }
    let new_watch = row.watching == 0;
    if new_watch && row.channels >= row.quota {
        return Ok(Verdict::Refuse(Refusal::QuotaExceeded {
            quota: uint(row.quota)?,
        }));
    }
    let closing = match (row.closing_version, row.settle_after) {
        (Some(v), Some(s)) => Some(Closing {
            version: uint(v)?,
            settle_after: uint(s)?,
        }),
        _ => None,
    };
    Ok(Verdict::Accept { new_watch, closing })
}

impl Store {
    /// Commits a batch of verified appointments in one transaction (one durable sync for all),
    /// each checked in order against everything before it: registration, nonce, version, quota.
    /// A refused item writes nothing.
    pub async fn put_appointments(
        &self,
        batch: &[NewAppointment],
        height: Height,
    ) -> Result<Vec<Result<Accepted, Refusal>>, StoreError> {
        let height = int(height)?;
        let mut out = Vec::with_capacity(batch.len());
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            for item in batch {
                let (user, nonce, id) =
                    (&item.user.0[..], &item.nonce.0[..], &item.channel_id.0[..]);
                let version = item.appointment.snapshot.state().version;
                let row: Option<Precheck> = sqlx::query_as(PRECHECK)
                    .bind(user)
                    .bind(nonce)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let (new_watch, closing) = match judge(row, version)? {
                    Verdict::Refuse(r) => {
                        out.push(Err(r));
                        continue;
                    }
                    Verdict::Accept { new_watch, closing } => (new_watch, closing),
                };
                if new_watch {
                    // Guarded again in SQL: the count can never pass the quota.
                    let counted = sqlx::query(
                        "UPDATE users SET channels = channels + 1 \
                         WHERE user_key = $1 AND channels < quota",
                    )
                    .bind(user)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if counted == 0 {
                        return Err(StoreError::Corrupt("user's channel count moved".into()));
                    }
                    sqlx::query("INSERT INTO watches (user_key, channel_id) VALUES ($1, $2)")
                        .bind(user)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("INSERT INTO used_nonces (user_key, nonce, stamp) VALUES ($1, $2, $3)")
                    .bind(user)
                    .bind(nonce)
                    .bind(stamp(&item.nonce))
                    .execute(&mut *tx)
                    .await?;
                let ap = &item.appointment;
                sqlx::query(
                    "INSERT INTO appointments \
                     (channel_id, party_a, party_b, salt, version, snapshot, stored_height) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (channel_id) DO UPDATE SET version = excluded.version, \
                     snapshot = excluded.snapshot, stored_height = excluded.stored_height",
                )
                .bind(id)
                .bind(&ap.a.0[..])
                .bind(&ap.b.0[..])
                .bind(&ap.salt.0[..])
                .bind(int(version)?)
                .bind(rows::encode_snapshot(&ap.snapshot))
                .bind(height)
                .execute(&mut *tx)
                .await?;
                out.push(Ok(Accepted { closing }));
            }
            tx.commit().await?;
            Ok(out)
        })
    }
}
