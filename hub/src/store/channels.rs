//! Channel rows: insert on open, read, and the update transaction (row lock + version CAS).

use super::cas;
use super::codec::{self, int, uint};
use super::{
    now_secs, on_pool, payments, reservations, ChannelPhase, ChannelRow, Db, PaymentWrite,
    Reservation, ReserveWith, Store, StoreError,
};
use sluice_protocol::{Address, Hash32, Snapshot};

#[derive(sqlx::FromRow)]
pub(super) struct ChannelDb {
    id: Vec<u8>,
    client: Vec<u8>,
    deposit_a: i64,
    deposit_b: i64,
    challenge_period: i64,
    status: String,
    snapshot: Vec<u8>,
    pending_snapshot: Option<Vec<u8>>,
    pending_until: Option<i64>,
    floor_version: i64,
    updated_at: i64,
}

impl ChannelDb {
    pub(super) fn into_row(self) -> Result<ChannelRow, StoreError> {
        Ok(ChannelRow {
            id: codec::hash(&self.id)?,
            client: codec::address(&self.client)?,
            deposit_a: uint(self.deposit_a)?,
            deposit_b: uint(self.deposit_b)?,
            challenge_period: uint(self.challenge_period)?,
            phase: ChannelPhase::parse(&self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("channel status {:?}", self.status)))?,
            snapshot: codec::snapshot(&self.snapshot)?,
            pending: match (self.pending_snapshot, self.pending_until) {
                (Some(snap), Some(until)) => Some(Reservation {
                    snapshot: codec::snapshot(&snap)?,
                    until_ms: uint(until)?,
                }),
                _ => None,
            },
            floor: uint(self.floor_version)?,
            updated_at: uint(self.updated_at)?,
        })
    }
}

pub(super) const COLUMNS: &str = "id, client, deposit_a, deposit_b, challenge_period, status, \
                                  snapshot, pending_snapshot, pending_until, floor_version, updated_at";

/// What an update closure returns: the new snapshot, payment writes for the same transaction,
/// and a value handed back to the caller once everything is committed. Committing a snapshot
/// always ends the channel's reservation: the closure decides whether that is allowed.
pub type Update<T> = (Snapshot, Vec<PaymentWrite>, T);

macro_rules! update_tx {
    ($pool:ident, $hot:expr, $select:expr, $id:expr, $f:expr, $reserve:expr) => {{
        let mut tx = $pool.begin().await?;
        let row = sqlx::query_as::<_, ChannelDb>($select)
            .bind(&$id.0[..])
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::UnknownChannel(*$id))?
            .into_row()?;
        let old = row.version();
        match $f(&row) {
            Err(e) => {
                tx.rollback().await?;
                $hot.forget($id);
                Ok(Err(e))
            }
            Ok((snap, writes, out)) => {
                let done = sqlx::query(
                    "UPDATE channels SET version = $1, snapshot = $2, updated_at = $3, \
                     pending_version = NULL, pending_snapshot = NULL, pending_until = NULL, \
                     floor_version = CASE WHEN floor_version > $1 THEN floor_version ELSE $1 END \
                     WHERE id = $4 AND version = $5",
                )
                .bind(int(snap.state().version)?)
                .bind(codec::snapshot_bytes(&snap))
                .bind(int(now_secs())?)
                .bind(&$id.0[..])
                .bind(int(old)?)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Err(StoreError::Conflict {
                        id: *$id,
                        expected: old,
                        found: old.saturating_add(1),
                    });
                }
                for w in &writes {
                    payments::write!(&mut *tx, w);
                }
                let reserved = match &$reserve {
                    None => false,
                    Some(r) => {
                        sqlx::query(reservations::RESERVE)
                            .bind(int(r.proposed.state().version)?)
                            .bind(codec::snapshot_bytes(r.proposed))
                            .bind(int(r.until_ms)?)
                            .bind(&r.id.0[..])
                            .bind(int(r.built_on)?)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected()
                            == 1
                    }
                };
                tx.commit().await?;
                $hot.committed(&row, &snap);
                $hot.after_reserve($reserve, reserved);
                Ok(Ok((out, reserved)))
            }
        }
    }};
}

