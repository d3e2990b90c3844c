//! WebSocket connections: the same calls as HTTP plus subscriptions.
//!
//! Each connection has one bounded outgoing queue drained by a writer task. Subscriptions push
//! into it without waiting once live; a subscriber whose queue is full (or who fell more than the
//! notification backlog behind) is sent an error and disconnected, so a slow reader can never
//! hold up block production or other connections.
//!
//! Calls count against the rate limits of the connection and of its source address (see
//! [`super::limits`]); a call over one is answered with `RATE_LIMITED` and the connection stays
//! open. Notifications (calls without an `id`) are executed and never answered, except that a
//! subscription asked for in a notification is not started: its id is its answer, so the
//! client could neither unsubscribe nor tell its stream from another's, and it would hold one of
//! the connection's subscription places until the connection ends.
//!
//! `subscribe_events{filter, from_height}` subscribes to new blocks *first*, then reads the tip
//! `T`, replays committed events in `[from_height, T]` from the ledger, then streams live blocks
//! above `T`: no gap (every block above `T` arrives live) and no duplicate (nothing at or below
//! `T` is sent twice).

use super::jsonrpc::{self, error, Call, Parsed};
use super::limits::Caller;
use super::methods;
use crate::chain::{BlockNotice, Chain};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use sluice_protocol::rpc::{
    code, method, EventFilter, RpcError, SubscribeEventsParams, UnsubscribeParams,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use warp::ws::{Message, WebSocket};

/// Subscription ids are unique across the node's lifetime.
static NEXT_SUB: AtomicU64 = AtomicU64::new(1);
/// Heights replayed per ledger read.
const REPLAY_CHUNK: u64 = 32;

/// What a subscription task needs to talk to its connection.
#[derive(Clone)]
struct Outbox {
    queue: mpsc::Sender<String>,
    /// Set to the reason when the connection must end (slow subscriber).
    close: watch::Sender<Option<String>>,
}

impl Outbox {
    fn drop_slow(&self, chain: &Chain, sub: u64) {
        chain.metrics.subscribers_dropped.inc();
        tracing::warn!(subscription = sub, "dropping a subscriber that fell behind");
        let _ = self.close.send(Some(format!(
            "subscription {sub} dropped: the subscriber fell behind"
        )));
    }
}

fn notification<T: Serialize>(method: &str, sub: u64, result: &T) -> String {
    json!({"jsonrpc": "2.0", "method": method, "params": {"subscription": sub, "result": result}})
        .to_string()
}

pub async fn connection(socket: WebSocket, chain: Arc<Chain>, caller: Caller) {
    chain.metrics.ws_connections.inc();
    let (sink, mut stream) = socket.split();
    let (queue, rx) = mpsc::channel(chain.config.ws_queue_len);
    let (close, close_rx) = watch::channel(None);
    let outbox = Outbox { queue, close };
    let mut writer = tokio::spawn(write_loop(sink, rx, close_rx));
    let mut subs: HashMap<u64, JoinHandle<()>> = HashMap::new();
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = &mut writer => break,
        };
        let msg = match msg {
            Some(Ok(m)) => m,
            _ => break,
        };
        if msg.is_close() {
            break;
        }
        if !(msg.is_text() || msg.is_binary()) {
            continue;
        }
        let mut starts = Vec::new();
        let reply = handle_message(
            &chain,
            &caller,
            msg.as_bytes(),
            &outbox,
            &mut subs,
            &mut starts,
        )
        .await;
        if let Some(text) = reply {
            if outbox.queue.send(text).await.is_err() {
                break;
            }
        }
        for go in starts {
            let _ = go.send(());
        }
    }
    for (_, h) in subs.drain() {
        h.abort();
        chain.metrics.subscriptions.dec();
    }
    drop(outbox);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
    chain.metrics.ws_connections.dec();
}

