//! Payment flows against a scripted hub on a real WebSocket: the wallet pays and receives,
//! refuses a forged acceptance, and resumes from its store after a restart.

mod support;

use sluice_client::store::PaymentStatus;
use sluice_client::{WalletError, WalletEvent};
use sluice_protocol::invoice::Invoice;
use sluice_protocol::wire::hub::{Proposal, SessionMsg};
use sluice_protocol::{
    apply, sha256, Change, CoSigned, Context, Hash32, Keypair, Party, Policy, Position, Signature,
    Snapshot,
};
use std::time::Duration;
use support::{Chain, Conn, Hub};

/// The context `apply` needs now: the channel's real deposits and the chain's height.
async fn ctx(chain: &Chain, dep_b: u64) -> Context {
    Context {
        deposit_a: 1_000,
        deposit_b: dep_b,
        height: chain.height().await,
        policy: Policy::default(),
    }
}

fn opening(chain: &Chain, id: Hash32) -> Position {
    Position::opening(sluice_protocol::ChannelState::opening(chain.chain_id, id))
}

fn payee_invoice(hub: &Hub, secret: Hash32, amount: u64) -> String {
    let payee = Keypair::from_secret(&[5; 32]).unwrap();
    Invoice {
        chain_id: hub.chain_id,
        hub: hub.key.address(),
        payee: payee.address(),
        amount,
        hashlock: sha256(&secret.0),
        expires_at: 4_000_000_000,
        memo: String::new(),
    }
    .sign(&payee)
    .unwrap()
    .encode_string()
}

/// Reads the wallet's proposal, checks it with the protocol, and returns it with the position.
async fn take_proposal(
    chain: &Chain,
    conn: &mut Conn,
    before: &Position,
    dep_b: u64,
) -> (Proposal, Position) {
    let SessionMsg::Propose(p) = conn.recv().await else {
        panic!("expected a proposal");
    };
    let next = apply(before, &p.change, Party::A, &ctx(chain, dep_b).await).unwrap();
    assert_eq!(next.state, p.state);
    (p, next)
}

#[tokio::test]
async fn payment_completes_and_returns_the_secret() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    let secret = Hash32([1; 32]);
    let inv = payee_invoice(&hub, secret, 100);
    let pay = tokio::spawn(async move {
        let r = w.pay(&inv).await;
        (w, r)
    });
    let start = opening(&chain, id);
    let (p, v1) = take_proposal(&chain, &mut conn, &start, 0).await;
    assert!(p.invoice.is_some());
    let hub_sig = v1.state.sign(&hub.key);
    conn.send(&SessionMsg::Accept {
        channel_id: id,
        version: 1,
        sig: hub_sig,
    })
    .await;
    let change = Change::Unlock { secret };
    let v2 = apply(&v1, &change, Party::B, &ctx(&chain, 0).await).unwrap();
    let unlock = Proposal {
        channel_id: id,
        change,
        state: v2.state,
        sig: v2.state.sign(&hub.key),
        invoice: None,
    };
    conn.send(&SessionMsg::Propose(unlock)).await;
    let SessionMsg::Accept {
        version: 2, sig, ..
    } = conn.recv().await
    else {
        panic!("wallet did not accept the unlock");
    };
    let (w, r) = pay.await.unwrap();
    assert_eq!(r.unwrap(), secret);
    let ch = w.store().require_channel(&id).await.unwrap();
    assert_eq!(ch.snapshot.state().version, 2);
    assert_eq!(ch.snapshot.cosigned.sig_a, sig);
    let pays = w.payments().await.unwrap();
    assert_eq!(pays[0].status, PaymentStatus::Completed);
    assert_eq!(pays[0].secret, Some(secret));
    let info = &w.channels().await.unwrap()[0];
    assert_eq!(info.balance, 1_000 - 100 - pays[0].fee);
}

