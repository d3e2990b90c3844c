//! The hub session over a real WebSocket: login, resync, bad input of every kind, limits.

mod common;

use common::*;
use futures::SinkExt;
use sluice_protocol::update::Change;
use sluice_protocol::wire::hub::{ErrorCode, SessionMsg};
use sluice_protocol::*;
use tokio_tungstenite::tungstenite::Message;

fn is_error(m: &SessionMsg, want: ErrorCode) -> bool {
    matches!(m, SessionMsg::Error { code, .. } if *code == want)
}

async fn pong(w: &Wallet, nonce: u64) {
    w.send(&SessionMsg::Ping { nonce });
    let m = w.recv_until(|m| matches!(m, SessionMsg::Pong { .. })).await;
    assert_eq!(m, SessionMsg::Pong { nonce }, "session must survive");
}

#[tokio::test]
async fn login_welcomes_with_channels_and_resyncs_the_latest_state() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let key = Keypair::generate();
    let id = open_channel(&hub, &key, 1_000, 0).await;
    let w = Wallet::connect(&hub, key).await;
    pong(&w, 7).await;
    assert_eq!(w.latest(&id), Snapshot::opening(CHAIN, id));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hub.addr")).unwrap(),
        hub.addr.to_string()
    );
}

#[tokio::test]
async fn requests_before_login_are_unauthenticated_and_bad_logins_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let mut ws = raw(&hub).await;
    let Some(SessionMsg::Challenge {
        chain_id,
        hub: h,
        nonce,
    }) = next_msg(&mut ws).await
    else {
        panic!()
    };
    ws.send(Message::text(wire::encode(&SessionMsg::Ping { nonce: 1 })))
        .await
        .unwrap();
    assert!(is_error(
        &next_msg(&mut ws).await.unwrap(),
        ErrorCode::Unauthenticated
    ));
    // Signed by another key than the address claims.
    let (k1, k2) = (Keypair::generate(), Keypair::generate());
    let forged = auth_msg(&k1, chain_id, &h, &nonce)
        .replace(&k1.address().to_string(), &k2.address().to_string());
    ws.send(Message::text(forged)).await.unwrap();
    assert!(is_error(
        &next_msg(&mut ws).await.unwrap(),
        ErrorCode::BadSignature
    ));
    // Signed for another chain.
    ws.send(Message::text(auth_msg(&k1, chain_id + 1, &h, &nonce)))
        .await
        .unwrap();
    assert!(is_error(
        &next_msg(&mut ws).await.unwrap(),
        ErrorCode::BadSignature
    ));
    // The session survived: a correct login still works.
    ws.send(Message::text(auth_msg(&k1, chain_id, &h, &nonce)))
        .await
        .unwrap();
    assert!(matches!(
        next_msg(&mut ws).await.unwrap(),
        SessionMsg::Welcome { .. }
    ));
}

#[tokio::test]
async fn malformed_oversized_unknown_and_wrong_version_frames_get_errors() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let w = Wallet::connect(&hub, Keypair::generate()).await;
    let cases = [
        ("{not json".to_string(), ErrorCode::Malformed),
        (
            r#"{"v":1,"msg":{"type":"steal_funds"}}"#.to_string(),
            ErrorCode::Malformed,
        ),
        (
            r#"{"v":2,"msg":{"type":"ping","nonce":1}}"#.to_string(),
            ErrorCode::UnsupportedVersion,
        ),
        (
            format!(
                r#"{{"v":1,"msg":{{"type":"ping","nonce":1}},"pad":"{}"}}"#,
                "x".repeat(300_000)
            ),
            ErrorCode::TooLarge,
        ),
        (
            wire::encode(&SessionMsg::Welcome {
                channels: vec![],
                terms: Default::default(),
                sig: Keypair::generate().sign(Tag::Auth, b"a client cannot welcome"),
            }),
            ErrorCode::Malformed,
        ),
    ];
    for (i, (frame, code)) in cases.into_iter().enumerate() {
        w.send_text(frame);
        let m = w.recv().await;
        assert!(is_error(&m, code), "case {i}: got {m:?}");
        pong(&w, i as u64).await;
    }
}

