//! Subscriptions over the node's WebSocket: one connection per stream, so that a slow consumer
//! of one stream never holds up another.

use crate::error::ClientError;
use futures::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sluice_protocol::rpc::{
    method, BlockHeader, Event, EventFilter, Notification, RpcError, SubscribeEventsParams,
};
use sluice_protocol::Height;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A live subscription yielding items of type `T` in chain order.
pub struct Subscription<T> {
    ws: Ws,
    _t: std::marker::PhantomData<T>,
}

pub type EventStream = Subscription<Event>;
pub type HeadStream = Subscription<BlockHeader>;

#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<RpcError>,
    #[serde(default)]
    params: Option<serde_json::Value>,
}

async fn open(
    url: &str,
    tls: Connector,
    method: &str,
    params: serde_json::Value,
) -> Result<Ws, ClientError> {
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(url, None, false, Some(tls))
        .await
        .map_err(|e| ClientError::WebSocket(format!("connect {url}: {e}")))?;
    let req = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    ws.send(Message::text(req.to_string()))
        .await
        .map_err(|e| ClientError::WebSocket(e.to_string()))?;
    // The first answer confirms (or refuses) the subscription.
    loop {
        let Some(msg) = ws.next().await else {
            return Err(ClientError::SubscriptionClosed);
        };
        let msg = msg.map_err(|e| ClientError::WebSocket(e.to_string()))?;
        let Message::Text(text) = msg else { continue };
        let inc: Incoming =
            serde_json::from_str(&text).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        if let Some(err) = inc.error {
            return Err(ClientError::Rpc(err));
        }
        if inc.result.is_some() {
            return Ok(ws);
        }
    }
}

pub(crate) async fn events(
    url: &str,
    tls: Connector,
    filter: EventFilter,
    from_height: Height,
) -> Result<EventStream, ClientError> {
    let params = serde_json::to_value(SubscribeEventsParams {
        filter,
        from_height,
    })
    .map_err(|e| ClientError::BadResponse(e.to_string()))?;
    let ws = open(url, tls, method::SUBSCRIBE_EVENTS, params).await?;
    Ok(Subscription {
        ws,
        _t: std::marker::PhantomData,
    })
}

pub(crate) async fn heads(url: &str, tls: Connector) -> Result<HeadStream, ClientError> {
    let ws = open(url, tls, method::SUBSCRIBE_HEADS, serde_json::json!({})).await?;
    Ok(Subscription {
        ws,
        _t: std::marker::PhantomData,
    })
}

impl<T: DeserializeOwned> Subscription<T> {
    /// The next item; `Err(SubscriptionClosed)` once the node ends the stream.
    pub async fn next(&mut self) -> Result<T, ClientError> {
        loop {
            let msg = self
                .ws
                .next()
                .await
                .ok_or(ClientError::SubscriptionClosed)?
                .map_err(|e| ClientError::WebSocket(e.to_string()))?;
            let text = match msg {
                Message::Text(t) => t,
                Message::Close(_) => return Err(ClientError::SubscriptionClosed),
                _ => continue,
            };
            let inc: Incoming =
                serde_json::from_str(&text).map_err(|e| ClientError::BadResponse(e.to_string()))?;
            if let Some(err) = inc.error {
                return Err(ClientError::Rpc(err));
            }
            let Some(params) = inc.params else { continue };
            let n: Notification<T> = serde_json::from_value(params)
                .map_err(|e| ClientError::BadResponse(e.to_string()))?;
            return Ok(n.result);
        }
    }
}
