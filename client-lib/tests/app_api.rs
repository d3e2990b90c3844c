//! The app-facing API that survives restarts, against real processes: the event log read back
//! after reopening the wallet, a subscription from a cursor that misses nothing while payments
//! run, and payment handles that return at the lock, end with the secret or a reason, and are
//! found again (and keep working) after the wallet that made them is gone.
//!
//! The log and subscription tests and the refused payment run on `sluice-node --dev` and
//! `sluice-hub`; the tests that need a payment held pending at will use the scripted hub on a
//! real WebSocket and a real node.

mod support;

use sluice_client::protocol::routing::RoutingTerms;
use sluice_client::protocol::wire::hub::{PaymentStatus as HubPaymentStatus, SessionMsg};
use sluice_client::protocol::{sha256, Change, Context, Policy};
use sluice_client::{
    ErrorCode, Hash32, Invoice, Keypair, PayStatus, StoredEvent, Wallet, WalletError, WalletEvent,
};
use std::time::Duration;
use support::net::{self, settled_payments, Net};
use support::Chain;

/// Longest a payment of the real hub may take to settle on both sides.
const SETTLE: Duration = Duration::from_secs(30);

fn events(log: &[StoredEvent]) -> Vec<WalletEvent> {
    log.iter().map(|s| s.event.clone()).collect()
}

fn seqs(log: &[StoredEvent]) -> Vec<u64> {
    log.iter().map(|s| s.seq).collect()
}

fn sent(secret: Hash32) -> WalletEvent {
    WalletEvent::PaymentSent {
        hashlock: sha256(&secret.0),
        secret,
    }
}

fn received(secret: Hash32, amount: u64) -> WalletEvent {
    WalletEvent::PaymentReceived {
        hashlock: sha256(&secret.0),
        amount,
    }
}

/// `from` pays `to` `amount` and both sides finish; returns the secret.
async fn pay_settled(from: &Wallet, to: &Wallet, amount: u64) -> Hash32 {
    let secret = net::pay(from, to, amount).await.unwrap();
    settled_payments(from, SETTLE).await;
    settled_payments(to, SETTLE).await;
    secret
}

/// `from` pays `to` each amount in turn; returns the secrets and amounts of those that went
/// through.
async fn pay_each(from: &Wallet, to: &Wallet, amounts: [u64; 3]) -> Vec<(Hash32, u64)> {
    let mut done = Vec::new();
    for amount in amounts {
        if let Ok(secret) = net::pay(from, to, amount).await {
            done.push((secret, amount));
        }
    }
    done
}

/// Wallets 0 and 1 with a channel each and the hub's collateral toward both.
async fn pair_both_ways(n: &Net) -> (Wallet, Wallet) {
    let (a, ca, b, _cb) = net::pair(n).await;
    net::collateral(&a, &ca).await;
    (a, b)
}

/// The app was not running: after the wallets are dropped and reopened on their directories,
/// offline, the log holds every payment event of both sides, in order, from any cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_was_not_listening_reads_every_missed_event_after_a_restart() {
    let n = net::start(2, false).await;
    let start = sluice_home::clock::unix_secs() as i64;
    let (a, b) = pair_both_ways(&n).await;
    let s1 = pay_settled(&a, &b, 10_000).await;
    let s2 = pay_settled(&a, &b, 20_000).await;
    let s3 = pay_settled(&b, &a, 3_000).await;
    let s4 = pay_settled(&a, &b, 5_000).await;
    drop((a, b));

    let (a, b) = (n.wallet(0).await, n.wallet(1).await);
    let log_a = a.events_since(0, 100).await.unwrap();
    assert_eq!(seqs(&log_a), vec![1, 2, 3, 4]);
    assert_eq!(
        events(&log_a),
        vec![sent(s1), sent(s2), received(s3, 3_000), sent(s4)]
    );
    let end = sluice_home::clock::unix_secs() as i64;
    assert!(
        log_a.iter().all(|e| (start..=end).contains(&e.at)),
        "{log_a:?}"
    );
    let log_b = b.events_since(0, 100).await.unwrap();
    assert_eq!(
        events(&log_b),
        vec![
            received(s1, 10_000),
            received(s2, 20_000),
            sent(s3),
            received(s4, 5_000)
        ]
    );
    // From a mid cursor, a page at a time, and past the end.
    assert_eq!(a.events_since(2, 100).await.unwrap(), log_a[2..].to_vec());
    assert_eq!(a.events_since(0, 2).await.unwrap(), log_a[..2].to_vec());
    assert_eq!(a.events_since(3, 1).await.unwrap(), log_a[3..].to_vec());
    assert!(a.events_since(4, 100).await.unwrap().is_empty());
    assert!(b.events_since(0, 0).await.unwrap().is_empty());
}

