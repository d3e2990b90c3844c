//! The same store conformance suite against SQLite (a real file) and a real Postgres server.

use sluice_hub::store::*;
use sluice_protocol::{sha256, Address, ChannelState, CoSigned, Hash32, Signature, Snapshot};
use sluice_test_support::TempPostgres;

fn snap(id: Hash32, version: u64) -> Snapshot {
    let mut state = ChannelState::opening(7, id);
    state.version = version;
    state.sent_a = version;
    Snapshot {
        cosigned: CoSigned {
            state,
            sig_a: Signature([1; 64]),
            sig_b: Signature([2; 64]),
        },
        locks: vec![],
    }
}

fn channel(n: u8) -> ChannelRow {
    let id = Hash32([n; 32]);
    ChannelRow {
        id,
        client: Address([n + 100; 32]),
        deposit_a: 1_000,
        deposit_b: 0,
        challenge_period: 10,
        phase: ChannelPhase::Open,
        snapshot: Snapshot::opening(7, id),
        pending: None,
        floor: 0,
        updated_at: 0,
    }
}

fn payment(n: u8) -> PaymentRecord {
    PaymentRecord {
        hashlock: sha256(&[n; 32]),
        payer: Address([1; 32]),
        payee: Address([2; 32]),
        channel_in: Hash32([1; 32]),
        channel_out: None,
        amount: 100,
        amount_in: 102,
        expiry_in: 500,
        expiry_out: None,
        state: PaymentState::Pending,
        reason: None,
        secret: None,
        created_at: 0,
        updated_at: 0,
    }
}

async fn suite(store: Store) {
    channels_insert_read_and_replay(&store).await;
    update_commits_with_cas_and_refusal_writes_nothing(&store).await;
    adopt_only_newer(&store).await;
    payments_record_every_transition(&store).await;
    cursor_moves_forward_with_effects(&store).await;
    one_live_collateral_job_per_channel(&store).await;
    concurrent_updates_lose_nothing(&store).await;
    reservation_blocks_version_until_resolved(&store).await;
    floor_rises_and_bumps_claim_above_it(&store).await;
    scans_page_through_every_channel_of_a_phase(&store).await;
    two_payees_may_share_a_hashlock(&store).await;
}

