//! Invoice payments A → hub → B over real WebSockets, and every way one fails fast.

mod common;

use common::*;
use sluice_hub::store::PaymentState;
use sluice_protocol::wire::hub::{PaymentStatus, SessionMsg};
use sluice_protocol::*;

fn failed_with(m: &SessionMsg, needle: &str) -> bool {
    matches!(m, SessionMsg::Payment { status: PaymentStatus::Failed, reason: Some(r), .. } if r.contains(needle))
        || matches!(m, SessionMsg::Reject { reason, .. } if reason.contains(needle))
}

/// The one payment with `hashlock` the hub recorded.
async fn payment_of(hub: &sluice_hub::Hub, hashlock: &Hash32) -> sluice_hub::store::PaymentRecord {
    let mut all = hub.shared.store.payments_with(hashlock).await.unwrap();
    assert_eq!(all.len(), 1, "one payment with the hashlock");
    all.pop().unwrap()
}

#[tokio::test]
async fn payment_routes_from_payer_through_hub_to_payee() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let (ka, kb) = (Keypair::generate(), Keypair::generate());
    let a = open_channel(&hub, &ka, 10_000, 0).await;
    let b = open_channel(&hub, &kb, 0, 5_000).await;
    let wa = Wallet::connect(&hub, ka).await;
    let wb = Wallet::connect(&hub, kb).await;
    let (inv, hashlock) = wb.invoice(1_000, u64::MAX);
    let done = wa.pay(&a, &inv, 1_000).await;
    assert_eq!(
        done,
        SessionMsg::Payment {
            hashlock,
            status: PaymentStatus::Completed,
            reason: None
        }
    );

    let fee = hub.shared.cfg.terms.fee(1_000).unwrap();
    let ra = hub.shared.store.channel(&a).await.unwrap().unwrap();
    assert_eq!(
        ra.snapshot.state().balances(10_000, 0).unwrap(),
        (10_000 - 1_000 - fee, 1_000 + fee)
    );
    assert!(ra.snapshot.locks.is_empty());
    let rb = hub.shared.store.channel(&b).await.unwrap().unwrap();
    assert_eq!(
        rb.snapshot.state().balances(0, 5_000).unwrap(),
        (1_000, 4_000)
    );
    let history: Vec<_> = hub
        .shared
        .store
        .payment_history(&sluice_hub::store::PaymentKey {
            payee: wb.key.address(),
            hashlock,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        history,
        vec![
            PaymentState::Pending,
            PaymentState::Forwarded,
            PaymentState::SecretKnown,
            PaymentState::Completed
        ]
    );
    // The payer's wallet holds the same co-signed state as the hub.
    assert_eq!(wa.latest(&a), ra.snapshot);
    // Several more in a row keep versions strictly increasing.
    for _ in 0..5 {
        let (inv, _) = wb.invoice(10, u64::MAX);
        assert!(matches!(
            wa.pay(&a, &inv, 10).await,
            SessionMsg::Payment {
                status: PaymentStatus::Completed,
                ..
            }
        ));
    }
    assert_eq!(
        hub.shared
            .store
            .channel(&a)
            .await
            .unwrap()
            .unwrap()
            .version(),
        18,
        "each payment: the payer's lock, then the hub's claim a version above the free one"
    );
}

/// Found by the kill campaign: a hub proposal the payee never answered (its session died with
/// it) stayed reserved in the payee's channel, and every later payment to that payee failed
/// with "another proposal holds this channel's next version". The hub now buries it with a
/// `Bump` the payee co-signs before its next proposal there.
#[tokio::test]
async fn a_proposal_left_in_doubt_in_the_payees_channel_does_not_block_payments_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let (ka, kb) = (Keypair::generate(), Keypair::generate());
    let a = open_channel(&hub, &ka, 10_000, 0).await;
    let b = open_channel(&hub, &kb, 0, 5_000).await;
    let buried = reserve_hub_bump(&hub, &b, sluice_hub::store::now_ms() - 1).await;
    let wa = Wallet::connect(&hub, ka).await;
    let wb = Wallet::connect(&hub, kb).await;
    for amount in [1_000, 500] {
        let (inv, hashlock) = wb.invoice(amount, u64::MAX);
        let done = wa.pay(&a, &inv, amount).await;
        assert!(
            matches!(done, SessionMsg::Payment { status: PaymentStatus::Completed, hashlock: h, .. } if h == hashlock),
            "payment to a payee with a proposal in doubt: {done:?}"
        );
    }
    let rb = hub.shared.store.channel(&b).await.unwrap().unwrap();
    assert!(rb.pending.is_none(), "nothing left in doubt");
    assert!(
        rb.version() > buried.state().version,
        "the one in doubt is buried"
    );
    assert_eq!(
        wb.latest(&b),
        rb.snapshot,
        "the payee holds the hub's latest state"
    );
    assert_eq!(
        rb.snapshot.state().balances(0, 5_000).unwrap(),
        (1_500, 3_500)
    );
}

