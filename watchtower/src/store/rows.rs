//! Row shapes as the store keeps them, and their conversion to the tower's types.

use super::{int, uint, StoreError};
use serde::Serialize;
use sluice_protocol::encoding::Canonical;
use sluice_protocol::{Address, Amount, Hash32, Height, Snapshot};

/// A channel's close as seen on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closing {
    pub version: u64,
    pub settle_after: Height,
}

/// The highest version the tower holds for a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAppointment {
    pub channel_id: Hash32,
    pub a: Address,
    pub b: Address,
    pub salt: Hash32,
    pub snapshot: Snapshot,
    pub stored_height: Height,
}

impl StoredAppointment {
    pub fn version(&self) -> u64 {
        self.snapshot.state().version
    }
}

/// What `GET /appointments` shows per channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AppointmentSummary {
    pub channel_id: Hash32,
    pub version: u64,
    pub stored_height: Height,
}

/// Where the tower's answer to a stale close stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    /// Challenge submitted (or about to be); not yet included.
    Pending,
    /// The chain holds our version: our challenge was included (whichever of its attempts at
    /// one nonce landed).
    Challenged,
    /// The chain already holds a version higher than ours (someone else challenged).
    Superseded,
    /// The window closed before a challenge was included.
    WindowClosed,
    /// Our challenge was included and failed (the state does not fit the channel, say), or
    /// the attempt budget ran out: nothing more is spent on it (ATTACKS F9).
    Failed,
}

impl ResponseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseStatus::Pending => "pending",
            ResponseStatus::Challenged => "challenged",
            ResponseStatus::Superseded => "superseded",
            ResponseStatus::WindowClosed => "window_closed",
            ResponseStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => ResponseStatus::Pending,
            "challenged" => ResponseStatus::Challenged,
            "superseded" => ResponseStatus::Superseded,
            "window_closed" => ResponseStatus::WindowClosed,
            "failed" => ResponseStatus::Failed,
            other => return Err(StoreError::Corrupt(format!("response status {other:?}"))),
        })
    }
}

/// The tower's reaction to one channel's stale close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub channel_id: Hash32,
    pub our_version: u64,
    pub onchain_version: u64,
    pub settle_after: Height,
    pub status: ResponseStatus,
    pub attempts: u32,
    pub last_tx: Option<Hash32>,
    /// The nonce `last_tx` holds; a fee bump replaces the transaction there.
    pub tx_nonce: Option<u64>,
    pub last_fee: Amount,
    pub submitted_height: Height,
    pub detail: String,
}

impl Response {
    /// A response to `onchain` not yet attempted; its first try pays `fee`.
    pub fn new(channel_id: Hash32, onchain: Closing, fee: Amount) -> Self {
        Response {
            channel_id,
            our_version: 0,
            onchain_version: onchain.version,
            settle_after: onchain.settle_after,
            status: ResponseStatus::Pending,
            attempts: 0,
            last_tx: None,
            tx_nonce: None,
            last_fee: fee,
            submitted_height: 0,
            detail: String::new(),
        }
    }
}

pub(super) const RESPONSE_SELECT: &str = "SELECT channel_id, our_version, onchain_version, \
    settle_after, status, attempts, last_tx, tx_nonce, last_fee, submitted_height, detail \
    FROM responses";

#[derive(sqlx::FromRow)]
pub(super) struct AppointmentRow {
    channel_id: Vec<u8>,
    party_a: Vec<u8>,
    party_b: Vec<u8>,
    salt: Vec<u8>,
    version: i64,
    snapshot: Vec<u8>,
    stored_height: i64,
}

