//! The hub's chain duties against a real `sluice-node --dev` and a real `sluice-hub` process:
//! collateral for channels opened toward it (and a deposit whose transaction vanished), a stale
//! close answered by a challenge, a withheld unlock claimed on chain before `E_in`, and
//! settlement paying the hub's account.

mod twin;

use sluice_chain_client::ChainClient;
use sluice_hub::store::{JobStatus, PaymentState, Store};
use sluice_protocol::onchain::ChannelStatus;
use sluice_protocol::*;
use sluice_test_support::{advance_to, HubStore, Network, NetworkOptions};
use std::time::{Duration, Instant};
use twin::{open_on_chain, open_with_salt, sender, wait_funded, Twin, DEPOSIT};

fn network(clients: &[&Keypair]) -> Network {
    Network::start(NetworkOptions {
        block_time_ms: 50,
        hub_store: HubStore::Postgres,
        tower: false,
        fund: clients
            .iter()
            .map(|k| (k.address(), 10 * DEPOSIT))
            .collect(),
        hub_collateral: (DEPOSIT / 2, DEPOSIT),
        ..NetworkOptions::default()
    })
    .expect("network")
}

/// Polls `f` until it yields, nudging the chain forward with `key`'s transfers meanwhile.
async fn eventually<T, F>(what: &str, node: &str, key: &Keypair, mut f: F) -> T
where
    F: AsyncFnMut() -> Option<T>,
{
    let nudge = sender(node, key).await;
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let h = nudge.client().chain_info().await.unwrap().height;
        let _ = advance_to(&nudge, h + 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status(node: &str, id: &Hash32) -> ChannelStatus {
    ChainClient::new(node)
        .channel(id)
        .await
        .unwrap()
        .expect("channel on chain")
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collateral_lands_and_a_vanished_deposit_is_resubmitted() {
    let (ka, kb) = (Keypair::generate(), Keypair::generate());
    let net = network(&[&ka, &kb]);
    let node = net.node.addr().to_string();
    let store = Store::connect(net.hub_store_url().unwrap(), 2)
        .await
        .unwrap();
    // A channel opened on chain toward the hub gets the hub's deposit up to the target.
    let a = open_on_chain(&node, &ka, &net.hub_key).await;
    assert_eq!(wait_funded(&store, &a).await, (DEPOSIT, DEPOSIT));

    // A job recorded as submitted whose transaction the node never saw is submitted again.
    let salt = Hash32(secp256k1::rand::random());
    let chain_id = ChainClient::new(&node).chain_info().await.unwrap().chain_id;
    let b = channel_id(chain_id, &kb.address(), &net.hub_key, &salt);
    let ghost = Hash32([0xee; 32]);
    assert!(store.queue_collateral(&b, DEPOSIT).await.unwrap());
    store
        .update_job(&b, JobStatus::Submitted, Some(ghost), None)
        .await
        .unwrap();
    open_with_salt(&node, &kb, &net.hub_key, salt).await;
    assert_eq!(wait_funded(&store, &b).await, (DEPOSIT, DEPOSIT));
    let job = eventually("the job done", &node, &ka, async || {
        let job = store.job(&b).await.unwrap()?;
        (job.status == JobStatus::Done).then_some(job)
    })
    .await;
    assert_ne!(job.tx_id, Some(ghost));
    let rec = ChainClient::new(&node).channel(&b).await.unwrap().unwrap();
    assert_eq!(rec.deposit_b, DEPOSIT, "deposited exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_close_is_challenged_and_settlement_pays_the_hub() {
    let (ka, kb) = (Keypair::generate(), Keypair::generate());
    let net = network(&[&ka, &kb]);
    let node = net.node.addr().to_string();
    let store = Store::connect(net.hub_store_url().unwrap(), 2)
        .await
        .unwrap();
    let (a, b) = (
        open_on_chain(&node, &ka, &net.hub_key).await,
        open_on_chain(&node, &kb, &net.hub_key).await,
    );
    let addrs = vec![net.hub.addr().to_string()];
    let wa = Twin::connect(&addrs, ka.clone(), a, wait_funded(&store, &a).await).await;
    let wb = Twin::connect(&addrs, kb.clone(), b, wait_funded(&store, &b).await).await;
    let h = ChainClient::new(&node).chain_info().await.unwrap().height;
    wa.set_height(h);
    for amount in [1_000, 2_000, 3_000] {
        let (st, why) = wa.pay(0, &wb.invoice(amount)).await;
        assert_eq!(st, wire::hub::PaymentStatus::Completed, "{why:?}");
    }
    let latest = wa.latest();
    // The third state the payer co-signed (versions skip: the hub leaves one free).
    let stale = wa.history().values().nth(2).cloned().unwrap();
    assert!(latest.state().version > stale.state().version);

    // The payer closes with an old state that still has its later payments.
    let hub_before = ChainClient::new(&node).account(&net.hub_key).await.unwrap();
    let closer = sender(&node, &ka).await;
    let close = TxKind::Close {
        cosigned: stale.cosigned,
        locks: stale.locks.clone(),
    };
    closer.send(close, Duration::from_secs(20)).await.unwrap();
    let settle_after = eventually("the hub's challenge", &node, &kb, async || {
        match status(&node, &a).await {
            ChannelStatus::Closing {
                stored,
                settle_after,
            } if stored.state().version == latest.state().version => Some(settle_after),
            _ => None,
        }
    })
    .await;
    advance_to(&closer, settle_after + 1).await.unwrap();
    let (pa, pb) = eventually("the hub's settlement", &node, &kb, async || {
        match status(&node, &a).await {
            ChannelStatus::Settled { payout_a, payout_b } => Some((payout_a, payout_b)),
            _ => None,
        }
    })
    .await;
    let expected = latest.state().balances(DEPOSIT, DEPOSIT).unwrap();
    assert_eq!((pa, pb), expected, "paid out by the latest state");
    let hub_after = ChainClient::new(&node).account(&net.hub_key).await.unwrap();
    // The hub paid a fee for its challenge and its settle (and perhaps a retry of either).
    assert!(hub_after.balance + 10 >= hub_before.balance + pb);
    assert!(hub_after.balance <= hub_before.balance + pb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_unlock_is_claimed_on_chain_before_the_lock_expires() {
    let (ka, kb) = (Keypair::generate(), Keypair::generate());
    let net = network(&[&ka, &kb]);
    let node = net.node.addr().to_string();
    let store = Store::connect(net.hub_store_url().unwrap(), 2)
        .await
        .unwrap();
    let (a, b) = (
        open_on_chain(&node, &ka, &net.hub_key).await,
        open_on_chain(&node, &kb, &net.hub_key).await,
    );
    let addrs = vec![net.hub.addr().to_string()];
    let wa = Twin::connect(&addrs, ka.clone(), a, wait_funded(&store, &a).await).await;
    let wb = Twin::connect(&addrs, kb.clone(), b, wait_funded(&store, &b).await).await;
    let h = ChainClient::new(&node).chain_info().await.unwrap().height;
    wa.set_height(h);
    wa.set_lock_delta(40);
    wa.withhold_unlocks();
    let inv = wb.invoice(5_000);
    let hashlock = invoice::SignedInvoice::parse(&inv)
        .unwrap()
        .invoice
        .hashlock;
    let payer = wa.clone();
    tokio::spawn(async move { payer.pay(0, &inv).await });
    let pay = eventually("the payee's unlock", &node, &kb, async || {
        match store.payments_with(&hashlock).await.unwrap().pop() {
            Some(p) if p.state == PaymentState::SecretKnown => Some(p),
            _ => None,
        }
    })
    .await;
    // A different account from the one `eventually` nudges with, so nonces never collide.
    let nudge = sender(&node, &ka).await;
    advance_to(&nudge, pay.expiry_in - 10).await.unwrap();
    let chain = ChainClient::new(&node);
    let (registered, settle_after) = eventually("secret and force-close", &node, &kb, async || {
        let secret = chain.secret(&hashlock).await.unwrap()?;
        match status(&node, &a).await {
            ChannelStatus::Closing { settle_after, .. } => Some((secret.height, settle_after)),
            _ => None,
        }
    })
    .await;
    assert!(registered < pay.expiry_in, "registered before E_in");
    advance_to(&nudge, settle_after.max(pay.expiry_in) + 1)
        .await
        .unwrap();
    let (pa, pb) = eventually("settlement", &node, &kb, async || {
        match status(&node, &a).await {
            ChannelStatus::Settled { payout_a, payout_b } => Some((payout_a, payout_b)),
            _ => None,
        }
    })
    .await;
    assert_eq!(
        (pa, pb),
        (DEPOSIT - pay.amount_in, DEPOSIT + pay.amount_in),
        "the withheld lock resolved to the hub"
    );
}
