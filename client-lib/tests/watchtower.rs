//! The watchtower client against real `sluice-node`, `sluice-hub` and `sluice-watchtower`
//! processes: receipts are verified and kept for the newest version, and appointments queued
//! while the tower is down are delivered by the restarted wallet from its persisted queue.

mod support;

use sluice_client::Wallet;
use sluice_protocol::{Address, Hash32};
use std::time::Duration;
use support::net;

async fn version(w: &Wallet, id: &Hash32) -> u64 {
    let ch = w.store().require_channel(id).await.unwrap();
    ch.snapshot.state().version
}

/// Waits until `tower`'s receipt for `id` is for the wallet's newest version and the queue is
/// empty; checks the kept receipt is the tower's, for this channel, and verifies.
async fn receipted(w: &Wallet, tower: &Address, id: &Hash32) {
    let newest = version(w, id).await;
    net::wait_until("the newest receipt", Duration::from_secs(30), || async {
        let r = w.store().receipt(tower, id).await.unwrap();
        r.is_some_and(|r| r.version == newest) && w.store().queue_len().await.unwrap() == 0
    })
    .await;
    let r = w.store().receipt(tower, id).await.unwrap().unwrap();
    r.verify().expect("receipt signature verifies");
    assert_eq!(
        (&r.tower, &r.channel_id, r.chain_id),
        (tower, id, w.chain_id())
    );
    let listed = w.watchtowers().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].receipts,
        vec![r],
        "one receipt per channel: the newest"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn receipts_follow_the_newest_state_and_the_queue_survives_a_restart() {
    let mut n = net::start(2, true).await;
    let (url, key) = (
        n.net.tower.as_ref().unwrap().url(),
        n.net.tower_key.unwrap(),
    );
    let (a, ca, b, _cb) = net::pair(&n).await;
    a.add_watchtower(&url, &key).await.unwrap();
    net::pay(&a, &b, 1_000).await.unwrap();
    net::pay(&a, &b, 2_000).await.unwrap();
    receipted(&a, &key, &ca).await;

    // The tower goes down; new states queue up on disk.
    let tower = n.net.tower.as_mut().unwrap();
    tokio::task::block_in_place(|| tower.stop());
    net::pay(&a, &b, 3_000).await.unwrap();
    assert!(
        a.store().queue_len().await.unwrap() >= 1,
        "appointment queued"
    );
    let stale = a.store().receipt(&key, &ca).await.unwrap().unwrap().version;
    assert!(stale < version(&a, &ca).await);
    drop(a);

    // The tower and the wallet come back; the persisted queue is delivered.
    tokio::task::block_in_place(|| n.net.tower.as_mut().unwrap().restart()).unwrap();
    let a = n.wallet(0).await;
    a.start_watching();
    receipted(&a, &key, &ca).await;
}
