//! One client connection on `/ws` (the hub session contract in `sluice_protocol::wire::hub`).
//!
//! Each connection has its own reader task and writer task with a bounded outgoing queue, so a
//! slow or silent client only ever delays itself: a full queue or an idle timeout ends that
//! session alone. Proposals run on their own tasks so that the reader keeps delivering replies
//! to the hub's proposals while a client proposal waits for its channel.
//!
//! Where the contract is silent this module decides: a failed `Auth` may be retried up to
//! [`MAX_AUTH_ATTEMPTS`] times on the same challenge; a second `Auth` after login is `Malformed`;
//! a client `Sync` for a channel that is not its own is `UnknownChannel`; a client proposal while
//! the hub's proposal on that channel awaits its answer is `Busy` (hub wins the tie); a proposal
//! built on a version the hub has since moved past is also `Busy`, so the client re-proposes.

mod auth;
mod limiter;
mod propose;
pub mod refusal;

use crate::registry::SessionHandle;
use crate::shared::{Reply, Shared};
use futures::{SinkExt, StreamExt};
use limiter::RateLimiter;
use sluice_protocol::wire::hub::{ErrorCode, SessionMsg, MAX_SESSION_FRAME};
use sluice_protocol::wire::{self, WireError};
use sluice_protocol::Address;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use warp::ws::{Message, WebSocket};

pub const MAX_AUTH_ATTEMPTS: u32 = 3;
/// Frames above this are dropped by the WebSocket layer with the connection; frames between
/// `MAX_SESSION_FRAME` and this get a `TooLarge` error and the session goes on.
pub const HARD_FRAME_LIMIT: usize = 4 * MAX_SESSION_FRAME;

struct Conn {
    sh: Arc<Shared>,
    handle: SessionHandle,
    client: Option<Address>,
    challenge: sluice_protocol::Hash32,
    auth_attempts: u32,
    limiter: RateLimiter,
}

/// Counts a connection for as long as it lives.
struct Counted(Arc<Shared>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.connections.dec();
    }
}

pub async fn run(ws: WebSocket, sh: Arc<Shared>) {
    let n = sh.connections.fetch_add(1, Ordering::AcqRel);
    sh.metrics.connections.inc();
    let _counted = Counted(sh.clone());
    let (mut sink, mut stream) = ws.split();
    if n >= sh.cfg.limits.max_connections {
        sh.metrics.refused.with_label_values(&["connections"]).inc();
        let msg = error(ErrorCode::RateLimited, "too many connections");
        let _ = sink.send(Message::text(wire::encode(&msg))).await;
        let _ = sink.close().await;
        return;
    }
    let (tx, rx) = mpsc::channel(sh.cfg.limits.send_queue.max(1));
    let (done_tx, done_rx) = oneshot::channel();
    let writer = tokio::spawn(write_loop(sink, rx, done_rx));
    let handle = SessionHandle::new(sh.sessions.next_id(), tx);
    let mut conn = Conn {
        challenge: sluice_protocol::Hash32(secp256k1::rand::random()),
        limiter: RateLimiter::new(sh.cfg.limits.messages_per_sec),
        sh,
        handle,
        client: None,
        auth_attempts: 0,
    };
    conn.handle.send(SessionMsg::Challenge {
        chain_id: conn.sh.chain_id,
        hub: conn.sh.address(),
        nonce: conn.challenge,
    });
    conn.read_loop(&mut stream).await;
    conn.finish();
    let _ = done_tx.send(());
    let _ = writer.await;
}

async fn write_loop(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<SessionMsg>,
    mut done: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                // Everything already queued goes out with one flush (e.g. `Accept` and the
                // payment's `Pending` that follows it).
                Some(m) => {
                    if sink.feed(Message::text(wire::encode(&m))).await.is_err() { return }
                    while let Ok(m) = rx.try_recv() {
                        if sink.feed(Message::text(wire::encode(&m))).await.is_err() { return }
                    }
                    if sink.flush().await.is_err() { return }
                }
                None => break,
            },
            _ = &mut done => {
                while let Ok(m) = rx.try_recv() {
                    if sink.send(Message::text(wire::encode(&m))).await.is_err() { return }
                }
                break;
            }
        }
    }
    let _ = sink.close().await;
}

fn error(code: ErrorCode, message: impl Into<String>) -> SessionMsg {
    SessionMsg::Error {
        code,
        message: message.into(),
    }
}