#[tokio::test]
async fn forged_acceptance_fails_the_payment_and_stores_nothing() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    let inv = payee_invoice(&hub, Hash32([2; 32]), 100);
    let pay = tokio::spawn(async move {
        let r = w.pay(&inv).await;
        (w, r)
    });
    let start = opening(&chain, id);
    let _ = take_proposal(&chain, &mut conn, &start, 0).await;
    let forged = Signature([9; 64]);
    conn.send(&SessionMsg::Accept {
        channel_id: id,
        version: 1,
        sig: forged,
    })
    .await;
    let (w, r) = pay.await.unwrap();
    assert!(matches!(r, Err(WalletError::HubMisbehaved(_))), "{r:?}");
    assert_eq!(
        w.store()
            .require_channel(&id)
            .await
            .unwrap()
            .snapshot
            .state()
            .version,
        0
    );
}

#[tokio::test]
async fn incoming_payment_is_taken_with_our_secret() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    chain.hub_deposit(&id, 1_000).await;
    let mut events = w.subscribe();
    let inv = w
        .create_invoice(300, "rent", Duration::from_secs(600))
        .await
        .unwrap();
    let lock = sluice_protocol::Lock {
        direction: sluice_protocol::Direction::BtoA,
        amount: 300,
        hashlock: inv.hashlock,
        expiry: chain.height().await + 200,
    };
    let change = Change::AddLock { lock };
    let start = opening(&chain, id);
    let v1 = apply(&start, &change, Party::B, &ctx(&chain, 1_000).await).unwrap();
    let sig = v1.state.sign(&hub.key);
    conn.send(&SessionMsg::Propose(Proposal {
        channel_id: id,
        change,
        state: v1.state,
        sig,
        invoice: None,
    }))
    .await;
    assert!(matches!(
        conn.recv().await,
        SessionMsg::Accept { version: 1, .. }
    ));
    let (p, v2) = take_proposal(&chain, &mut conn, &v1, 1_000).await;
    assert!(matches!(p.change, Change::Unlock { .. }));
    let sig = v2.state.sign(&hub.key);
    conn.send(&SessionMsg::Accept {
        channel_id: id,
        version: 2,
        sig,
    })
    .await;
    let ev = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(e @ WalletEvent::PaymentReceived { .. }) = events.recv().await {
                return e;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        ev,
        WalletEvent::PaymentReceived {
            hashlock: inv.hashlock,
            amount: 300
        }
    );
    assert!(
        w.store()
            .invoice(&inv.hashlock)
            .await
            .unwrap()
            .unwrap()
            .paid
    );
    assert_eq!(w.channels().await.unwrap()[0].balance, 1_300);
}

#[tokio::test]
async fn restart_adopts_the_hubs_newer_cosigned_state() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    // Two payments proposed; the hub stores the first and "crashes" before answering.
    let inv1 = payee_invoice(&hub, Hash32([3; 32]), 100);
    let w = std::sync::Arc::new(w);
    let w1 = w.clone();
    let first = tokio::spawn(async move { w1.pay(&inv1).await });
    let start = opening(&chain, id);
    let (p, v1) = take_proposal(&chain, &mut conn, &start, 0).await;
    drop(conn);
    assert!(first.await.unwrap().is_err());
    drop(w);
    // Restart: the hub's Sync carries version 1 co-signed (the wallet's own signature).
    let w = support::wallet(dir.path(), &chain, &hub).await;
    let (conn, connected) = tokio::join!(hub.accept(vec![id]), w.connect());
    connected.unwrap();
    let mut conn = conn;
    let SessionMsg::Sync { snapshot, .. } = conn.recv().await else {
        panic!()
    };
    assert_eq!(snapshot.state().version, 0);
    let cosigned = CoSigned {
        state: v1.state,
        sig_a: p.sig,
        sig_b: v1.state.sign(&hub.key),
    };
    let snap = Snapshot {
        cosigned,
        locks: v1.locks.clone(),
    };
    conn.send(&SessionMsg::Sync {
        channel_id: id,
        snapshot: snap,
        signed: 0,
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ch = w.store().require_channel(&id).await.unwrap();
    assert_eq!(
        ch.snapshot.state().version,
        1,
        "newer co-signed state adopted"
    );
    let pays = w.payments().await.unwrap();
    assert_eq!(
        pays[0].status,
        PaymentStatus::Pending,
        "its lock is live: still in flight"
    );
}
