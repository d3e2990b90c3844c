//! Channels and their latest co-signed snapshot.

use super::{amount, now, parse, parse_json, to_json, Store};
use crate::error::{Result, WalletError};
use sluice_protocol::session::Signed;
use sluice_protocol::{Address, Amount, Hash32, Height, Position, Snapshot};

/// Where a channel stands from this wallet's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    /// The `OpenChannel` transaction is submitted but not yet seen included.
    Opening,
    /// Open and usable.
    Open,
    /// A final state is co-signed; waiting for the cooperative close on chain.
    Final,
    /// A close is on chain; waiting for the challenge window.
    Closing,
    /// Paid out on chain.
    Settled,
    /// The opening transaction failed.
    Failed,
}

impl ChannelStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelStatus::Opening => "opening",
            ChannelStatus::Open => "open",
            ChannelStatus::Final => "final",
            ChannelStatus::Closing => "closing",
            ChannelStatus::Settled => "settled",
            ChannelStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for ChannelStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "opening" => ChannelStatus::Opening,
            "open" => ChannelStatus::Open,
            "final" => ChannelStatus::Final,
            "closing" => ChannelStatus::Closing,
            "settled" => ChannelStatus::Settled,
            "failed" => ChannelStatus::Failed,
            _ => return Err(()),
        })
    }
}

impl std::fmt::Display for ChannelStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One channel as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRow {
    /// Channel id.
    pub id: Hash32,
    /// The hub (party `b`).
    pub hub: Address,
    /// Opening salt (needed for watchtower appointments).
    pub salt: Hash32,
    /// Challenge period asked for at opening.
    pub challenge_period: Height,
    /// Opening deposit.
    pub deposit: Amount,
    /// Local status.
    pub status: ChannelStatus,
    /// Latest co-signed snapshot.
    pub snapshot: Snapshot,
    /// The highest version this wallet signed on the channel (at least the snapshot's).
    pub signed: Signed,
}

impl ChannelRow {
    /// The latest position, as `apply` wants it.
    pub fn position(&self) -> Position {
        Position {
            state: self.snapshot.cosigned.state,
            locks: self.snapshot.locks.clone(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct Raw {
    id: String,
    hub: String,
    salt: String,
    challenge_period: i64,
    deposit: i64,
    status: String,
    snapshot: String,
    signed_version: i64,
    signed_final: bool,
}

impl Raw {
    fn into_row(self) -> Result<ChannelRow> {
        Ok(ChannelRow {
            id: parse("channel id", &self.id)?,
            hub: parse("hub address", &self.hub)?,
            salt: parse("salt", &self.salt)?,
            challenge_period: amount("challenge period", self.challenge_period)?,
            deposit: amount("deposit", self.deposit)?,
            status: parse("channel status", &self.status)?,
            snapshot: parse_json("snapshot", &self.snapshot)?,
            signed: Signed {
                version: amount("signed version", self.signed_version)?,
                is_final: self.signed_final,
            },
        })
    }
}

const COLUMNS: &str =
    "id, hub, salt, challenge_period, deposit, status, snapshot, signed_version, signed_final";

impl Store {
    /// Records a channel before its opening transaction is submitted, so a crash never loses
    /// the salt that derives its id.
    pub async fn insert_channel(&self, row: &ChannelRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO channels (id, hub, salt, challenge_period, deposit, status, version, \
             snapshot, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(row.id.to_string())
        .bind(row.hub.to_string())
        .bind(row.salt.to_string())
        .bind(row.challenge_period as i64)
        .bind(row.deposit as i64)
        .bind(row.status.as_str())
        .bind(row.snapshot.state().version as i64)
        .bind(to_json(&row.snapshot))
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// One channel, if known.
    pub async fn channel(&self, id: &Hash32) -> Result<Option<ChannelRow>> {
        let q = format!("SELECT {COLUMNS} FROM channels WHERE id = ?");
        let raw: Option<Raw> = sqlx::query_as(&q)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        raw.map(Raw::into_row).transpose()
    }

    /// One channel, or a typed error if unknown.
    pub async fn require_channel(&self, id: &Hash32) -> Result<ChannelRow> {
        self.channel(id)
            .await?
            .ok_or_else(|| WalletError::UnknownChannel(id.to_string()))
    }

    /// Every channel, oldest first.
    pub async fn channels(&self) -> Result<Vec<ChannelRow>> {
        let q = format!("SELECT {COLUMNS} FROM channels ORDER BY created_at, id");
        let raws: Vec<Raw> = sqlx::query_as(&q).fetch_all(self.pool()).await?;
        raws.into_iter().map(Raw::into_row).collect()
    }

    /// Records, durably, that this wallet signed up to `signed` on the channel; the record only
    /// grows. Must complete before the signature is sent.
    pub async fn record_signed(&self, id: &Hash32, signed: Signed) -> Result<()> {
        sqlx::query(
            "UPDATE channels SET signed_final = CASE WHEN ? > signed_version THEN ? \
             ELSE (signed_final OR (? = signed_version AND ?)) END, \
             signed_version = MAX(signed_version, ?) WHERE id = ?",
        )
        .bind(signed.version as i64)
        .bind(signed.is_final)
        .bind(signed.version as i64)
        .bind(signed.is_final)
        .bind(signed.version as i64)
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sets a channel's local status.
    pub async fn set_channel_status(&self, id: &Hash32, status: ChannelStatus) -> Result<()> {
        sqlx::query("UPDATE channels SET status = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
