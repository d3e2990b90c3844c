//! Payments a hub process left half-done (its router task died with it) are carried on from the
//! store by whoever finds them: the recovery sweep, a party's login, or the payee's answer
//! arriving with nobody waiting for it. Each test writes into the store exactly what a hub
//! killed between two steps leaves behind, then real clients log in over WebSockets.

mod common;

use common::*;
use sluice_hub::store::{now_ms, now_secs, PaymentRecord, PaymentState, PaymentWrite};
use sluice_hub::Hub;
use sluice_protocol::update::{apply, Change, Position};
use sluice_protocol::wire::hub::{PaymentStatus, SessionMsg};
use sluice_protocol::*;
use std::time::{Duration, Instant};

const AMOUNT: u64 = 1_000;

/// A payment whose payer's lock is co-signed and recorded (`pending`), and nothing more.
struct Stranded {
    a: Hash32,
    b: Hash32,
    pay: PaymentRecord,
    secret: Hash32,
    /// The hub's lock toward the payee, as the router would have proposed it.
    lock_out: Lock,
}

async fn stranded(hub: &Hub, payer: &Keypair, payee: &Keypair) -> Stranded {
    let a = open_channel(hub, payer, 100_000, 0).await;
    let b = open_channel(hub, payee, 0, 50_000).await;
    let secret = Hash32(secp256k1::rand::random());
    let hashlock = sha256(&secret.0);
    let terms = hub.shared.cfg.terms;
    let lock_in = Lock {
        direction: Direction::AtoB,
        amount: terms.incoming_amount(AMOUNT).unwrap(),
        hashlock,
        expiry: terms.incoming_expiry(0),
    };
    let expiry_out = terms.outgoing_expiry(&lock_in, AMOUNT, 0).unwrap();
    let pay = PaymentRecord {
        hashlock,
        payer: payer.address(),
        payee: payee.address(),
        channel_in: a,
        channel_out: Some(b),
        amount: AMOUNT,
        amount_in: lock_in.amount,
        expiry_in: lock_in.expiry,
        expiry_out: Some(expiry_out),
        state: PaymentState::Pending,
        reason: None,
        secret: None,
        created_at: now_secs(),
        updated_at: now_secs(),
    };
    let add = Change::AddLock { lock: lock_in };
    let snap = next_state(hub, &a, payer, add, Party::A).await;
    commit(hub, &a, snap, vec![PaymentWrite::Insert(pay.clone())]).await;
    let lock_out = Lock {
        direction: Direction::BtoA,
        amount: AMOUNT,
        hashlock,
        expiry: expiry_out,
    };
    Stranded {
        a,
        b,
        pay,
        secret,
        lock_out,
    }
}

/// The channel's next state after `change` proposed by `by`, signed by client and hub.
async fn next_state(
    hub: &Hub,
    id: &Hash32,
    client: &Keypair,
    change: Change,
    by: Party,
) -> Snapshot {
    let row = hub.shared.store.channel(id).await.unwrap().unwrap();
    let pos = Position {
        state: *row.snapshot.state(),
        locks: row.snapshot.locks.clone(),
    };
    let ctx = hub.shared.context(row.deposit_a, row.deposit_b);
    let next = apply(&pos, &change, by, &ctx).unwrap();
    Snapshot {
        cosigned: CoSigned {
            state: next.state,
            sig_a: next.state.sign(client),
            sig_b: next.state.sign(&hub.shared.key),
        },
        locks: next.locks,
    }
}

async fn commit(hub: &Hub, id: &Hash32, snap: Snapshot, writes: Vec<PaymentWrite>) {
    hub.shared
        .store
        .update_channel(id, |_| Ok::<_, ()>((snap.clone(), writes.clone(), ())))
        .await
        .unwrap()
        .unwrap();
}

/// The hub-signed forward, reserved in the payee's channel as the router reserves it.
async fn reserve_forward(hub: &Hub, s: &Stranded, payee: &Keypair, until_ms: u64) -> Snapshot {
    let add = Change::AddLock { lock: s.lock_out };
    let completed = next_state(hub, &s.b, payee, add, Party::B).await;
    let proposed = Snapshot {
        cosigned: CoSigned {
            sig_a: Signature::default(),
            ..completed.cosigned
        },
        locks: completed.locks.clone(),
    };
    assert!(hub
        .shared
        .store
        .reserve(&s.b, 0, &proposed, until_ms)
        .await
        .unwrap());
    completed
}

