//! Bad input of every kind: a typed error to the app, nothing signed, nothing stored.

mod support;

use sluice_client::WalletError;
use sluice_protocol::invoice::{Invoice, InvoiceError};
use sluice_protocol::wire::hub::{ErrorCode, Proposal, SessionMsg};
use sluice_protocol::{
    sha256, Change, Context, Direction, Hash32, Keypair, Lock, Policy, Signature,
};
use std::time::Duration;
use support::{Chain, Hub};

fn invoice(chain_id: u64, hub: &Hub, expires_at: u64, amount: u64) -> String {
    let payee = Keypair::from_secret(&[5; 32]).unwrap();
    Invoice {
        chain_id,
        hub: hub.key.address(),
        payee: payee.address(),
        amount,
        hashlock: sha256(&[1; 32]),
        expires_at,
        memo: "tea".into(),
    }
    .sign(&payee)
    .unwrap()
    .encode_string()
    .unwrap()
}

const LATER: u64 = 4_000_000_000;

async fn offline() -> (tempfile::TempDir, Chain, Hub, sluice_client::Wallet) {
    let (dir, chain, hub) = support::setup().await;
    let w = support::wallet(dir.path(), &chain, &hub).await;
    (dir, chain, hub, w)
}

#[tokio::test]
async fn malformed_invoice_is_refused() {
    let (_d, chain, hub, w) = offline().await;
    for bad in ["", "lnbc1xyz", "slinv1zz", "slinv1abcd", "sluice:slinv1qq"] {
        assert!(
            matches!(w.pay(bad).await, Err(WalletError::Invoice(_))),
            "{bad}"
        );
    }
    let mut s = invoice(chain.chain_id, &hub, LATER, 10);
    s.pop();
    assert!(matches!(w.pay(&s).await, Err(WalletError::Invoice(_))));
    assert!(w.payments().await.unwrap().is_empty());
}

#[tokio::test]
async fn invoice_for_another_chain_is_refused() {
    let (_d, chain, hub, w) = offline().await;
    let r = w.pay(&invoice(chain.chain_id + 1, &hub, LATER, 10)).await;
    assert!(matches!(
        r,
        Err(WalletError::Invoice(InvoiceError::WrongChain { .. }))
    ));
    assert!(w.payments().await.unwrap().is_empty());
}

#[tokio::test]
async fn invoice_for_another_hub_is_refused() {
    let (_d, chain, _hub, w) = offline().await;
    let other = Hub::start(chain.chain_id).await;
    let other = Hub {
        key: Keypair::from_secret(&[43; 32]).unwrap(),
        ..other
    };
    let r = w.pay(&invoice(chain.chain_id, &other, LATER, 10)).await;
    assert!(matches!(
        r,
        Err(WalletError::Invoice(InvoiceError::WrongHub))
    ));
    assert!(w.payments().await.unwrap().is_empty());
}

#[tokio::test]
async fn expired_invoice_is_refused() {
    let (_d, chain, hub, w) = offline().await;
    let r = w.pay(&invoice(chain.chain_id, &hub, 1, 10)).await;
    assert!(matches!(
        r,
        Err(WalletError::Invoice(InvoiceError::Expired(1)))
    ));
    assert!(w.payments().await.unwrap().is_empty());
}

#[tokio::test]
async fn amount_over_the_balance_is_refused_before_signing() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    let r = w.pay(&invoice(chain.chain_id, &hub, LATER, 5_000)).await;
    assert!(matches!(
        r,
        Err(WalletError::InsufficientBalance {
            available: 1_000,
            ..
        })
    ));
    assert!(
        conn.recv_within(Duration::from_millis(500)).await.is_none(),
        "nothing proposed"
    );
    assert!(w.payments().await.unwrap().is_empty());
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
async fn hub_with_another_key_is_refused() {
    let (dir, chain, hub) = support::setup().await;
    let mut cfg = sluice_client::WalletConfig::new(
        chain.addr.clone(),
        hub.addr.clone(),
        Keypair::from_secret(&[44; 32]).unwrap().address(),
    );
    cfg.pay_timeout_secs = 5;
    let w = sluice_client::Wallet::open(dir.path(), cfg).await.unwrap();
    let accept = tokio::spawn(async move { hub.accept(vec![]).await });
    let r = w.connect().await;
    assert!(
        matches!(r, Err(WalletError::HubKeyMismatch { .. })),
        "{r:?}"
    );
    accept.abort();
}