#[tokio::test]
async fn bad_proposals_are_rejected_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let (ka, kb) = (Keypair::generate(), Keypair::generate());
    let a = open_channel(&hub, &ka, 10_000, 0).await;
    let b = open_channel(&hub, &kb, 10_000, 5_000).await;
    let wa = Wallet::connect(&hub, ka.clone()).await;
    let _wb = Wallet::connect(&hub, kb).await;
    let (inv, _) = _wb.invoice(100, u64::MAX);
    let good = wa.pay_proposal(&a, &inv, 100, 0);
    let reject_code = |m: SessionMsg| match m {
        SessionMsg::Reject { code, .. } => code,
        other => panic!("expected reject, got {other:?}"),
    };

    let mut bad_sig = good.clone();
    bad_sig.sig = Keypair::generate()
        .address()
        .0
        .iter()
        .chain([0u8; 32].iter())
        .copied()
        .collect::<Vec<_>>()
        .try_into()
        .map(Signature)
        .unwrap();
    assert_eq!(
        reject_code(wa.propose(bad_sig).await),
        ErrorCode::BadSignature
    );

    // Each refused proposal that carries the client's valid signature burns its version, so
    // each of the next ones goes to a fresh version.
    let mut differs = good.clone();
    differs.state.version = 2;
    differs.state.sent_b += 1;
    differs.sig = differs.state.sign(&ka);
    assert_eq!(
        reject_code(wa.propose(differs).await),
        ErrorCode::InvalidUpdate
    );

    let mut other_channel = good.clone();
    other_channel.state.version = 3;
    other_channel.state.channel_id = b;
    other_channel.sig = other_channel.state.sign(&ka);
    assert_eq!(
        reject_code(wa.propose(other_channel).await),
        ErrorCode::InvalidUpdate
    );

    let mut other_chain = good.clone();
    other_chain.state.version = 4;
    other_chain.state.chain_id = CHAIN + 1;
    other_chain.sig = other_chain.state.sign(&ka);
    assert_eq!(
        reject_code(wa.propose(other_chain).await),
        ErrorCode::InvalidUpdate
    );

    let mut foreign = good.clone();
    foreign.channel_id = b; // someone else's channel
    assert_eq!(
        reject_code(wa.propose(foreign).await),
        ErrorCode::UnknownChannel
    );

    let mut no_invoice = good.clone();
    no_invoice.state.version = 6;
    no_invoice.sig = no_invoice.state.sign(&ka);
    no_invoice.invoice = None;
    assert_eq!(
        reject_code(wa.propose(no_invoice).await),
        ErrorCode::InvalidUpdate
    );

    let unlock_missing = wa.proposal(&a, Change::Finalize, 0);
    let mut replay = unlock_missing.clone();
    replay.state.chain_id = CHAIN + 1;
    replay.sig = replay.state.sign(&ka);
    assert_eq!(
        reject_code(wa.propose(replay).await),
        ErrorCode::InvalidUpdate
    );

    let mut skipped = good.clone();
    skipped.state.version = MAX_VERSION_SKIP + 1;
    skipped.sig = skipped.state.sign(&ka);
    assert_eq!(
        reject_code(wa.propose(skipped).await),
        ErrorCode::InvalidUpdate
    );

    let row = hub.shared.store.channel(&a).await.unwrap().unwrap();
    assert_eq!(row.version(), 0, "no rejected proposal changed the channel");
    assert!(hub
        .shared
        .store
        .payments(None, 10)
        .await
        .unwrap()
        .is_empty());
    pong(&wa, 1).await;
}

#[tokio::test]
async fn sync_with_a_forged_or_foreign_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let ka = Keypair::generate();
    let a = open_channel(&hub, &ka, 1_000, 0).await;
    let wa = Wallet::connect(&hub, ka.clone()).await;
    let mut state = ChannelState::opening(CHAIN, a);
    state.version = 9;
    state.sent_b = 500; // the hub never signed this
    let forged = Snapshot {
        cosigned: CoSigned {
            state,
            sig_a: state.sign(&ka),
            sig_b: state.sign(&ka),
        },
        locks: vec![],
    };
    wa.send(&SessionMsg::Sync {
        channel_id: a,
        snapshot: forged,
        signed: 0,
    });
    assert!(is_error(&wa.recv().await, ErrorCode::BadSignature));
    wa.send(&SessionMsg::Sync {
        channel_id: Hash32([3; 32]),
        snapshot: Snapshot::opening(CHAIN, Hash32([3; 32])),
        signed: 0,
    });
    assert!(is_error(&wa.recv().await, ErrorCode::UnknownChannel));
    assert_eq!(
        hub.shared
            .store
            .channel(&a)
            .await
            .unwrap()
            .unwrap()
            .version(),
        0
    );
}

