//! The wallet's SQLite store: the one place its channel states, invoices, payments and
//! watchtower queue live. WAL with `synchronous=FULL`, so a committed transaction survives a
//! crash or power loss before anything is signed or acknowledged on top of it. It also holds
//! the event log ([`Store::events_since`]), written with the changes its events describe.

mod channels;
mod events;
mod invoices;
mod payments;
mod towers;
mod update;

pub use channels::{ChannelRow, ChannelStatus};
pub use events::{EVENT_PAGE_MAX, EVENT_RETENTION};
pub use invoices::InvoiceRow;
pub use payments::{PaymentDirection, PaymentRow, PaymentStatus};
pub use towers::{QueuedAppointment, TowerRow};
pub use update::Effect;

use crate::error::{Result, WalletError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// A handle on the wallet database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("../migrations/client/sqlite")
            .run(&pool)
            .await?;
        Ok(Store { pool })
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A metadata value (chain cursor, chain id).
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        let v: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.map(|(s,)| s))
    }

    /// Sets a metadata value.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES (?, ?) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    i64::try_from(sluice_home::clock::unix_secs()).unwrap_or(i64::MAX)
}

/// Parses a stored text column, naming what was unreadable.
pub(crate) fn parse<T: FromStr>(what: &str, s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| WalletError::Corrupt(format!("{what} {s:?}")))
}

/// Parses a stored JSON column.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| WalletError::Corrupt(format!("{what}: {e}")))
}

/// Stored amounts are `i64`; every protocol amount is at most `i64::MAX`.
pub(crate) fn amount(what: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| WalletError::Corrupt(format!("negative {what}")))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
