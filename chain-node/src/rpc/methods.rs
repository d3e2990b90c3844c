//! The request/response methods of `protocol::rpc` (everything but subscriptions).

use super::jsonrpc::error;
use crate::chain::{Chain, SubmitError};
use crate::ledger::EventsError;
use crate::state::StateRead;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sluice_protocol::hex;
use sluice_protocol::rpc::{
    code, method, AccountParams, ChainInfo, ChannelParams, EventsParams, HeightParams, IdParams,
    RpcError, SecretParams, SubmitOutcome, SubmitTxParams, SubmitTxsParams, Submitted,
};
use std::sync::Arc;

/// Parses named params; a missing or malformed field (bad hex included) is `INVALID_PARAMS`.
pub fn params<T: DeserializeOwned>(p: Value) -> Result<T, RpcError> {
    serde_json::from_value(p)
        .map_err(|e| error(code::INVALID_PARAMS, format!("invalid params: {e}")))
}

fn to_value<T: Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| error(code::INTERNAL, e.to_string()))
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    tracing::error!(error = %e, "rpc internal error");
    error(code::INTERNAL, format!("internal error: {e}"))
}

/// Runs blocking ledger work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

fn submit_error(e: SubmitError) -> RpcError {
    match e {
        SubmitError::Store(s) => internal(s),
        e => error(code::TX_REJECTED, e.to_string()),
    }
}

fn decode_hex(s: &str, what: &str) -> Result<Vec<u8>, RpcError> {
    hex::decode(s).map_err(|e| error(code::INVALID_PARAMS, format!("{what}: bad hex: {e}")))
}

/// Dispatches one non-subscription call.
pub async fn call(chain: &Arc<Chain>, name: &str, p: Value) -> Result<Value, RpcError> {
    match name {
        method::CHAIN_INFO => to_value(chain_info(chain)),
        method::ACCOUNT => {
            let AccountParams { address } = params(p)?;
            to_value(chain.ledger.account(&address).map_err(internal)?)
        }
        method::SUBMIT_TX => {
            let SubmitTxParams { tx } = params(p)?;
            let bytes = decode_hex(&tx, "tx")?;
            let id = chain.submit(bytes).map_err(submit_error)?;
            to_value(Submitted { id })
        }
        method::SUBMIT_TXS => submit_txs(chain, params(p)?).await,
        method::TX => {
            let IdParams { id } = params(p)?;
            to_value(chain.ledger.tx_info(&id).map_err(internal)?)
        }
        method::BLOCK => {
            let HeightParams { height } = params(p)?;
            to_value(chain.ledger.block(height).map_err(internal)?)
        }
        method::CHANNEL => {
            let ChannelParams { channel_id } = params(p)?;
            to_value(chain.ledger.channel(&channel_id).map_err(internal)?)
        }
        method::SECRET => {
            let SecretParams { hashlock } = params(p)?;
            to_value(chain.ledger.secret(&hashlock).map_err(internal)?)
        }
        method::EVENTS => events(chain, params(p)?).await,
        method::SUBSCRIBE_EVENTS | method::SUBSCRIBE_HEADS | method::UNSUBSCRIBE => Err(error(
            code::INVALID_REQUEST,
            format!("{name} needs the WebSocket endpoint /ws"),
        )),
        other => Err(error(
            code::METHOD_NOT_FOUND,
            format!("unknown method {other:?}"),
        )),
    }
}

pub fn chain_info(chain: &Chain) -> ChainInfo {
    let tip = chain.tip();
    let g = &chain.genesis;
    ChainInfo {
        chain_id: g.chain_id,
        height: tip.height,
        tip_hash: tip.hash,
        state_root: tip.state_root,
        block_time_ms: chain.config.block_time_ms,
        min_fee: g.min_fee,
        default_challenge_period: g.default_challenge_period,
        channel_limits: g.channel_limits,
    }
}

async fn submit_txs(chain: &Arc<Chain>, p: SubmitTxsParams) -> Result<Value, RpcError> {
    let max = chain.config.max_submit_txs;
    if p.txs.len() > max {
        return Err(error(
            code::LIMIT_EXCEEDED,
            format!(
                "{} transactions exceed the limit of {max} per call",
                p.txs.len()
            ),
        ));
    }
    // Hex errors answer per transaction; the rest go to parallel verification.
    let decoded: Vec<Result<Vec<u8>, RpcError>> =
        p.txs.iter().map(|t| decode_hex(t, "tx")).collect();
    let good: Vec<Vec<u8>> = decoded
        .iter()
        .filter_map(|d| d.as_ref().ok().cloned())
        .collect();
    let c = chain.clone();
    let mut results = blocking(move || Ok(c.submit_many(good))).await?.into_iter();
    let outcomes: Vec<SubmitOutcome> = decoded
        .into_iter()
        .map(|d| {
            let r = match d {
                Err(e) => Err(e),
                Ok(_) => results
                    .next()
                    .unwrap_or_else(|| Err(SubmitError::Store("missing result".into())))
                    .map_err(submit_error),
            };
            match r {
                Ok(id) => SubmitOutcome {
                    id: Some(id),
                    error: None,
                },
                Err(e) => SubmitOutcome {
                    id: None,
                    error: Some(e),
                },
            }
        })
        .collect();
    to_value(outcomes)
}

async fn events(chain: &Arc<Chain>, p: EventsParams) -> Result<Value, RpcError> {
    if p.from_height > p.to_height {
        return Err(error(
            code::INVALID_PARAMS,
            "from_height is above to_height",
        ));
    }
    let range = chain.config.max_event_range;
    if p.to_height - p.from_height >= range {
        return Err(error(
            code::LIMIT_EXCEEDED,
            format!("height range wider than {range} blocks"),
        ));
    }
    let to = p.to_height.min(chain.height());
    if p.from_height > to {
        return to_value(Vec::<sluice_protocol::rpc::Event>::new());
    }
    let max = chain.config.max_events_per_query;
    let c = chain.clone();
    let evs = blocking(move || {
        c.ledger
            .events(p.from_height, to, &p.filter, max)
            .map_err(|e| match e {
                EventsError::TooMany(_) => error(code::LIMIT_EXCEEDED, e.to_string()),
                EventsError::Store(s) => internal(s),
            })
    })
    .await?;
    to_value(evs)
}
