//! The chain node's JSON-RPC 2.0 interface (HTTP `POST /` and WebSocket `/ws`): method names,
//! parameter and result types, error codes. Shared by the node and every client of it.
//!
//! Params are JSON objects (by name). Transactions travel as hex of their canonical bytes.

use crate::amount::Amount;
use crate::hash::Hash32;
use crate::keys::Address;
use crate::onchain::{ChannelLimits, EventKind};
use crate::{ChainId, Height};
use serde::{Deserialize, Serialize};

pub mod method {
    pub const CHAIN_INFO: &str = "chain_info";
    pub const ACCOUNT: &str = "account";
    pub const SUBMIT_TX: &str = "submit_tx";
    pub const SUBMIT_TXS: &str = "submit_txs";
    pub const TX: &str = "tx";
    pub const BLOCK: &str = "block";
    pub const CHANNEL: &str = "channel";
    pub const SECRET: &str = "secret";
    pub const EVENTS: &str = "events";
    pub const SUBSCRIBE_HEADS: &str = "subscribe_heads";
    pub const SUBSCRIBE_EVENTS: &str = "subscribe_events";
    pub const UNSUBSCRIBE: &str = "unsubscribe";
    /// Notification method for `subscribe_heads`.
    pub const HEADS: &str = "heads";
    /// Notification method for `subscribe_events`.
    pub const EVENTS_NOTIFICATION: &str = "events";
}

/// JSON-RPC error codes. The standard ones, then Sluice's own in the server range.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL: i64 = -32603;
    /// The transaction was refused by the mempool; `message` says why.
    pub const TX_REJECTED: i64 = -32010;
    /// Request, batch or subscription count over a configured limit.
    pub const LIMIT_EXCEEDED: i64 = -32011;
    /// Asked for something that does not exist (e.g. a future block).
    pub const NOT_FOUND: i64 = -32012;
    /// Over a request-rate limit (per source address or per connection); `message` names the
    /// limit and when to retry. Nothing was executed.
    pub const RATE_LIMITED: i64 = -32013;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    pub chain_id: ChainId,
    /// Height of the last committed block (0 = genesis only).
    pub height: Height,
    pub tip_hash: Hash32,
    pub state_root: Hash32,
    pub block_time_ms: u64,
    pub min_fee: Amount,
    pub default_challenge_period: Height,
    pub channel_limits: ChannelLimits,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountParams {
    pub address: Address,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Account {
    pub balance: Amount,
    /// The nonce the account's next transaction must carry.
    pub nonce: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitTxParams {
    /// Hex of the canonical `SignedTx` bytes.
    pub tx: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitTxsParams {
    pub txs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub id: Hash32,
}

/// One entry of a `submit_txs` result, in the order submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitOutcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Hash32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdParams {
    pub id: Hash32,
}

/// How an included transaction ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxReceipt {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxInfo {
    pub id: Hash32,
    pub height: Height,
    pub index: u32,
    pub from: Address,
    pub kind: String,
    pub receipt: TxReceipt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeightParams {
    pub height: Height,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    pub height: Height,
    pub parent: Hash32,
    pub hash: Hash32,
    /// Commitment to the ledger state after this block.
    pub state_root: Hash32,
    pub tx_root: Hash32,
    pub time_ms: u64,
    pub proposer: Address,
    pub tx_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<Hash32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelParams {
    pub channel_id: Hash32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretParams {
    pub hashlock: Hash32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub secret: Hash32,
    pub height: Height,
}

/// Which events to return or stream; all set fields must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EventFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Hash32>,
    /// Events naming this account, including every event of its channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<Address>,
    /// Event type names (`EventKind::name`); empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsParams {
    pub from_height: Height,
    pub to_height: Height,
    #[serde(default)]
    pub filter: EventFilter,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeEventsParams {
    #[serde(default)]
    pub filter: EventFilter,
    /// Replay committed events from this height, then stream live ones.
    pub from_height: Height,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeParams {
    /// The id `subscribe_heads` or `subscribe_events` returned.
    pub subscription: u64,
}

/// An event with its place in the chain; `(height, tx_index, index)` orders all events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub height: Height,
    pub tx_index: u32,
    pub index: u32,
    pub tx_id: Hash32,
    /// Accounts the event concerns (for a channel event, both parties).
    pub participants: Vec<Address>,
    pub event: EventKind,
}

impl EventFilter {
    pub fn matches(&self, e: &Event) -> bool {
        self.channel_id
            .is_none_or(|c| e.event.channel_id() == Some(c))
            && self.participant.is_none_or(|p| e.participants.contains(&p))
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k == e.event.name()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("rpc error {code}: {message}")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

/// A subscription notification: `{"jsonrpc":"2.0","method":…,"params":{"subscription":…,"result":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification<T> {
    pub subscription: u64,
    pub result: T,
}
