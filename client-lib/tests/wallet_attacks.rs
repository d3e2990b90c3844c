//! Every attack of the catalogue on wallets (docs/attacks.md), end to end: a real
//! `sluice-node --dev`, the real wallet library, and a hostile hub on a real WebSocket whose
//! every channel is the protocol's session machine (party `b`), deviating on purpose. Each test
//! ends with the wallet's channel settled on chain and checks that the wallet was paid out what
//! its own store said it owned.

mod support;

use sluice_client::{WalletError, WalletEvent};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::wire::hub::{ErrorCode, SessionMsg};
use sluice_protocol::{Change, Context, Direction, Hash32, Keypair, Lock, Policy, TxKind};
use std::time::Duration;
use support::{Chain, Conn};

const DEPOSIT: u64 = 1_000;
const Z: u64 = 300;

async fn ctx(chain: &Chain) -> Context {
    Context {
        deposit_a: DEPOSIT,
        deposit_b: DEPOSIT,
        height: chain.height().await,
        policy: Policy::default(),
    }
}

/// A wallet with one channel both sides funded with `DEPOSIT`, logged in to the test hub.
async fn funded() -> (
    tempfile::TempDir,
    Chain,
    support::Hub,
    sluice_client::Wallet,
    Hash32,
    Conn,
) {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, conn) = support::connected(dir.path(), &chain, &hub, DEPOSIT).await;
    chain.hub_deposit(&id, DEPOSIT).await;
    (dir, chain, hub, w, id, conn)
}

/// The hub forwards `Z` toward the wallet for one of its invoices, expiring `blocks` from now;
/// the wallet co-signs it and proposes its unlock, which the hub takes (learning the secret)
/// but never answers. Returns the lock.
async fn forward_and_swallow_unlock(
    chain: &Chain,
    w: &sluice_client::Wallet,
    conn: &mut Conn,
    id: &Hash32,
    blocks: u64,
) -> Lock {
    let inv = w
        .create_invoice(Z, "", Duration::from_secs(600))
        .await
        .unwrap();
    let lock = Lock {
        direction: Direction::BtoA,
        amount: Z,
        hashlock: inv.hashlock,
        expiry: chain.height().await + blocks,
    };
    let c = ctx(chain).await;
    conn.propose(id, Change::AddLock { lock }, &c).await;
    conn.take_accept(id).await;
    let unlock = conn.take_proposal(&c).await;
    assert!(matches!(unlock.proposal.change, Change::Unlock { .. }));
    lock
}

/// Polls `f` every 100 ms for up to `secs`, moving the chain one block a round.
async fn until<F: AsyncFnMut() -> bool>(chain: &Chain, secs: u64, what: &str, mut f: F) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        let h = chain.height().await;
        chain.advance_to(h + 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// F5: the hub learns the secret from our unlock, never co-signs it and closes with the state
/// holding the lock: the guard registers the secret for the closing channel and the lock pays us.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_a_hub_that_swallows_the_unlock_and_closes_still_pays_the_lock() {
    let (_dir, chain, _hub, w, id, mut conn) = funded().await;
    let lock = forward_and_swallow_unlock(&chain, &w, &mut conn, &id, 60).await;
    let held = conn.latest(&id);
    assert!(held.locks.contains(&lock));
    chain.hub_close(&held).await;
    until(
        &chain,
        60,
        "the wallet registering the secret",
        async || chain.client.secret(&lock.hashlock).await.unwrap().is_some(),
    )
    .await;
    let owned = w.channels().await.unwrap()[0].balance + Z;
    let (paid, _) = chain.settle(&id).await;
    assert_eq!(
        paid, owned,
        "the wallet got its balance and the lock it held the secret for"
    );
    assert_eq!(paid, DEPOSIT + Z);
}

