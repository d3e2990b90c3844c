//! The scale case of `sluice-bench hub`: the hub's store holds `channels` channels and
//! `sessions` further clients sit logged in and idle while the pairs pay. The extra channels are
//! written into the hub's store as the hub itself records a channel it learns of on chain (the
//! opening state, both deposits in, so no collateral is owed); the idle clients are their
//! owners, logged in over real WebSockets, pinging now and then as a wallet does.

use super::client::{login, ClientError, Ws};
use futures::{SinkExt, StreamExt};
use sluice_hub::store::{ChannelPhase, ChannelRow, Store};
use sluice_protocol::{channel_id, sha256, Address, Amount, ChainId, Keypair, Snapshot};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Store connections the seeding writes over at once.
const WRITERS: usize = 16;
/// Logins in flight at once.
const LOGINS: usize = 64;
/// How often an idle client pings: well inside the hub's idle timeout.
const PING_EVERY: Duration = Duration::from_secs(30);

/// Writes `n` channels of fresh clients into the hub's store; returns the clients' keys.
pub async fn seed_channels(
    store_url: &str,
    hub: Address,
    chain_id: ChainId,
    n: usize,
    deposit: Amount,
) -> Result<Vec<Keypair>, String> {
    let store = Store::connect(store_url, WRITERS as u32)
        .await
        .map_err(|e| format!("the hub's store: {e}"))?;
    let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate()).collect();
    let rows = keys.iter().map(|k| {
        let salt = sha256(&k.address().0);
        let id = channel_id(chain_id, &k.address(), &hub, &salt);
        ChannelRow {
            id,
            client: k.address(),
            deposit_a: deposit,
            deposit_b: deposit,
            challenge_period: 40,
            phase: ChannelPhase::Open,
            snapshot: Snapshot::opening(chain_id, id),
            pending: None,
            floor: 0,
            updated_at: sluice_hub::store::now_secs(),
        }
    });
    let store = &store;
    let written: Vec<_> = futures::stream::iter(rows)
        .map(|row| async move { store.insert_channel(&row).await })
        .buffer_unordered(WRITERS)
        .collect()
        .await;
    for w in written {
        w.map_err(|e| format!("seeding a channel: {e}"))?;
    }
    Ok(keys)
}

/// Logs every key in and keeps its session open, idle, until the handles are aborted.
pub async fn idle_sessions(
    ws_url: &str,
    hub: Address,
    keys: &[Keypair],
) -> Result<Vec<JoinHandle<()>>, String> {
    let sessions: Vec<Result<Ws, ClientError>> = futures::stream::iter(keys)
        .map(|k| async move { login(ws_url, k, hub).await.map(|(ws, ..)| ws) })
        .buffer_unordered(LOGINS)
        .collect()
        .await;
    let mut held = Vec::new();
    for s in sessions {
        let ws = s.map_err(|e| format!("an idle client's login: {e}"))?;
        held.push(tokio::spawn(hold(ws)));
    }
    Ok(held)
}

/// Answers the hub (pongs) and pings it, until the hub ends the session.
async fn hold(mut ws: Ws) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(_)) => {}
                _ => return,
            },
            _ = ping.tick() => {
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}
