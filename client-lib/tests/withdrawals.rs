//! Money out of open channels, end to end on real processes (`sluice-node --dev`, `sluice-hub`):
//! a wallet's withdrawal, the hub's reclaim of idle collateral, a payment racing a reclaim and
//! a hub killed in the middle of one. Each test checks what lands on chain.

mod support;

use sluice_chain_client::TxSender;
use sluice_client::config::KEY_FILE;
use sluice_client::{keyfile, WalletError, WalletEvent};
use sluice_protocol::onchain::ChannelStatus;
use sluice_protocol::{Amount, TxKind};
use sluice_test_support::advance_to;
use std::time::Duration;
use support::net::{self, wait_until, Net, DEPOSIT};

/// Fee of every transaction on the test chain (`WalletConfig`'s default).
const FEE: Amount = 1;

async fn wallet_sender(n: &Net, i: usize) -> TxSender {
    let key = keyfile::load_or_create(&n.dirs[i].join(KEY_FILE)).unwrap();
    let chain = n.chain();
    let chain_id = chain.chain_info().await.unwrap().chain_id;
    TxSender::new(chain, key, chain_id, FEE)
}

/// A wallet takes 30,000 out of its open channel: its account gets it at once, the channel
/// keeps working, a close with the state from before the withdrawal is answered, and the
/// settlement pays only what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_is_paid_once_and_a_stale_close_cannot_undo_it() {
    let n = net::start(2, false).await;
    let (a, ca, b, _cb) = net::pair(&n).await;
    let me = a.address();
    let before_state = a.store().require_channel(&ca).await.unwrap().snapshot;
    let account = n.account(&me).await;

    // Bad input first: more than the balance, or nothing; refused, nothing signed or sent.
    let nonce = n.chain().account(&me).await.unwrap().nonce;
    let too_much = a.withdraw(&ca, DEPOSIT + 1).await;
    assert!(
        matches!(too_much, Err(WalletError::InsufficientBalance { available, .. }) if available == DEPOSIT),
        "{too_much:?}"
    );
    assert!(matches!(
        a.withdraw(&ca, 0).await,
        Err(WalletError::InvalidAmount(_))
    ));
    let unchanged = a.store().require_channel(&ca).await.unwrap().snapshot;
    assert_eq!(unchanged, before_state, "nothing was signed");
    assert_eq!(n.chain().account(&me).await.unwrap().nonce, nonce);

    // F12: the hub's collateral is in, so the client's stake stays (1,000 by default).
    let stake = a.withdraw(&ca, DEPOSIT - 999).await;
    assert!(
        stake
            .as_ref()
            .is_err_and(|e| e.to_string().contains("at stake")),
        "{stake:?}"
    );
    assert_eq!(
        n.chain().account(&me).await.unwrap().nonce,
        nonce,
        "nothing sent"
    );

    let mut events = a.subscribe();
    let w = a.withdraw(&ca, 30_000).await.unwrap();
    assert_eq!((w.amount, w.balance_left), (30_000, DEPOSIT - 30_000));
    assert_eq!(n.account(&me).await, account + 30_000 - FEE);
    let rec = n.chain().channel(&ca).await.unwrap().unwrap();
    assert_eq!(
        (rec.withdrawn.a, rec.withdrawn.version),
        (30_000, w.version)
    );
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        seen.push(ev);
    }
    assert!(seen.contains(&WalletEvent::WithdrawalAgreed {
        channel_id: ca,
        by_hub: false,
        amount: 30_000
    }));
    assert!(seen.contains(&WalletEvent::WithdrawalPaid {
        channel_id: ca,
        amount: 30_000,
        tx: w.tx
    }));

    // The channel still pays, from what is left.
    net::pay(&a, &b, 10_000).await.unwrap();
    let info = a.channels().await.unwrap();
    let ch = info.iter().find(|c| c.id == ca).unwrap();
    assert!(ch.balance < DEPOSIT - 30_000 - 10_000 + 1, "{ch:?}");

    // A close with the state from before the withdrawal: the wallet answers with its latest,
    // and settlement pays what is left (a stale state would be netted of the withdrawal too).
    let s = wallet_sender(&n, 0).await;
    let stale = TxKind::Close {
        cosigned: before_state.cosigned,
        locks: before_state.locks.clone(),
    };
    s.send(stale, Duration::from_secs(10)).await.unwrap();
    let latest = a.store().require_channel(&ca).await.unwrap().snapshot;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let settle_after = loop {
        let rec = n.chain().channel(&ca).await.unwrap().unwrap();
        let ChannelStatus::Closing {
            stored,
            settle_after,
        } = rec.status
        else {
            panic!("not closing: {:?}", rec.status)
        };
        if stored.state().version == latest.state().version {
            break settle_after;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the wallet never challenged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    advance_to(&n.miner().await, settle_after + 1)
        .await
        .unwrap();
    let (ours, hubs) = a.settle(&ca).await.unwrap();
    assert_eq!(ours, ch.balance);
    let rec = n.chain().channel(&ca).await.unwrap().unwrap();
    assert_eq!(
        ours + hubs + 30_000,
        rec.deposit_a + rec.deposit_b,
        "nothing created or lost"
    );
}

/// The hub's collateral in a channel that received a payment sits idle above the reclaim
/// threshold: the hub withdraws it back down to its target without closing the channel, while
/// payments keep arriving around it and either route or fail with a typed error; the books
/// balance on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_collateral_is_reclaimed_while_payments_still_route() {
    let (n, a, ca, b, cb, mut events) = reclaim_scene().await;
    // Payments from B to A (each uses the hub's side of A's channel) keep coming meanwhile;
    // small enough that the hub's side stays above the threshold whenever the reclaim runs.
    let paying = async {
        let mut outcomes = Vec::new();
        for i in 0..10u64 {
            tokio::time::sleep(Duration::from_millis(600 + 97 * (i % 5))).await;
            outcomes.push(net::pay(&b, &a, 500).await);
        }
        outcomes
    };
    let reclaimed = reclaim_seen(&mut events);
    let (outcomes, amount) = tokio::join!(paying, reclaimed);
    assert!(amount >= 50_000, "reclaimed {amount}");
    for o in &outcomes {
        match o {
            Ok(_) | Err(WalletError::PaymentFailed(_)) => {}
            Err(e) => panic!("a payment failed without a typed refusal: {e}"),
        }
    }
    assert!(
        outcomes.iter().any(|o| o.is_ok()),
        "no payment routed: {outcomes:?}"
    );
    let withdrawn = a
        .store()
        .require_channel(&ca)
        .await
        .unwrap()
        .snapshot
        .state()
        .withdrawn_b;
    wait_until("the reclaim paid", Duration::from_secs(30), || async {
        let rec = n.chain().channel(&ca).await.unwrap().unwrap();
        rec.withdrawn.b == withdrawn
    })
    .await;
    // The channel still works after the reclaim.
    net::pay(&a, &b, 1_000).await.unwrap();
    // Close both; every unit deposited comes out as a payout or a withdrawal.
    for (w, id) in [(&a, ca), (&b, cb)] {
        let (pa, pb) = w.close(&id).await.unwrap();
        let rec = n.chain().channel(&id).await.unwrap().unwrap();
        assert_eq!(
            pa + pb + rec.withdrawn.a + rec.withdrawn.b,
            rec.deposit_a + rec.deposit_b,
            "channel {id} conserved"
        );
    }
}