/// F6: the hub co-signs our `Finalize` itself and says it refused. The wallet signs nothing more
/// on the channel and closes it on chain; the hub's kept final state cannot overtake the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f6_a_kept_finalize_cannot_end_a_channel_closing_on_chain() {
    let (_dir, chain, _hub, w, id, mut conn) = funded().await;
    let c = ctx(&chain).await;
    let closing = {
        let w = &w;
        async move { w.close(&id).await }
    };
    let hub_side = async {
        let fin = conn.take_proposal(&c).await;
        assert_eq!(fin.proposal.change, Change::Finalize);
        let kept = conn.keep(fin, w.address());
        let version = kept.state().version;
        conn.send(&Conn::reject(id, version, ErrorCode::InvalidUpdate))
            .await;
        kept
    };
    let (closed, kept) = tokio::join!(closing, hub_side);
    assert!(closed.is_err(), "the close did not complete");
    until(&chain, 30, "the wallet's force-close", async || {
        matches!(
            chain.client.channel(&id).await.unwrap().unwrap().status,
            sluice_protocol::onchain::ChannelStatus::Closing { .. }
        )
    })
    .await;
    let coop = TxKind::CooperativeClose {
        cosigned: kept.cosigned,
    };
    let refused = chain.hub_sender().send(coop, Duration::from_secs(20)).await;
    assert!(
        refused.is_err(),
        "a kept final state is refused once closing"
    );
    let owned = w.channels().await.unwrap()[0].balance;
    let (paid, _) = chain.settle(&id).await;
    assert_eq!(paid, owned);
}

/// F7: terms beyond the wallet's caps are refused at login; a fee above `max_fee` is refused
/// before anything is locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_hub_terms_beyond_the_caps_are_refused_and_the_fee_is_bounded() {
    let (dir, chain, hub) = support::setup().await;
    let w = support::wallet(dir.path(), &chain, &hub).await;
    let id = w.open_channel(DEPOSIT).await.unwrap();
    let mut events = w.subscribe();
    let greedy = RoutingTerms {
        fee_base: 10 * DEPOSIT,
        ..RoutingTerms::default()
    };
    let (_conn, connected) = tokio::join!(hub.accept_with(vec![id], greedy), w.connect());
    assert!(matches!(connected, Err(WalletError::HubTerms(_))));
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    assert!(matches!(ev, Ok(Ok(WalletEvent::TermsRefused { .. }))));

    let mut conn = support::login(&w, &hub, id, RoutingTerms::default()).await;
    let inv = support::payee_invoice(&hub, Hash32([3; 32]), 500);
    let fee = w.fee_for(&inv).unwrap();
    assert_eq!(fee, RoutingTerms::default().fee(500).unwrap());
    let r = w.pay_at_most(&inv, Some(fee - 1)).await;
    assert!(matches!(r, Err(WalletError::FeeTooHigh { .. })), "{r:?}");
    assert!(
        conn.recv_within(Duration::from_millis(500)).await.is_none(),
        "nothing was proposed"
    );
    w.force_close(&id).await.unwrap();
    let (paid, _) = chain.settle(&id).await;
    assert_eq!(paid, DEPOSIT, "nothing left the wallet");
}

/// F10: the secret of a lock toward us is on chain in time (the hub registered it itself) but
/// the channel is still open past the lock's expiry: the wallet refuses the hub's removal of
/// the lock and closes the channel, so the lock still pays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f10_a_lock_claimed_on_chain_is_not_given_back_and_the_close_is_retried() {
    let (dir, chain, hub) = support::setup().await;
    let mut cfg =
        sluice_client::WalletConfig::new(chain.addr.clone(), hub.addr.clone(), hub.address());
    cfg.pay_timeout_secs = 5;
    // No guard window before the expiry: the wallet's own registration and close are what
    // failed here; only the retry after the expiry is left.
    cfg.unlock_margin = 0;
    let w = sluice_client::Wallet::open(dir.path(), cfg).await.unwrap();
    let id = w.open_channel(DEPOSIT).await.unwrap();
    let (conn, connected) = tokio::join!(hub.accept(vec![id]), w.connect());
    connected.unwrap();
    let mut conn = conn;
    conn.take_sync(&id).await;
    conn.sync(&id).await;
    chain.hub_deposit(&id, DEPOSIT).await;
    let lock = forward_and_swallow_unlock(&chain, &w, &mut conn, &id, 30).await;
    let secret = w
        .store()
        .invoice(&lock.hashlock)
        .await
        .unwrap()
        .unwrap()
        .secret;
    chain.hub_register(secret).await;
    chain.advance_to(lock.expiry + 1).await;
    // The hub's in-flight proposal (our unlock) is abandoned; it now asks for the lock back.
    let mut c = ctx(&chain).await;
    c.height = lock.expiry + 1;
    conn.with(&id, |m| m.abandon());
    conn.propose(
        &id,
        Change::RemoveLock {
            hashlock: lock.hashlock,
        },
        &c,
    )
    .await;
    let code = conn.take_reject(&id).await;
    assert_eq!(code, ErrorCode::PaymentFailed, "refused: the lock is ours");
    until(&chain, 30, "the wallet's close", async || {
        matches!(
            chain.client.channel(&id).await.unwrap().unwrap().status,
            sluice_protocol::onchain::ChannelStatus::Closing { .. }
        )
    })
    .await;
    let (paid, _) = chain.settle(&id).await;
    assert_eq!(paid, DEPOSIT + Z);
}

