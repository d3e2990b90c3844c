//! Conformance: the same checks against SQLite (a real file) and Postgres (a throwaway server).

use super::*;
use crate::fixtures::{fresh_nonce, random_nonce, TestChannel};
use crate::nonces;
use sluice_protocol::Keypair;
use sluice_test_support::TempPostgres;

const CHAIN: u64 = 7;

fn new(user: &Keypair, ch: &TestChannel, version: u64) -> NewAppointment {
    NewAppointment {
        user: user.address(),
        nonce: fresh_nonce(),
        channel_id: ch.id(),
        appointment: ch.appointment(version, version),
    }
}

/// Registers both parties of `ch` (quota 5).
async fn register_both(s: &Store, ch: &TestChannel) {
    for k in [&ch.a, &ch.b] {
        s.register(&k.address(), &fresh_nonce(), 5, 1)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn put(s: &Store, item: NewAppointment) -> Result<Accepted, Refusal> {
    s.put_appointments(&[item], 5).await.unwrap().remove(0)
}

async fn keeps_only_the_highest_version(s: &Store) {
    let ch = TestChannel::random(CHAIN);
    s.register(&ch.a.address(), &fresh_nonce(), 10, 1)
        .await
        .unwrap()
        .unwrap();
    assert!(put(s, new(&ch.a, &ch, 3)).await.is_ok());
    // F17: the version the tower holds already still gets a receipt (a lost reply retried).
    assert!(put(s, new(&ch.a, &ch, 3)).await.is_ok());
    assert_eq!(
        put(s, new(&ch.a, &ch, 2)).await,
        Err(Refusal::StaleVersion { stored: 3, got: 2 })
    );
    assert!(put(s, new(&ch.a, &ch, 9)).await.is_ok());
    let stored = s.appointment(&ch.id()).await.unwrap().unwrap();
    assert_eq!(stored.version(), 9);
    assert_eq!(stored.snapshot, ch.snapshot(9, 9));
    assert_eq!(
        (stored.a, stored.b, stored.salt),
        (ch.a.address(), ch.b.address(), ch.salt)
    );
    assert_eq!(s.appointment_count().await.unwrap(), 1);
    let listed = s.list(&ch.a.address()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].channel_id, listed[0].version), (ch.id(), 9));
}

async fn refuses_unregistered_replayed_and_over_quota(s: &Store) {
    let ch = TestChannel::random(CHAIN);
    assert_eq!(put(s, new(&ch.a, &ch, 1)).await, Err(Refusal::Unregistered));
    let nonce = fresh_nonce();
    assert_eq!(
        s.register(&ch.a.address(), &nonce, 1, 1).await.unwrap(),
        Ok(1)
    );
    assert_eq!(
        s.register(&ch.a.address(), &nonce, 1, 1).await.unwrap(),
        Err(Refusal::ReplayedNonce)
    );
    let first = new(&ch.a, &ch, 1);
    let mut replay = new(&ch.a, &ch, 2);
    replay.nonce = first.nonce;
    assert!(put(s, first).await.is_ok());
    assert_eq!(put(s, replay).await, Err(Refusal::ReplayedNonce));
    let other = TestChannel::new(CHAIN, ch.a.clone(), Keypair::generate(), random_nonce());
    assert_eq!(
        put(s, new(&ch.a, &other, 1)).await,
        Err(Refusal::QuotaExceeded { quota: 1 })
    );
    assert!(s.appointment(&other.id()).await.unwrap().is_none());
    // Updating a channel already watched does not count again.
    assert!(put(s, new(&ch.a, &ch, 2)).await.is_ok());
}

/// The count in the `users` row holds the quota exactly at its edge: within one batch, across
/// batches, for updates of watched channels, and after a delete frees a slot.
async fn quota_holds_at_the_boundary(s: &Store) {
    let user = Keypair::generate();
    let u = user.address();
    s.register(&u, &fresh_nonce(), 3, 1).await.unwrap().unwrap();
    let chans: Vec<_> = (0..5)
        .map(|_| TestChannel::new(CHAIN, user.clone(), Keypair::generate(), random_nonce()))
        .collect();
    let first: Vec<_> = chans[..2].iter().map(|c| new(&user, c, 1)).collect();
    assert!(s
        .put_appointments(&first, 5)
        .await
        .unwrap()
        .iter()
        .all(|r| r.is_ok()));
    assert_eq!(s.watched_count(&u).await.unwrap(), Some(2));
    // One batch: an update (free), the third channel (last slot), a fourth (over).
    let batch = [
        new(&user, &chans[0], 2),
        new(&user, &chans[2], 1),
        new(&user, &chans[3], 1),
    ];
    let out = s.put_appointments(&batch, 5).await.unwrap();
    assert!(out[0].is_ok() && out[1].is_ok(), "{out:?}");
    assert_eq!(out[2], Err(Refusal::QuotaExceeded { quota: 3 }));
    assert_eq!(s.watched_count(&u).await.unwrap(), Some(3));
    assert!(s.appointment(&chans[3].id()).await.unwrap().is_none());
    assert_eq!(
        put(s, new(&user, &chans[4], 1)).await,
        Err(Refusal::QuotaExceeded { quota: 3 })
    );
    assert!(
        put(s, new(&user, &chans[1], 7)).await.is_ok(),
        "updates never count"
    );
    assert_eq!(s.watched_count(&u).await.unwrap(), Some(3));
    // A refused delete (not watched) frees nothing; a real one frees one slot.
    assert_eq!(
        s.delete(&u, &fresh_nonce(), &chans[4].id()).await.unwrap(),
        Ok(false)
    );
    assert_eq!(s.watched_count(&u).await.unwrap(), Some(3));
    assert_eq!(
        s.delete(&u, &fresh_nonce(), &chans[2].id()).await.unwrap(),
        Ok(true)
    );
    assert_eq!(s.watched_count(&u).await.unwrap(), Some(2));
    assert!(put(s, new(&user, &chans[3], 1)).await.is_ok());
    assert_eq!(
        put(s, new(&user, &chans[4], 1)).await,
        Err(Refusal::QuotaExceeded { quota: 3 })
    );
    assert_eq!(s.watched_count(&u).await.unwrap(), Some(3));
    assert_eq!(s.list(&u).await.unwrap().len(), 3);
}

