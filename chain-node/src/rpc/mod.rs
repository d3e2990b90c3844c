//! JSON-RPC 2.0 over HTTP `POST /` and WebSocket `/ws`, plus `GET /health` and `GET /metrics`.
//! Methods and types are those of `sluice_protocol::rpc`.

pub mod jsonrpc;
pub mod methods;
pub mod ws;

use crate::chain::Chain;
use crate::metrics::Metrics;
use futures::{Stream, StreamExt};
use jsonrpc::{error, Parsed};
use serde_json::{json, Value};
use sluice_protocol::rpc::code;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Buf, Filter, Reply};

/// Serves until `shutdown` resolves, under the listener limits of the node's config.
pub async fn serve(
    chain: Arc<Chain>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let limits = chain.config.listener_limits();
    sluice_listener::serve(routes(chain), listener, limits, shutdown).await;
}

fn routes(
    chain: Arc<Chain>,
) -> impl Filter<Extract = (impl Reply,), Error = warp::Rejection> + Clone {
    let with_chain = {
        let c = chain.clone();
        warp::any().map(move || c.clone())
    };
    let rpc = warp::path::end()
        .and(warp::post())
        .and(with_chain.clone())
        .and(warp::body::stream())
        .then(|chain: Arc<Chain>, body| async move { http_rpc(chain, body).await });
    // Frames and messages slightly over the request limit are read and refused politely;
    // far bigger ones are cut off by the WebSocket layer.
    let max = chain.config.max_request_bytes;
    let ws = warp::path("ws")
        .and(warp::path::end())
        .and(warp::ws())
        .and(with_chain.clone())
        .map(move |ws: warp::ws::Ws, chain: Arc<Chain>| {
            ws.max_message_size(max.saturating_mul(2))
                .max_frame_size(max.saturating_mul(2))
                .on_upgrade(move |socket| ws::connection(socket, chain))
        });
    let health = warp::path("health")
        .and(warp::path::end())
        .and(warp::get())
        .and(with_chain.clone())
        .map(|chain: Arc<Chain>| {
            let tip = chain.tip();
            warp::reply::json(&json!({
                "status": "ok",
                "chain_id": chain.genesis.chain_id,
                "height": tip.height,
                "tip_hash": tip.hash,
                "mempool": chain.mempool_len(),
            }))
        });
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(with_chain)
        .map(|chain: Arc<Chain>| {
            warp::reply::with_header(
                chain.metrics.render(),
                "content-type",
                "text/plain; version=0.0.4",
            )
        });
    rpc.or(ws).or(health).or(metrics)
}

#[derive(Debug)]
enum BodyError {
    TooLarge(usize),
    Read(String),
}

/// Reads the body up to `max` bytes, whether or not it declared a length.
async fn read_limited<S, B>(body: S, max: usize) -> Result<Vec<u8>, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if out.len() + chunk.remaining() > max {
            return Err(BodyError::TooLarge(max));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out)
}

fn json_reply(body: String, status: StatusCode) -> warp::reply::Response {
    let reply = warp::reply::with_header(body, "content-type", "application/json");
    warp::reply::with_status(reply, status).into_response()
}

async fn http_rpc<S, B>(chain: Arc<Chain>, body: S) -> warp::reply::Response
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let max = chain.config.max_request_bytes;
    let bytes = match read_limited(body, max).await {
        Ok(b) => b,
        Err(BodyError::TooLarge(max)) => {
            Metrics::inc(&chain.metrics.rpc_errors, 1);
            let e = error(
                code::LIMIT_EXCEEDED,
                format!("request body exceeds the limit of {max} bytes"),
            );
            return json_reply(
                jsonrpc::err_response(Value::Null, &e).to_string(),
                StatusCode::PAYLOAD_TOO_LARGE,
            );
        }
        Err(BodyError::Read(m)) => {
            let e = error(
                code::INVALID_REQUEST,
                format!("could not read the body: {m}"),
            );
            return json_reply(
                jsonrpc::err_response(Value::Null, &e).to_string(),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let (batch, calls) = match jsonrpc::parse(&bytes, chain.config.max_batch_len) {
        Parsed::Invalid(resp) => {
            Metrics::inc(&chain.metrics.rpc_errors, 1);
            return json_reply(resp.to_string(), StatusCode::OK);
        }
        Parsed::Single(c) => (false, vec![c]),
        Parsed::Batch(cs) => (true, cs),
    };
    let mut responses = Vec::with_capacity(calls.len());
    for c in calls {
        Metrics::inc(&chain.metrics.rpc_requests, 1);
        let resp = match c {
            Err(resp) => Err(resp),
            Ok(call) => match methods::call(&chain, &call.method, call.params).await {
                Ok(v) => Ok(jsonrpc::ok_response(call.id, v)),
                Err(e) => Err(jsonrpc::err_response(call.id, &e)),
            },
        };
        responses.push(resp.unwrap_or_else(|e| {
            Metrics::inc(&chain.metrics.rpc_errors, 1);
            e
        }));
    }
    json_reply(jsonrpc::assemble(batch, responses), StatusCode::OK)
}