/// F11: the hub co-signs our payment itself and answers `Reject`, then pays us, then closes
/// with the payment it "rejected": our later state wins the challenge, and a `Sync` of the kept
/// state does not bring the failed payment back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f11_a_rejected_proposal_the_hub_kept_erases_nothing() {
    let (_dir, chain, hub, w, id, mut conn) = funded().await;
    let c = ctx(&chain).await;
    let inv = support::payee_invoice(&hub, Hash32([8; 32]), 200);
    let paying = async { w.pay(&inv).await };
    let hub_side = async {
        let checked = conn.take_proposal(&c).await;
        let version = checked.proposal.state.version;
        let kept = conn.keep(checked, w.address());
        conn.send(&Conn::reject(id, version, ErrorCode::PaymentFailed))
            .await;
        kept
    };
    let (paid, kept) = tokio::join!(paying, hub_side);
    assert!(
        paid.is_err(),
        "the payment failed as far as the wallet knows"
    );
    // Then the hub pays us, and it completes.
    forward_and_swallow_unlock(&chain, &w, &mut conn, &id, 60).await;
    // The hub pushes the kept state: older than ours, it is not taken.
    conn.send(&SessionMsg::Sync {
        channel_id: id,
        snapshot: kept.clone(),
        signed: kept.state().version,
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pays = w.payments().await.unwrap();
    assert!(
        !pays.iter().any(
            |p| p.status == sluice_client::store::PaymentStatus::Completed
                && p.direction == sluice_client::store::PaymentDirection::Out
        ),
        "the failed payment did not come back: {pays:?}"
    );
    let ours = w.channels().await.unwrap()[0].clone();
    assert!(
        ours.version > kept.state().version,
        "our state is above the kept one"
    );
    chain.hub_close(&kept).await;
    let owned = ours.balance + Z;
    let (paid, _) = chain.settle(&id).await;
    assert_eq!(paid, owned, "the challenge with our later state won");
}

/// An honest wallet takes nothing it does not own: once the hub's claim of our lock is
/// registered on chain in time, the wallet returns the secret as proof and never proposes
/// removing the lock after its expiry; the lock pays the hub at settlement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_wallet_never_takes_back_a_lock_claimed_on_chain() {
    let (dir, chain, hub) = support::setup().await;
    let w = support::wallet(dir.path(), &chain, &hub).await;
    let id = w.open_channel(DEPOSIT).await.unwrap();
    // Short locks, so the test waits out an expiry in seconds.
    let mut terms = RoutingTerms::default();
    terms.policy.max_expiry_delta = 60;
    let mut conn = support::login(&w, &hub, id, terms).await;
    chain.hub_deposit(&id, DEPOSIT).await;
    let c = ctx(&chain).await;
    let secret = Hash32([6; 32]);
    let inv = support::payee_invoice(&hub, secret, 200);
    let w2 = &w;
    let paying = async move { w2.pay(&inv).await };
    let hub_side = async {
        let checked = conn.take_proposal(&c).await;
        let Change::AddLock { lock } = checked.proposal.change else {
            panic!("expected the payment's lock");
        };
        conn.accept(checked).await;
        // The payee claimed on chain (the hub's own claim goes the same way).
        chain.hub_register(secret).await;
        lock
    };
    let (proof, lock) = tokio::join!(paying, hub_side);
    assert_eq!(
        proof.unwrap(),
        secret,
        "the registered secret is the proof of payment"
    );
    chain.advance_to(lock.expiry + 3).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < deadline {
        if let Some(SessionMsg::Propose(p)) = conn.recv_within(Duration::from_millis(500)).await {
            assert!(
                !matches!(p.change, Change::RemoveLock { .. }),
                "the wallet asked for a lock it does not own"
            );
        }
    }
    let owned = w.channels().await.unwrap()[0].balance;
    chain.hub_close(&conn.latest(&id)).await;
    let (paid, _) = chain.settle(&id).await;
    assert_eq!(paid, owned, "the lock went to the hub");
    assert_eq!(paid, DEPOSIT - lock.amount);
}