/// F12: no scan window. More channels than three pages, some closing: the open ones are each
/// seen exactly once, in id order, and no closing one is.
async fn scans_page_through_every_channel_of_a_phase(store: &Store) {
    let n = 2 * PAGE + 345;
    for i in 0..n {
        let mut id = [0xF0; 32];
        id[28..].copy_from_slice(&i.to_be_bytes());
        let phase = match i % 7 {
            0 => ChannelPhase::Closing,
            _ => ChannelPhase::Open,
        };
        let row = ChannelRow {
            id: Hash32(id),
            phase,
            snapshot: Snapshot::opening(7, Hash32(id)),
            ..channel(3)
        };
        store.insert_channel(&row).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut pages = store.pages(ChannelPhase::Open);
    while let Some(page) = pages.next().await.unwrap() {
        assert!(page.iter().all(|r| r.phase == ChannelPhase::Open));
        seen.extend(page.into_iter().map(|r| r.id));
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "in id order, none twice"
    );
    let ours = seen.iter().filter(|id| id.0[0] == 0xF0).count() as u32;
    assert_eq!(
        ours,
        n - n.div_ceil(7),
        "every open channel, the last page too"
    );
}

/// F15: a payment is its payee's; another payee's invoice with the same hashlock is another
/// payment, looked up by the channel its lock sits on.
async fn two_payees_may_share_a_hashlock(store: &Store) {
    let real = PaymentRecord {
        channel_in: Hash32([0xA1; 32]),
        ..payment(40)
    };
    let squat = PaymentRecord {
        payee: Address([0x55; 32]),
        channel_in: Hash32([0xA2; 32]),
        ..real.clone()
    };
    for p in [&squat, &real] {
        store
            .record_payment(&PaymentWrite::Insert(p.clone()))
            .await
            .unwrap();
    }
    let again = store
        .record_payment(&PaymentWrite::Insert(real.clone()))
        .await;
    assert!(
        again.is_err_and(|e| e.is_duplicate()),
        "one payment per payee and hashlock"
    );
    store
        .record_payment(&PaymentWrite::to(squat.key(), PaymentState::Failed))
        .await
        .unwrap();
    let got = store.payment(&real.key()).await.unwrap().unwrap();
    assert_eq!(
        got.state,
        PaymentState::Pending,
        "the squat's failure is its own"
    );
    let by_lock = store
        .payment_in(&real.channel_in, &real.hashlock)
        .await
        .unwrap();
    assert_eq!(by_lock.map(|p| p.payee), Some(real.payee));
    assert_eq!(store.payments_with(&real.hashlock).await.unwrap().len(), 2);
    assert_eq!(store.payment_history(&real.key()).await.unwrap().len(), 1);
}

async fn channels_insert_read_and_replay(store: &Store) {
    let c = channel(1);
    assert!(store.insert_channel(&c).await.unwrap());
    assert!(
        !store.insert_channel(&c).await.unwrap(),
        "replayed insert must be a no-op"
    );
    assert_eq!(store.channel(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(store.channels_of(&c.client).await.unwrap(), vec![c.clone()]);
    assert_eq!(store.channel(&Hash32([99; 32])).await.unwrap(), None);
}

async fn update_commits_with_cas_and_refusal_writes_nothing(store: &Store) {
    let id = Hash32([1; 32]);
    let p = payment(1);
    let r: Result<u64, ()> = store
        .update_channel(&id, |row| {
            Ok((
                snap(id, row.version() + 1),
                vec![PaymentWrite::Insert(p.clone())],
                42,
            ))
        })
        .await
        .unwrap();
    assert_eq!(r, Ok(42));
    assert_eq!(store.channel(&id).await.unwrap().unwrap().version(), 1);
    assert_eq!(
        store.payment(&p.key()).await.unwrap().unwrap().state,
        PaymentState::Pending
    );
    let refused: Result<(), &str> = store.update_channel(&id, |_| Err("no")).await.unwrap();
    assert_eq!(refused, Err("no"));
    assert_eq!(store.channel(&id).await.unwrap().unwrap().version(), 1);
    let unknown = store
        .update_channel(&Hash32([77; 32]), |_| {
            Ok::<_, ()>((snap(id, 1), vec![], ()))
        })
        .await;
    assert!(matches!(unknown, Err(StoreError::UnknownChannel(_))));
}

async fn adopt_only_newer(store: &Store) {
    let id = Hash32([1; 32]);
    assert!(!store
        .adopt_snapshot(&id, &snap(id, 1), vec![])
        .await
        .unwrap());
    assert!(store
        .adopt_snapshot(&id, &snap(id, 5), vec![])
        .await
        .unwrap());
    assert_eq!(
        store.channel(&id).await.unwrap().unwrap().snapshot,
        snap(id, 5)
    );
}

async fn payments_record_every_transition(store: &Store) {
    let p = payment(2);
    store
        .record_payment(&PaymentWrite::Insert(p.clone()))
        .await
        .unwrap();
    store
        .record_payment(&PaymentWrite::Transition {
            key: p.key(),
            state: PaymentState::Forwarded,
            reason: None,
            channel_out: Some((Hash32([2; 32]), 480)),
            secret: None,
        })
        .await
        .unwrap();
    store
        .record_payment(&PaymentWrite::Transition {
            key: p.key(),
            state: PaymentState::Failed,
            reason: Some("payee silent".into()),
            channel_out: None,
            secret: None,
        })
        .await
        .unwrap();
    let got = store.payment(&p.key()).await.unwrap().unwrap();
    assert_eq!(got.state, PaymentState::Failed);
    assert_eq!(got.channel_out, Some(Hash32([2; 32])));
    assert_eq!(got.expiry_out, Some(480));
    assert_eq!(got.reason.as_deref(), Some("payee silent"));
    let states: Vec<_> = store
        .payment_history(&p.key())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        states,
        vec![
            PaymentState::Pending,
            PaymentState::Forwarded,
            PaymentState::Failed
        ]
    );
    let dup = store.record_payment(&PaymentWrite::Insert(p.clone())).await;
    assert!(dup.is_err(), "a hashlock is routed once");
    assert_eq!(store.open_payments().await.unwrap().len(), 1);
}

async fn cursor_moves_forward_with_effects(store: &Store) {
    assert_eq!(store.cursor().await.unwrap(), 0);
    let c = channel(3);
    let writes = vec![
        ChainWrite::Opened(Box::new(c.clone())),
        ChainWrite::Deposit {
            id: c.id,
            party: c.client,
            total: 1_000,
        },
        ChainWrite::Deposit {
            id: c.id,
            party: Address([0xBB; 32]),
            total: 500,
        },
    ];
    store.apply_chain(12, &writes).await.unwrap();
    assert_eq!(store.cursor().await.unwrap(), 12);
    assert_eq!(store.channel(&c.id).await.unwrap().unwrap().deposit_b, 500);
    // A replay of an older height changes neither the cursor nor a newer channel state.
    store
        .apply_chain(5, &[ChainWrite::Opened(Box::new(c.clone()))])
        .await
        .unwrap();
    assert_eq!(store.cursor().await.unwrap(), 12);
    assert_eq!(store.channel(&c.id).await.unwrap().unwrap().deposit_b, 500);
    store
        .apply_chain(
            13,
            &[ChainWrite::Phase {
                id: c.id,
                phase: ChannelPhase::Closing,
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        store.channel(&c.id).await.unwrap().unwrap().phase,
        ChannelPhase::Closing
    );
}

async fn one_live_collateral_job_per_channel(store: &Store) {
    let id = Hash32([3; 32]);
    assert!(store.queue_collateral(&id, 500).await.unwrap());
    assert!(
        !store.queue_collateral(&id, 900).await.unwrap(),
        "one live job per channel"
    );
    store
        .update_job(&id, JobStatus::Submitted, Some(Hash32([5; 32])), None)
        .await
        .unwrap();
    let job = store.job(&id).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.amount, job.attempts),
        (JobStatus::Submitted, 500, 1)
    );
    assert_eq!(store.live_jobs().await.unwrap().len(), 1);
    store
        .update_job(&id, JobStatus::Done, None, None)
        .await
        .unwrap();
    assert!(store.live_jobs().await.unwrap().is_empty());
    assert!(
        store.queue_collateral(&id, 900).await.unwrap(),
        "a finished job can be followed"
    );
}

async fn concurrent_updates_lose_nothing(store: &Store) {
    let c = channel(4);
    store.insert_channel(&c).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, id) = (store.clone(), c.id);
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let r: Result<(), ()> = store
                    .update_channel(&id, |row| Ok((snap(id, row.version() + 1), vec![], ())))
                    .await
                    .unwrap();
                r.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let row = store.channel(&c.id).await.unwrap().unwrap();
    assert_eq!(row.version(), 80);
    assert_eq!(
        row.snapshot.state().sent_a,
        80,
        "every increment landed once"
    );
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hub.db").display());
    suite(Store::connect(&url, 4).await.unwrap()).await;
    a_kept_row_another_process_moved_is_never_committed_over(&url).await;
    // Reopening runs the migrations again harmlessly and keeps the data.
    let store = Store::connect(&url, 4).await.unwrap();
    assert_eq!(store.cursor().await.unwrap(), 13);
}

#[tokio::test]
async fn postgres_store_conforms() {
    let pg = TempPostgres::start().unwrap();
    let url = pg.create_database("hub").unwrap();
    suite(Store::connect(&url, 8).await.unwrap()).await;
    a_kept_row_another_process_moved_is_never_committed_over(&url).await;
    let store = Store::connect(&url, 2).await.unwrap();
    assert_eq!(store.cursor().await.unwrap(), 13);
}

#[tokio::test]
async fn unsupported_url_is_a_typed_error() {
    let r = Store::connect("mysql://x", 1).await;
    assert!(matches!(r, Err(StoreError::BadUrl(_))));
}

/// A reserved version is taken once, raises the floor, survives as the row's `pending`, blocks a
/// second taker, and ends by commit or clear; a version once reserved is never reserved again.
async fn reservation_blocks_version_until_resolved(store: &Store) {
    let c = channel(40);
    store.insert_channel(&c).await.unwrap();
    let mut proposed = snap(c.id, 1);
    proposed.cosigned.sig_a = Signature::default();
    let far = now_ms() + 60_000;
    assert!(store.reserve(&c.id, 0, &proposed, far).await.unwrap());
    assert!(
        !store.reserve(&c.id, 0, &snap(c.id, 1), far).await.unwrap(),
        "a second reservation of the same version must fail"
    );
    assert!(!store.reserve(&c.id, 5, &snap(c.id, 6), far).await.unwrap());
    let row = store.channel(&c.id).await.unwrap().unwrap();
    assert_eq!(row.pending.as_ref().map(|p| p.version()), Some(1));
    assert_eq!(row.floor, 1);
    assert!(row.pending.as_ref().unwrap().is_live(now_ms()));
    // A live reservation blocks adoption of any other state at that version.
    let mut other = snap(c.id, 1);
    other.cosigned.state.sent_a = 99;
    assert!(!store.adopt_snapshot(&c.id, &other, vec![]).await.unwrap());
    // Given up and then completed: the client's co-signed copy is adopted and clears it.
    store.expire_reservation(&c.id, 1).await.unwrap();
    let done = snap(c.id, 1);
    assert!(store.adopt_snapshot(&c.id, &done, vec![]).await.unwrap());
    let row = store.channel(&c.id).await.unwrap().unwrap();
    assert_eq!((row.version(), row.pending, row.floor), (1, None, 1));
    // Cleared by its version only; the version stays burnt.
    let p2 = snap(c.id, 2);
    assert!(store.reserve(&c.id, 1, &p2, far).await.unwrap());
    assert!(!store.clear_reservation(&c.id, 3).await.unwrap());
    assert!(store.clear_reservation(&c.id, 2).await.unwrap());
    assert!(
        !store.reserve(&c.id, 1, &p2, far).await.unwrap(),
        "a burnt version is never reserved again"
    );
    assert!(store.reserve(&c.id, 1, &snap(c.id, 3), far).await.unwrap());
}

/// The floor only rises; a bump is claimed only over a reservation given up on, above the floor.
async fn floor_rises_and_bumps_claim_above_it(store: &Store) {
    let c = channel(41);
    store.insert_channel(&c).await.unwrap();
    store.raise_floor(&c.id, 4).await.unwrap();
    store.raise_floor(&c.id, 2).await.unwrap();
    assert_eq!(store.channel(&c.id).await.unwrap().unwrap().floor, 4);
    assert!(!store
        .reserve(&c.id, 0, &snap(c.id, 4), now_ms() + 60_000)
        .await
        .unwrap());
    let far = now_ms() + 60_000;
    assert!(store.reserve(&c.id, 0, &snap(c.id, 5), far).await.unwrap());
    assert!(
        !store.claim_bump(&c.id, 0, 5, 6, now_ms()).await.unwrap(),
        "no bump over a live reservation"
    );
    store.expire_reservation(&c.id, 5).await.unwrap();
    assert!(store.claim_bump(&c.id, 0, 5, 6, now_ms()).await.unwrap());
    assert!(!store.claim_bump(&c.id, 0, 5, 6, now_ms()).await.unwrap());
    let row = store.channel(&c.id).await.unwrap().unwrap();
    assert_eq!((row.floor, row.pending.map(|p| p.version())), (6, Some(5)));
}

/// Two processes on one database: the row one keeps in memory goes stale when the other moves
/// the channel, and every decision taken on it is caught by the database and decided again.
async fn a_kept_row_another_process_moved_is_never_committed_over(url: &str) {
    let (here, there) = (
        Store::connect(url, 2).await.unwrap(),
        Store::connect(url, 2).await.unwrap(),
    );
    let c = channel(60);
    assert!(here.insert_channel(&c).await.unwrap());
    let (first, kept) = here.channel_for_update(&c.id).await.unwrap();
    assert_eq!((first.as_ref(), kept), (Some(&c), Kept::No));
    let (again, kept) = here.channel_for_update(&c.id).await.unwrap();
    assert_eq!((again.as_ref(), kept), (Some(&c), Kept::Yes));

    let move_on = |store: Store| async move {
        let moved: Result<(), ()> = store
            .update_channel(&c.id, |row| {
                Ok((snap(row.id, row.version() + 1), vec![], ()))
            })
            .await
            .unwrap();
        assert_eq!(moved, Ok(()));
    };
    move_on(there.clone()).await;
    let (stale, kept) = here.channel_for_update(&c.id).await.unwrap();
    let stale = stale.unwrap();
    assert_eq!(
        (stale.version(), kept),
        (0, Kept::Yes),
        "a hint, not the truth"
    );

    // A reservation built on the stale row is refused and the row dropped.
    assert!(!here
        .reserve(&c.id, 0, &snap(c.id, 1), now_ms() + 60_000)
        .await
        .unwrap());
    let (_, kept) = here.channel_for_update(&c.id).await.unwrap();
    assert_eq!(kept, Kept::No);

    // A commit decided on a stale row is decided again on the row as it is.
    here.channel_for_update(&c.id).await.unwrap();
    move_on(there.clone()).await;
    let (stale, _) = here.channel_for_update(&c.id).await.unwrap();
    let stale = stale.unwrap();
    assert_eq!(stale.version(), 1);
    let mut seen = vec![];
    let done: Result<(), ()> = here
        .update_channel_from(&stale, |row| {
            seen.push(row.version());
            Ok((snap(row.id, row.version() + 1), vec![], ()))
        })
        .await
        .unwrap();
    assert_eq!(done, Ok(()));
    assert_eq!(
        seen.last(),
        Some(&2),
        "the last decision is on the row as it is"
    );
    let now = there.channel(&c.id).await.unwrap().unwrap();
    assert_eq!(now.version(), 3);
    let (kept_row, kept) = here.channel_for_update(&c.id).await.unwrap();
    let kept_row = kept_row.unwrap();
    assert_eq!(kept, Kept::Yes);
    let decided_on = |r: &ChannelRow| (r.snapshot.clone(), r.pending.clone(), r.floor, r.phase);
    assert_eq!(decided_on(&kept_row), decided_on(&now), "kept as committed");
}