/// A subscription from cursor 0 started after one payment delivers it from the log, then
/// every event of payments running both ways at once as they are stored; one started later
/// from a mid cursor reads the stored ones and then a new live one. Each matches the log
/// exactly: no gap, no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_from_delivers_stored_then_live_events_without_gap_or_duplicate() {
    let n = net::start(2, false).await;
    let (a, b) = pair_both_ways(&n).await;
    let first = pay_settled(&a, &b, 1_000).await;

    let mut from_start = a.subscribe_from(0);
    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let collector = tokio::spawn(async move {
        while let Ok(ev) = from_start.next().await {
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    // Crossing payments may be refused (a typed error); those that go through are in the log.
    let (by_a, by_b) = tokio::join!(
        pay_each(&a, &b, [2_000, 2_100, 2_200]),
        pay_each(&b, &a, [1_500, 1_600, 1_700])
    );
    settled_payments(&a, SETTLE).await;
    settled_payments(&b, SETTLE).await;

    let log = a.events_since(0, 1_000).await.unwrap();
    assert_eq!(log[0].event, sent(first));
    let logged = events(&log);
    for (secret, _) in &by_a {
        assert!(logged.contains(&sent(*secret)), "{logged:?}");
    }
    for (secret, amount) in &by_b {
        assert!(logged.contains(&received(*secret, *amount)), "{logged:?}");
    }
    assert!(
        by_a.len() + by_b.len() >= 3,
        "most payments went through: {logged:?}"
    );
    assert_eq!(seqs(&log), (1..=log.len() as u64).collect::<Vec<_>>());
    let got = take(&mut seen, log.len()).await;
    assert_eq!(got, log, "stored, then live, each once");

    let mut from_mid = a.subscribe_from(2);
    let last = pay_settled(&a, &b, 900).await;
    let rest = a.events_since(2, 1_000).await.unwrap();
    assert_eq!(rest.last().map(|e| e.event.clone()), Some(sent(last)));
    let mut mid = Vec::new();
    for _ in 0..rest.len() {
        mid.push(next_within(from_mid.next()).await);
    }
    assert_eq!(mid, rest);
    assert_eq!(from_mid.cursor(), rest.last().unwrap().seq);
    assert_eq!(take(&mut seen, 1).await, rest[rest.len() - 1..].to_vec());
    assert!(seen.try_recv().is_err(), "nothing delivered twice");
    collector.abort();
}

async fn next_within<F>(next: F) -> StoredEvent
where
    F: std::future::Future<Output = sluice_client::Result<StoredEvent>>,
{
    tokio::time::timeout(SETTLE, next)
        .await
        .expect("an event in time")
        .expect("the stream goes on")
}

async fn take(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<StoredEvent>,
    n: usize,
) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    for _ in 0..n {
        let ev = tokio::time::timeout(SETTLE, rx.recv()).await;
        out.push(ev.expect("an event in time").expect("collector running"));
    }
    out
}

/// A payment the hub refuses (the payee is unknown to it) is the typed error and a stored
/// failure with the hub's reason; a payment that goes through gives its secret through the
/// handle. After the wallet is dropped and reopened offline, both handles are found again
/// with the same status, and the handle from before the restart still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_end_completed_or_failed_and_are_found_again_after_a_restart() {
    let n = net::start(2, false).await;
    let (a, _ca, b, _cb) = net::pair(&n).await;

    let stranger = Keypair::generate();
    let lost = Hash32([3; 32]);
    let unknown = Invoice {
        chain_id: a.chain_id(),
        hub: n.net.hub_key,
        payee: stranger.address(),
        amount: 1_000,
        hashlock: sha256(&lost.0),
        expires_at: sluice_home::clock::unix_secs() + 600,
        memo: String::new(),
    }
    .sign(&stranger)
    .unwrap()
    .encode_string()
    .unwrap();
    let refused = a.pay_handle(&unknown).await;
    let Err(WalletError::Rejected { code, reason }) = refused else {
        panic!("the hub routes to nobody: {refused:?}");
    };
    assert_eq!(code, ErrorCode::PaymentFailed);
    assert!(reason.contains("offline or unknown"), "{reason}");
    let failed = PayStatus::Failed {
        reason: reason.clone(),
    };
    let h_failed = a.payment_handle(&sha256(&lost.0)).await.unwrap().unwrap();
    assert_eq!(h_failed.status().await.unwrap(), failed);

    let inv = b
        .create_invoice(2_000, "", Duration::from_secs(600))
        .await
        .unwrap();
    let paying = a.pay_handle(&inv.invoice).await.unwrap();
    assert_eq!(paying.hashlock(), inv.hashlock);
    let early = paying.status().await.unwrap();
    assert!(
        matches!(early, PayStatus::Pending | PayStatus::Completed { .. }),
        "{early:?}"
    );
    let secret = paying.wait(SETTLE).await.unwrap();
    assert_eq!(sha256(&secret.0), inv.hashlock);
    let done = PayStatus::Completed { secret };
    assert_eq!(paying.status().await.unwrap(), done);
    let log = a.events_since(0, 100).await.unwrap();
    let failed_event = WalletEvent::PaymentFailed {
        hashlock: sha256(&lost.0),
        reason,
    };
    assert_eq!(events(&log), vec![failed_event, sent(secret)]);

    drop(a);
    let a = n.wallet(0).await;
    let found = a.payment_handle(&inv.hashlock).await.unwrap().unwrap();
    assert_eq!(found.status().await.unwrap(), done);
    assert_eq!(found.wait(Duration::from_secs(1)).await.unwrap(), secret);
    let found_failed = a.payment_handle(&sha256(&lost.0)).await.unwrap().unwrap();
    assert_eq!(found_failed.status().await.unwrap(), failed);
    let again = found_failed.wait(Duration::from_secs(1)).await;
    assert!(
        matches!(again, Err(WalletError::PaymentFailed(_))),
        "{again:?}"
    );
    assert_eq!(
        paying.status().await.unwrap(),
        done,
        "the old handle still reads"
    );
    assert!(a.payment_handle(&Hash32([9; 32])).await.unwrap().is_none());
}

