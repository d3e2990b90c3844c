//! The payer SIGKILLed mid-payment, against real `sluice-node` and `sluice-hub` processes: the
//! payer runs as a `sluice-wallet pay` child process and is killed at several points of the
//! update protocol; a restarted wallet must finish or unwind the payment so that payer, payee
//! and hub agree, no lock is left and the balances add up.

mod support;

use sluice_client::store::{PaymentDirection, PaymentStatus};
use sluice_client::Wallet;
use sluice_protocol::{sha256, Hash32};
use sluice_test_support::Daemon;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::net::{self, Net, DEPOSIT};

/// Where to pull the plug: a log line of the payer (`None`: as soon as it started). In order:
/// before anything was sent; once the hub accepted the lock; after the payer accepted the
/// hub's unlock (the hub may or may not have seen that acceptance).
const KILL_POINTS: [Option<&str>; 3] = [
    None,
    Some("payment locked; waiting"),
    Some("accepted the hub's proposal"),
];

/// Runs `sluice-wallet pay` for `invoice` and SIGKILLs it once `marker` shows in its log (or
/// at once). Returns whether it got that far: the marker seen, or the payment done.
fn pay_and_kill(dir: &Path, invoice: &str, marker: Option<&str>, log: &Path) -> bool {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice-wallet"));
    cmd.arg("--dir").arg(dir).args(["pay", invoice]);
    cmd.env("SLUICE_LOG", "sluice_client=debug");
    let mut payer = Daemon::spawn("payer", cmd, log).unwrap();
    let Some(marker) = marker else {
        payer.kill();
        return true;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && payer.is_running() {
        if std::fs::read_to_string(log).is_ok_and(|l| l.contains(marker)) {
            payer.kill();
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // Done by itself: past the point if the line is there, or if the payment went through
    // (its process may end before the session task writes the line).
    let logged = std::fs::read_to_string(log).is_ok_and(|l| l.contains(marker));
    let paid = payer.exit_status().is_some_and(|s| s.success());
    payer.kill();
    logged || paid
}

/// What the test knows of both wallets' books, to check conservation at the end.
#[derive(Default)]
struct Books {
    sent: u64,
    received: u64,
}

/// Checks that the payment of `hashlock` is finished or unwound consistently on every side.
async fn check(
    n: &Net,
    a: &Wallet,
    b: &Wallet,
    ids: (Hash32, Hash32),
    hashlock: &Hash32,
    books: &mut Books,
) {
    let out = a
        .store()
        .payment(hashlock, PaymentDirection::Out)
        .await
        .unwrap();
    let inn = b
        .store()
        .payment(hashlock, PaymentDirection::In)
        .await
        .unwrap();
    match out.as_ref().map(|p| p.status) {
        Some(PaymentStatus::Completed) => {
            let p = out.unwrap();
            assert_eq!(sha256(&p.secret.unwrap().0), *hashlock, "proof of payment");
            let inn = inn.expect("payee saw the payment");
            assert_eq!(inn.status, PaymentStatus::Completed, "payee was paid");
            books.sent += p.amount + p.fee;
            books.received += p.amount;
        }
        Some(PaymentStatus::Failed) | None => {
            assert!(
                inn.is_none_or(|p| p.status == PaymentStatus::Failed),
                "payee kept a payment the payer unwound"
            );
        }
        Some(PaymentStatus::Pending) => panic!("payment still pending"),
    }
    for (w, id) in [(a, ids.0), (b, ids.1)] {
        let info = w.channels().await.unwrap();
        let c = info.iter().find(|c| c.id == id).unwrap();
        assert_eq!((c.locked_out, c.locked_in), (0, 0), "no lock left in {id}");
        let hub = n.hub_channel(&id).await.expect("hub knows the channel");
        assert_eq!(
            hub["version"], c.version,
            "hub and wallet on the same version"
        );
        assert_eq!(
            hub["balance_client"], c.balance,
            "hub and wallet agree on the balance"
        );
        assert_eq!(hub["locks"], 0);
    }
    assert_eq!(
        balance(a, ids.0).await,
        DEPOSIT - books.sent,
        "payer's balance adds up"
    );
    assert_eq!(
        balance(b, ids.1).await,
        DEPOSIT + books.received,
        "payee's balance adds up"
    );
}

async fn balance(w: &Wallet, id: Hash32) -> u64 {
    let info = w.channels().await.unwrap();
    info.into_iter().find(|c| c.id == id).unwrap().balance
}

/// Waits until the payer's channel has no lock and no payment pending, on both wallets.
async fn resolved(n: &Net, a: &Wallet, b: &Wallet, ids: (Hash32, Hash32)) {
    net::settled_payments(a, Duration::from_secs(60)).await;
    net::settled_payments(b, Duration::from_secs(30)).await;
    net::wait_until(
        "the hub to release every lock",
        Duration::from_secs(30),
        || async {
            let (ha, hb) = (n.hub_channel(&ids.0).await, n.hub_channel(&ids.1).await);
            [ha, hb]
                .iter()
                .all(|h| h.as_ref().is_some_and(|h| h["locks"] == 0))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn payer_killed_mid_payment_finishes_or_unwinds_after_restart() {
    kill_and_recover(&KILL_POINTS).await;
}

/// Killed between sending its lock and hearing the hub's `Accept`: the hub has committed the
/// co-signed lock, so it routes the payment anyway; the restarted payer learns the outcome from
/// the resync instead of waiting for the lock's expiry.
#[tokio::test(flavor = "multi_thread")]
async fn payer_killed_right_after_sending_its_lock_unwinds_after_restart() {
    kill_and_recover(&[Some("proposing")]).await;
}

async fn kill_and_recover(points: &[Option<&str>]) {
    let n = net::start(2, false).await;
    let a = n.wallet(0).await;
    let ca = a.open_channel(DEPOSIT).await.unwrap();
    drop(a);
    let b = n.wallet(1).await;
    let cb = b.open_channel(DEPOSIT).await.unwrap();
    b.connect().await.unwrap();
    net::collateral(&b, &cb).await;
    let mut books = Books::default();
    for (i, point) in points.iter().enumerate() {
        let inv = b
            .create_invoice(1_000 + i as u64, "", Duration::from_secs(600))
            .await
            .unwrap();
        let log = n.net.dir().join(format!("payer-{i}.log"));
        let (dir, invoice, marker) = (
            n.dirs[0].clone(),
            inv.invoice.clone(),
            point.map(String::from),
        );
        let seen = tokio::task::spawn_blocking(move || {
            pay_and_kill(&dir, &invoice, marker.as_deref(), &log)
        })
        .await
        .unwrap();
        assert!(seen, "payer never reached {point:?}");
        let a = n.wallet(0).await;
        a.connect().await.unwrap();
        resolved(&n, &a, &b, (ca, cb)).await;
        check(&n, &a, &b, (ca, cb), &inv.hashlock, &mut books).await;
    }
    if points.len() > 1 {
        assert!(books.sent > 0, "at least one payment went through");
    }
}
