//! The one chain follower of the hub, the wallet and the tower.
//!
//! The cursor rule: **the cursor is the last height fully handled.** Heights above it are read
//! in spans of at most [`SPAN`] through [`ChainClient::all_events`], which splits a span the node
//! refuses as too large (F8), so no number of events in a catch-up blinds a follower. Each event
//! of a span is handed to the [`Listen`]er in chain order, and only then is the span's last height
//! handed to [`Listen::handled`] to be persisted. A crash in between replays the span, so handling
//! an event must be idempotent; nothing is ever skipped.
//!
//! New heads come from the node's head subscription; a subscription silent for longer than
//! [`HEAD_WAIT`] is backed by a `chain_info` poll, and any failure reconnects from the persisted
//! cursor after [`RETRY`].

use crate::{ChainClient, ClientError};
use sluice_protocol::rpc::{ChainInfo, Event, EventFilter};
use sluice_protocol::Height;
use std::future::Future;
use std::time::Duration;

/// Most heights asked for in one catch-up step (below the node's `max_event_range`).
pub const SPAN: Height = 1_000;
/// How long a silent head subscription is trusted before the tip is polled.
pub const HEAD_WAIT: Duration = Duration::from_secs(5);
/// The pause before reconnecting after a failure.
pub const RETRY: Duration = Duration::from_secs(1);

/// What a daemon does with the chain. Every hook but [`event`](Listen::event),
/// [`cursor`](Listen::cursor) and [`handled`](Listen::handled) is optional.
pub trait Listen: Send + Sync {
    type Error: std::fmt::Display + From<ClientError> + Send;

    /// The events this listener acts on; the node filters, so a narrow filter is cheap.
    fn filter(&self) -> EventFilter;

    /// The persisted cursor: the last height fully handled (0 before the first).
    fn cursor(&self) -> impl Future<Output = Result<Height, Self::Error>> + Send;

    /// Called after every (re)connection, before catching up: a place to check the chain id.
    fn connected(&self, _info: &ChainInfo) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// The chain's tip as last seen (never lower than a tip seen before on this connection).
    fn head(&self, _height: Height) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// One matching event above the cursor. May be called again for the same event after a
    /// failure or a restart.
    fn event(&self, event: &Event) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The matching events of one catch-up span, in chain order. By default each goes to
    /// [`event`](Listen::event); a listener for which only the last word per channel matters may
    /// skip what a later event of the span overrides.
    fn events(&self, events: Vec<Event>) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async move {
            for ev in &events {
                self.event(ev).await?;
            }
            Ok(())
        }
    }

    /// Every event up to and including `height` has been handled: persist the cursor.
    fn handled(&self, height: Height) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The follower lost its connection or a hook failed; it reconnects from the cursor.
    fn interrupted(&self, _error: &Self::Error) {}
}

/// Follows the chain for `listener` forever.
pub async fn follow<L: Listen>(client: &ChainClient, listener: &L) {
    loop {
        if let Err(e) = follow_once(client, listener).await {
            tracing::debug!(error = %e, node = client.url(), "chain follower interrupted; reconnecting");
            listener.interrupted(&e);
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One connection's worth of following; returns only on an error.
async fn follow_once<L: Listen>(client: &ChainClient, listener: &L) -> Result<(), L::Error> {
    let info = client.chain_info().await?;
    listener.connected(&info).await?;
    // Subscribed before catching up, so a head produced meanwhile is queued, not missed.
    let mut heads = client.subscribe_heads().await?;
    let mut cursor = listener.cursor().await?;
    let mut tip = info.height;
    tracing::info!(cursor, tip, node = client.url(), "following the chain");
    loop {
        listener.head(tip).await?;
        cursor = catch_up(client, listener, cursor, tip).await?;
        let next = match tokio::time::timeout(HEAD_WAIT, heads.next()).await {
            Ok(head) => head?.height,
            Err(_) => client.chain_info().await?.height,
        };
        tip = tip.max(next);
    }
}

/// Hands every matching event in `(cursor, tip]` to the listener, span by span, and returns the
/// new cursor.
pub async fn catch_up<L: Listen>(
    client: &ChainClient,
    listener: &L,
    mut cursor: Height,
    tip: Height,
) -> Result<Height, L::Error> {
    let filter = listener.filter();
    while cursor < tip {
        let to = tip.min(cursor.saturating_add(SPAN));
        let events = client.all_events(cursor + 1, to, &filter).await?;
        listener.events(events).await?;
        listener.handled(to).await?;
        cursor = to;
    }
    Ok(cursor)
}