#[tokio::test]
async fn unreachable_hub_is_a_typed_error() {
    let (_d, _c, _hub, w) = offline().await;
    drop(_hub);
    let r = w.connect().await;
    assert!(
        matches!(r, Err(WalletError::HubUnreachable { .. })),
        "{r:?}"
    );
}

/// The hub's honest AddLock toward the wallet for `hashlock`, as the hub's machine proposes it
/// (in flight from now on, unsent); tests then tamper with it or send it as it is.
async fn hub_lock(
    chain: &Chain,
    conn: &mut support::Conn,
    id: Hash32,
    hashlock: Hash32,
    amount: u64,
) -> Proposal {
    let height = chain.height().await;
    let lock = Lock {
        direction: Direction::BtoA,
        amount,
        hashlock,
        expiry: height + 200,
    };
    let ctx = Context {
        deposit_a: 1_000,
        deposit_b: 1_000,
        height,
        policy: Policy::default(),
    };
    conn.prepare(&id, Change::AddLock { lock }, &ctx)
}

async fn receiving_setup() -> (
    tempfile::TempDir,
    Chain,
    Hub,
    sluice_client::Wallet,
    Hash32,
    support::Conn,
    Hash32,
) {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    chain.hub_deposit(&id, 1_000).await;
    let inv = w
        .create_invoice(100, "", Duration::from_secs(600))
        .await
        .unwrap();
    (dir, chain, hub, w, id, conn, inv.hashlock)
}

#[tokio::test]
async fn hub_state_that_differs_from_apply_is_rejected() {
    let (_d, chain, hub, w, id, mut conn, hashlock) = receiving_setup().await;
    let mut p = hub_lock(&chain, &mut conn, id, hashlock, 100).await;
    p.state.sent_b = 1; // not what AddLock gives
    p.sig = p.state.sign(&hub.key);
    conn.send(&SessionMsg::Propose(p)).await;
    assert_eq!(conn.take_reject(&id).await, ErrorCode::InvalidUpdate);
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
    assert!(w.payments().await.unwrap().is_empty());
}

#[tokio::test]
async fn hub_proposal_with_a_bad_signature_is_rejected() {
    let (_d, chain, _hub, w, id, mut conn, hashlock) = receiving_setup().await;
    let mut p = hub_lock(&chain, &mut conn, id, hashlock, 100).await;
    p.sig = Signature([7; 64]);
    conn.send(&SessionMsg::Propose(p)).await;
    assert_eq!(conn.take_reject(&id).await, ErrorCode::BadSignature);
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
    assert!(w.payments().await.unwrap().is_empty());
}

#[tokio::test]
async fn hub_lock_without_our_invoice_is_rejected() {
    let (_d, chain, _hub, w, id, mut conn, _hashlock) = receiving_setup().await;
    let p = hub_lock(&chain, &mut conn, id, Hash32([3; 32]), 100).await;
    conn.send(&SessionMsg::Propose(p)).await;
    assert_eq!(conn.take_reject(&id).await, ErrorCode::PaymentFailed);
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

/// A frame larger than any session message is refused by the WebSocket transport itself (the
/// wallet never buffers it), the session drops and nothing is stored.
#[tokio::test]
async fn oversized_frame_from_the_hub_is_refused_by_the_transport() {
    let (dir, chain, hub) = support::setup().await;
    let (w, id, mut conn) = support::connected(dir.path(), &chain, &hub, 1_000).await;
    let mut events = w.subscribe();
    let huge = format!(
        "{{\"v\":1,\"msg\":{{\"type\":\"ping\",\"nonce\":1,\"pad\":\"{}\"}}}}",
        "x".repeat(sluice_protocol::wire::hub::MAX_SESSION_FRAME)
    );
    conn.send_raw(huge).await;
    let reason = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(sluice_client::WalletEvent::Disconnected { reason }) = events.recv().await {
                return reason;
            }
        }
    })
    .await
    .expect("the wallet kept a session that sent an oversized frame");
    assert!(
        reason.contains("too long"),
        "refused by the transport: {reason}"
    );
    assert!(conn.closed_within(Duration::from_secs(5)).await);
    let ch = w.store().require_channel(&id).await.unwrap();
    assert_eq!(ch.snapshot.state().version, 0);
}
