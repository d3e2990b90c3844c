//! The chain moves of a test wallet, honest or not: open a channel with any challenge period
//! and deposit (and any salt, to grind ids), deposit again (and again), close with any state it
//! holds, register a secret, settle, and read what the chain finally paid.

use sluice_chain_client::{ChainClient, ClientError, TxSender};
use sluice_protocol::onchain::ChannelStatus;
use sluice_protocol::rpc::TxInfo;
use sluice_protocol::*;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// A sender for `key` on the node at `node`, paying `fee` per transaction.
pub async fn sender(node: &str, key: &Keypair) -> TxSender {
    let client = ChainClient::new(node);
    let chain_id = client.chain_info().await.expect("chain info").chain_id;
    TxSender::new(client, key.clone(), chain_id, 1)
}

/// How to open a channel toward the hub.
#[derive(Debug, Clone, Copy)]
pub struct Opening {
    pub deposit: Amount,
    pub challenge_period: Height,
    pub salt: Hash32,
}

impl Opening {
    /// `deposit` with the hubs' default minimum challenge period and a random salt.
    pub fn new(deposit: Amount) -> Opening {
        Opening {
            deposit,
            challenge_period: routing::DEFAULT_MIN_CHALLENGE_PERIOD,
            salt: Hash32(secp256k1::rand::random()),
        }
    }
}

/// Opens a channel from `key` toward `hub`; returns its id once the open is included.
pub async fn open(node: &str, key: &Keypair, hub: &Address, o: Opening) -> Hash32 {
    let s = sender(node, key).await;
    let kind = TxKind::OpenChannel {
        counterparty: *hub,
        deposit: o.deposit,
        challenge_period: o.challenge_period,
        salt: o.salt,
    };
    s.send(kind, WAIT).await.expect("channel opened");
    let chain_id = s.client().chain_info().await.expect("chain info").chain_id;
    channel_id(chain_id, &key.address(), hub, &o.salt)
}

/// Waits until the hub's deposit into `id` reached `hub_deposit`; returns both deposits.
pub async fn wait_funded(node: &str, id: &Hash32, hub_deposit: Amount) -> (Amount, Amount) {
    let chain = ChainClient::new(node);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Some(r)) = chain.channel(id).await {
            if r.deposit_b >= hub_deposit {
                return (r.deposit_a, r.deposit_b);
            }
        }
        assert!(Instant::now() < deadline, "channel {id} never funded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Closes `id` on chain with `snap`, whatever its version.
pub async fn close(s: &TxSender, snap: &Snapshot) -> Result<TxInfo, ClientError> {
    let kind = TxKind::Close {
        cosigned: snap.cosigned,
        locks: snap.locks.clone(),
    };
    s.send(kind, WAIT).await
}

/// Deposits `amount` more into `id` (any number of times: deposit spam).
pub async fn deposit(s: &TxSender, id: &Hash32, amount: Amount) -> Result<TxInfo, ClientError> {
    let kind = TxKind::Deposit {
        channel_id: *id,
        amount,
    };
    s.send(kind, WAIT).await
}

/// Registers `secret` in the chain's secret registry.
pub async fn register_secret(s: &TxSender, secret: Hash32) -> Result<TxInfo, ClientError> {
    s.send(TxKind::RegisterSecret { secret }, WAIT).await
}

/// The channel's status on chain.
pub async fn status(node: &str, id: &Hash32) -> Option<ChannelStatus> {
    ChainClient::new(node)
        .channel(id)
        .await
        .ok()
        .flatten()
        .map(|r| r.status)
}

/// The account's balance on chain.
pub async fn balance(node: &str, who: &Address) -> Amount {
    ChainClient::new(node)
        .account(who)
        .await
        .expect("account")
        .balance
}

/// Drives `id` to its settlement and returns `(payout_a, payout_b)`: advances the chain
/// (blocks need traffic on a dev chain) past the window and every stored lock, settles it
/// with `s` if nobody did, and waits for the payout.
pub async fn settled(s: &TxSender, node: &str, id: &Hash32) -> (Amount, Amount) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "channel {id} never settled");
        let h = s.client().chain_info().await.expect("chain info").height;
        match status(node, id).await {
            Some(ChannelStatus::Settled { payout_a, payout_b }) => return (payout_a, payout_b),
            Some(ChannelStatus::Closing {
                stored,
                settle_after,
            }) => {
                let locks_end = stored.locks.iter().map(|l| l.expiry).max().unwrap_or(0);
                let due = settle_after.max(locks_end) + 1;
                if h <= due {
                    let _ = crate::advance_to(s, due + 1).await;
                } else {
                    let _ = s.submit(TxKind::Settle { channel_id: *id }).await;
                    let _ = crate::advance_to(s, h + 2).await;
                }
            }
            _ => {
                let _ = crate::advance_to(s, h + 1).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `f` until it yields, advancing the chain with `s` meanwhile; panics after a minute.
pub async fn eventually<T, F>(what: &str, s: &TxSender, f: F) -> T
where
    F: AsyncFnMut() -> Option<T>,
{
    match within(Duration::from_secs(60), s, f).await {
        Some(v) => v,
        None => panic!("timed out waiting for {what}"),
    }
}

/// Polls `f` until it yields or `limit` passes, advancing the chain with `s` meanwhile.
pub async fn within<T, F>(limit: Duration, s: &TxSender, mut f: F) -> Option<T>
where
    F: AsyncFnMut() -> Option<T>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        let h = s.client().chain_info().await.expect("chain info").height;
        let _ = crate::advance_to(s, h + 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