impl Store {
    /// Inserts a channel learned from the chain; an existing row is left untouched.
    pub async fn insert_channel(&self, row: &ChannelRow) -> Result<bool, StoreError> {
        let sql = "INSERT INTO channels (id, client, deposit_a, deposit_b, challenge_period, \
                   status, version, snapshot, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING";
        let (da, db, cp) = (
            int(row.deposit_a)?,
            int(row.deposit_b)?,
            int(row.challenge_period)?,
        );
        let (v, snap, now) = (
            int(row.version())?,
            codec::snapshot_bytes(&row.snapshot),
            int(row.updated_at)?,
        );
        let done = on_pool!(self, p => sqlx::query(sql)
            .bind(&row.id.0[..]).bind(&row.client.0[..]).bind(da).bind(db).bind(cp)
            .bind(row.phase.as_str()).bind(v).bind(&snap).bind(now)
            .execute(p).await.map(|r| r.rows_affected()))?;
        self.hot.forget(&row.id);
        Ok(done == 1)
    }

    pub async fn channel(&self, id: &Hash32) -> Result<Option<ChannelRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM channels WHERE id = $1");
        let row = on_pool!(self, p => sqlx::query_as::<_, ChannelDb>(&sql)
            .bind(&id.0[..]).fetch_optional(p).await)?;
        row.map(ChannelDb::into_row).transpose()
    }

    /// The client's channels, oldest first.
    pub async fn channels_of(&self, client: &Address) -> Result<Vec<ChannelRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM channels WHERE client = $1 ORDER BY id");
        let rows = on_pool!(self, p => sqlx::query_as::<_, ChannelDb>(&sql)
            .bind(&client.0[..]).fetch_all(p).await)?;
        rows.into_iter().map(ChannelDb::into_row).collect()
    }

    /// Up to `limit` channels, ordered by id.
    pub async fn channels(
        &self,
        after: Option<&Hash32>,
        limit: u32,
    ) -> Result<Vec<ChannelRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM channels WHERE id > $1 ORDER BY id LIMIT $2");
        let after = after.map_or(&[][..], |h| &h.0[..]);
        let rows = on_pool!(self, p => sqlx::query_as::<_, ChannelDb>(&sql)
            .bind(after).bind(i64::from(limit)).fetch_all(p).await)?;
        rows.into_iter().map(ChannelDb::into_row).collect()
    }

    /// Up to `limit` channels in `phase`, by id, after the id `after` (from the first if
    /// `None`): a scan pages through every channel with this, whatever their number (F12).
    pub async fn channels_page(
        &self,
        phase: ChannelPhase,
        after: Option<&Hash32>,
        limit: u32,
    ) -> Result<Vec<ChannelRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM channels WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let after = after.map_or(&[][..], |h| &h.0[..]);
        let rows = on_pool!(self, p => sqlx::query_as::<_, ChannelDb>(&sql)
            .bind(phase.as_str()).bind(after).bind(i64::from(limit)).fetch_all(p).await)?;
        rows.into_iter().map(ChannelDb::into_row).collect()
    }

    /// Every channel in `phase`, a page at a time (see [`Pages`]).
    pub fn pages(&self, phase: ChannelPhase) -> Pages<'_> {
        Pages {
            store: self,
            phase,
            after: None,
            done: false,
        }
    }

    /// Runs `f` on the channel's latest row and commits what it returns with a version
    /// compare-and-swap, as if under an exclusive lock. `Ok(Err(e))`: `f` refused, nothing
    /// written. `f` may run more than once (again on the newer row if the first try lost).
    pub async fn update_channel<T, E>(
        &self,
        id: &Hash32,
        f: impl FnMut(&ChannelRow) -> Result<Update<T>, E>,
    ) -> Result<Result<T, E>, StoreError> {
        match &self.db {
            Db::Pg(_) => {
                let seen = self
                    .channel(id)
                    .await?
                    .ok_or(StoreError::UnknownChannel(*id))?;
                self.update_channel_from(&seen, f).await
            }
            Db::Lite(_) => {
                let r = self.update_locked(id, f, None).await?;
                Ok(r.map(|(out, _)| out))
            }
        }
    }

    /// [`Store::update_channel`] for a caller that has just read the row as `seen`: on Postgres
    /// one statement commits if the row is unchanged (`cas.rs`); otherwise, and on SQLite, the
    /// row-locked transaction runs `f` on the latest row.
    pub async fn update_channel_from<T, E>(
        &self,
        seen: &ChannelRow,
        f: impl FnMut(&ChannelRow) -> Result<Update<T>, E>,
    ) -> Result<Result<T, E>, StoreError> {
        let r = self.commit_over(seen, f, None).await?;
        Ok(r.map(|(out, _)| out))
    }

    /// [`Store::update_channel_from`] that also reserves `reserve` (the hub's next proposal on
    /// another channel) in the same commit, so one durable write stands for both. The
    /// reservation is taken under the same conditions as [`Store::reserve`]; `true` with the
    /// result if it was. The update itself commits either way.
    pub async fn update_channel_reserving<T, E>(
        &self,
        seen: &ChannelRow,
        f: impl FnMut(&ChannelRow) -> Result<Update<T>, E>,
        reserve: ReserveWith<'_>,
    ) -> Result<Result<(T, bool), E>, StoreError> {
        self.commit_over(seen, f, Some(reserve)).await
    }

    async fn commit_over<T, E>(
        &self,
        seen: &ChannelRow,
        mut f: impl FnMut(&ChannelRow) -> Result<Update<T>, E>,
        reserve: Option<ReserveWith<'_>>,
    ) -> Result<Result<(T, bool), E>, StoreError> {
        if let Db::Pg(p) = &self.db {
            let (snap, writes, out) = match f(seen) {
                Ok(u) => u,
                Err(e) => return Ok(Err(e)),
            };
            if writes.len() <= 1 {
                let done = cas::commit(p, seen, &snap, writes.first(), reserve).await?;
                if let Some(reserved) = done {
                    self.hot.committed(seen, &snap);
                    self.hot.after_reserve(reserve, reserved);
                    return Ok(Ok((out, reserved)));
                }
                self.hot.forget(&seen.id);
                tracing::debug!(channel = %seen.id, "row moved since read; committing under its lock");
            }
        }
        self.update_locked(&seen.id, f, reserve).await
    }

    /// The row-locked read-decide-write transaction.
    async fn update_locked<T, E>(
        &self,
        id: &Hash32,
        mut f: impl FnMut(&ChannelRow) -> Result<Update<T>, E>,
        reserve: Option<ReserveWith<'_>>,
    ) -> Result<Result<(T, bool), E>, StoreError> {
        let select = format!("SELECT {COLUMNS} FROM channels WHERE id = $1");
        match &self.db {
            Db::Pg(p) => update_tx!(p, self.hot, &format!("{select} FOR UPDATE"), id, f, reserve),
            Db::Lite(p) => update_tx!(p, self.hot, &select, id, f, reserve),
        }
    }

    /// Stores `snap` (already verified) if it is newer than the stored one (resync), with the
    /// payment `writes` it completes; returns whether it was adopted. While a live reservation
    /// stands, only the reserved state itself is adopted; one in doubt ends only with a state at
    /// or above its version.
    pub async fn adopt_snapshot(
        &self,
        id: &Hash32,
        snap: &Snapshot,
        writes: Vec<PaymentWrite>,
    ) -> Result<bool, StoreError> {
        let newer = snap.state().version;
        let now = super::now_ms();
        let r = self
            .update_channel(id, |row| {
                // Adopting ends the reservation, so only a state at or above it: at its version
                // the hub signed nothing else, above it the reservation is dead.
                let reserved_ok = match &row.pending {
                    Some(p) if p.is_live(now) => p.is_completed_by(snap),
                    Some(p) => newer > p.version() || p.is_completed_by(snap),
                    None => true,
                };
                match newer > row.version() && reserved_ok {
                    true => Ok((snap.clone(), writes.clone(), ())),
                    false => Err(()),
                }
            })
            .await?;
        Ok(r.is_ok())
    }
}

/// Channels read per query of a scan.
pub const PAGE: u32 = 1_000;

/// A scan over every channel of one phase in id order, [`PAGE`] rows per query.
pub struct Pages<'a> {
    store: &'a Store,
    phase: ChannelPhase,
    after: Option<Hash32>,
    done: bool,
}

impl Pages<'_> {
    /// The next page; `None` once every channel was seen.
    pub async fn next(&mut self) -> Result<Option<Vec<ChannelRow>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .store
            .channels_page(self.phase, self.after.as_ref(), PAGE)
            .await?;
        self.done = page.len() < PAGE as usize;
        self.after = page.last().map(|r| r.id);
        Ok((!page.is_empty()).then_some(page))
    }
}