#[tokio::test]
async fn a_newer_login_replaces_the_older_session() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let key = Keypair::generate();
    let mut first = raw(&hub).await;
    let Some(SessionMsg::Challenge {
        chain_id,
        hub: h,
        nonce,
    }) = next_msg(&mut first).await
    else {
        panic!()
    };
    first
        .send(Message::text(auth_msg(&key, chain_id, &h, &nonce)))
        .await
        .unwrap();
    assert!(matches!(
        next_msg(&mut first).await,
        Some(SessionMsg::Welcome { .. })
    ));
    let second = Wallet::connect(&hub, key).await;
    assert_eq!(next_msg(&mut first).await, None, "older socket is closed");
    pong(&second, 3).await;
    assert_eq!(hub.shared.sessions.len(), 1);
}

#[tokio::test]
async fn message_rate_and_connection_count_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = quick_config();
    cfg.limits.messages_per_sec = 5;
    cfg.limits.max_connections = 2;
    let hub = start_hub(dir.path(), cfg).await;
    let w = Wallet::connect(&hub, Keypair::generate()).await;
    for n in 0..20 {
        w.send(&SessionMsg::Ping { nonce: n });
    }
    w.recv_until(|m| is_error(m, ErrorCode::RateLimited)).await;
    let _second = raw(&hub).await;
    let mut third = raw(&hub).await;
    assert!(is_error(
        &next_msg(&mut third).await.unwrap(),
        ErrorCode::RateLimited
    ));
    assert_eq!(next_msg(&mut third).await, None);
}

#[tokio::test]
async fn a_silent_client_times_out_without_slowing_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = quick_config();
    cfg.limits.auth_timeout_ms = 300;
    cfg.limits.idle_timeout_ms = 600;
    let hub = start_hub(dir.path(), cfg).await;
    let mut silent = raw(&hub).await;
    assert!(matches!(
        next_msg(&mut silent).await,
        Some(SessionMsg::Challenge { .. })
    ));
    let w = Wallet::connect(&hub, Keypair::generate()).await;
    let t = std::time::Instant::now();
    for n in 0..5 {
        pong(&w, n).await;
    }
    assert!(
        t.elapsed().as_millis() < 300,
        "others are served while one is silent"
    );
    assert!(is_error(
        &next_msg(&mut silent).await.unwrap(),
        ErrorCode::Unauthenticated
    ));
    assert_eq!(
        next_msg(&mut silent).await,
        None,
        "silent client is disconnected"
    );
}

/// Found by the kill campaign: a login's `Sync` read the channel while the client's last
/// proposal of its previous session was still being committed, showed the state below it, and
/// the wallet failed a payment the hub then paid. The login's `Sync` now waits for the update
/// under way on the channel and carries what it committed.
#[tokio::test]
async fn a_login_sync_waits_for_the_update_under_way_and_carries_it() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), quick_config()).await;
    let key = Keypair::generate();
    let id = open_channel(&hub, &key, 10_000, 0).await;
    // An update of the channel under way: its lock held, its state committed meanwhile.
    let under_way = hub.shared.channel_lock(&id).lock_owned().await;
    let row = hub.shared.store.channel(&id).await.unwrap().unwrap();
    let ctx = hub.shared.context(row.deposit_a, row.deposit_b);
    let pos = sluice_protocol::update::Position {
        state: *row.snapshot.state(),
        locks: row.snapshot.locks.clone(),
    };
    let next = sluice_protocol::update::apply(&pos, &Change::Bump, Party::A, &ctx).unwrap();
    let newer = Snapshot {
        cosigned: CoSigned {
            state: next.state,
            sig_a: next.state.sign(&key),
            sig_b: next.state.sign(&hub.shared.key),
        },
        locks: next.locks,
    };

    let mut ws = raw(&hub).await;
    let Some(SessionMsg::Challenge {
        chain_id, nonce, ..
    }) = next_msg(&mut ws).await
    else {
        panic!("expected the hub's Challenge");
    };
    let auth = auth_msg(&key, chain_id, &hub.shared.address(), &nonce);
    ws.send(Message::text(auth)).await.unwrap();
    assert!(matches!(
        next_msg(&mut ws).await,
        Some(SessionMsg::Welcome { .. })
    ));
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), next_msg(&mut ws));
    assert!(
        early.await.is_err(),
        "no Sync while the update is under way"
    );
    hub.shared
        .store
        .update_channel(&id, |_| Ok::<_, ()>((newer.clone(), vec![], ())))
        .await
        .unwrap()
        .unwrap();
    drop(under_way);
    let Some(SessionMsg::Sync { snapshot, .. }) = next_msg(&mut ws).await else {
        panic!("expected the hub's Sync");
    };
    assert_eq!(snapshot, newer, "the Sync carries the committed update");
}
