//! JSON-RPC 2.0 over HTTP `POST /` and WebSocket `/ws`, plus `GET /health` and `GET /metrics`.
//! Methods and types are those of `sluice_protocol::rpc`.
//!
//! Over HTTP a body of notifications only is answered `204 No Content` with an empty body; a
//! body whose every call was refused by a rate limit is answered `429` (with the JSON-RPC
//! errors as its body), any other JSON-RPC answer `200`.

pub mod jsonrpc;
pub mod limits;
pub mod methods;
pub mod ws;

use crate::chain::Chain;
use futures::{Stream, StreamExt};
use jsonrpc::{error, Call, Parsed};
use limits::{Caller, RateLimited, RateLimits};
use serde_json::{json, Value};
use sluice_listener::Peer;
use sluice_protocol::rpc::code;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::{Buf, Filter, Reply};

/// Serves until `shutdown` resolves, under the listener limits of the node's config.
pub async fn serve(
    chain: Arc<Chain>,
    listener: tokio::net::TcpListener,
    tls: Option<sluice_listener::Tls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let listener_limits = chain.config.listener_limits();
    let rate_limits = Arc::new(RateLimits::from_config(&chain.config));
    let pruner = tokio::spawn(rate_limits.clone().prune_forever());
    let routes = routes(chain, rate_limits);
    sluice_listener::serve_tls(routes, listener, listener_limits, tls, shutdown).await;
    pruner.abort();
}

fn routes(
    chain: Arc<Chain>,
    limits: Arc<RateLimits>,
) -> impl Filter<Extract = (impl Reply,), Error = warp::Rejection> + Clone {
    let with_chain = {
        let c = chain.clone();
        warp::any().map(move || c.clone())
    };
    // The listener tells who is asking; the limits are taken per source and per connection.
    let caller = warp::ext::optional::<Peer>().map(move |peer| Caller {
        limits: limits.clone(),
        peer,
    });
    let rpc = warp::path::end()
        .and(warp::post())
        .and(with_chain.clone())
        .and(caller.clone())
        .and(warp::body::stream())
        .then(|chain: Arc<Chain>, caller: Caller, body| async move {
            http_rpc(chain, caller, body).await
        });
    // Frames and messages slightly over the request limit are read and refused politely;
    // far bigger ones are cut off by the WebSocket layer.
    let max = chain.config.max_request_bytes;
    let ws = warp::path("ws")
        .and(warp::path::end())
        .and(warp::ws())
        .and(with_chain.clone())
        .and(caller)
        .map(move |ws: warp::ws::Ws, chain: Arc<Chain>, caller: Caller| {
            ws.max_message_size(max.saturating_mul(2))
                .max_frame_size(max.saturating_mul(2))
                .on_upgrade(move |socket| ws::connection(socket, chain, caller))
        });
    let health = warp::path("health")
        .and(warp::path::end())
        .and(warp::get())
        .and(with_chain.clone())
        .map(|chain: Arc<Chain>| health(&chain));
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

/// `GET /health`: 200 with `"status": "ok"` while the node can do its job, else 503 with
/// `"status": "unhealthy"`, a `reason` (`stalled`, `behind`), its figures and a `detail`
/// sentence. The verdict is [`crate::health::assess`]; this only gathers what it judges.
fn health(chain: &Chain) -> warp::reply::Response {
    let seen = chain.observe(sluice_home::clock::unix_ms());
    let tip = chain.tip();
    let mut body = json!({
        "status": "ok",
        "chain_id": chain.genesis.chain_id,
        "height": tip.height,
        "tip_hash": tip.hash,
        "mempool": chain.mempool_len(),
    });
    let status = match crate::health::assess(&seen, &chain.health_bounds()) {
        Ok(()) => StatusCode::OK,
        Err(why) => {
            tracing::debug!(reason = why.code(), %why, "health check fails");
            body["status"] = json!("unhealthy");
            body["detail"] = json!(why.to_string());
            if let (Some(out), Ok(Value::Object(fields))) =
                (body.as_object_mut(), serde_json::to_value(&why))
            {
                out.extend(fields);
            }
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    json_reply(body.to_string(), status)
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

/// The id a refusal of this entry is answered with: the call's own (none for a notification),
/// or null for a malformed entry.
fn entry_id(entry: &Result<Call, Value>) -> Option<Value> {
    match entry {
        Ok(call) => call.id.clone(),
        Err(_) => Some(Value::Null),
    }
}

/// Answers a call the limits refused (nothing for a notification).
fn refuse(chain: &Chain, e: &RateLimited, id: Option<Value>) -> Option<Value> {
    chain.metrics.rpc_errors.inc();
    tracing::debug!(error = %e, "call refused by a rate limit");
    e.reply(id)
}

/// Runs one call; its answer, or none if it was a notification.
async fn execute(chain: &Arc<Chain>, call: Call) -> Option<Value> {
    let result = methods::call(chain, &call.method, call.params).await;
    answer(chain, call.id, result)
}

/// The answer to a call with `id` (none for a notification), counting an error.
pub(crate) fn answer(
    chain: &Chain,
    id: Option<Value>,
    result: Result<Value, sluice_protocol::rpc::RpcError>,
) -> Option<Value> {
    if result.is_err() {
        chain.metrics.rpc_errors.inc();
    }
    Some(match result {
        Ok(v) => jsonrpc::ok_response(id?, v),
        Err(e) => jsonrpc::err_response(id?, &e),
    })
}

/// A body that is not a call still costs one call's place; refused, it gets the limit's error.
fn refuse_body(chain: &Chain, caller: &Caller) -> Option<warp::reply::Response> {
    let e = caller.admit().err()?;
    let body = refuse(chain, &e, Some(Value::Null))?;
    Some(json_reply(body.to_string(), StatusCode::TOO_MANY_REQUESTS))
}

async fn http_rpc<S, B>(chain: Arc<Chain>, caller: Caller, body: S) -> warp::reply::Response
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let max = chain.config.max_request_bytes;
    let bytes = match read_limited(body, max).await {
        Ok(b) => b,
        Err(BodyError::TooLarge(max)) => {
            if let Some(refused) = refuse_body(&chain, &caller) {
                return refused;
            }
            chain.metrics.rpc_errors.inc();
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
            if let Some(refused) = refuse_body(&chain, &caller) {
                return refused;
            }
            chain.metrics.rpc_errors.inc();
            return json_reply(resp.to_string(), StatusCode::OK);
        }
        Parsed::Single(c) => (false, vec![c]),
        Parsed::Batch(cs) => (true, cs),
    };
    let (total, mut limited) = (calls.len(), 0);
    let mut responses = Vec::with_capacity(total);
    for c in calls {
        chain.metrics.rpc_requests.inc();
        if let Err(e) = caller.admit() {
            limited += 1;
            responses.push(refuse(&chain, &e, entry_id(&c)));
            continue;
        }
        responses.push(match c {
            Err(resp) => {
                chain.metrics.rpc_errors.inc();
                Some(resp)
            }
            Ok(call) => execute(&chain, call).await,
        });
    }
    let status = if limited == total {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    match jsonrpc::assemble(batch, responses) {
        Some(body) => json_reply(body, status),
        None => warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response(),
    }
}
