//! The tower's one source of truth: users, spent nonces, one appointment row per channel, the
//! closes seen on chain, the responses to them and the chain cursor. SQLite by default, Postgres
//! as an option; both run the same SQL (`$n` placeholders work in both).

mod rows;

use rows::{AppointmentRow, ResponseRow, SummaryRow};
pub use rows::{AppointmentSummary, Closing, Response, ResponseStatus, StoredAppointment};

use sluice_protocol::wire::tower::Appointment;
use sluice_protocol::{Address, Hash32, Height};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::SqliteSynchronous;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported store URL {0:?} (use sqlite://… or postgres://…)")]
    BadUrl(String),
    #[error("value {0} does not fit the store's integer range")]
    OutOfRange(u64),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
}

/// Why an authenticated request was refused by the store's checks (nothing was written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("user is not registered")]
    Unregistered,
    #[error("nonce already used")]
    ReplayedNonce,
    #[error("version {got} is not above the stored version {stored}")]
    StaleVersion { stored: u64, got: u64 },
    #[error("quota of {quota} channels reached")]
    QuotaExceeded { quota: u64 },
}

/// One appointment to commit, already verified by the caller.
#[derive(Debug, Clone)]
pub struct NewAppointment {
    pub user: Address,
    pub nonce: Hash32,
    pub channel_id: Hash32,
    pub appointment: Appointment,
}

/// What committing an appointment found: the channel's close on chain, if one is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub closing: Option<Closing>,
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to whichever pool backs the store; the SQL is shared.
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

pub struct Store {
    pool: Pool,
}

/// Opens a write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`): a
/// deferred transaction that reads first cannot upgrade once another writer committed.
trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error> {
        self.begin().await
    }
}

pub(crate) fn int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange(v))
}

/// A nonce's timestamp as stored. The API refuses nonces outside its window before they get
/// here; one far in the future would only be kept longer, never wrap.
pub(crate) fn stamp(nonce: &Hash32) -> i64 {
    i64::try_from(crate::nonces::nonce_time(nonce)).unwrap_or(i64::MAX)
}

pub(crate) fn uint(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative integer {v}")))
}