/// Spent nonces go once past the cutoff, recent ones stay and still refuse a replay.
async fn old_nonces_are_forgotten_recent_ones_kept(s: &Store) {
    let now = nonces::now_secs();
    let user = Keypair::generate().address();
    let (old, recent) = (nonces::stamped(now - 3_600), nonces::stamped(now - 10));
    assert_eq!(s.register(&user, &old, 5, 1).await.unwrap(), Ok(5));
    assert_eq!(s.spend_nonce(&user, &recent).await.unwrap(), Ok(()));
    let before = s.nonce_count().await.unwrap();
    assert_eq!(
        s.prune_nonces(nonces::prune_cutoff(now, 600))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.nonce_count().await.unwrap(), before - 1);
    assert_eq!(
        s.spend_nonce(&user, &recent).await.unwrap(),
        Err(Refusal::ReplayedNonce)
    );
    assert_eq!(
        s.prune_nonces(nonces::prune_cutoff(now, 600))
            .await
            .unwrap(),
        0
    );
}

async fn batch_items_see_each_other(s: &Store) {
    let ch = TestChannel::random(CHAIN);
    s.register(&ch.b.address(), &fresh_nonce(), 5, 1)
        .await
        .unwrap()
        .unwrap();
    let mut replay = new(&ch.b, &ch, 9);
    let batch = [new(&ch.b, &ch, 4), new(&ch.b, &ch, 4), new(&ch.b, &ch, 6)];
    replay.nonce = batch[2].nonce;
    let batch = [batch[0].clone(), batch[1].clone(), batch[2].clone(), replay];
    let out = s.put_appointments(&batch, 5).await.unwrap();
    assert!(out[0].is_ok());
    assert!(out[1].is_ok(), "the same version again joins the watch");
    assert!(out[2].is_ok());
    assert_eq!(out[3], Err(Refusal::ReplayedNonce));
    assert_eq!(s.watched_count(&ch.b.address()).await.unwrap(), Some(1));
    assert_eq!(s.appointment(&ch.id()).await.unwrap().unwrap().version(), 6);
}

/// F17: the other party of a channel sends the version the tower already holds (the hub
/// submitted first): it gets its own watch and receipt, the stored state stays, and when the
/// first party deletes its watch the channel is still watched for the second.
async fn an_equal_version_from_the_other_party_gets_a_watch(s: &Store) {
    let ch = TestChannel::random(CHAIN);
    register_both(s, &ch).await;
    assert!(put(s, new(&ch.a, &ch, 5)).await.is_ok());
    let first = s.appointment(&ch.id()).await.unwrap().unwrap();
    assert!(put(s, new(&ch.b, &ch, 5)).await.is_ok());
    assert_eq!(s.watched_count(&ch.b.address()).await.unwrap(), Some(1));
    assert_eq!(s.appointment(&ch.id()).await.unwrap().unwrap(), first);
    assert_eq!(
        put(s, new(&ch.b, &ch, 4)).await,
        Err(Refusal::StaleVersion { stored: 5, got: 4 })
    );
    let gone = s
        .delete(&ch.a.address(), &fresh_nonce(), &ch.id())
        .await
        .unwrap();
    assert_eq!(gone, Ok(true));
    assert!(
        s.appointment(&ch.id()).await.unwrap().is_some(),
        "still watched for b"
    );
}

