//! Processes die: the hub SIGKILLed in the middle of payments, the chain node restarted, the
//! watchtower restarted. Nothing is lost and nothing stays stuck.

mod common;

use common::{check_books, fleet, pay, wait_no_locks, wait_until, SERIAL};
use sluice_tests::harness::HubStore;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hub_killed_mid_payments_leaves_every_payment_whole_or_undone() {
    let _serial = SERIAL.lock().await;
    let mut f = fleet(4, 1_000_000, HubStore::Postgres).await;
    let stop = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let n = f.members.len();
    let (members, hub) = (&f.members, &mut f.net.hub);
    let payers = futures::future::join_all((0..n).map(|i| {
        let (stop, done) = (&stop, &done);
        async move {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                let payee = (i + 1 + k % (n - 1)) % n;
                if pay(&members[i], &members[payee], 1_000 + k as u64)
                    .await
                    .is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                k += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }));
    let killer = async {
        wait_until("some payments before the crash", || async {
            done.load(Ordering::Relaxed) >= 20
        })
        .await;
        hub.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        hub.restart().unwrap();
        let after = done.load(Ordering::Relaxed);
        wait_until("payments after the restart", || async {
            done.load(Ordering::Relaxed) >= after + 20
        })
        .await;
        stop.store(true, Ordering::Relaxed);
    };
    futures::join!(payers, killer);
    assert!(f.net.hub.is_running());
    wait_no_locks(&f).await;
    wait_until("no pending payment", || async {
        let mut pending = 0;
        for m in &f.members {
            pending += common::completed_flows(m).await.3;
        }
        pending == 0
    })
    .await;
    check_books(&f).await;
    f.net.hub.stop();
}