/// The context the scripted hub's machine checks against: the wallet's deposit and the height.
async fn ctx(chain: &Chain) -> Context {
    Context {
        deposit_a: 1_000,
        deposit_b: 0,
        height: chain.height().await,
        policy: Policy::default(),
    }
}

/// `pay_handle` returns once the hub co-signed the lock, with the payment still pending (the
/// hub holds the secret back); paying the invoice again finds it instead of locking twice. The
/// wallet is then dropped and reopened: the handle from before the restart gets the secret when
/// the hub unlocks toward the new wallet, which finds the payment completed.
#[tokio::test]
async fn a_pay_handle_returns_at_the_lock_and_outlives_its_wallet() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    let secret = Hash32([7; 32]);
    let hashlock = sha256(&secret.0);
    let inv = support::payee_invoice(&hub, secret, 100);
    let c = ctx(&chain).await;
    let (handle, _) = tokio::join!(w.pay_handle(&inv), async {
        let checked = conn.take_proposal(&c).await;
        conn.accept(checked).await
    });
    let handle = handle.unwrap();
    assert_eq!(handle.hashlock(), hashlock);
    assert_eq!(handle.status().await.unwrap(), PayStatus::Pending);
    let early = handle.wait(Duration::from_millis(300)).await;
    assert!(matches!(early, Err(WalletError::Timeout(_))), "{early:?}");
    let again = w.pay_handle(&inv).await.unwrap();
    assert_eq!(again.status().await.unwrap(), PayStatus::Pending);
    assert!(
        conn.recv_within(Duration::from_millis(500)).await.is_none(),
        "no second lock proposed"
    );
    assert!(w.events_since(0, 10).await.unwrap().is_empty());

    drop((w, conn));
    let w = support::wallet(dir.path(), &chain, &hub).await;
    let mut conn = support::login(&w, &hub, id, RoutingTerms::default()).await;
    let c = ctx(&chain).await;
    let (waited, _) = tokio::join!(handle.wait(Duration::from_secs(10)), async {
        conn.propose(&id, Change::Unlock { secret }, &c).await;
        conn.take_accept(&id).await
    });
    assert_eq!(waited.unwrap(), secret);
    let done = PayStatus::Completed { secret };
    let found = w.payment_handle(&hashlock).await.unwrap().unwrap();
    assert_eq!(found.status().await.unwrap(), done);
    assert_eq!(handle.status().await.unwrap(), done);
    assert_eq!(w.pay(&inv).await.unwrap(), secret, "paid already: at once");
    let log = w.events_since(0, 10).await.unwrap();
    assert_eq!(events(&log), vec![sent(secret)]);
}

