//! Payment flows against a scripted hub on a real WebSocket: the wallet pays and receives,
//! refuses a forged acceptance, and resumes from its store after a restart.

mod support;

use sluice_client::store::PaymentStatus;
use sluice_client::{WalletError, WalletEvent};
use sluice_protocol::wire::hub::SessionMsg;
use sluice_protocol::{Change, Context, Hash32, Policy, Signature};
use std::time::Duration;
use support::Chain;

/// The context the hub's machine checks against now: the channel's real deposits and the
/// chain's height.
async fn ctx(chain: &Chain, dep_b: u64) -> Context {
    Context {
        deposit_a: 1_000,
        deposit_b: dep_b,
        height: chain.height().await,
        policy: Policy::default(),
    }
}

#[tokio::test]
async fn payment_completes_and_returns_the_secret() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    let secret = Hash32([1; 32]);
    let inv = support::payee_invoice(&hub, secret, 100);
    let pay = tokio::spawn(async move {
        let r = w.pay(&inv).await;
        (w, r)
    });
    let ctx = ctx(&chain, 0).await;
    let checked = conn.take_proposal(&ctx).await;
    assert!(checked.proposal.invoice.is_some());
    assert_eq!(checked.proposal.state.version, 1);
    conn.accept(checked).await;
    let unlock = conn.propose(&id, Change::Unlock { secret }, &ctx).await;
    assert_eq!(
        unlock.state.version, 3,
        "the hub leaves a version free below its proposals"
    );
    let cosigned = conn.take_accept(&id).await;
    let (w, r) = pay.await.unwrap();
    assert_eq!(r.unwrap(), secret);
    let ch = w.store().require_channel(&id).await.unwrap();
    assert_eq!(ch.snapshot, cosigned);
    let pays = w.payments().await.unwrap();
    assert_eq!(pays[0].status, PaymentStatus::Completed);
    assert_eq!(pays[0].secret, Some(secret));
    let info = &w.channels().await.unwrap()[0];
    assert_eq!(info.balance, 1_000 - 100 - pays[0].fee);
}

#[tokio::test]
async fn forged_acceptance_fails_the_payment_and_stores_nothing() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    let inv = support::payee_invoice(&hub, Hash32([2; 32]), 100);
    let pay = tokio::spawn(async move {
        let r = w.pay(&inv).await;
        (w, r)
    });
    let checked = conn.take_proposal(&ctx(&chain, 0).await).await;
    // The hub co-signs, then sends its Accept with a forged signature.
    let (_, mut accept) = conn.answer(checked);
    if let SessionMsg::Accept { sig, .. } = &mut accept {
        *sig = Signature([9; 64]);
    }
    conn.send(&accept).await;
    let (w, r) = pay.await.unwrap();
    assert!(matches!(r, Err(WalletError::HubMisbehaved(_))), "{r:?}");
    assert_eq!(
        w.store()
            .require_channel(&id)
            .await
            .unwrap()
            .snapshot
            .state()
            .version,
        0
    );
}

#[tokio::test]
async fn incoming_payment_is_taken_with_our_secret() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    chain.hub_deposit(&id, 1_000).await;
    let mut events = w.subscribe();
    let inv = w
        .create_invoice(300, "rent", Duration::from_secs(600))
        .await
        .unwrap();
    let lock = sluice_protocol::Lock {
        direction: sluice_protocol::Direction::BtoA,
        amount: 300,
        hashlock: inv.hashlock,
        expiry: chain.height().await + 200,
    };
    let ctx = ctx(&chain, 1_000).await;
    conn.propose(&id, Change::AddLock { lock }, &ctx).await;
    conn.take_accept(&id).await;
    let checked = conn.take_proposal(&ctx).await;
    assert!(matches!(checked.proposal.change, Change::Unlock { .. }));
    conn.accept(checked).await;
    let ev = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(e @ WalletEvent::PaymentReceived { .. }) = events.recv().await {
                return e;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        ev,
        WalletEvent::PaymentReceived {
            hashlock: inv.hashlock,
            amount: 300
        }
    );
    assert!(
        w.store()
            .invoice(&inv.hashlock)
            .await
            .unwrap()
            .unwrap()
            .paid
    );
    assert_eq!(w.channels().await.unwrap()[0].balance, 1_300);
}

#[tokio::test]
async fn restart_adopts_the_hubs_newer_cosigned_state() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    // Two payments proposed; the hub stores the first and "crashes" before answering: its
    // machine co-signs, the Accept is never sent.
    let inv1 = support::payee_invoice(&hub, Hash32([3; 32]), 100);
    let w = std::sync::Arc::new(w);
    let w1 = w.clone();
    let first = tokio::spawn(async move { w1.pay(&inv1).await });
    let checked = conn.take_proposal(&ctx(&chain, 0).await).await;
    let (stored, _unsent) = conn.answer(checked);
    drop(conn);
    assert!(first.await.unwrap().is_err());
    drop(w);
    // Restart: the hub's Sync carries version 1 co-signed (the wallet's own signature).
    let w = support::wallet(dir.path(), &chain, &hub).await;
    let (conn, connected) = tokio::join!(hub.accept(vec![id]), w.connect());
    connected.unwrap();
    let mut conn = conn;
    assert_eq!(conn.take_sync(&id).await.state().version, 0);
    assert_eq!(conn.latest(&id), stored, "the hub keeps its newer state");
    conn.sync(&id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ch = w.store().require_channel(&id).await.unwrap();
    assert_eq!(ch.snapshot, stored, "newer co-signed state adopted");
    let pays = w.payments().await.unwrap();
    assert_eq!(
        pays[0].status,
        PaymentStatus::Pending,
        "its lock is live: still in flight"
    );
}