#[tokio::test]
async fn payments_that_cannot_complete_fail_fast_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = quick_config();
    cfg.limits.max_payment = 50_000;
    let hub = start_hub(dir.path(), cfg).await;
    let (ka, kb, kc, kd) = (
        Keypair::generate(),
        Keypair::generate(),
        Keypair::generate(),
        Keypair::generate(),
    );
    let a = open_channel(&hub, &ka, 100_000, 0).await;
    open_channel(&hub, &kb, 0, 500).await;
    open_channel(&hub, &kd, 0, 5_000).await;
    let wa = Wallet::connect(&hub, ka).await;
    let wb = Wallet::connect(&hub, kb.clone()).await;
    let wc = Wallet::connect(&hub, kc).await; // online, no channel
    let wd = Wallet::connect(&hub, kd).await;
    wd.decline_locks();

    let (inv, _) = wc.invoice(100, u64::MAX);
    assert!(failed_with(&wa.pay(&a, &inv, 100).await, "no open channel"));
    let (inv, _) = wb.invoice(1_000, u64::MAX);
    assert!(failed_with(
        &wa.pay(&a, &inv, 1_000).await,
        "too little collateral"
    ));
    let (inv, _) = wb.invoice(100, 1);
    assert!(failed_with(&wa.pay(&a, &inv, 100).await, "expired"));
    let (inv, _) = wb.invoice(60_000, u64::MAX);
    assert!(failed_with(
        &wa.pay(&a, &inv, 60_000).await,
        "over the hub's limit"
    ));
    let stranger = Keypair::generate(); // never connected
    let inv = sluice_protocol::invoice::Invoice {
        chain_id: CHAIN,
        hub: hub.shared.address(),
        payee: stranger.address(),
        amount: 100,
        hashlock: sha256(&[9; 32]),
        expires_at: u64::MAX,
        memo: String::new(),
    }
    .sign(&stranger)
    .unwrap()
    .encode_string()
    .unwrap();
    assert!(failed_with(&wa.pay(&a, &inv, 100).await, "offline"));
    // Nothing above touched the payer's channel.
    assert_eq!(
        hub.shared
            .store
            .channel(&a)
            .await
            .unwrap()
            .unwrap()
            .version(),
        0
    );

    // The payee refuses the hub's lock: the payer's lock is co-signed, then released.
    let (inv, hashlock) = wd.invoice(100, u64::MAX);
    assert!(failed_with(&wa.pay(&a, &inv, 100).await, "payee refused"));
    let row = hub.shared.store.channel(&a).await.unwrap().unwrap();
    // The five refused proposals above burnt versions 1 to 5: the lock went in at 6, the hub's
    // release at 8 (the hub leaves a version free below its proposals).
    assert_eq!(
        (row.version(), row.snapshot.locks.len()),
        (8, 0),
        "lock added then removed"
    );
    assert_eq!(
        row.snapshot.state().balances(100_000, 0).unwrap(),
        (100_000, 0)
    );
    let p = payment_of(&hub, &hashlock).await;
    assert_eq!(p.state, PaymentState::Failed);
    // The same invoice again: refused with a reason, nothing changes.
    assert!(failed_with(
        &wa.pay(&a, &inv, 100).await,
        "already paid or tried"
    ));
    let again = hub.shared.store.channel(&a).await.unwrap().unwrap();
    assert_eq!(again.version(), 8);
    assert!(again.floor > 8, "the refused proposal burnt its version");
    assert_eq!(
        wa.latest(&a).state().version,
        8,
        "payer holds the release too"
    );
    let _ = (wb, wc);
}