/// F18: a server that announces the hub's address but does not hold its key cannot sign the
/// wallet's own login challenge: the wallet refuses the session, and its deposit is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f18_an_impostor_announcing_the_hubs_key_is_refused_at_login() {
    let (dir, chain, mut hub) = support::setup().await;
    let w = support::wallet(dir.path(), &chain, &hub).await;
    let id = w.open_channel(DEPOSIT).await.unwrap();
    hub.welcome_key = Keypair::generate();
    let (_conn, connected) = tokio::join!(hub.accept(vec![id]), w.connect());
    assert!(
        matches!(connected, Err(WalletError::HubMisbehaved(_))),
        "{connected:?}"
    );
    w.force_close(&id).await.unwrap();
    let (paid, _) = chain.settle(&id).await;
    assert_eq!(paid, DEPOSIT, "nothing left the wallet");
}

/// W1: the hub co-signs the wallet's withdrawal proposal, answers `Reject` and sends the
/// co-signed state to the chain itself. The wallet is paid early, goes on from the state below
/// (a payment from the hub completes there), and settlement nets the advance out: what the
/// chain paid the wallet in all is exactly what the wallet's own books say it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w1_a_withdrawal_the_hub_rejected_but_sent_to_the_chain_costs_the_wallet_nothing() {
    let (_dir, chain, _hub, w, id, mut conn) = funded().await;
    let c = ctx(&chain).await;
    let me = w.address();
    let start = chain.client.account(&me).await.unwrap().balance;
    let withdrawing = async { w.withdraw(&id, 400).await };
    let hub_side = async {
        let checked = conn.take_proposal(&c).await;
        let version = checked.proposal.state.version;
        let kept = conn.keep(checked, me);
        conn.send(&Conn::reject(id, version, ErrorCode::Internal))
            .await;
        kept
    };
    let (withdrawn, kept) = tokio::join!(withdrawing, hub_side);
    assert!(withdrawn.is_err(), "refused as far as the wallet knows");
    assert_eq!(kept.state().withdrawn_a, 400);
    let pay = TxKind::Withdraw {
        cosigned: kept.cosigned,
    };
    chain
        .hub_sender()
        .send(pay, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        chain.client.account(&me).await.unwrap().balance,
        start + 400
    );
    // The wallet goes on from the state below the withdrawal: the hub pays it Z there.
    let lock = forward_and_swallow_unlock(&chain, &w, &mut conn, &id, 60).await;
    let ours = w.channels().await.unwrap()[0].clone();
    assert_eq!(
        ours.balance, DEPOSIT,
        "the wallet's books know nothing of the 400"
    );
    // The hub closes with the withdrawal state; the wallet's later one wins the challenge,
    // and the wallet registers the secret of the lock the hub never took back.
    chain.hub_close(&kept).await;
    until(
        &chain,
        60,
        "the wallet's challenge and secret",
        async || {
            let rec = chain.client.channel(&id).await.unwrap().unwrap();
            let challenged = matches!(&rec.status,
            sluice_protocol::onchain::ChannelStatus::Closing { stored, .. }
                if stored.state().version > kept.state().version);
            challenged && chain.client.secret(&lock.hashlock).await.unwrap().is_some()
        },
    )
    .await;
    let (paid, _) = chain.settle(&id).await;
    assert_eq!(
        paid + 400,
        ours.balance + lock.amount,
        "the advance is netted out: the wallet has exactly what its books said"
    );
}