async fn write_loop(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<String>,
    mut close_rx: watch::Receiver<Option<String>>,
) {
    loop {
        tokio::select! {
            biased;
            changed = close_rx.changed() => {
                let reason = close_rx.borrow().clone();
                if let (Ok(()), Some(reason)) = (changed, reason) {
                    let err = jsonrpc::err_response(Value::Null, &error(code::LIMIT_EXCEEDED, reason));
                    let _ = sink.send(Message::text(err.to_string())).await;
                }
                break;
            }
            m = rx.recv() => match m {
                Some(text) => {
                    if sink.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                None => break,
            }
        }
    }
    let _ = sink.send(Message::close()).await;
    let _ = sink.close().await;
}

/// A message that is not a call still costs one call's place; refused, it gets the limit's error.
fn refuse_message(chain: &Chain, caller: &Caller) -> Option<String> {
    let e = caller.admit().err()?;
    super::refuse(chain, &e, Some(Value::Null)).map(|v| v.to_string())
}

/// Answers one message (nothing if it held notifications only); subscriptions it started are
/// released by firing `starts` once the answer is queued.
async fn handle_message(
    chain: &Arc<Chain>,
    caller: &Caller,
    bytes: &[u8],
    outbox: &Outbox,
    subs: &mut HashMap<u64, JoinHandle<()>>,
    starts: &mut Vec<oneshot::Sender<()>>,
) -> Option<String> {
    let max = chain.config.max_request_bytes;
    if bytes.len() > max {
        if let Some(refused) = refuse_message(chain, caller) {
            return Some(refused);
        }
        let e = error(
            code::LIMIT_EXCEEDED,
            format!(
                "message of {} bytes exceeds the limit of {max}",
                bytes.len()
            ),
        );
        return Some(jsonrpc::err_response(Value::Null, &e).to_string());
    }
    let (batch, calls) = match jsonrpc::parse(bytes, chain.config.max_batch_len) {
        Parsed::Invalid(resp) => {
            return refuse_message(chain, caller).or_else(|| Some(resp.to_string()))
        }
        Parsed::Single(c) => (false, vec![c]),
        Parsed::Batch(cs) => (true, cs),
    };
    let mut responses = Vec::with_capacity(calls.len());
    for c in calls {
        if let Err(e) = caller.admit() {
            responses.push(super::refuse(chain, &e, super::entry_id(&c)));
            continue;
        }
        responses.push(match c {
            Err(resp) => Some(resp),
            Ok(call) => answer(chain, call, outbox, subs, starts).await,
        });
    }
    jsonrpc::assemble(batch, responses)
}

/// Runs one call; its answer, or none for a notification.
async fn answer(
    chain: &Arc<Chain>,
    call: Call,
    outbox: &Outbox,
    subs: &mut HashMap<u64, JoinHandle<()>>,
    starts: &mut Vec<oneshot::Sender<()>>,
) -> Option<Value> {
    chain.metrics.rpc_requests.inc();
    let result = match (call.method.as_str(), &call.id) {
        (method::SUBSCRIBE_HEADS | method::SUBSCRIBE_EVENTS, None) => {
            tracing::debug!(method = %call.method, "subscription asked in a notification: ignored");
            return None;
        }
        (method::SUBSCRIBE_HEADS | method::SUBSCRIBE_EVENTS, Some(_)) => {
            subscribe(chain, &call, outbox, subs, starts)
        }
        (method::UNSUBSCRIBE, _) => unsubscribe(chain, call.params.clone(), subs),
        (name, _) => methods::call(chain, name, call.params).await,
    };
    super::answer(chain, call.id, result)
}

fn unsubscribe(
    chain: &Chain,
    p: Value,
    subs: &mut HashMap<u64, JoinHandle<()>>,
) -> Result<Value, RpcError> {
    let UnsubscribeParams { subscription } = methods::params(p)?;
    match subs.remove(&subscription) {
        Some(h) => {
            h.abort();
            chain.metrics.subscriptions.dec();
            Ok(Value::Bool(true))
        }
        None => Ok(Value::Bool(false)),
    }
}

/// Starts a subscription. Its confirmation is queued before the task can send anything.
fn subscribe(
    chain: &Arc<Chain>,
    call: &Call,
    outbox: &Outbox,
    subs: &mut HashMap<u64, JoinHandle<()>>,
    starts: &mut Vec<oneshot::Sender<()>>,
) -> Result<Value, RpcError> {
    subs.retain(|_, h| {
        let done = h.is_finished();
        if done {
            chain.metrics.subscriptions.dec();
        }
        !done
    });
    let events = match call.method.as_str() {
        method::SUBSCRIBE_EVENTS => Some(methods::params::<SubscribeEventsParams>(
            call.params.clone(),
        )?),
        _ => None,
    };
    let max = chain.config.max_subscriptions_per_conn;
    if subs.len() >= max {
        return Err(error(
            code::LIMIT_EXCEEDED,
            format!("at most {max} subscriptions per connection"),
        ));
    }
    let id = NEXT_SUB.fetch_add(1, Ordering::Relaxed);
    // Subscribe to live blocks now, before the tip is read, so nothing falls in between.
    let live = chain.subscribe();
    // The task waits until the confirmation is queued, so it is always the first message.
    let (go, gate) = oneshot::channel();
    starts.push(go);
    let (c, out) = (chain.clone(), outbox.clone());
    let task = tokio::spawn(async move {
        if gate.await.is_err() {
            return;
        }
        match events {
            Some(p) => events_task(c, id, p.filter, p.from_height, live, out).await,
            None => heads_task(c, id, live, out).await,
        }
    });
    subs.insert(id, task);
    chain.metrics.subscriptions.inc();
    Ok(json!(id))
}

async fn heads_task(
    chain: Arc<Chain>,
    sub: u64,
    mut live: broadcast::Receiver<Arc<BlockNotice>>,
    out: Outbox,
) {
    loop {
        match live.recv().await {
            Ok(n) => {
                let msg = notification(method::HEADS, sub, &n.header);
                if push(&chain, sub, &out, msg).is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => return out.drop_slow(&chain, sub),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Queues a live notification without waiting; a full queue drops the subscriber.
fn push(chain: &Chain, sub: u64, out: &Outbox, msg: String) -> Result<(), ()> {
    match out.queue.try_send(msg) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full(_)) => {
            out.drop_slow(chain, sub);
            Err(())
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
    }
}

async fn events_task(
    chain: Arc<Chain>,
    sub: u64,
    filter: EventFilter,
    from_height: u64,
    mut live: broadcast::Receiver<Arc<BlockNotice>>,
    out: Outbox,
) {
    let replayed_to = chain.height();
    let mut h = from_height;
    while h <= replayed_to {
        let end = replayed_to.min(h.saturating_add(REPLAY_CHUNK - 1));
        let (c, f) = (chain.clone(), filter.clone());
        let batch =
            tokio::task::spawn_blocking(move || c.ledger.events(h, end, &f, usize::MAX)).await;
        let events = match batch {
            Ok(Ok(evs)) => evs,
            other => {
                tracing::error!(subscription = sub, ?other, "event replay failed");
                let _ = out
                    .close
                    .send(Some(format!("subscription {sub}: replay failed")));
                return;
            }
        };
        for e in &events {
            // History waits for the reader; only live delivery must never wait.
            if out
                .queue
                .send(notification(method::EVENTS_NOTIFICATION, sub, e))
                .await
                .is_err()
            {
                return;
            }
        }
        h = end + 1;
    }
    loop {
        let notice = match live.recv().await {
            Ok(n) => n,
            Err(broadcast::error::RecvError::Lagged(_)) => return out.drop_slow(&chain, sub),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let height = notice.header.height;
        if height <= replayed_to || height < from_height {
            continue;
        }
        for e in notice.events.iter().filter(|e| filter.matches(e)) {
            if push(
                &chain,
                sub,
                &out,
                notification(method::EVENTS_NOTIFICATION, sub, e),
            )
            .is_err()
            {
                return;
            }
        }
    }
}