/// ATTACKS.md F1a at the hub: the payee co-signs the hub's lock for itself, answers Reject and
/// refuses the `Bump` that would bury it. It may enforce that state on chain, so the hub keeps
/// the payer's lock (the payment is not failed) and never signs another state at its version.
#[tokio::test]
async fn payee_that_cosigns_then_rejects_leaves_the_payers_lock_with_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let (ka, kb) = (Keypair::generate(), Keypair::generate());
    let a = open_channel(&hub, &ka, 10_000, 0).await;
    let b = open_channel(&hub, &kb, 0, 5_000).await;
    let wa = Wallet::connect(&hub, ka).await;
    let wb = Wallet::connect(&hub, kb.clone()).await;
    wb.keep_and_reject_locks();
    let (inv, hashlock) = wb.invoice(1_000, u64::MAX);
    let p = wa.pay_proposal(&a, &inv, 1_000, 0);
    assert!(matches!(wa.propose(p).await, SessionMsg::Accept { .. }));

    // The hub forwards, is rejected, tries to bury the forward with a Bump, is refused again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let kept = loop {
        let row = hub.shared.store.channel(&b).await.unwrap().unwrap();
        let kept = wb.kept();
        if !kept.is_empty() && row.floor > kept[0].state().version {
            break kept;
        }
        assert!(std::time::Instant::now() < deadline, "no bump was tried");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let held = &kept[0];
    held.verify(
        hub.shared.chain_id,
        &b,
        &kb.address(),
        &hub.shared.address(),
    )
    .expect("the payee holds a valid co-signed state with the hub's lock");
    assert!(held.locks.iter().any(|l| l.hashlock == hashlock));

    // The payer's lock stays with the hub, and the payment is not failed.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let pay = payment_of(&hub, &hashlock).await;
    assert_ne!(pay.state, PaymentState::Failed);
    let ra = hub.shared.store.channel(&a).await.unwrap().unwrap();
    assert!(ra.snapshot.locks.iter().any(|l| l.hashlock == hashlock));
    // The hub never signed another state at the kept version.
    let rb = hub.shared.store.channel(&b).await.unwrap().unwrap();
    assert!(rb.floor > held.state().version);
    assert!(rb.version() < held.state().version || rb.snapshot == *held);
}

/// SIGTERM's path: the payment already taken on completes while the hub stops, the stopped
/// hub accepts no connection, and a draining hub refuses a new payment with `Busy`.
#[tokio::test]
async fn a_stopping_hub_finishes_the_payment_under_way_and_takes_no_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let (ka, kb) = (Keypair::generate(), Keypair::generate());
    let a = open_channel(&hub, &ka, 10_000, 0).await;
    let b = open_channel(&hub, &kb, 0, 5_000).await;
    let wa = Wallet::connect(&hub, ka).await;
    let wb = Wallet::connect(&hub, kb).await;
    let (inv, hashlock) = wb.invoice(1_000, u64::MAX);
    let p = wa.pay_proposal(&a, &inv, 1_000, 0);
    assert!(matches!(wa.propose(p).await, SessionMsg::Accept { .. }));
    let (shared, addr) = (hub.shared.clone(), hub.addr);
    let stopping = tokio::spawn(hub.drain());
    let done = wa
        .recv_until(|m| matches!(m, SessionMsg::Payment { status, .. } if *status != PaymentStatus::Pending))
        .await;
    assert_eq!(
        done,
        SessionMsg::Payment {
            hashlock,
            status: PaymentStatus::Completed,
            reason: None
        }
    );
    tokio::time::timeout(std::time::Duration::from_secs(10), stopping)
        .await
        .expect("the drain ends once the payment is done")
        .unwrap();
    assert_eq!(shared.work.active(), 0);
    let url = format!("ws://{addr}/ws");
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    // What the stopped hub left in its store, read by the next start.
    let hub = start_hub(dir.path(), quick_config()).await;
    let rb = hub.shared.store.channel(&b).await.unwrap().unwrap();
    assert_eq!(
        rb.snapshot.state().balances(0, 5_000).unwrap(),
        (1_000, 4_000),
        "the payee was paid before the hub stopped"
    );
    hub.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let (ka, kb) = (Keypair::generate(), Keypair::generate());
    let a = open_channel(&hub, &ka, 10_000, 0).await;
    open_channel(&hub, &kb, 0, 5_000).await;
    let wa = Wallet::connect(&hub, ka).await;
    let wb = Wallet::connect(&hub, kb).await;
    assert_eq!(hub.shared.work.drain(std::time::Duration::ZERO).await, 0);
    let (inv, _) = wb.invoice(1_000, u64::MAX);
    match wa.pay(&a, &inv, 1_000).await {
        SessionMsg::Reject { code, reason, .. } => {
            assert_eq!(code, sluice_protocol::wire::hub::ErrorCode::Busy);
            assert!(reason.contains("shutting down"), "{reason}");
        }
        other => panic!("a draining hub took a new payment: {other:?}"),
    }
}