async fn payment(hub: &Hub, hashlock: &Hash32) -> PaymentRecord {
    hub.shared
        .store
        .payments_with(hashlock)
        .await
        .unwrap()
        .pop()
        .unwrap()
}

async fn wait_for_state(hub: &Hub, hashlock: &Hash32, state: PaymentState) -> PaymentRecord {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = payment(hub, hashlock).await;
        if p.state == state {
            return p;
        }
        assert!(Instant::now() < deadline, "payment stuck in {:?}", p.state);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The hub's row of `id` once it has no locks left.
async fn wait_unlocked(hub: &Hub, id: &Hash32) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = hub.shared.store.channel(id).await.unwrap().unwrap();
        if row.snapshot.locks.is_empty() {
            return row.snapshot;
        }
        assert!(Instant::now() < deadline, "lock never left channel {id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A hub (with fast recovery timings) holding one [`Stranded`] payment, and its two parties.
async fn stranded_hub() -> (tempfile::TempDir, Hub, Keypair, Keypair, Stranded) {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), fast_config()).await;
    let (payer, payee) = (Keypair::generate(), Keypair::generate());
    let s = stranded(&hub, &payer, &payee).await;
    (dir, hub, payer, payee, s)
}

fn fast_config() -> sluice_hub::HubConfig {
    let mut cfg = quick_config();
    // Stale after three reply timeouts: 2 s; swept every 0.5 s.
    cfg.limits.reply_timeout_ms = 500;
    cfg
}

