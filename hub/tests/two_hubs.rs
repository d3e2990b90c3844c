//! Two real `sluice-hub` processes, one hub key, one Postgres, one real chain node: clients hold
//! a session to each and pay around a ring through both at once, so the two processes race on
//! the same channels. Nothing may fork and nothing may be lost.

mod twin;

use sluice_chain_client::ChainClient;
use sluice_hub::store::{PaymentRecord, PaymentState, Store};
use sluice_protocol::wire::hub::PaymentStatus;
use sluice_protocol::*;
use sluice_test_support::{HubStore, Network, NetworkOptions};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use twin::{open_on_chain, wait_funded, Twin, DEPOSIT};

const CLIENTS: usize = 4;
const PAYMENTS_EACH: usize = 12;

/// Reads every channel from the store until told to stop: versions must never go back and a
/// version once seen must never change its state.
fn watch_store(
    store: Store,
    ids: Vec<Hash32>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<HashMap<Hash32, BTreeMap<u64, Snapshot>>> {
    tokio::spawn(async move {
        let mut seen: HashMap<Hash32, BTreeMap<u64, Snapshot>> = HashMap::new();
        while !stop.load(Ordering::Acquire) {
            for id in &ids {
                let row = store.channel(id).await.unwrap().unwrap();
                let states = seen.entry(*id).or_default();
                let v = row.version();
                if let Some((&last, _)) = states.last_key_value() {
                    assert!(
                        v >= last,
                        "store version of {id} went back from {last} to {v}"
                    );
                }
                if let Some(prev) = states.get(&v) {
                    assert_eq!(*prev, row.snapshot, "store changed version {v} of {id}");
                }
                states.insert(v, row.snapshot);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen
    })
}

/// Two hub processes on one Postgres and a chain node, with a channel open for each key.
struct TwoHubs {
    net: Network,
    hubs: [String; 2],
    node: String,
    store: Store,
    ids: Vec<Hash32>,
}

async fn two_hubs(keys: &[Keypair]) -> TwoHubs {
    let mut net = Network::start(NetworkOptions {
        block_time_ms: 50,
        hub_store: HubStore::Postgres,
        tower: false,
        fund: keys.iter().map(|k| (k.address(), 10 * DEPOSIT)).collect(),
        hub_collateral: (DEPOSIT / 2, DEPOSIT),
        ..NetworkOptions::default()
    })
    .expect("network");
    net.add_hub().expect("second hub process");
    let hubs = [
        net.hub.addr().to_string(),
        net.extra_hubs[0].addr().to_string(),
    ];
    let node = net.node.addr().to_string();
    let store = Store::connect(net.hub_store_url().unwrap(), 4)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for k in keys {
        ids.push(open_on_chain(&node, k, &net.hub_key).await);
    }
    TwoHubs {
        net,
        hubs,
        node,
        store,
        ids,
    }
}

/// Waits (up to a minute) until no channel holds a reservation.
async fn wait_unreserved(store: &Store, ids: &[Hash32]) {
    for _ in 0..600 {
        let mut reserved = 0;
        for id in ids {
            reserved += usize::from(store.channel(id).await.unwrap().unwrap().pending.is_some());
        }
        if reserved == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hub_processes_on_one_postgres_never_fork_a_channel() {
    let keys: Vec<Keypair> = (0..CLIENTS).map(|_| Keypair::generate()).collect();
    let TwoHubs {
        net: _net,
        hubs,
        node,
        store,
        ids,
    } = two_hubs(&keys).await;
    let addrs = hubs.to_vec();
    let mut twins = Vec::new();
    for (k, id) in keys.iter().zip(&ids) {
        let deposits = wait_funded(&store, id).await;
        twins.push(Twin::connect(&addrs, k.clone(), *id, deposits).await);
    }
    let height = ChainClient::new(&node).chain_info().await.unwrap().height;
    twins.iter().for_each(|t| t.set_height(height));

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_store(store.clone(), ids.clone(), stop.clone());
    let mut runs = Vec::new();
    for i in 0..CLIENTS {
        let (payer, payee) = (twins[i].clone(), twins[(i + 1) % CLIENTS].clone());
        runs.push(tokio::spawn(async move {
            let mut completed = 0;
            for n in 0..PAYMENTS_EACH {
                let inv = payee.invoice(100 + n as u64);
                // Alternate hub processes; the next payer starts on the other one.
                let (status, _) = payer.pay((n + i) % 2, &inv).await;
                completed += usize::from(status == PaymentStatus::Completed);
            }
            completed
        }));
    }
    let mut told_completed = 0;
    for r in runs {
        told_completed += r.await.unwrap();
    }
    // A proposal the client left unanswered under load stays in doubt until the hub's sweep
    // buries it (every reply timeout): what must hold is that it ends, not how soon.
    wait_unreserved(&store, &ids).await;
    stop.store(true, Ordering::Release);
    let seen = watcher.await.unwrap();

    let payments = store.payments(None, 10_000).await.unwrap();
    let completed: Vec<_> = payments
        .iter()
        .filter(|p| p.state == PaymentState::Completed)
        .collect();
    assert_eq!(
        completed.len(),
        told_completed,
        "every completion a payer was told of is in the store, and no more"
    );
    assert!(
        told_completed >= CLIENTS * PAYMENTS_EACH / 2,
        "only {told_completed} of {} payments completed",
        CLIENTS * PAYMENTS_EACH
    );
    for (t, id) in twins.iter().zip(&ids) {
        assert!(t.forks().is_empty(), "client saw a fork: {:?}", t.forks());
        let row = store.channel(id).await.unwrap().unwrap();
        assert_eq!(row.pending, None, "a reservation was left behind on {id}");
        assert_eq!(
            t.latest(),
            row.snapshot,
            "client and store disagree on {id}"
        );
        // The versions the client co-signed rise (skipping burnt ones) to the store's, and each
        // matches what the store showed.
        let history = t.history();
        let versions: Vec<u64> = history.keys().copied().collect();
        assert_eq!(versions.last(), Some(&row.version()));
        assert_eq!(versions.first(), Some(&0));
        for (v, s) in &seen[id] {
            assert_eq!(
                history.get(v),
                Some(s),
                "store and client differ at version {v}"
            );
        }
        // No lost update: the channel's totals are exactly the payments recorded on it.
        let me = t.key.address();
        let paid: u64 = completed
            .iter()
            .filter(|p| p.payer == me)
            .map(|p| p.amount_in)
            .sum();
        let received: u64 = payments
            .iter()
            .filter(|p| p.payee == me)
            .filter(|p| matches!(p.state, PaymentState::SecretKnown | PaymentState::Completed))
            .map(|p| p.amount)
            .sum();
        let state = row.snapshot.state();
        assert_eq!(
            (state.sent_a, state.sent_b),
            (paid, received),
            "channel {id}"
        );
    }
    eprintln!(
        "{told_completed} of {} payments completed through two hub processes",
        CLIENTS * PAYMENTS_EACH
    );
}

/// Payments whose payer and payee hold sessions on different hub processes: the payer's
/// process hands each to the payee's through Postgres and back. Every one completes at once
/// (not after a sweep), a declined one fails with the payer's lock released by its own
/// process, a payee online nowhere is refused, and the books are exact on every channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payers_and_payees_on_different_hub_processes_pay_each_other_with_exact_books() {
    use sluice_test_support::hostile::{Kind, Reply};
    // Clients 0 and 1 hold a session with the first process only, 2 and 3 with the second;
    // client 4 has a channel and no session anywhere.
    let keys: Vec<Keypair> = (0..5).map(|_| Keypair::generate()).collect();
    let TwoHubs {
        net,
        hubs,
        node,
        store,
        ids,
    } = two_hubs(&keys).await;
    let mut twins = Vec::new();
    for (i, (k, id)) in keys.iter().zip(&ids).take(4).enumerate() {
        let deposits = wait_funded(&store, id).await;
        let hub = hubs[i / 2].clone();
        twins.push(Twin::connect(&[hub], k.clone(), *id, deposits).await);
    }
    wait_funded(&store, &ids[4]).await;
    let height = ChainClient::new(&node).chain_info().await.unwrap().height;
    twins.iter().for_each(|t| t.set_height(height));

    // Across the processes both ways, and within one, all at once.
    let routes = [(0, 2), (2, 0), (1, 3), (3, 1), (0, 1), (2, 3)];
    let mut runs = Vec::new();
    for (payer, payee) in routes {
        let (payer, payee) = (twins[payer].clone(), twins[payee].clone());
        runs.push(tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            for n in 0..PAYMENTS_EACH {
                let inv = payee.invoice(100 + n as u64);
                let started = std::time::Instant::now();
                let (status, reason) = payer.pay(0, &inv).await;
                assert_eq!(status, PaymentStatus::Completed, "{reason:?}");
                slowest = slowest.max(started.elapsed());
            }
            slowest
        }));
    }
    for r in runs {
        let slowest = r.await.unwrap();
        // A payment left to the sweeps would take a reply timeout (5 s) or more.
        assert!(
            slowest < Duration::from_secs(2),
            "a payment took {slowest:?}"
        );
    }

    // A payee on the other process declines: the payment fails and the payer's process
    // releases the payer's lock.
    twins[3].answer(Kind::Forward, Reply::Reject);
    let (status, reason) = twins[1].pay(0, &twins[3].invoice(77)).await;
    assert_eq!(status, PaymentStatus::Failed, "{reason:?}");
    twins[3].answer(Kind::Forward, Reply::Accept);
    // A payee online nowhere (it never logged in) is refused before the payer's lock is taken.
    let chain_id = ChainClient::new(&node).chain_info().await.unwrap().chain_id;
    let inv = sluice_protocol::invoice::Invoice {
        chain_id,
        hub: net.hub_key,
        payee: keys[4].address(),
        amount: 55,
        hashlock: sha256(b"nobody is there"),
        expires_at: u64::MAX,
        memo: String::new(),
    }
    .sign(&keys[4])
    .unwrap()
    .encode_string()
    .unwrap();
    let (status, reason) = twins[0].pay(0, &inv).await;
    assert_eq!(status, PaymentStatus::Failed);
    assert!(
        reason.as_deref().unwrap_or("").contains("offline"),
        "{reason:?}"
    );

    // Books: each channel's totals are exactly its completed payments, nothing is left locked
    // or reserved, and every client holds the store's state.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let payments = store.payments(None, 10_000).await.unwrap();
    let completed: Vec<_> = payments
        .iter()
        .filter(|p| p.state == PaymentState::Completed)
        .collect();
    assert_eq!(completed.len(), routes.len() * PAYMENTS_EACH);
    for (t, id) in twins.iter().zip(&ids) {
        assert!(t.forks().is_empty(), "client saw a fork: {:?}", t.forks());
        let row = store.channel(id).await.unwrap().unwrap();
        assert_eq!(row.pending, None, "a reservation was left behind on {id}");
        assert!(row.snapshot.locks.is_empty(), "a lock was left on {id}");
        assert_eq!(
            t.latest(),
            row.snapshot,
            "client and store disagree on {id}"
        );
        let me = t.key.address();
        let sum = |f: &dyn Fn(&&&PaymentRecord) -> bool, amount: fn(&PaymentRecord) -> u64| {
            completed.iter().filter(f).map(|p| amount(p)).sum::<u64>()
        };
        let paid = sum(&|p| p.payer == me, |p| p.amount_in);
        let received = sum(&|p| p.payee == me, |p| p.amount);
        let state = row.snapshot.state();
        assert_eq!(
            (state.sent_a, state.sent_b),
            (paid, received),
            "channel {id}"
        );
    }
}