/// The hub co-signs the lock, then fails the payment with a reason and removes the lock: the
/// handle's wait ends with that reason, its status says it, and so does the log, also after a
/// restart.
#[tokio::test]
async fn a_payment_failed_after_its_lock_ends_failed_with_the_hubs_reason() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    let secret = Hash32([8; 32]);
    let hashlock = sha256(&secret.0);
    let inv = support::payee_invoice(&hub, secret, 100);
    let c = ctx(&chain).await;
    let (handle, _) = tokio::join!(w.pay_handle(&inv), async {
        let checked = conn.take_proposal(&c).await;
        conn.accept(checked).await
    });
    let handle = handle.unwrap();
    let why = "payee vanished".to_string();
    let (waited, _) = tokio::join!(handle.wait(Duration::from_secs(10)), async {
        let failed = SessionMsg::Payment {
            hashlock,
            status: HubPaymentStatus::Failed,
            reason: Some(why.clone()),
        };
        conn.send(&failed).await;
        conn.propose(&id, Change::RemoveLock { hashlock }, &c).await;
        conn.take_accept(&id).await
    });
    assert!(
        matches!(&waited, Err(WalletError::PaymentFailed(r)) if *r == why),
        "{waited:?}"
    );
    let failed = PayStatus::Failed {
        reason: why.clone(),
    };
    assert_eq!(handle.status().await.unwrap(), failed);
    let event = WalletEvent::PaymentFailed {
        hashlock,
        reason: why,
    };
    assert_eq!(
        events(&w.events_since(0, 10).await.unwrap()),
        vec![event.clone()]
    );

    drop((w, conn));
    let w = support::wallet(dir.path(), &chain, &hub).await;
    let found = w.payment_handle(&hashlock).await.unwrap().unwrap();
    assert_eq!(found.status().await.unwrap(), failed);
    assert_eq!(events(&w.events_since(0, 10).await.unwrap()), vec![event]);
}