#[tokio::test]
async fn a_payment_stranded_before_its_forward_is_undone() {
    let (_dir, hub, payer, payee, s) = stranded_hub().await;
    let wa = Wallet::connect(&hub, payer).await;
    let _wb = Wallet::connect(&hub, payee).await;

    let p = wait_for_state(&hub, &s.pay.hashlock, PaymentState::Failed).await;
    assert!(p.reason.unwrap().contains("interrupted"));
    let snap = wait_unlocked(&hub, &s.a).await;
    // The hub's release leaves a version free below it.
    assert_eq!(snap.state().version, 3, "lock added, then released");
    assert_eq!(snap.state().balances(100_000, 0).unwrap(), (100_000, 0));
    let failed = wa
        .recv_until(|m| {
            matches!(
                m,
                SessionMsg::Payment {
                    status: PaymentStatus::Failed,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(failed, SessionMsg::Payment { hashlock, .. } if hashlock == s.pay.hashlock));
    assert_eq!(wa.latest(&s.a), snap, "the payer holds the release");
    let b = hub.shared.store.channel(&s.b).await.unwrap().unwrap();
    assert_eq!(b.version(), 0, "the payee's channel was never touched");
}

#[tokio::test]
async fn a_forward_the_payee_holds_is_claimed_when_it_unlocks_with_nobody_waiting() {
    let (_dir, hub, payer, payee, s) = stranded_hub().await;
    // The payee co-signed the forward and the hub committed it; then the hub died.
    let add = Change::AddLock { lock: s.lock_out };
    let held = next_state(&hub, &s.b, &payee, add, Party::B).await;
    commit(&hub, &s.b, held, vec![]).await;
    let wa = Wallet::connect(&hub, payer).await;
    let wb = Wallet::connect(&hub, payee).await;

    let unlock = wb.proposal(&s.b, Change::Unlock { secret: s.secret }, 0);
    assert!(matches!(
        wb.propose(unlock).await,
        SessionMsg::Accept { .. }
    ));
    let done = wa
        .recv_until(|m| {
            matches!(
                m,
                SessionMsg::Payment {
                    status: PaymentStatus::Completed,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(done, SessionMsg::Payment { hashlock, .. } if hashlock == s.pay.hashlock));
    let p = wait_for_state(&hub, &s.pay.hashlock, PaymentState::Completed).await;
    assert_eq!(p.secret, Some(s.secret));
    let snap = wait_unlocked(&hub, &s.a).await;
    assert_eq!(
        snap.state().balances(100_000, 0).unwrap(),
        (100_000 - s.pay.amount_in, s.pay.amount_in),
        "the hub claimed the payer's lock"
    );
    let b = wait_unlocked(&hub, &s.b).await;
    assert_eq!(
        b.state().balances(0, 50_000).unwrap(),
        (AMOUNT, 50_000 - AMOUNT)
    );
}

#[tokio::test]
async fn a_reserved_forward_keeps_the_payers_lock_until_a_bump_above_it_is_co_signed() {
    let (_dir, hub, payer, payee, s) = stranded_hub().await;
    // The dead process had reserved the forward and was waiting for the payee's answer.
    reserve_forward(&hub, &s, &payee, now_ms() + 3_000).await;
    let _wa = Wallet::connect(&hub, payer).await;

    // Stale, but the payee may hold the lock: the payer's lock must stay.
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    assert_eq!(
        payment(&hub, &s.pay.hashlock).await.state,
        PaymentState::Pending
    );
    let a = hub.shared.store.channel(&s.a).await.unwrap().unwrap();
    assert_eq!(a.snapshot.locks.len(), 1);

    // The payee resyncs at the channel's current version. That proves nothing (it holds the
    // hub's signature on the forward whatever it shows): the hub buries the forward with a
    // `Bump` above it, which the payee co-signs, and only then is the payment undone.
    let wb = Wallet::connect(&hub, payee).await;
    wb.send(&SessionMsg::Sync {
        channel_id: s.b,
        snapshot: wb.latest(&s.b),
        signed: 0,
    });
    let p = wait_for_state(&hub, &s.pay.hashlock, PaymentState::Failed).await;
    assert!(p.reason.unwrap().contains("did not take the lock"));
    wait_unlocked(&hub, &s.a).await;
    let b = hub.shared.store.channel(&s.b).await.unwrap().unwrap();
    assert_eq!((b.version(), b.pending.is_none()), (3, true));
    assert!(b.snapshot.locks.is_empty());
}

#[tokio::test]
async fn a_reserved_forward_the_payee_completed_is_adopted_with_its_payment_record() {
    let (_dir, hub, payer, payee, s) = stranded_hub().await;
    let completed = reserve_forward(&hub, &s, &payee, now_ms() + 60_000).await;
    let wa = Wallet::connect(&hub, payer).await;
    let wb = Wallet::connect(&hub, payee.clone()).await;

    // The payee co-signed the forward before the hub died: its resync completes it.
    wb.send(&SessionMsg::Sync {
        channel_id: s.b,
        snapshot: completed.clone(),
        signed: 0,
    });
    wait_for_state(&hub, &s.pay.hashlock, PaymentState::Forwarded).await;
    let b = hub.shared.store.channel(&s.b).await.unwrap().unwrap();
    assert_eq!((b.snapshot, b.pending), (completed.clone(), None));

    // Its unlock then completes the payment, with no router task waiting for it.
    drop(wb);
    let wb = Wallet::connect(&hub, payee).await;
    let unlock = wb.proposal(&s.b, Change::Unlock { secret: s.secret }, 0);
    assert!(matches!(
        wb.propose(unlock).await,
        SessionMsg::Accept { .. }
    ));
    wa.recv_until(|m| {
        matches!(
            m,
            SessionMsg::Payment {
                status: PaymentStatus::Completed,
                ..
            }
        )
    })
    .await;
    wait_for_state(&hub, &s.pay.hashlock, PaymentState::Completed).await;
    wait_unlocked(&hub, &s.a).await;
}

/// A client's resync that crosses the hub's proposal on the wire (sent before the proposal
/// arrived, read by the hub after sending it) neither stalls the session nor speaks for that
/// proposal: the client's answer right behind it is taken and committed.
#[tokio::test]
async fn a_resync_crossing_the_hubs_proposal_neither_stalls_nor_undoes_it() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let (payer, payee) = (Keypair::generate(), Keypair::generate());
    let a = open_channel(&hub, &payer, 100_000, 0).await;
    let b = open_channel(&hub, &payee, 0, 50_000).await;
    let wa = Wallet::connect(&hub, payer).await;

    let mut ws = raw(&hub).await;
    let Some(SessionMsg::Challenge {
        chain_id, nonce, ..
    }) = next_msg(&mut ws).await
    else {
        panic!("no challenge")
    };
    let login = auth_msg(&payee, chain_id, &hub.shared.address(), &nonce);
    ws.send(Message::text(login)).await.unwrap();
    let mut synced = None;
    while synced.is_none() {
        if let Some(SessionMsg::Sync { snapshot, .. }) = next_msg(&mut ws).await {
            synced = Some(snapshot);
        }
    }
    let secret = Hash32(secp256k1::rand::random());
    let invoice = sluice_protocol::invoice::Invoice {
        chain_id,
        hub: hub.shared.address(),
        payee: payee.address(),
        amount: AMOUNT,
        hashlock: sha256(&secret.0),
        expires_at: u64::MAX,
        memo: String::new(),
    }
    .sign(&payee)
    .unwrap()
    .encode_string()
    .unwrap();
    let paying = tokio::spawn(async move {
        let status = wa.pay(&a, &invoice, AMOUNT).await;
        (wa, status)
    });
    let proposal = loop {
        match next_msg(&mut ws).await {
            Some(SessionMsg::Propose(p)) => break p,
            Some(_) => continue,
            None => panic!("session ended"),
        }
    };
    let sync = SessionMsg::Sync {
        channel_id: b,
        snapshot: synced.unwrap(),
        signed: 0,
    };
    let accept = SessionMsg::Accept {
        channel_id: b,
        version: proposal.state.version,
        sig: proposal.state.sign(&payee),
    };
    let sent = Instant::now();
    for m in [sync, accept] {
        ws.send(Message::text(sluice_protocol::wire::encode(&m)))
            .await
            .unwrap();
    }
    loop {
        let row = hub.shared.store.channel(&b).await.unwrap().unwrap();
        if row.version() == proposal.state.version {
            assert!(row.pending.is_none());
            break;
        }
        let limit = Duration::from_millis(hub.shared.cfg.limits.reply_timeout_ms / 2);
        assert!(
            sent.elapsed() < limit,
            "the answer waited behind the resync"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let p = payment(&hub, &sha256(&secret.0)).await;
    assert_eq!(p.state, PaymentState::Forwarded);
    // The payee unlocks; the payment completes.
    let unlock = Change::Unlock { secret };
    let row = hub.shared.store.channel(&b).await.unwrap().unwrap();
    let next = next_state(&hub, &b, &payee, unlock.clone(), Party::A).await;
    assert_eq!(next.state().version, row.version() + 1);
    let propose = SessionMsg::Propose(sluice_protocol::wire::hub::Proposal {
        channel_id: b,
        change: unlock,
        state: *next.state(),
        sig: next.cosigned.sig_a,
        invoice: None,
    });
    ws.send(Message::text(sluice_protocol::wire::encode(&propose)))
        .await
        .unwrap();
    let (_wa, status) = paying.await.unwrap();
    assert!(matches!(
        status,
        SessionMsg::Payment {
            status: PaymentStatus::Completed,
            ..
        }
    ));
}

/// Found by the kill campaign: the release of a failed payment's lock met the payer's channel
/// taken (here by a proposal another hub process reserved and holds for 4 s, longer than the
/// release waits), and was left for the payer's next login; a payer who stayed online kept its
/// funds locked for good.
#[tokio::test]
async fn a_failed_payments_lock_is_released_once_its_busy_channel_frees_while_the_payer_stays_online(
) {
    let (_dir, hub, payer, payee, s) = stranded_hub().await;
    reserve_hub_bump(&hub, &s.a, now_ms() + 4_000).await;
    let wa = Wallet::connect(&hub, payer).await;
    let _wb = Wallet::connect(&hub, payee).await;

    wait_for_state(&hub, &s.pay.hashlock, PaymentState::Failed).await;
    let snap = wait_unlocked(&hub, &s.a).await;
    assert_eq!(snap.state().balances(100_000, 0).unwrap(), (100_000, 0));
    let deadline = Instant::now() + Duration::from_secs(10);
    while wa.latest(&s.a) != snap {
        assert!(Instant::now() < deadline, "the payer never got the release");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
