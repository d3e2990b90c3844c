//! Every attack on the hub of the catalogue (docs/attacks.md), end to end: a real
//! `sluice-node --dev`, a real `sluice-hub` on Postgres (and SQLite where storage matters),
//! honest and hostile wallets built on the real session machine
//! (`sluice_test_support::hostile`). Each test ends with every channel involved settled on
//! chain and checks what the operator would: the hub's payouts minus its deposits equal the
//! fees it earned, and each honest wallet was paid out what its own books say.

use sluice_chain_client::TxSender;
use sluice_protocol::onchain::ChannelStatus;
use sluice_protocol::update::Change;
use sluice_protocol::wire::hub::{ErrorCode, PaymentStatus};
use sluice_protocol::*;
use sluice_test_support::hostile::chain::{self as onchain, Opening};
use sluice_test_support::hostile::{Kind, Reply, Wallet};
use sluice_test_support::{HubStore, Network, NetworkOptions};
use std::sync::Arc;

/// Each client's deposit and the hub's collateral target.
const DEPOSIT: Amount = 100_000;
/// What the payments below pay, and what the hub charges for routing it.
const X: Amount = 5_000;

struct Scene {
    net: Network,
    node: String,
    /// Moves the dev chain on (its own account, so no test wallet's nonce is disturbed).
    miner: TxSender,
    start: Amount,
}

fn keys(n: usize) -> Vec<Keypair> {
    (0..n).map(|_| Keypair::generate()).collect()
}

async fn scene(store: HubStore, clients: &[&Keypair]) -> Scene {
    let miner = Keypair::generate();
    let mut fund: Vec<_> = clients.iter().map(|k| (k.address(), 10 * DEPOSIT)).collect();
    fund.push((miner.address(), 10 * DEPOSIT));
    let net = Network::start(NetworkOptions {
        block_time_ms: 50,
        hub_store: store,
        tower: false,
        fund,
        hub_collateral: (DEPOSIT / 2, DEPOSIT),
        ..NetworkOptions::default()
    })
    .expect("network");
    let node = net.node.addr().to_string();
    let miner = onchain::sender(&node, &miner).await;
    let start = onchain::balance(&node, &net.hub_key).await;
    Scene {
        net,
        node,
        miner,
        start,
    }
}

impl Scene {
    /// Opens a channel of `key` toward the hub, waits for the hub's collateral, logs in.
    async fn wallet(&self, key: &Keypair) -> Arc<Wallet> {
        let id = onchain::open(&self.node, key, &self.net.hub_key, Opening::new(DEPOSIT)).await;
        let deposits = onchain::wait_funded(&self.node, &id, DEPOSIT).await;
        self.login(key, id, deposits).await
    }

    async fn login(&self, key: &Keypair, id: Hash32, deposits: (Amount, Amount)) -> Arc<Wallet> {
        let addrs = vec![self.net.hub.addr().to_string()];
        let w = Wallet::connect(&addrs, key.clone(), id, deposits).await;
        w.set_height(self.height().await);
        w
    }

    async fn height(&self) -> Height {
        self.miner.client().chain_info().await.expect("info").height
    }

    async fn status(&self, id: &Hash32) -> Option<ChannelStatus> {
        onchain::status(&self.node, id).await
    }

    /// Closes `w`'s channel with `snap` from `w`'s own account.
    async fn close(&self, w: &Wallet, snap: &Snapshot) {
        let s = onchain::sender(&self.node, &w.key).await;
        onchain::close(&s, snap).await.expect("close included");
    }

    /// Settles every channel in `ids` and checks the hub's books: its payouts minus its
    /// deposits are `fees`, and its account moved by that, less what its own transactions
    /// cost. Returns each channel's `(payout_client, payout_hub)`.
    async fn settle_all(&self, ids: &[Hash32], fees: Amount) -> Vec<(Amount, Amount)> {
        let mut payouts = Vec::new();
        let mut net: i128 = 0;
        for id in ids {
            let (pa, pb) = onchain::settled(&self.miner, &self.node, id).await;
            let rec = self.miner.client().channel(id).await.unwrap().unwrap();
            net += i128::from(pb) - i128::from(rec.deposit_b);
            payouts.push((pa, pb));
        }
        assert_eq!(net, i128::from(fees), "the hub's channels paid it back its deposits plus its fees");
        let end = onchain::balance(&self.node, &self.net.hub_key).await;
        let moved = i128::from(end) - i128::from(self.start);
        let txs = self.miner.client().account(&self.net.hub_key).await.unwrap().nonce;
        // Deposits and payouts net to `fees`; the rest is what the hub's transactions cost.
        let costs = i128::from(fees) - moved;
        assert!(
            (0..=i128::from(txs) * 64).contains(&costs),
            "the hub's account moved by {moved} for fees {fees} over {txs} transactions"
        );
        payouts
    }
}

/// What the hub charges for routing `amount` (the harness runs it on the default terms).
fn fee_of(amount: Amount) -> Amount {
    routing::RoutingTerms::default().fee(amount).expect("fee")
}

