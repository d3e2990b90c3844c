//! Processes die: the hub SIGKILLed in the middle of payments, the chain node restarted, the
//! watchtower restarted, the hub's Postgres SIGKILLed under load. Nothing is lost and nothing
//! stays stuck.

mod common;

use common::{check_books, fleet, pay, wait_no_locks, wait_until, Fleet, Member, SERIAL};
use sluice_tests::harness::HubStore;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Every member pays the others in turn, counting completed payments in `done`, until `stop`.
async fn pay_around(members: &[Member], stop: &AtomicBool, done: &AtomicUsize) {
    let n = members.len();
    futures::future::join_all((0..n).map(|i| async move {
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
    }))
    .await;
}

/// Whether 20 more payments complete within [`common::WAIT`].
async fn resumed(done: &AtomicUsize) -> bool {
    let after = done.load(Ordering::Relaxed);
    let more = async {
        while done.load(Ordering::Relaxed) < after + 20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(common::WAIT, more).await.is_ok()
}

/// Waits until nothing is locked or pending anywhere, then checks the books.
async fn all_settled(f: &Fleet) {
    wait_no_locks(f).await;
    wait_until("no pending payment", || async {
        let mut pending = 0;
        for m in &f.members {
            pending += common::completed_flows(m).await.3;
        }
        pending == 0
    })
    .await;
    check_books(f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hub_killed_mid_payments_leaves_every_payment_whole_or_undone() {
    let _serial = SERIAL.lock().await;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("sluice_client=info")
        .with_test_writer()
        .try_init();
    let mut f = fleet(4, 1_000_000, HubStore::Postgres).await;
    let stop = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let (members, hub) = (&f.members, &mut f.net.hub);
    let payers = pay_around(members, &stop, &done);
    let killer = async {
        wait_until("some payments before the crash", || async {
            done.load(Ordering::Relaxed) >= 20
        })
        .await;
        hub.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        hub.restart().unwrap();
        assert!(
            resumed(&done).await,
            "payments did not resume after the restart; hub log:\n{}",
            hub.tail(40)
        );
        stop.store(true, Ordering::Relaxed);
    };
    futures::join!(payers, killer);
    assert!(f.net.hub.is_running());
    all_settled(&f).await;
    f.net.hub.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chain_node_restart_loses_nothing_and_everyone_carries_on() {
    let _serial = SERIAL.lock().await;
    let mut f = fleet(2, 1_000_000, HubStore::Postgres).await;
    pay(&f.members[0], &f.members[1], 10_000).await.unwrap();
    let before = f.chain.chain_info().await.unwrap();
    let accounts: Vec<u64> = futures::future::join_all(
        f.members
            .iter()
            .map(|m| async { f.chain.account(&m.wallet.address()).await.unwrap().balance }),
    )
    .await;
    f.net.node.restart().unwrap();
    let after = f.chain.chain_info().await.unwrap();
    assert_eq!(
        (after.height, after.state_root),
        (before.height, before.state_root),
        "the ledger resumes where it was"
    );
    for (m, balance) in f.members.iter().zip(accounts) {
        assert_eq!(
            f.chain.account(&m.wallet.address()).await.unwrap().balance,
            balance
        );
    }
    // Hub and wallets reconnect to the node by themselves: payments and an on-chain close work.
    pay(&f.members[1], &f.members[0], 2_000).await.unwrap();
    wait_no_locks(&f).await;
    check_books(&f).await;
    let m = &f.members[0];
    let due = m.wallet.channels().await.unwrap()[0].balance;
    let on_chain = f.chain.account(&m.wallet.address()).await.unwrap().balance;
    let (paid, _) = m.wallet.close(&m.channel).await.unwrap();
    assert_eq!(paid, due, "cooperative close pays the channel balance");
    let fee = 1;
    assert_eq!(
        f.chain.account(&m.wallet.address()).await.unwrap().balance,
        on_chain + paid - fee
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watchtower_restarted_inside_the_window_still_defeats_a_stale_close() {
    use sluice_tests::devnet::steps;
    let _serial = SERIAL.lock().await;
    let mut f = fleet(2, 1_000_000, HubStore::Postgres).await;
    let tower_url = f.net.tower.as_ref().unwrap().url();
    let victim = &f.members[1];
    victim
        .wallet
        .add_watchtower(&tower_url, &f.net.tower_key.unwrap())
        .await
        .unwrap();
    pay(&f.members[0], victim, 10_000).await.unwrap();
    let old = victim
        .wallet
        .store()
        .require_channel(&victim.channel)
        .await
        .unwrap()
        .snapshot;
    pay(&f.members[0], victim, 20_000).await.unwrap();
    let newest = victim
        .wallet
        .store()
        .require_channel(&victim.channel)
        .await
        .unwrap()
        .snapshot;
    let due = victim.wallet.channels().await.unwrap()[0].balance;
    wait_until("the tower's receipt", || async {
        victim.wallet.watchtowers().await.unwrap().iter().any(|t| {
            t.receipts
                .iter()
                .any(|r| r.channel_id == victim.channel && r.version >= newest.state().version)
        })
    })
    .await;
    let (channel, address) = (victim.channel, victim.wallet.address());
    let before = f.chain.account(&address).await.unwrap().balance;
    f.members.pop();
    f.net.tower.as_mut().unwrap().stop();
    f.net.hub.stop();
    let rogue = steps::hub_key_sender(&f.net).await.unwrap();
    let kind = sluice_protocol::TxKind::Close {
        cosigned: old.cosigned,
        locks: old.locks.clone(),
    };
    let closed = rogue.send(kind, Duration::from_secs(30)).await.unwrap();
    f.net.tower.as_mut().unwrap().restart().unwrap();
    let version = steps::wait_for_challenge(&f.net, &channel, closed.height)
        .await
        .unwrap();
    assert_eq!(
        version,
        newest.state().version,
        "the tower challenged with the newest state"
    );
    let (to_victim, _) = steps::settle(&rogue, &channel).await.unwrap();
    assert_eq!(to_victim, due, "the offline party is paid in full");
    assert_eq!(
        f.chain.account(&address).await.unwrap().balance,
        before + to_victim
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_crashed_under_load_is_refused_cleanly_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut f = fleet(4, 1_000_000, HubStore::Postgres).await;
    let stop = AtomicBool::new(false);
    let down = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let (members, net) = (&f.members, &mut f.net);
    let payers = pay_around(members, &stop, &done);
    // A payment tried while the store is down gets an answer (a refusal), not a hang.
    let probe = async {
        while !down.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = std::time::Instant::now();
        let r = tokio::time::timeout(common::WAIT, pay(&members[0], &members[1], 777)).await;
        (r, started.elapsed())
    };
    let crasher = async {
        wait_until("some payments before the crash", || async {
            done.load(Ordering::Relaxed) >= 20
        })
        .await;
        down.store(true, Ordering::Release);
        let pg = net.postgres().expect("the hub's store is on Postgres");
        tokio::task::block_in_place(|| pg.crash_and_restart(Duration::from_secs(3)))
            .expect("Postgres comes back on its data directory");
        assert!(
            resumed(&done).await,
            "payments did not resume after Postgres came back; hub log:\n{}",
            net.hub.tail(40)
        );
        stop.store(true, Ordering::Relaxed);
    };
    let (_, (probed, took), _) = futures::join!(payers, probe, crasher);
    assert!(
        probed.is_ok(),
        "a payment tried while the store was down hung for {took:?}"
    );
    assert!(f.net.hub.is_running(), "the hub outlives its store's crash");
    all_settled(&f).await;
    f.net.hub.stop();
}
