//! Committing appointments in batches (the group commit behind [`crate::ingest`]), set-wise: one
//! query reads what the store knows about every item, the items are judged in order in memory
//! (each seeing the ones before it), and the accepted ones are written with a few multi-row
//! statements. A batch costs a handful of round trips to the database, not several per item.
//! A user's channel count lives in its `users` row, so the quota check never counts.

use super::rows::{self, Precheck};
use super::StoreError;
use super::{
    int, stamp, uint, Accepted, BeginWrite, Closing, NewAppointment, Pool, Refusal, Store,
};
use sluice_protocol::{Address, Hash32, Height};
use std::collections::{HashMap, HashSet};

/// Rows per multi-row statement: 7 parameters a row stays far below either database's limit.
const CHUNK: usize = 256;

/// `($1, $2, …), (…)` for `rows` rows of `cols` parameters, numbered from `$1`.
fn values(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!("${}", r * cols + c + 1));
        }
        s.push(')');
    }
    s
}

fn precheck_sql(rows: usize) -> String {
    format!(
        "WITH req (i, user_key, nonce, stamp, channel_id) AS (VALUES {}) \
         SELECT req.i, u.quota, u.channels, \
         (SELECT COUNT(*) FROM used_nonces n WHERE n.stamp = req.stamp \
          AND n.user_key = req.user_key AND n.nonce = req.nonce) AS used, \
         (SELECT a.version FROM appointments a WHERE a.channel_id = req.channel_id) AS stored, \
         (SELECT a.snapshot FROM appointments a WHERE a.channel_id = req.channel_id) \
          AS stored_snapshot, \
         (SELECT COUNT(*) FROM watches w \
          WHERE w.user_key = req.user_key AND w.channel_id = req.channel_id) AS watching, \
         (SELECT c.version FROM closings c WHERE c.channel_id = req.channel_id) \
          AS closing_version, \
         (SELECT c.settle_after FROM closings c WHERE c.channel_id = req.channel_id) \
          AS settle_after \
         FROM req LEFT JOIN users u ON u.user_key = req.user_key",
        values(rows, 5)
    )
}

/// What the items judged so far in this batch changed, as later items must see it.
#[derive(Default)]
struct Overlay {
    nonces: HashSet<(Address, Hash32)>,
    /// Per channel, the version and snapshot bytes the batch stored so far.
    versions: HashMap<Hash32, (u64, Vec<u8>)>,
    watches: HashSet<(Address, Hash32)>,
    added: HashMap<Address, i64>,
}

/// Judges one item against the store's state (`row`) and the batch so far, and records it in
/// the overlay if accepted. `Ok(Ok(new_watch))` on acceptance.
fn judge(
    row: &Precheck,
    item: &NewAppointment,
    o: &mut Overlay,
) -> Result<Result<Judged, Refusal>, StoreError> {
    let (Some(quota), Some(channels)) = (row.quota, row.channels) else {
        return Ok(Err(Refusal::Unregistered));
    };
    let (user, ch) = (item.user, item.channel_id);
    if row.used > 0 || o.nonces.contains(&(user, item.nonce)) {
        return Ok(Err(Refusal::ReplayedNonce));
    }
    let version = item.appointment.snapshot.state().version;
    let bytes = rows::encode_snapshot(&item.appointment.snapshot);
    let stored = match o.versions.get(&ch) {
        Some((v, b)) => Some((*v, Some(b.clone()))),
        None => match row.stored {
            Some(v) => Some((uint(v)?, row.stored_snapshot.clone())),
            None => None,
        },
    };
    // The very state the tower holds already (the other party sent it first, or our reply
    // was lost): a watch and a receipt for this user, nothing replaced (F17). Anything else
    // at or below the stored version is stale.
    let same = stored
        .as_ref()
        .is_some_and(|(v, b)| *v == version && b.as_deref() == Some(&bytes[..]));
    if let Some((stored, _)) = stored.filter(|(s, _)| version <= *s && !same) {
        return Ok(Err(Refusal::StaleVersion {
            stored,
            got: version,
        }));
    }
    let replaces = !same;
    let new_watch = row.watching == 0 && !o.watches.contains(&(user, ch));
    let added = o.added.get(&user).copied().unwrap_or(0);
    if new_watch && channels.saturating_add(added) >= quota {
        return Ok(Err(Refusal::QuotaExceeded {
            quota: uint(quota)?,
        }));
    }
    let closing = match (row.closing_version, row.settle_after) {
        (Some(v), Some(s)) => Some(Closing {
            version: uint(v)?,
            settle_after: uint(s)?,
        }),
        _ => None,
    };
    o.nonces.insert((user, item.nonce));
    if replaces {
        o.versions.insert(ch, (version, bytes));
    }
    if new_watch {
        o.watches.insert((user, ch));
        *o.added.entry(user).or_default() += 1;
    }
    Ok(Ok(Judged {
        new_watch,
        replaces,
        closing,
    }))
}

