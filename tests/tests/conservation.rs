//! Ten wallets make a thousand concurrent payments through a hub on Postgres; afterwards every
//! unit is accounted for.

mod common;

use common::{check_books, fleet, pay, wait_no_locks, SERIAL};
use sluice_tests::harness::HubStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_concurrent_payments_conserve_every_unit() {
    let _serial = SERIAL.lock().await;
    let f = fleet(10, 1_000_000, HubStore::Postgres).await;
    let n = f.members.len();
    let per_wallet = 100;
    let results = futures::future::join_all((0..n).map(|i| {
        let f = &f;
        async move {
            let mut ok = 0;
            for k in 0..per_wallet {
                let payee = (i + 1 + k % (n - 1)) % n;
                let amount = 100 + ((i * per_wallet + k) % 50) as u64;
                // Under load a payment may fail (e.g. the payee answers too late); it must then
                // unwind cleanly, which the books below check to the unit.
                match pay(&f.members[i], &f.members[payee], amount).await {
                    Ok(_) => ok += 1,
                    Err(e) => eprintln!("payment {i}→{payee} failed: {e}"),
                }
            }
            ok
        }
    }))
    .await;
    let completed = results.iter().sum::<usize>();
    eprintln!("{completed} of {} payments completed", n * per_wallet);
    assert!(
        completed * 2 >= n * per_wallet,
        "most payments must complete, {completed} did"
    );
    wait_no_locks(&f).await;
    check_books(&f).await;
}