async fn delete_removes_only_the_users_watch(s: &Store) {
    let ch = TestChannel::random(CHAIN);
    register_both(s, &ch).await;
    assert!(put(s, new(&ch.a, &ch, 1)).await.is_ok());
    assert!(put(s, new(&ch.b, &ch, 2)).await.is_ok());
    let n = fresh_nonce();
    assert_eq!(
        s.delete(&ch.a.address(), &n, &ch.id()).await.unwrap(),
        Ok(true)
    );
    assert_eq!(
        s.delete(&ch.a.address(), &n, &ch.id()).await.unwrap(),
        Err(Refusal::ReplayedNonce)
    );
    assert!(
        s.appointment(&ch.id()).await.unwrap().is_some(),
        "b still watches"
    );
    assert!(s.list(&ch.a.address()).await.unwrap().is_empty());
    let n = fresh_nonce();
    assert_eq!(
        s.delete(&ch.b.address(), &n, &ch.id()).await.unwrap(),
        Ok(true)
    );
    assert!(s.appointment(&ch.id()).await.unwrap().is_none());
    let n = fresh_nonce();
    assert_eq!(
        s.delete(&ch.b.address(), &n, &ch.id()).await.unwrap(),
        Ok(false)
    );
    let stranger = Keypair::generate().address();
    assert_eq!(
        s.delete(&stranger, &n, &ch.id()).await.unwrap(),
        Err(Refusal::Unregistered)
    );
}

async fn cursor_closings_and_responses_persist(s: &Store) {
    assert_eq!(s.cursor().await.unwrap(), None);
    s.set_cursor(41).await.unwrap();
    s.set_cursor(42).await.unwrap();
    assert_eq!(s.cursor().await.unwrap(), Some(42));

    let ch = TestChannel::random(CHAIN);
    let c = Closing {
        version: 2,
        settle_after: 50,
    };
    s.record_closing(&ch.id(), c).await.unwrap();
    s.record_closing(
        &ch.id(),
        Closing {
            version: 1,
            settle_after: 50,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.closing(&ch.id()).await.unwrap(),
        Some(c),
        "keeps the highest version"
    );
    s.register(&ch.a.address(), &fresh_nonce(), 5, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        put(s, new(&ch.a, &ch, 5)).await,
        Ok(Accepted { closing: Some(c) })
    );
    assert_eq!(s.prune_closings(49).await.unwrap(), 0);
    assert_eq!(s.prune_closings(50).await.unwrap(), 1);
    assert_eq!(s.closing(&ch.id()).await.unwrap(), None);

    let mut r = Response {
        channel_id: ch.id(),
        our_version: 5,
        onchain_version: 2,
        settle_after: 50,
        status: ResponseStatus::Pending,
        attempts: 1,
        last_tx: Some(Hash32([3; 32])),
        tx_nonce: Some(4),
        last_fee: 10,
        submitted_height: 44,
        detail: String::new(),
    };
    s.save_response(&r).await.unwrap();
    assert_eq!(s.pending_responses().await.unwrap(), vec![r.clone()]);
    r.status = ResponseStatus::Challenged;
    r.attempts = 2;
    s.save_response(&r).await.unwrap();
    assert_eq!(s.response(&ch.id()).await.unwrap(), Some(r));
    assert!(s.pending_responses().await.unwrap().is_empty());
}

async fn run_all(make: impl AsyncFn(&str) -> Store) {
    keeps_only_the_highest_version(&make("highest").await).await;
    refuses_unregistered_replayed_and_over_quota(&make("refusals").await).await;
    batch_items_see_each_other(&make("batch").await).await;
    quota_holds_at_the_boundary(&make("quota").await).await;
    old_nonces_are_forgotten_recent_ones_kept(&make("nonces").await).await;
    delete_removes_only_the_users_watch(&make("delete").await).await;
    an_equal_version_from_the_other_party_gets_a_watch(&make("equal").await).await;
    cursor_closings_and_responses_persist(&make("cursor").await).await;
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    run_all(async |name| {
        let url = format!("sqlite://{}", dir.join(format!("{name}.db")).display());
        Store::connect(&url, 4).await.unwrap()
    })
    .await;
}

#[tokio::test]
async fn postgres_store_conforms() {
    let pg = TempPostgres::start().unwrap();
    run_all(async |name| {
        let url = pg.create_database(name).unwrap();
        Store::connect(&url, 4).await.unwrap()
    })
    .await;
}

#[tokio::test]
async fn sqlite_store_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let ch = TestChannel::random(CHAIN);
    {
        let s = Store::connect(&url, 2).await.unwrap();
        s.register(&ch.a.address(), &fresh_nonce(), 5, 1)
            .await
            .unwrap()
            .unwrap();
        assert!(put(&s, new(&ch.a, &ch, 8)).await.is_ok());
        s.set_cursor(12).await.unwrap();
    }
    let s = Store::connect(&url, 2).await.unwrap();
    assert_eq!(s.appointment(&ch.id()).await.unwrap().unwrap().version(), 8);
    assert_eq!(s.cursor().await.unwrap(), Some(12));
}

#[tokio::test]
async fn unknown_store_url_is_refused() {
    assert!(matches!(
        Store::connect("mysql://x", 1).await,
        Err(StoreError::BadUrl(_))
    ));
}