fn hashlock_of(invoice: &str) -> Hash32 {
    invoice::SignedInvoice::parse(invoice)
        .expect("invoice")
        .invoice
        .hashlock
}

/// Pays `invoice` from `payer` in the background (its outcome is not what these tests check).
fn pay_in_background(payer: &Arc<Wallet>, invoice: &str) -> tokio::task::JoinHandle<PaymentStatus> {
    let (p, inv) = (payer.clone(), invoice.to_string());
    tokio::spawn(async move { p.pay(0, &inv).await.0 })
}

/// Waits until the hostile payee kept a co-signed state holding the lock for `hashlock`.
async fn kept_with(s: &Scene, w: &Wallet, hashlock: &Hash32) -> Snapshot {
    onchain::eventually("a kept state with the lock", &s.miner, async || {
        w.kept()
            .into_iter()
            .find(|k| k.locks.iter().any(|l| l.hashlock == *hashlock))
    })
    .await
}

/// The payee holding the co-signed forward registers the secret and closes with it; the hub
/// must claim the same amount from the payer. Both channels settle: the payee got X, the hub
/// its fee, the honest payer paid X plus the fee and not a unit more.
async fn payee_claims_on_chain(s: &Scene, payer: &Arc<Wallet>, payee: &Arc<Wallet>, kept: &Snapshot, hashlock: &Hash32) {
    let ps = onchain::sender(&s.node, &payee.key).await;
    onchain::register_secret(&ps, payee.secret(hashlock).expect("own invoice"))
        .await
        .expect("registered");
    onchain::close(&ps, kept).await.expect("closed with the kept state");
    // The hub learns the secret from the chain and claims from the payer, who co-signs.
    onchain::eventually("the hub's claim on the payer", &s.miner, async || {
        let latest = payer.latest();
        (!latest.locks.iter().any(|l| l.hashlock == *hashlock)
            && latest.state().balances(DEPOSIT, DEPOSIT).ok()?.0 < DEPOSIT)
            .then_some(())
    })
    .await;
    let expected_payer = payer.latest().state().balances(DEPOSIT, DEPOSIT).unwrap().0;
    s.close(payer, &payer.latest()).await;
    let fee = fee_of(X);
    let payouts = s.settle_all(&[payer.channel, payee.channel], fee).await;
    assert_eq!(payouts[0].0, expected_payer, "the payer got what its books say");
    assert_eq!(expected_payer, DEPOSIT - X - fee);
    assert_eq!(payouts[1].0, DEPOSIT + X, "the payee was paid on chain");
}