impl Conn {
    async fn read_loop(&mut self, stream: &mut futures::stream::SplitStream<WebSocket>) {
        let kick = self.handle.kick.clone();
        loop {
            let limit = match self.client {
                None => self.sh.cfg.limits.auth_timeout_ms,
                Some(_) => self.sh.cfg.limits.idle_timeout_ms,
            };
            let next = tokio::select! {
                _ = kick.notified() => return,
                r = tokio::time::timeout(Duration::from_millis(limit), stream.next()) => r,
            };
            let msg = match next {
                Err(_) => {
                    self.handle
                        .send(error(ErrorCode::Unauthenticated, "timed out"));
                    return;
                }
                Ok(None) | Ok(Some(Err(_))) => return,
                Ok(Some(Ok(m))) => m,
            };
            if msg.is_close() {
                return;
            }
            if !(msg.is_text() || msg.is_binary()) {
                continue;
            }
            if !self.on_frame(msg.as_bytes()).await {
                return;
            }
        }
    }

    /// Handles one frame; false ends the session.
    async fn on_frame(&mut self, bytes: &[u8]) -> bool {
        if !self.limiter.allow() {
            self.refuse(
                "rate_limited",
                ErrorCode::RateLimited,
                "too many messages per second",
            );
            return true;
        }
        let msg = match wire::decode::<SessionMsg>(bytes, MAX_SESSION_FRAME) {
            Ok(m) => m,
            Err(WireError::TooLarge { len, max }) => {
                self.refuse(
                    "too_large",
                    ErrorCode::TooLarge,
                    format!("frame of {len} bytes over {max}"),
                );
                return true;
            }
            Err(WireError::UnsupportedVersion(v)) => {
                let why = format!(
                    "protocol version {v} not supported; this hub speaks {}",
                    wire::PROTOCOL_VERSION
                );
                self.refuse("version", ErrorCode::UnsupportedVersion, why);
                return true;
            }
            Err(WireError::Malformed(m)) => {
                self.refuse("malformed", ErrorCode::Malformed, m);
                return true;
            }
        };
        match self.client {
            None => self.on_unauthenticated(msg).await,
            Some(client) => {
                self.on_message(client, msg).await;
                true
            }
        }
    }

    fn refuse(&self, why: &str, code: ErrorCode, message: impl Into<String>) {
        self.sh.metrics.refused.with_label_values(&[why]).inc();
        self.handle.send(error(code, message));
    }

    async fn on_message(&mut self, client: Address, msg: SessionMsg) {
        match msg {
            SessionMsg::Ping { nonce } => {
                self.handle.send(SessionMsg::Pong { nonce });
            }
            SessionMsg::Propose(p) => {
                tokio::spawn(propose::on_propose(self.sh.clone(), client, p));
            }
            SessionMsg::Accept {
                channel_id,
                version,
                sig,
            } => {
                self.reply(client, channel_id, version, Reply::Accept(sig));
            }
            SessionMsg::Reject {
                channel_id,
                version,
                code,
                reason,
                signed,
            } => {
                let reply = Reply::Reject(code, reason, signed);
                self.reply(client, channel_id, version, reply);
            }
            SessionMsg::Sync {
                channel_id,
                snapshot,
                signed,
            } => {
                // Its own task: it waits for the channel's lock, which a hub proposal holds
                // until this read loop delivers the client's answer to it.
                let (sh, handle) = (self.sh.clone(), self.handle.clone());
                let sync = auth::Sync {
                    id: channel_id,
                    snap: snapshot,
                    signed,
                };
                tokio::spawn(auth::on_sync(sh, handle, client, sync));
            }
            SessionMsg::Auth { .. } => {
                self.refuse("malformed", ErrorCode::Malformed, "already authenticated")
            }
            SessionMsg::Error { code, message } => {
                tracing::debug!(%client, ?code, %message, "client reported an error");
            }
            SessionMsg::Pong { .. } => {}
            _ => self.refuse(
                "malformed",
                ErrorCode::Malformed,
                "message type not sent by clients",
            ),
        }
    }

    fn reply(&self, client: Address, channel: sluice_protocol::Hash32, version: u64, r: Reply) {
        if !self.sh.deliver_reply(&client, channel, version, r) {
            tracing::debug!(%client, %channel, version, "reply to no pending proposal");
        }
    }

    fn finish(&self) {
        if let Some(client) = self.client {
            if self.sh.sessions.is_current(&client, self.handle.id) {
                self.sh.sessions.remove(&client, self.handle.id);
            }
            let (sh, id) = (self.sh.clone(), self.handle.id);
            tokio::spawn(async move {
                if let Err(e) = sh.store.session_closed(&client, &sh.process, id).await {
                    tracing::warn!(%client, error = %e, "cannot withdraw the session from the store");
                }
            });
            self.sh.metrics.sessions.dec();
            tracing::info!(%client, session = self.handle.id, "session ended");
        }
    }
}