/// The hub is killed (SIGKILL) as soon as the client has co-signed its reclaim: after the
/// restart the persisted job finishes it, and the chain pays the hub exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_reclaim_finishes_it_once_after_restart() {
    let (mut n, a, ca, _b, cb, mut events) = reclaim_scene().await;
    let chain = n.chain();
    let hub_deposit_b = async || chain.channel(&cb).await.unwrap().unwrap().deposit_b;
    let amount = reclaim_seen(&mut events).await;
    n.net.hub.kill();
    // The hub also tops up B's channel (B received 60,000): its deposits count as its own.
    let hub_account = n.account(&n.net.hub_key).await + hub_deposit_b().await;
    let rec = n.chain().channel(&ca).await.unwrap().unwrap();
    let paid_before = rec.withdrawn.b;
    n.net.hub.restart().unwrap();
    wait_until("the reclaim paid", Duration::from_secs(30), || async {
        let rec = n.chain().channel(&ca).await.unwrap().unwrap();
        rec.withdrawn.b == amount
    })
    .await;
    // A few more collateral rounds: nothing is withdrawn twice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let rec = n.chain().channel(&ca).await.unwrap().unwrap();
    assert_eq!(rec.withdrawn.b, amount, "paid once");
    let now = n.account(&n.net.hub_key).await + hub_deposit_b().await;
    let moved = now as i128 - hub_account as i128;
    let expected = (amount - paid_before) as i128;
    assert!(
        (expected - 8..=expected).contains(&moved),
        "the hub's account moved by {moved}, expected {expected} less fees"
    );
    let state = a.store().require_channel(&ca).await.unwrap().snapshot;
    assert_eq!(
        state.state().withdrawn_b,
        amount,
        "one withdrawal co-signed"
    );
}

/// Two wallets with funded channels on a hub that reclaims above 150,000 on its side (target
/// 100,000) once idle for a second; A has paid B 60,000, so the hub's side of A's channel is
/// 160,000. Returns A's events from before that payment on.
async fn reclaim_scene() -> (
    Net,
    sluice_client::Wallet,
    sluice_protocol::Hash32,
    sluice_client::Wallet,
    sluice_protocol::Hash32,
    tokio::sync::broadcast::Receiver<WalletEvent>,
) {
    let mut n = net::start(2, false).await;
    reclaim_after(&mut n, 1);
    let (a, ca, b, cb) = net::pair(&n).await;
    net::collateral(&a, &ca).await;
    let events = a.subscribe();
    net::pay(&a, &b, 60_000).await.unwrap();
    (n, a, ca, b, cb, events)
}

/// Restarts the hub with reclaim on: above 150,000 on its side (target 100,000), idle for
/// `idle_secs`.
fn reclaim_after(n: &mut Net, idle_secs: u64) {
    let hub = &mut n.net.hub;
    hub.set_env("SLUICE_HUB_COLLATERAL__RECLAIM_THRESHOLD", "150000");
    hub.set_env(
        "SLUICE_HUB_COLLATERAL__RECLAIM_IDLE_SECS",
        &idle_secs.to_string(),
    );
    hub.restart().unwrap();
}

/// The amount of the hub's next withdrawal the wallet co-signs (within a minute).
async fn reclaim_seen(events: &mut tokio::sync::broadcast::Receiver<WalletEvent>) -> Amount {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
            Ok(Ok(WalletEvent::WithdrawalAgreed {
                by_hub: true,
                amount,
                ..
            })) => return amount,
            Ok(Ok(_)) => {}
            other => panic!("no reclaim seen: {other:?}"),
        }
    }
}