async fn f1a_cosign_then_reject(store: HubStore) {
    let k = keys(2);
    let s = scene(store, &[&k[0], &k[1]]).await;
    let (payer, payee) = (s.wallet(&k[0]).await, s.wallet(&k[1]).await);
    payer.set_lock_delta(80);
    payee.answer(Kind::Forward, Reply::CosignThenReject);
    payee.answer(Kind::Bump, Reply::Reject);
    let inv = payee.invoice(X);
    let h = hashlock_of(&inv);
    pay_in_background(&payer, &inv);
    let kept = kept_with(&s, &payee, &h).await;
    payee_claims_on_chain(&s, &payer, &payee, &kept, &h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1a_payee_cosigns_the_forward_rejects_and_claims_on_chain_postgres() {
    f1a_cosign_then_reject(HubStore::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1a_payee_cosigns_the_forward_rejects_and_claims_on_chain_sqlite() {
    f1a_cosign_then_reject(HubStore::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1a_payee_cosigns_silently_resyncs_below_and_claims_on_chain() {
    let k = keys(2);
    let s = scene(HubStore::Postgres, &[&k[0], &k[1]]).await;
    let (payer, payee) = (s.wallet(&k[0]).await, s.wallet(&k[1]).await);
    payer.set_lock_delta(80);
    payee.answer(Kind::Forward, Reply::CosignThenSilent);
    payee.answer(Kind::Bump, Reply::Reject);
    let inv = payee.invoice(X);
    let h = hashlock_of(&inv);
    pay_in_background(&payer, &inv);
    let kept = kept_with(&s, &payee, &h).await;
    // A new session, claiming the state below the forward and nothing signed above it.
    let below = payee.latest();
    payee.resync_with(0, &below, below.state().version).await;
    payee_claims_on_chain(&s, &payer, &payee, &kept, &h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1a_payee_cosigns_rejects_pushes_the_kept_state_and_claims_on_chain() {
    let k = keys(2);
    let s = scene(HubStore::Postgres, &[&k[0], &k[1]]).await;
    let (payer, payee) = (s.wallet(&k[0]).await, s.wallet(&k[1]).await);
    payer.set_lock_delta(80);
    payee.answer(Kind::Forward, Reply::CosignThenReject);
    payee.answer(Kind::Bump, Reply::Reject);
    let inv = payee.invoice(X);
    let h = hashlock_of(&inv);
    pay_in_background(&payer, &inv);
    let kept = kept_with(&s, &payee, &h).await;
    payee.push_sync(0, &kept, kept.state().version);
    payee_claims_on_chain(&s, &payer, &payee, &kept, &h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1b_payer_closes_with_a_rejected_release_and_the_hub_challenge_wins() {
    let k = keys(2);
    let s = scene(HubStore::Postgres, &[&k[0], &k[1]]).await;
    let (payer, payee) = (s.wallet(&k[0]).await, s.wallet(&k[1]).await);
    // The payee declines the first payment; the payer co-signs the hub's release, keeps it
    // and rejects it.
    payee.answer(Kind::Forward, Reply::Reject);
    payer.answer(Kind::Release, Reply::CosignThenReject);
    let first = payee.invoice(X);
    let (st, _) = payer.pay(0, &first).await;
    assert_ne!(st, PaymentStatus::Completed);
    let h = hashlock_of(&first);
    let release = onchain::eventually("a kept release", &s.miner, async || {
        payer
            .kept()
            .into_iter()
            .find(|k| !k.locks.iter().any(|l| l.hashlock == h))
    })
    .await;
    // A later payment goes through, then the payer closes with the kept release.
    payee.answer(Kind::Forward, Reply::Accept);
    payer.answer(Kind::Release, Reply::Accept);
    let (st, why) = payer.pay(0, &payee.invoice(2 * X)).await;
    assert_eq!(st, PaymentStatus::Completed, "{why:?}");
    let latest = payer.latest();
    assert!(latest.state().version > release.state().version);
    s.close(&payer, &release).await;
    s.close(&payee, &payee.latest()).await;
    let fee = fee_of(2 * X);
    let payouts = s.settle_all(&[payer.channel, payee.channel], fee).await;
    assert_eq!(payouts[0].0, DEPOSIT - 2 * X - fee, "the later payment stands");
    assert_eq!(payouts[1].0, DEPOSIT + 2 * X, "the payee keeps what it was paid");
}

/// F2: the payee never unlocks; it registers the secret and closes. The payer withholds its
/// own unlock and then asks to remove its expired lock: refused, the hub claims on chain.
async fn f2_registered_secret(kill_hub: bool) {
    let k = keys(2);
    let mut s = scene(HubStore::Postgres, &[&k[0], &k[1]]).await;
    let (payer, payee) = (s.wallet(&k[0]).await, s.wallet(&k[1]).await);
    payer.set_lock_delta(80);
    payer.withhold_unlocks();
    payee.never_unlock();
    let inv = payee.invoice(X);
    let h = hashlock_of(&inv);
    pay_in_background(&payer, &inv);
    let held = onchain::eventually("the payee holding the forward", &s.miner, async || {
        let l = payee.latest();
        l.locks.iter().any(|x| x.hashlock == h).then_some(l)
    })
    .await;
    let e_in = payer
        .latest()
        .locks
        .iter()
        .find(|l| l.hashlock == h)
        .expect("payer's lock")
        .expiry;
    if kill_hub {
        s.net.hub.kill();
    }
    let ps = onchain::sender(&s.node, &payee.key).await;
    onchain::register_secret(&ps, payee.secret(&h).unwrap()).await.unwrap();
    onchain::close(&ps, &held).await.unwrap();
    if kill_hub {
        s.net.hub.restart().expect("hub restarts");
        let again = s.login(&payer.key, payer.channel, (DEPOSIT, DEPOSIT)).await;
        again.withhold_unlocks();
        again.set_lock_delta(80);
        return f2_finish(&s, &again, &payee, e_in).await;
    }
    f2_finish(&s, &payer, &payee, e_in).await
}

async fn f2_finish(s: &Scene, payer: &Arc<Wallet>, payee: &Arc<Wallet>, e_in: Height) {
    // Past the payer's expiry it asks for its lock back: the hub is owed it and says no (or
    // it has already force-closed the channel to claim it).
    onchain::eventually("the payer's lock expired", &s.miner, async || {
        (s.height().await >= e_in).then_some(())
    })
    .await;
    payer.set_height(s.height().await);
    let lock = payer.latest().locks.iter().find(|l| l.direction == Direction::AtoB).cloned();
    if let Some(l) = lock {
        let refused = payer
            .propose(0, Change::RemoveLock { hashlock: l.hashlock }, None)
            .await;
        assert!(
            matches!(refused, Err((ErrorCode::PaymentFailed | ErrorCode::InvalidUpdate, _))),
            "the hub refuses to give back a lock it is owed: {refused:?}"
        );
    }
    let fee = fee_of(X);
    let payouts = s.settle_all(&[payer.channel, payee.channel], fee).await;
    assert_eq!(payouts[0].0, DEPOSIT - X - fee, "the payer paid, as the payee was paid");
    assert_eq!(payouts[1].0, DEPOSIT + X);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f2_payee_registers_the_secret_instead_of_unlocking_and_the_hub_claims() {
    f2_registered_secret(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f2_the_hub_killed_after_the_forward_still_learns_the_secret_and_claims() {
    f2_registered_secret(true).await;
}