/// Everything the batch needs to judge one appointment, read for all items in one query.
#[derive(sqlx::FromRow)]
pub(super) struct Precheck {
    /// The item's position in the batch.
    pub i: i64,
    /// `None` when the user is not registered.
    pub quota: Option<i64>,
    pub channels: Option<i64>,
    pub used: i64,
    pub stored: Option<i64>,
    /// The stored snapshot's bytes (an equal version must be the very same state).
    pub stored_snapshot: Option<Vec<u8>>,
    pub watching: i64,
    pub closing_version: Option<i64>,
    pub settle_after: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub(super) struct SummaryRow {
    channel_id: Vec<u8>,
    version: i64,
    stored_height: i64,
}

#[derive(sqlx::FromRow)]
pub(super) struct ResponseRow {
    pub channel_id: Vec<u8>,
    pub our_version: i64,
    pub onchain_version: i64,
    pub settle_after: i64,
    pub status: String,
    pub attempts: i64,
    pub last_tx: Option<Vec<u8>>,
    pub tx_nonce: Option<i64>,
    pub last_fee: i64,
    pub submitted_height: i64,
    pub detail: String,
}

pub(super) fn encode_snapshot(s: &Snapshot) -> Vec<u8> {
    s.to_bytes()
}

fn bytes32(what: &str, v: &[u8]) -> Result<[u8; 32], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} of {} bytes", v.len())))
}

impl TryFrom<AppointmentRow> for StoredAppointment {
    type Error = StoreError;
    fn try_from(r: AppointmentRow) -> Result<Self, StoreError> {
        let snapshot = Snapshot::from_bytes(&r.snapshot)
            .map_err(|e| StoreError::Corrupt(format!("snapshot: {e}")))?;
        if snapshot.state().version != uint(r.version)? {
            return Err(StoreError::Corrupt(
                "version column disagrees with snapshot".into(),
            ));
        }
        Ok(StoredAppointment {
            channel_id: Hash32(bytes32("channel id", &r.channel_id)?),
            a: Address(bytes32("party a", &r.party_a)?),
            b: Address(bytes32("party b", &r.party_b)?),
            salt: Hash32(bytes32("salt", &r.salt)?),
            snapshot,
            stored_height: uint(r.stored_height)?,
        })
    }
}

impl TryFrom<SummaryRow> for AppointmentSummary {
    type Error = StoreError;
    fn try_from(r: SummaryRow) -> Result<Self, StoreError> {
        Ok(AppointmentSummary {
            channel_id: Hash32(bytes32("channel id", &r.channel_id)?),
            version: uint(r.version)?,
            stored_height: uint(r.stored_height)?,
        })
    }
}

impl TryFrom<&Response> for ResponseRow {
    type Error = StoreError;
    fn try_from(r: &Response) -> Result<Self, StoreError> {
        Ok(ResponseRow {
            channel_id: r.channel_id.0.to_vec(),
            our_version: int(r.our_version)?,
            onchain_version: int(r.onchain_version)?,
            settle_after: int(r.settle_after)?,
            status: r.status.as_str().to_string(),
            attempts: i64::from(r.attempts),
            last_tx: r.last_tx.map(|t| t.0.to_vec()),
            tx_nonce: r.tx_nonce.map(int).transpose()?,
            last_fee: int(r.last_fee)?,
            submitted_height: int(r.submitted_height)?,
            detail: r.detail.clone(),
        })
    }
}

impl TryFrom<ResponseRow> for Response {
    type Error = StoreError;
    fn try_from(r: ResponseRow) -> Result<Self, StoreError> {
        Ok(Response {
            channel_id: Hash32(bytes32("channel id", &r.channel_id)?),
            our_version: uint(r.our_version)?,
            onchain_version: uint(r.onchain_version)?,
            settle_after: uint(r.settle_after)?,
            status: ResponseStatus::parse(&r.status)?,
            attempts: u32::try_from(r.attempts)
                .map_err(|_| StoreError::Corrupt(format!("attempts {}", r.attempts)))?,
            last_tx: r
                .last_tx
                .map(|t| bytes32("tx id", &t).map(Hash32))
                .transpose()?,
            tx_nonce: r.tx_nonce.map(uint).transpose()?,
            last_fee: uint(r.last_fee)?,
            submitted_height: uint(r.submitted_height)?,
            detail: r.detail,
        })
    }
}