/// An accepted item: whether it adds a watch for its user, and whether its state replaces the
/// stored one (a higher version) or only joins it (the same version).
struct Judged {
    new_watch: bool,
    replaces: bool,
    closing: Option<Closing>,
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
        let mut rows: Vec<Option<Precheck>> = (0..batch.len()).map(|_| None).collect();
        let mut out = Vec::with_capacity(batch.len());
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            for (c, chunk) in batch.chunks(CHUNK).enumerate() {
                let sql = precheck_sql(chunk.len());
                let mut q = sqlx::query_as::<_, Precheck>(&sql);
                for (k, item) in chunk.iter().enumerate() {
                    q = q
                        .bind(int((c * CHUNK + k) as u64)?)
                        .bind(&item.user.0[..])
                        .bind(&item.nonce.0[..])
                        .bind(stamp(&item.nonce))
                        .bind(&item.channel_id.0[..]);
                }
                for row in q.fetch_all(&mut *tx).await? {
                    let i = usize::try_from(row.i)
                        .ok()
                        .filter(|i| *i < rows.len())
                        .ok_or_else(|| StoreError::Corrupt(format!("batch index {}", row.i)))?;
                    rows[i] = Some(row);
                }
            }
            let mut overlay = Overlay::default();
            let mut accepted = Vec::new();
            for (i, (item, row)) in batch.iter().zip(&rows).enumerate() {
                let row = row
                    .as_ref()
                    .ok_or_else(|| StoreError::Corrupt("batch item without precheck".into()))?;
                match judge(row, item, &mut overlay)? {
                    Ok(j) => {
                        accepted.push((i, j.new_watch, j.replaces));
                        out.push(Ok(Accepted { closing: j.closing }));
                    }
                    Err(r) => out.push(Err(r)),
                }
            }
            // The highest accepted version of each channel is the last one accepted for it.
            let mut last: HashMap<Hash32, usize> = HashMap::new();
            for (i, _, _) in accepted.iter().filter(|a| a.2) {
                last.insert(batch[*i].channel_id, *i);
            }
            let mut latest: Vec<usize> = last.into_values().collect();
            latest.sort_unstable();
            for chunk in accepted.chunks(CHUNK) {
                let sql = format!(
                    "INSERT INTO used_nonces (user_key, nonce, stamp) VALUES {}",
                    values(chunk.len(), 3)
                );
                let mut q = sqlx::query(&sql);
                for (i, _, _) in chunk {
                    let it = &batch[*i];
                    q = q
                        .bind(&it.user.0[..])
                        .bind(&it.nonce.0[..])
                        .bind(stamp(&it.nonce));
                }
                q.execute(&mut *tx).await?;
            }
            let watches: Vec<usize> = accepted.iter().filter(|a| a.1).map(|a| a.0).collect();
            for chunk in watches.chunks(CHUNK) {
                let sql = format!(
                    "INSERT INTO watches (user_key, channel_id) VALUES {}",
                    values(chunk.len(), 2)
                );
                let mut q = sqlx::query(&sql);
                for i in chunk {
                    q = q
                        .bind(&batch[*i].user.0[..])
                        .bind(&batch[*i].channel_id.0[..]);
                }
                q.execute(&mut *tx).await?;
            }
            let added: Vec<(Address, i64)> = overlay.added.into_iter().collect();
            for chunk in added.chunks(CHUNK) {
                // Guarded again in SQL: a count can never pass its quota.
                let sql = format!(
                    "WITH d (user_key, n) AS (VALUES {}) \
                     UPDATE users SET channels = channels + \
                     (SELECT d.n FROM d WHERE d.user_key = users.user_key) \
                     WHERE user_key IN (SELECT user_key FROM d) AND channels + \
                     (SELECT d.n FROM d WHERE d.user_key = users.user_key) <= quota",
                    values(chunk.len(), 2)
                );
                let mut q = sqlx::query(&sql);
                for (user, n) in chunk {
                    q = q.bind(&user.0[..]).bind(*n);
                }
                let counted = q.execute(&mut *tx).await?.rows_affected();
                if counted != chunk.len() as u64 {
                    return Err(StoreError::Corrupt("users' channel counts moved".into()));
                }
            }
            for chunk in latest.chunks(CHUNK) {
                let sql = format!(
                    "INSERT INTO appointments \
                     (channel_id, party_a, party_b, salt, version, snapshot, stored_height) \
                     VALUES {} \
                     ON CONFLICT (channel_id) DO UPDATE SET version = excluded.version, \
                     snapshot = excluded.snapshot, stored_height = excluded.stored_height",
                    values(chunk.len(), 7)
                );
                let mut q = sqlx::query(&sql);
                for i in chunk {
                    let (it, ap) = (&batch[*i], &batch[*i].appointment);
                    q = q
                        .bind(&it.channel_id.0[..])
                        .bind(&ap.a.0[..])
                        .bind(&ap.b.0[..])
                        .bind(&ap.salt.0[..])
                        .bind(int(ap.snapshot.state().version)?)
                        .bind(rows::encode_snapshot(&ap.snapshot))
                        .bind(height);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_lists_number_parameters_row_by_row() {
        assert_eq!(super::values(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::values(1, 1), "($1)");
    }
}
