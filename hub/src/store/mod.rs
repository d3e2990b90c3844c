//! The hub's one source of truth: channels with their latest co-signed snapshot, payments and
//! their status history, the chain cursor and collateral jobs. One type over Postgres (operators,
//! several hub processes) and SQLite (embedded default), through sqlx.
//!
//! Every channel update commits the new snapshot with a compare-and-swap on the row it was
//! decided on, so two writers can never fork a channel: on Postgres one statement when the row
//! is unchanged since the caller read it (`cas.rs`), else a transaction that re-reads the row
//! under a lock (`SELECT … FOR UPDATE`; SQLite runs a single writer connection). The
//! hub's own proposals first reserve their version in the same way (`reservations.rs`), so a
//! signature of the hub never exists for a state the store does not know about.

mod cas;
mod chain;
mod channels;
mod codec;
mod hot_rows;
mod jobs;
mod payments;
mod presence;
mod reservations;
mod types;

pub use channels::{Pages, PAGE};
pub use reservations::ReserveWith;
pub use types::*;

use hot_rows::HotRows;
pub use hot_rows::Kept;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Dispatches one body over both backends; the body is compiled once per concrete pool type.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Pg($pool) => $body,
            $crate::store::Db::Lite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported store URL {0:?} (use sqlite://PATH or postgres://…)")]
    BadUrl(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unknown channel {0}")]
    UnknownChannel(sluice_protocol::Hash32),
    #[error("channel {id} moved on: expected version {expected}, found {found}")]
    Conflict {
        id: sluice_protocol::Hash32,
        expected: u64,
        found: u64,
    },
    #[error("value {0} does not fit a database integer")]
    Range(u64),
}

impl StoreError {
    /// A row with this key exists already (a payment's hashlock, say).
    pub fn is_duplicate(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// A store over one database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    hot: Arc<HotRows>,
}

/// The database behind a [`Store`].
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Pg(PgPool),
    Lite(SqlitePool),
}

impl Store {
    /// Connects to `url` (`postgres://…` or `sqlite://PATH`) and runs the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // No ping before handing out a pooled connection: it would be a round trip per
            // statement. A connection that died fails its statement with an error (nothing is
            // written, the update is refused) and the pool drops it.
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
                .connect(url)
                .await?;
            sqlx::migrate!("../migrations/hub/postgres")
                .run(&pool)
                .await?;
            Db::Pg(pool)
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10));
            // One connection: SQLite has one writer anyway, and this makes every
            // read-check-write transaction exclusive without upgrade deadlocks.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(opts)
                .await?;
            sqlx::migrate!("../migrations/hub/sqlite")
                .run(&pool)
                .await?;
            Db::Lite(pool)
        } else {
            return Err(StoreError::BadUrl(url.to_string()));
        };
        Ok(Store {
            db: store,
            hot: Arc::default(),
        })
    }

    /// The Postgres pool, if this store is on Postgres (the hub processes' bus runs on it).
    pub fn pg(&self) -> Option<&PgPool> {
        match &self.db {
            Db::Pg(p) => Some(p),
            Db::Lite(_) => None,
        }
    }

    /// Which backend this is, for logs and the admin API.
    pub fn kind(&self) -> &'static str {
        match self.db {
            Db::Pg(_) => "postgres",
            Db::Lite(_) => "sqlite",
        }
    }

    /// A trivial round trip, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

/// The one wall clock; reservation deadlines in milliseconds are shared across processes.
pub use sluice_home::clock::{unix_ms as now_ms, unix_secs as now_secs};