impl Store {
    /// Opens (creating if needed) the store at `url` and applies its migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            // WAL with FULL sync: a commit is on disk before any receipt is signed.
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                // 16 MiB of pages per connection (default 2): the ingest writer's B-tree pages
                // stay in memory instead of being re-read through the kernel for every batch.
                .pragma("cache_size", "-16384")
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .connect_with(opts)
                .await?;
            sqlx::migrate!("../migrations/watchtower/sqlite")
                .run(&pool)
                .await?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            sqlx::migrate!("../migrations/watchtower/postgres")
                .run(&pool)
                .await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::BadUrl(url.to_string()));
        };
        Ok(Store { pool })
    }

    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Registers `user` (idempotent: a known user keeps its quota) and spends `nonce`.
    pub async fn register(
        &self,
        user: &Address,
        nonce: &Hash32,
        quota: u64,
        height: Height,
    ) -> Result<Result<u64, Refusal>, StoreError> {
        let (quota, height) = (int(quota)?, int(height)?);
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let spent = sqlx::query(
                "INSERT INTO used_nonces (user_key, nonce, stamp) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&user.0[..])
            .bind(&nonce.0[..])
            .bind(stamp(nonce))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if spent == 0 {
                return Ok(Err(Refusal::ReplayedNonce));
            }
            sqlx::query(
                "INSERT INTO users (user_key, quota, registered_height) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_key) DO NOTHING",
            )
            .bind(&user.0[..])
            .bind(quota)
            .bind(height)
            .execute(&mut *tx)
            .await?;
            let (q,): (i64,) = sqlx::query_as("SELECT quota FROM users WHERE user_key = $1")
                .bind(&user.0[..])
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Ok(uint(q)?))
        })
    }

    /// Spends `nonce` for a registered `user` (for requests that change nothing else).
    pub async fn spend_nonce(
        &self,
        user: &Address,
        nonce: &Hash32,
    ) -> Result<Result<(), Refusal>, StoreError> {
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let known: Option<(i64,)> =
                sqlx::query_as("SELECT quota FROM users WHERE user_key = $1")
                    .bind(&user.0[..])
                    .fetch_optional(&mut *tx)
                    .await?;
            if known.is_none() {
                return Ok(Err(Refusal::Unregistered));
            }
            let spent = sqlx::query(
                "INSERT INTO used_nonces (user_key, nonce, stamp) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&user.0[..])
            .bind(&nonce.0[..])
            .bind(stamp(nonce))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if spent == 0 {
                return Ok(Err(Refusal::ReplayedNonce));
            }
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// The stored appointment of a channel, if any user asked the tower to watch it.
    pub async fn appointment(
        &self,
        channel_id: &Hash32,
    ) -> Result<Option<StoredAppointment>, StoreError> {
        let row: Option<AppointmentRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT channel_id, party_a, party_b, salt, version, snapshot, stored_height \
                 FROM appointments WHERE channel_id = $1",
            )
            .bind(&channel_id.0[..])
            .fetch_optional(p)
            .await?
        });
        row.map(StoredAppointment::try_from).transpose()
    }

    /// `user`'s appointments (bounded by its quota), by channel id.
    pub async fn list(&self, user: &Address) -> Result<Vec<AppointmentSummary>, StoreError> {
        let rows: Vec<SummaryRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT a.channel_id, a.version, a.stored_height FROM watches w \
                 JOIN appointments a ON a.channel_id = w.channel_id \
                 WHERE w.user_key = $1 ORDER BY a.channel_id",
            )
            .bind(&user.0[..])
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(AppointmentSummary::try_from).collect()
    }

    /// Stops watching `channel_id` for `user` (spending `nonce`); the appointment row goes when no
    /// user watches it any more. `Ok(Ok(false))` if the user was not watching it.
    pub async fn delete(
        &self,
        user: &Address,
        nonce: &Hash32,
        channel_id: &Hash32,
    ) -> Result<Result<bool, Refusal>, StoreError> {
        let (u, n, id) = (&user.0[..], &nonce.0[..], &channel_id.0[..]);
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let known: Option<(i64,)> =
                sqlx::query_as("SELECT quota FROM users WHERE user_key = $1")
                    .bind(u)
                    .fetch_optional(&mut *tx)
                    .await?;
            if known.is_none() {
                return Ok(Err(Refusal::Unregistered));
            }
            let spent = sqlx::query(
                "INSERT INTO used_nonces (user_key, nonce, stamp) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(u)
            .bind(n)
            .bind(stamp(nonce))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if spent == 0 {
                return Ok(Err(Refusal::ReplayedNonce));
            }
            let removed =
                sqlx::query("DELETE FROM watches WHERE user_key = $1 AND channel_id = $2")
                    .bind(u)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if removed > 0 {
                sqlx::query("UPDATE users SET channels = channels - 1 WHERE user_key = $1")
                    .bind(u)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "DELETE FROM appointments WHERE channel_id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM watches WHERE channel_id = $1)",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Ok(removed > 0))
        })
    }

    /// How many channels `user` has watched (its count against the quota), if registered.
    pub async fn watched_count(&self, user: &Address) -> Result<Option<u64>, StoreError> {
        let row: Option<(i64,)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT channels FROM users WHERE user_key = $1")
                .bind(&user.0[..])
                .fetch_optional(p)
                .await?
        });
        row.map(|(n,)| uint(n)).transpose()
    }

    /// Forgets spent nonces stamped before `before` (unix seconds); returns how many.
    pub async fn prune_nonces(&self, before: u64) -> Result<u64, StoreError> {
        let before = int(before)?;
        let n = on_pool!(self, |p| {
            sqlx::query("DELETE FROM used_nonces WHERE stamp < $1")
                .bind(before)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    pub async fn nonce_count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = on_pool!(self, |p| {
            sqlx::query_as("SELECT COUNT(*) FROM used_nonces")
                .fetch_one(p)
                .await?
        });
        uint(n)
    }

    pub async fn appointment_count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = on_pool!(self, |p| {
            sqlx::query_as("SELECT COUNT(*) FROM appointments")
                .fetch_one(p)
                .await?
        });
        uint(n)
    }

    /// The last fully processed chain height, if the tower ever processed one.
    pub async fn cursor(&self) -> Result<Option<Height>, StoreError> {
        let row: Option<(i64,)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT height FROM chain_cursor WHERE id = 1")
                .fetch_optional(p)
                .await?
        });
        row.map(|(h,)| uint(h)).transpose()
    }

    pub async fn set_cursor(&self, height: Height) -> Result<(), StoreError> {
        let h = int(height)?;
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO chain_cursor (id, height) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET height = excluded.height",
            )
            .bind(h)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Remembers that `channel_id` is closing on chain with `version` (the highest seen).
    pub async fn record_closing(
        &self,
        channel_id: &Hash32,
        closing: Closing,
    ) -> Result<(), StoreError> {
        let (v, s) = (int(closing.version)?, int(closing.settle_after)?);
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO closings (channel_id, version, settle_after) VALUES ($1, $2, $3) \
                 ON CONFLICT (channel_id) DO UPDATE SET \
                 version = CASE WHEN excluded.version > closings.version \
                 THEN excluded.version ELSE closings.version END, \
                 settle_after = excluded.settle_after",
            )
            .bind(&channel_id.0[..])
            .bind(v)
            .bind(s)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    pub async fn closing(&self, channel_id: &Hash32) -> Result<Option<Closing>, StoreError> {
        let row: Option<(i64, i64)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT version, settle_after FROM closings WHERE channel_id = $1")
                .bind(&channel_id.0[..])
                .fetch_optional(p)
                .await?
        });
        row.map(|(v, s)| {
            Ok(Closing {
                version: uint(v)?,
                settle_after: uint(s)?,
            })
        })
        .transpose()
    }

    /// Forgets closes whose window ended at or before `height`: nothing can be done for them.
    pub async fn prune_closings(&self, height: Height) -> Result<u64, StoreError> {
        let h = int(height)?;
        let n = on_pool!(self, |p| {
            sqlx::query("DELETE FROM closings WHERE settle_after <= $1")
                .bind(h)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    pub async fn save_response(&self, r: &Response) -> Result<(), StoreError> {
        let row = ResponseRow::try_from(r)?;
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO responses (channel_id, our_version, onchain_version, settle_after, \
                 status, attempts, last_tx, tx_nonce, last_fee, submitted_height, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (channel_id) DO UPDATE SET our_version = excluded.our_version, \
                 onchain_version = excluded.onchain_version, \
                 settle_after = excluded.settle_after, status = excluded.status, \
                 attempts = excluded.attempts, last_tx = excluded.last_tx, \
                 tx_nonce = excluded.tx_nonce, \
                 last_fee = excluded.last_fee, submitted_height = excluded.submitted_height, \
                 detail = excluded.detail",
            )
            .bind(&row.channel_id)
            .bind(row.our_version)
            .bind(row.onchain_version)
            .bind(row.settle_after)
            .bind(&row.status)
            .bind(row.attempts)
            .bind(&row.last_tx)
            .bind(row.tx_nonce)
            .bind(row.last_fee)
            .bind(row.submitted_height)
            .bind(&row.detail)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    pub async fn response(&self, channel_id: &Hash32) -> Result<Option<Response>, StoreError> {
        let row: Option<ResponseRow> = on_pool!(self, |p| {
            sqlx::query_as(&format!("{} WHERE channel_id = $1", rows::RESPONSE_SELECT))
                .bind(&channel_id.0[..])
                .fetch_optional(p)
                .await?
        });
        row.map(Response::try_from).transpose()
    }

    /// Responses still in progress (to resume after a restart).
    pub async fn pending_responses(&self) -> Result<Vec<Response>, StoreError> {
        let rows: Vec<ResponseRow> = on_pool!(self, |p| {
            sqlx::query_as(&format!(
                "{} WHERE status = 'pending'",
                rows::RESPONSE_SELECT
            ))
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(Response::try_from).collect()
    }
}

// After `on_pool!` and `BeginWrite`, which it uses.
mod batch;

#[cfg(test)]
mod tests;
