//! Opening a hub session: WebSocket connect, check the hub's `Challenge` (our chain, the hub key
//! we were given), answer with a signed `Auth` carrying a challenge of our own, receive a
//! `Welcome` the hub's key signed over it.

use crate::core::Core;
use crate::error::{Result, WalletError};
use futures::{SinkExt, StreamExt};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::wire::hub::{welcome_bytes, SessionMsg, AUTH_ACTION, MAX_SESSION_FRAME};
use sluice_protocol::wire::{self, auth_bytes};
use sluice_protocol::{Hash32, Tag};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long each handshake step may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The transport refuses any frame or message larger than a session message may be, before
/// buffering it: a hub cannot make the wallet hold tens of megabytes (tungstenite's default).
fn transport_limits() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_SESSION_FRAME))
        .max_frame_size(Some(MAX_SESSION_FRAME))
}

/// Why the WebSocket could not be opened; an untrusted TLS certificate says what to do.
fn dial_error(e: &tokio_tungstenite::tungstenite::Error) -> String {
    match e {
        tokio_tungstenite::tungstenite::Error::Io(io)
            if sluice_home::tls::is_certificate_error(io) =>
        {
            format!("TLS: the hub's certificate is not trusted ({io}); if a private CA signed it, name the CA's PEM file in the wallet's `ca_file`")
        }
        other => other.to_string(),
    }
}

/// A logged-in session, ready for resync.
pub(crate) struct Opened {
    pub ws: Ws,
    pub channels: Vec<Hash32>,
    pub terms: RoutingTerms,
}

/// Connects and logs in.
pub(crate) async fn connect(core: &Core) -> Result<Opened> {
    let url = core.config.hub_ws_url();
    handshake(core, &url).await.map_err(|e| naming(e, &url))
}

async fn handshake(core: &Core, url: &str) -> Result<Opened> {
    let unreachable = |reason: String| WalletError::HubUnreachable {
        url: url.to_string(),
        reason,
    };
    let dial = tokio_tungstenite::connect_async_tls_with_config(
        url,
        Some(transport_limits()),
        true,
        Some(core.hub_tls.clone()),
    );
    let (mut ws, _) = tokio::time::timeout(HANDSHAKE_TIMEOUT, dial)
        .await
        .map_err(|_| unreachable("connect timed out".into()))?
        .map_err(|e| unreachable(dial_error(&e)))?;
    let (chain_id, hub, nonce) = match recv(&mut ws).await? {
        SessionMsg::Challenge {
            chain_id,
            hub,
            nonce,
        } => (chain_id, hub, nonce),
        other => return Err(misbehaved("expected Challenge", &other)),
    };
    if chain_id != core.chain_id {
        return Err(WalletError::WrongChain {
            expected: core.chain_id,
            got: chain_id,
        });
    }
    if hub != core.hub() {
        return Err(WalletError::HubKeyMismatch {
            expected: core.hub(),
            got: hub,
        });
    }
    let me = core.me();
    let bytes = auth_bytes(chain_id, &hub, AUTH_ACTION, &nonce, &me, &Hash32::default());
    let challenge = crate::onchain::random32();
    let auth = SessionMsg::Auth {
        address: me,
        sig: core.key.sign(Tag::Auth, &bytes),
        challenge,
    };
    send(&mut ws, &auth).await?;
    match recv(&mut ws).await? {
        SessionMsg::Welcome {
            channels,
            terms,
            sig,
        } => {
            // Announcing the hub's address proves nothing; signing our challenge does (F18).
            let proof = welcome_bytes(chain_id, &hub, &challenge, &me);
            if hub.verify(Tag::Auth, &proof, &sig).is_err() {
                return Err(WalletError::HubMisbehaved(
                    "its Welcome is not signed by the hub's key".into(),
                ));
            }
            // Terms come from the hub: beyond our caps, the session is not used at all.
            if let Err(why) = core.config.caps.check(&terms) {
                core.emit(crate::events::WalletEvent::TermsRefused {
                    reason: why.to_string(),
                });
                return Err(why.into());
            }
            Ok(Opened {
                ws,
                channels,
                terms,
            })
        }
        SessionMsg::Error { code, message } => Err(WalletError::Rejected {
            code,
            reason: message,
        }),
        other => Err(misbehaved("expected Welcome", &other)),
    }
}

fn misbehaved(what: &str, got: &SessionMsg) -> WalletError {
    WalletError::HubMisbehaved(format!("{what}, got {got:?}"))
}

/// Sends one frame.
pub(crate) async fn send<S>(ws: &mut S, msg: &SessionMsg) -> Result<()>
where
    S: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    ws.send(Message::text(wire::encode(msg)))
        .await
        .map_err(|e| WalletError::HubUnreachable {
            url: String::new(),
            reason: format!("send failed: {e}"),
        })
}

/// Receives the next frame within the handshake timeout.
async fn recv(ws: &mut Ws) -> Result<SessionMsg> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, next(ws))
        .await
        .map_err(|_| WalletError::Timeout("the hub's handshake".into()))?
}

/// The next session message; pings and pongs at the WebSocket level are skipped.
pub(crate) async fn next<S>(ws: &mut S) -> Result<SessionMsg>
where
    S: futures::Stream<Item = std::result::Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    loop {
        let msg = ws
            .next()
            .await
            .ok_or_else(|| closed("hub closed the connection"))?
            .map_err(|e| closed(&e.to_string()))?;
        let bytes = match msg {
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Binary(b) => b.to_vec(),
            Message::Close(_) => return Err(closed("hub closed the connection")),
            _ => continue,
        };
        return wire::decode::<SessionMsg>(&bytes, MAX_SESSION_FRAME)
            .map_err(|e| WalletError::HubMisbehaved(format!("bad frame: {e}")));
    }
}

/// `e` with the hub's address filled in where the frame layer did not know it, so a user reads
/// which hub was lost.
pub(crate) fn naming(e: WalletError, hub_url: &str) -> WalletError {
    match e {
        WalletError::HubUnreachable { url, reason } if url.is_empty() => {
            WalletError::HubUnreachable {
                url: hub_url.to_string(),
                reason,
            }
        }
        other => other,
    }
}

fn closed(reason: &str) -> WalletError {
    WalletError::HubUnreachable {
        url: String::new(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_names_the_hub_it_was_to() {
        let e = naming(closed("hub closed the connection"), "ws://10.0.0.5:8650/ws");
        let text = e.to_string();
        assert!(text.contains("ws://10.0.0.5:8650/ws"), "{text}");
        let known = WalletError::HubUnreachable {
            url: "ws://a/ws".into(),
            reason: "x".into(),
        };
        assert!(naming(known, "ws://b/ws").to_string().contains("ws://a/ws"));
    }
}
