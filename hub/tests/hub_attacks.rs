//! Every attack on the hub of the catalogue (docs/attacks.md), end to end: a real
//! `sluice-node --dev`, a real `sluice-hub` on Postgres (and SQLite where storage matters),
//! honest and hostile wallets built on the real session machine
//! (`sluice_test_support::hostile`). Each test ends with every channel involved settled on
//! chain and checks what the operator would: the hub's payouts minus its deposits equal the
//! fees it earned, and each honest wallet was paid out what its own books say.

use sluice_chain_client::TxSender;
use sluice_protocol::update::Change;
use sluice_protocol::wire::hub::{ErrorCode, PaymentStatus};
use sluice_protocol::*;
use sluice_test_support::hostile::chain::{self as onchain, Opening};
use sluice_test_support::hostile::{Kind, Reply, Wallet};
use sluice_test_support::{HubAdmin, HubStore, Network, NetworkOptions};
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
    scene_with(store, clients, 50).await
}

async fn scene_with(store: HubStore, clients: &[&Keypair], block_time_ms: u64) -> Scene {
    let miner = Keypair::generate();
    let mut fund: Vec<_> = clients
        .iter()
        .map(|k| (k.address(), 10 * DEPOSIT))
        .collect();
    fund.push((miner.address(), 10 * DEPOSIT));
    let net = Network::start(NetworkOptions {
        block_time_ms,
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

    /// The hub's admin view of its channels.
    async fn admin_channels(&self) -> Vec<serde_json::Value> {
        let r = self
            .admin()
            .get("/api/v1/channels?limit=1000")
            .await
            .unwrap();
        serde_json::from_value(r.json()["items"].clone()).unwrap()
    }

    fn admin(&self) -> HubAdmin {
        HubAdmin::of(self.net.hub.home()).unwrap()
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
        self.settle_all_but(ids, &[], fees).await
    }

    /// [`Scene::settle_all`] with channels `open` left open: the hub's deposits into them are
    /// out of its account meanwhile.
    async fn settle_all_but(
        &self,
        ids: &[Hash32],
        open: &[Hash32],
        fees: Amount,
    ) -> Vec<(Amount, Amount)> {
        let mut payouts = Vec::new();
        let mut net: i128 = 0;
        for id in ids {
            let (pa, pb) = onchain::settled(&self.miner, &self.node, id).await;
            let rec = self.miner.client().channel(id).await.unwrap().unwrap();
            net += i128::from(pb) - i128::from(rec.deposit_b);
            payouts.push((pa, pb));
        }
        assert_eq!(
            net,
            i128::from(fees),
            "the hub's channels paid it back its deposits plus its fees"
        );
        let end = onchain::balance(&self.node, &self.net.hub_key).await;
        let mut moved = i128::from(end) - i128::from(self.start);
        for id in open {
            let rec = self.miner.client().channel(id).await.unwrap().unwrap();
            moved += i128::from(rec.deposit_b);
        }
        let txs = self
            .miner
            .client()
            .account(&self.net.hub_key)
            .await
            .unwrap()
            .nonce;
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
async fn payee_claims_on_chain(
    s: &Scene,
    payer: &Arc<Wallet>,
    payee: &Arc<Wallet>,
    kept: &Snapshot,
    hashlock: &Hash32,
) {
    let ps = onchain::sender(&s.node, &payee.key).await;
    onchain::register_secret(&ps, payee.secret(hashlock).expect("own invoice"))
        .await
        .expect("registered");
    onchain::close(&ps, kept)
        .await
        .expect("closed with the kept state");
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
    assert_eq!(
        payouts[0].0, expected_payer,
        "the payer got what its books say"
    );
    assert_eq!(expected_payer, DEPOSIT - X - fee);
    assert_eq!(payouts[1].0, DEPOSIT + X, "the payee was paid on chain");
}

/// After the payee co-signed the forward: what else it tells the hub before going on chain.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Nothing more (its `Reject` or its silence was all).
    Nothing,
    /// A new session whose `Sync` claims the state below the forward, nothing signed above.
    ResyncBelow,
    /// `Sync` with the kept state.
    PushKept,
}

/// F1a: the payee co-signs the forward, answers with `reply` (and `then`), refuses every Bump
/// that would bury the kept state, then claims on chain with it.
async fn f1a(store: HubStore, reply: Reply, then: Then) {
    let k = keys(2);
    let s = scene(store, &[&k[0], &k[1]]).await;
    let (payer, payee) = (s.wallet(&k[0]).await, s.wallet(&k[1]).await);
    payer.set_lock_delta(80);
    payee.answer(Kind::Forward, reply);
    payee.answer(Kind::Bump, Reply::Reject);
    let inv = payee.invoice(X);
    let h = hashlock_of(&inv);
    pay_in_background(&payer, &inv);
    let kept = kept_with(&s, &payee, &h).await;
    match then {
        Then::Nothing => {}
        Then::ResyncBelow => {
            let below = payee.latest();
            payee.resync_with(0, &below, below.state().version).await;
        }
        Then::PushKept => payee.push_sync(0, &kept, kept.state().version),
    }
    payee_claims_on_chain(&s, &payer, &payee, &kept, &h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1a_payee_cosigns_the_forward_rejects_and_claims_on_chain_postgres() {
    f1a(HubStore::Postgres, Reply::CosignThenReject, Then::Nothing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1a_payee_cosigns_the_forward_rejects_and_claims_on_chain_sqlite() {
    f1a(HubStore::Sqlite, Reply::CosignThenReject, Then::Nothing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1a_payee_cosigns_silently_resyncs_below_and_claims_on_chain() {
    f1a(
        HubStore::Postgres,
        Reply::CosignThenSilent,
        Then::ResyncBelow,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1a_payee_cosigns_rejects_pushes_the_kept_state_and_claims_on_chain() {
    f1a(HubStore::Postgres, Reply::CosignThenReject, Then::PushKept).await;
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
    assert_eq!(
        payouts[0].0,
        DEPOSIT - 2 * X - fee,
        "the later payment stands"
    );
    assert_eq!(
        payouts[1].0,
        DEPOSIT + 2 * X,
        "the payee keeps what it was paid"
    );
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
    onchain::register_secret(&ps, payee.secret(&h).unwrap())
        .await
        .unwrap();
    onchain::close(&ps, &held).await.unwrap();
    if kill_hub {
        // Down until the payer's lock has expired: the claim must still be made, since the
        // secret went on chain before the expiry.
        onchain::eventually("the payer's lock expired", &s.miner, async || {
            (s.height().await >= e_in).then_some(())
        })
        .await;
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
    let lock = payer
        .latest()
        .locks
        .iter()
        .find(|l| l.direction == Direction::AtoB)
        .cloned();
    if let Some(l) = lock {
        let refused = payer
            .propose(
                0,
                Change::RemoveLock {
                    hashlock: l.hashlock,
                },
                None,
            )
            .await;
        assert!(
            matches!(
                refused,
                Err((ErrorCode::PaymentFailed | ErrorCode::InvalidUpdate, _))
            ),
            "the hub refuses to give back a lock it is owed: {refused:?}"
        );
    }
    let fee = fee_of(X);
    let payouts = s.settle_all(&[payer.channel, payee.channel], fee).await;
    assert_eq!(
        payouts[0].0,
        DEPOSIT - X - fee,
        "the payer paid, as the payee was paid"
    );
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

/// F3: a channel with a two-block window is not served at all; on a channel the hub serves, a
/// stale close while blocks are full of higher-fee transfers still meets the hub's challenge,
/// resubmitted with rising fees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f3_a_short_window_is_refused_and_a_challenge_outbids_full_blocks() {
    let k = keys(2);
    let flooders = keys(24);
    let mut all: Vec<&Keypair> = k.iter().collect();
    all.extend(flooders.iter());
    let mut s = scene_with(HubStore::Postgres, &all, 100).await;
    // Twenty transactions a block, and the guard retries every second.
    s.net.node.set_env("SLUICE_NODE_MAX_BLOCK_TXS", "20");
    s.net.node.restart().expect("node restarts");
    s.net.hub.set_env("SLUICE_HUB_GUARD__RESUBMIT_SECS", "1");
    s.net.hub.restart().expect("hub restarts");

    let short = Opening {
        challenge_period: 2,
        ..Opening::new(DEPOSIT)
    };
    let refused = onchain::open(&s.node, &k[1], &s.net.hub_key, short).await;
    let (payer, payee) = (s.wallet(&k[0]).await, s.wallet(&k[1]).await);
    let rec = s.miner.client().channel(&refused).await.unwrap().unwrap();
    assert_eq!(rec.deposit_b, 0, "no collateral for a two-block window");
    let listed = s.admin_channels().await;
    assert!(
        !listed.iter().any(|c| c["id"] == refused.to_string()),
        "not served"
    );

    for amount in [X, X, X] {
        let (st, why) = payer.pay(0, &payee.invoice(amount)).await;
        assert_eq!(st, PaymentStatus::Completed, "{why:?}");
    }
    let stale = payer.history().values().nth(1).cloned().unwrap();
    let latest = payer.latest();
    assert!(stale.state().version < latest.state().version);

    // Blocks full of fee-3 transfers for longer than the window, then the stale close (fee 10).
    for f in &flooders {
        let fs = onchain::sender(&s.node, f).await;
        for _ in 0..60 {
            let to = Address([9; 32]);
            fs.submit_with_fee(TxKind::Transfer { to, amount: 1 }, 3)
                .await
                .unwrap();
        }
    }
    let closer = sluice_chain_client::TxSender::new(
        s.miner.client().clone(),
        payer.key.clone(),
        payer.chain_id,
        10,
    );
    onchain::close(&closer, &stale).await.unwrap();
    // Settlement by the latest state shows the challenge landed inside the window.
    s.close(&payee, &payee.latest()).await;
    let fees = 3 * fee_of(X);
    let payouts = s.settle_all(&[payer.channel, payee.channel], fees).await;
    assert_eq!(
        payouts[0].0,
        DEPOSIT - 3 * X - fees,
        "paid out by the latest state"
    );
    assert_eq!(payouts[1].0, DEPOSIT + 3 * X);
}

/// F12: channels whose client put in nothing (or less than the hub's minimum) get no
/// collateral, while an honest channel opened after them is funded as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f12_zero_and_dust_deposit_channels_get_no_collateral() {
    let k = keys(3);
    let s = scene(HubStore::Postgres, &[&k[0], &k[1], &k[2]]).await;
    let zero = onchain::open(&s.node, &k[0], &s.net.hub_key, Opening::new(0)).await;
    let dust = onchain::open(&s.node, &k[1], &s.net.hub_key, Opening::new(999)).await;
    let honest = onchain::open(&s.node, &k[2], &s.net.hub_key, Opening::new(DEPOSIT)).await;
    onchain::wait_funded(&s.node, &honest, DEPOSIT).await;
    // Several more collateral rounds (one a second in the harness).
    let target = s.height().await + 30;
    sluice_test_support::advance_to(&s.miner, target)
        .await
        .unwrap();
    for id in [zero, dust] {
        let rec = s.miner.client().channel(&id).await.unwrap().unwrap();
        assert_eq!(rec.deposit_b, 0, "no collateral for {id}");
    }
    // The hub still knows them (they may receive once funded by their client).
    let listed = s.admin_channels().await;
    assert!(listed.iter().any(|c| c["id"] == zero.to_string()));
    let hub_now = onchain::balance(&s.node, &s.net.hub_key).await;
    assert!(
        s.start - hub_now <= DEPOSIT + 10,
        "only the honest channel was funded"
    );
}

/// F13: once the hub knows a channel is closing on chain it signs nothing more on it, and it
/// routes neither from it nor to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f13_nothing_is_signed_or_routed_on_a_channel_closing_on_chain() {
    let k = keys(3);
    let s = scene(HubStore::Postgres, &[&k[0], &k[1], &k[2]]).await;
    let (payer, payee, other) = (
        s.wallet(&k[0]).await,
        s.wallet(&k[1]).await,
        s.wallet(&k[2]).await,
    );
    let (st, why) = payer.pay(0, &payee.invoice(X)).await;
    assert_eq!(st, PaymentStatus::Completed, "{why:?}");
    // The payee closes honestly; the payer closes too.
    s.close(&payee, &payee.latest()).await;
    s.close(&payer, &payer.latest()).await;
    onchain::eventually("the hub seeing both closes", &s.miner, async || {
        let listed = s.admin_channels().await;
        let closing = |id: &Hash32| {
            listed
                .iter()
                .any(|c| c["id"] == id.to_string() && c["phase"] == "closing")
        };
        (closing(&payer.channel) && closing(&payee.channel)).then_some(())
    })
    .await;
    // From a closing channel: refused before anything is signed.
    let (st, why) = payer.pay(0, &other.invoice(X)).await;
    assert_eq!(st, PaymentStatus::Failed);
    assert!(
        why.is_some_and(|w| w.contains("not open")),
        "a typed refusal"
    );
    // To a closing channel: the payment fails and the payer's lock is released.
    let (st, _) = other.pay(0, &payee.invoice(X)).await;
    assert_eq!(st, PaymentStatus::Failed);
    let before = other.latest().state().balances(DEPOSIT, DEPOSIT).unwrap().0;
    assert_eq!(before, DEPOSIT, "the other payer lost nothing");
    s.close(&other, &other.latest()).await;
    let fee = fee_of(X);
    let payouts = s
        .settle_all(&[payer.channel, payee.channel, other.channel], fee)
        .await;
    assert_eq!(payouts[0].0, DEPOSIT - X - fee);
    assert_eq!(payouts[1].0, DEPOSIT + X);
    assert_eq!(payouts[2].0, DEPOSIT);
}

/// F16 (hub side): the admin API never serves a payment's secret, the payer's proof of payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f16_no_admin_endpoint_serves_a_secret() {
    let k = keys(2);
    let s = scene(HubStore::Postgres, &[&k[0], &k[1]]).await;
    let (payer, payee) = (s.wallet(&k[0]).await, s.wallet(&k[1]).await);
    let inv = payee.invoice(X);
    let h = hashlock_of(&inv);
    let (st, why) = payer.pay(0, &inv).await;
    assert_eq!(st, PaymentStatus::Completed, "{why:?}");
    let secret = payee.secret(&h).unwrap().to_string();
    let admin = s.admin();
    for path in [
        "/api/v1/payments".to_string(),
        format!("/api/v1/payments/{h}"),
        "/api/v1/channels".into(),
        "/api/v1/liquidity".into(),
    ] {
        let body = admin.get(&path).await.unwrap().body;
        assert!(
            body.contains(&h.to_string()) || !path.contains("payments"),
            "{path} lists the payment"
        );
        assert!(!body.contains(&secret), "{path} leaks the secret");
        assert!(!body.contains("\"secret\""), "{path} has a secret field");
    }
}

/// F15: a squatter copies a payee's hashlock into an invoice of its own and has it paid first;
/// the payee's own invoice is still payable, while the squat hangs on a secret it never gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f15_a_squatted_hashlock_leaves_the_real_invoice_payable() {
    let k = keys(4);
    let s = scene(HubStore::Postgres, &[&k[0], &k[1], &k[2], &k[3]]).await;
    let (payer, payee) = (s.wallet(&k[0]).await, s.wallet(&k[1]).await);
    let (squatter, accomplice) = (s.wallet(&k[2]).await, s.wallet(&k[3]).await);
    let real = payee.invoice(X);
    let h = hashlock_of(&real);
    let squat = squatter.invoice_for(X, h, None);
    pay_in_background(&accomplice, &squat);
    onchain::eventually("the squat forwarded", &s.miner, async || {
        squatter
            .latest()
            .locks
            .iter()
            .any(|l| l.hashlock == h)
            .then_some(())
    })
    .await;
    let (st, why) = payer.pay(0, &real).await;
    assert_eq!(st, PaymentStatus::Completed, "{why:?}");
    s.close(&payer, &payer.latest()).await;
    s.close(&payee, &payee.latest()).await;
    let fee = fee_of(X);
    let squat_channels = [squatter.channel, accomplice.channel];
    let payouts = s
        .settle_all_but(&[payer.channel, payee.channel], &squat_channels, fee)
        .await;
    assert_eq!(payouts[0].0, DEPOSIT - X - fee);
    assert_eq!(payouts[1].0, DEPOSIT + X);
}

/// F18: the hub stops hearing from its chain node. Past `guard.max_height_age_ms` it refuses a
/// client's payment (busy: retry) rather than judge lock expiries on a height nobody confirms;
/// with the node back, a payment goes through and the books settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f18_a_stale_chain_view_refuses_payments_until_the_node_is_back() {
    let k = keys(2);
    let mut s = scene(HubStore::Postgres, &[&k[0], &k[1]]).await;
    s.net
        .hub
        .set_env("SLUICE_HUB_GUARD__MAX_HEIGHT_AGE_MS", "10000");
    s.net.hub.restart().expect("hub restarts");
    let (payer, payee) = (s.wallet(&k[0]).await, s.wallet(&k[1]).await);
    s.net.node.kill();
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    let health = s.admin().get("/api/v1/health").await.unwrap();
    assert_eq!(
        health.status, 503,
        "the operator sees the hub cannot judge expiries"
    );
    assert!(health.json()["chain_error"].is_string(), "{}", health.body);
    assert_eq!(
        health.json()["reason"],
        "chain view stale",
        "{}",
        health.body
    );
    let (st, why) = payer.pay(0, &payee.invoice(X)).await;
    assert_eq!(st, PaymentStatus::Failed);
    let why = why.unwrap_or_default();
    assert!(why.contains("view of the chain"), "{why}");
    s.net.node.restart().expect("node restarts");
    onchain::eventually("a payment once the node is back", &s.miner, async || {
        let (st, _) = payer.pay(0, &payee.invoice(X)).await;
        (st == PaymentStatus::Completed).then_some(())
    })
    .await;
    s.close(&payer, &payer.latest()).await;
    s.close(&payee, &payee.latest()).await;
    let fee = fee_of(X);
    let payouts = s.settle_all(&[payer.channel, payee.channel], fee).await;
    assert_eq!(payouts[0].0, DEPOSIT - X - fee);
    assert_eq!(payouts[1].0, DEPOSIT + X);
}

/// F18: one payer keeps `limits.max_inflight_per_payer` payments hanging (its accomplice never
/// unlocks); its next lock is refused with the reason, while another payer is routed as usual
/// and is paid out in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f18_one_payer_cannot_take_every_routing_slot() {
    let k = keys(4);
    let mut s = scene(HubStore::Postgres, &[&k[0], &k[1], &k[2], &k[3]]).await;
    s.net
        .hub
        .set_env("SLUICE_HUB_LIMITS__MAX_INFLIGHT_PER_PAYER", "2");
    s.net
        .hub
        .set_env("SLUICE_HUB_LIMITS__REPLY_TIMEOUT_MS", "30000");
    s.net.hub.restart().expect("hub restarts");
    let (hog, accomplice) = (s.wallet(&k[0]).await, s.wallet(&k[1]).await);
    let (payer, payee) = (s.wallet(&k[2]).await, s.wallet(&k[3]).await);
    accomplice.never_unlock();
    for _ in 0..2 {
        pay_in_background(&hog, &accomplice.invoice(X));
    }
    onchain::eventually("both hanging payments forwarded", &s.miner, async || {
        (accomplice.latest().locks.len() == 2).then_some(())
    })
    .await;
    let (st, why) = hog.pay(0, &accomplice.invoice(X)).await;
    assert_eq!(st, PaymentStatus::Failed);
    assert!(why.unwrap_or_default().contains("in flight already"));
    let (st, why) = payer.pay(0, &payee.invoice(X)).await;
    assert_eq!(st, PaymentStatus::Completed, "{why:?}");
    s.close(&payer, &payer.latest()).await;
    s.close(&payee, &payee.latest()).await;
    let fee = fee_of(X);
    let busy = [hog.channel, accomplice.channel];
    let payouts = s
        .settle_all_but(&[payer.channel, payee.channel], &busy, fee)
        .await;
    assert_eq!(payouts[0].0, DEPOSIT - X - fee);
    assert_eq!(payouts[1].0, DEPOSIT + X);
}
