//! The hub goes away, against real `sluice-node` and `sluice-hub` processes: the wallet
//! force-closes and settles on its own when the hub is SIGKILLed, and a session whose hub
//! restarts reconnects with backoff and resyncs.

mod support;

use sluice_client::{Wallet, WalletError, WalletEvent};
use sluice_protocol::Hash32;
use sluice_test_support::advance_to;
use std::time::Duration;
use support::net::{self, DEPOSIT};
use tokio::sync::broadcast;

async fn balance(w: &Wallet, id: &Hash32) -> u64 {
    let chans = w.channels().await.unwrap();
    chans.iter().find(|c| &c.id == id).unwrap().balance
}

#[tokio::test(flavor = "multi_thread")]
async fn force_close_and_settle_with_the_hub_killed() {
    let mut n = net::start(2, false).await;
    let (a, ca, b, _cb) = net::pair(&n).await;
    net::pay(&a, &b, 20_000).await.unwrap();
    let due = balance(&a, &ca).await;
    assert!(
        due < DEPOSIT - 20_000,
        "the payment and its fee left the channel"
    );
    n.net.hub.kill();
    let settle_after = a.force_close(&ca).await.unwrap();
    let before = n.account(&a.address()).await;
    advance_to(&n.miner().await, settle_after + 1)
        .await
        .unwrap();
    let (paid, _) = a.settle(&ca).await.unwrap();
    assert_eq!(paid, due, "settlement pays the latest co-signed balance");
    let fee = n.config(&n.dirs[0]).tx_fee;
    let after = n.account(&a.address()).await;
    assert_eq!(
        after,
        before + due - fee,
        "account credited with exactly the channel balance"
    );
    let info = a.channels().await.unwrap();
    assert_eq!(info[0].status, sluice_client::store::ChannelStatus::Settled);
}

/// The next event matching `want` within `timeout`.
async fn event(
    events: &mut broadcast::Receiver<WalletEvent>,
    timeout: Duration,
    want: fn(&WalletEvent) -> bool,
) -> WalletEvent {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(e) if want(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .expect("no such event in time")
}

#[tokio::test(flavor = "multi_thread")]
async fn session_reconnects_with_backoff_and_resyncs_after_a_hub_restart() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("sluice_client=info")
        .with_test_writer()
        .try_init();
    let mut n = net::start(2, false).await;
    let (a, ca, b, _cb) = net::pair(&n).await;
    net::pay(&a, &b, 1_000).await.unwrap();
    let mut events = a.subscribe();
    n.net.hub.kill();
    event(&mut events, Duration::from_secs(40), |e| {
        matches!(e, WalletEvent::Disconnected { .. })
    })
    .await;
    assert!(!a.is_connected());
    let r = net::pay(&a, &b, 2_000).await;
    assert!(matches!(r, Err(WalletError::NotConnected)), "{r:?}");
    // Down for a while: several reconnect attempts fail and back off.
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| n.net.hub.restart()).unwrap();
    event(&mut events, Duration::from_secs(30), |e| {
        matches!(e, WalletEvent::Connected)
    })
    .await;
    net::wait_until("B back online", Duration::from_secs(30), || async {
        b.is_connected()
    })
    .await;
    // Payments work again; a session that drops once more right after the restart is
    // re-established by the wallet itself.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match net::pay(&a, &b, 3_000).await {
            Ok(_) => break,
            Err(WalletError::NotConnected) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("payment after the restart failed: {e}"),
        }
    }
    // The hub commits the claim once the wallet's Accept arrives, a moment after `pay` returns.
    net::wait_until(
        "hub and wallet agree after the resync",
        Duration::from_secs(10),
        || async {
            let version = a
                .store()
                .require_channel(&ca)
                .await
                .unwrap()
                .snapshot
                .state()
                .version;
            let hub = n.hub_channel(&ca).await.expect("hub knows A's channel");
            hub["version"] == version
        },
    )
    .await;
    let hub = n.hub_channel(&ca).await.expect("hub knows A's channel");
    assert_eq!(hub["balance_client"], balance(&a, &ca).await);
}
