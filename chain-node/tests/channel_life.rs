//! A channel's whole life on the real node: open, deposit, cooperative close; a stale close beaten
//! by a challenge; settlement refused before the window and before lock expiry; locks paid to the
//! receiver when the secret was registered in time and refunded otherwise.

mod common;

use common::*;
use serde_json::json;
use sluice_protocol::channel::{channel_id, ChannelState, CoSigned, Direction, Lock};
use sluice_protocol::onchain::{ChannelRecord, ChannelStatus};
use sluice_protocol::rpc::{Event, SecretInfo, TxInfo};
use sluice_protocol::update::{apply, Change, Context, Policy, Position};
use sluice_protocol::{sha256, Hash32, Keypair, Party, TxKind};
use std::collections::HashMap;

const PERIOD: u64 = 4;

struct Wallets {
    a: Keypair,
    b: Keypair,
    other: Keypair,
    filler: Keypair,
    nonces: HashMap<sluice_protocol::Address, u64>,
}

impl Wallets {
    fn new() -> Self {
        Wallets {
            a: key(1),
            b: key(2),
            other: key(3),
            filler: key(4),
            nonces: HashMap::new(),
        }
    }
    fn next(&mut self, k: &Keypair) -> u64 {
        let n = self.nonces.entry(k.address()).or_insert(0);
        *n += 1;
        *n - 1
    }
    async fn run(&mut self, node: &Node, who: &Keypair, kind: TxKind) -> TxInfo {
        let nonce = self.next(who);
        node.exec(&signed(who, nonce, kind)).await
    }
    /// Produces blocks (with filler transfers) until the chain is at least at `h`.
    async fn advance_to(&mut self, node: &Node, h: u64) {
        while node.height().await < h {
            let f = self.filler.clone();
            let to = self.other.address();
            self.run(node, &f, TxKind::Transfer { to, amount: 1 }).await;
        }
    }
}

fn ctx(rec: &ChannelRecord, height: u64) -> Context {
    Context {
        deposit_a: rec.deposit_a,
        deposit_b: rec.deposit_b,
        height,
        policy: Policy {
            max_locks: 16,
            min_expiry_delta: 1,
            max_expiry_delta: 1_000,
        },
    }
}

fn cosign(w: &Wallets, p: &Position) -> CoSigned {
    CoSigned {
        state: p.state,
        sig_a: p.state.sign(&w.a),
        sig_b: p.state.sign(&w.b),
    }
}

fn lock(amount: u64, secret: u8, expiry: u64) -> Lock {
    Lock {
        direction: Direction::AtoB,
        amount,
        hashlock: sha256(&[secret; 32]),
        expiry,
    }
}

/// a pays b `amount` through a lock that b unlocks (two versions).
fn pay(p: &Position, c: &Context, amount: u64, secret: u8) -> Position {
    let l = lock(amount, secret, c.height + 50);
    let p = apply(p, &Change::AddLock { lock: l }, Party::A, c).expect("add lock");
    apply(
        &p,
        &Change::Unlock {
            secret: Hash32([secret; 32]),
        },
        Party::B,
        c,
    )
    .expect("unlock")
}

async fn open(node: &Node, w: &mut Wallets, salt: u8) -> ChannelRecord {
    let (a, b) = (w.a.clone(), w.b.clone());
    let salt = Hash32([salt; 32]);
    let info = w
        .run(
            node,
            &a,
            TxKind::OpenChannel {
                counterparty: b.address(),
                deposit: 1000,
                challenge_period: PERIOD,
                salt,
            },
        )
        .await;
    assert!(info.receipt.success, "{info:?}");
    let id = channel_id(CHAIN, &a.address(), &b.address(), &salt);
    let info = w
        .run(
            node,
            &b,
            TxKind::Deposit {
                channel_id: id,
                amount: 500,
            },
        )
        .await;
    assert!(info.receipt.success, "{info:?}");
    let rec: Option<ChannelRecord> = node.ok("channel", json!({"channel_id": id})).await;
    let rec = rec.expect("channel stored");
    assert_eq!(
        (rec.deposit_a, rec.deposit_b, rec.status.clone()),
        (1000, 500, ChannelStatus::Open)
    );
    rec
}

async fn channel(node: &Node, id: &Hash32) -> ChannelRecord {
    let rec: Option<ChannelRecord> = node.ok("channel", json!({"channel_id": id})).await;
    rec.expect("channel")
}

fn failed_with(info: &TxInfo, needle: &str) {
    assert!(!info.receipt.success, "expected failure: {info:?}");
    let e = info.receipt.error.clone().unwrap_or_default();
    assert!(e.contains(needle), "{e:?} should mention {needle:?}");
}

#[tokio::test]
async fn open_deposit_and_cooperative_close() {
    let node = Node::start(Opts {
        init_args: vec!["--min-challenge-period".into(), "2".into()],
        ..Opts::default()
    });
    let mut w = Wallets::new();
    let rec = open(&node, &mut w, 1).await;
    let h = node.height().await;
    let c = ctx(&rec, h);
    let v0 = Position::opening(ChannelState::opening(CHAIN, rec.id));
    let v2 = pay(&v0, &c, 300, 1);
    let fin = apply(&v2, &Change::Finalize, Party::A, &c).expect("finalize");
    let (a_before, b_before) = (
        node.account(&w.a.address()).await,
        node.account(&w.b.address()).await,
    );
    // Not final: refused with a receipt, fee and nonce consumed.
    let other = w.other.clone();
    let info = w
        .run(
            &node,
            &other,
            TxKind::CooperativeClose {
                cosigned: cosign(&w, &v2),
            },
        )
        .await;
    failed_with(&info, "final");
    // Anyone may submit the final co-signed state; it pays out at once.
    let info = w
        .run(
            &node,
            &other,
            TxKind::CooperativeClose {
                cosigned: cosign(&w, &fin),
            },
        )
        .await;
    assert!(info.receipt.success, "{info:?}");
    let rec = channel(&node, &rec.id).await;
    assert_eq!(
        rec.status,
        ChannelStatus::Settled {
            payout_a: 700,
            payout_b: 800
        }
    );
    assert_eq!(
        node.account(&w.a.address()).await.balance,
        a_before.balance + 700
    );
    assert_eq!(
        node.account(&w.b.address()).await.balance,
        b_before.balance + 800
    );
    let evs: Vec<Event> = node
        .ok(
            "events",
            json!({"from_height": 0, "to_height": info.height, "filter": {"channel_id": rec.id}}),
        )
        .await;
    let names: Vec<&str> = evs.iter().map(|e| e.event.name()).collect();
    assert_eq!(names, ["ChannelOpened", "Deposited", "ChannelSettled"]);
    assert!(evs.iter().all(
        |e| e.participants.contains(&w.a.address()) && e.participants.contains(&w.b.address())
    ));
    // A settled channel takes no more deposits.
    let b = w.b.clone();
    failed_with(
        &w.run(
            &node,
            &b,
            TxKind::Deposit {
                channel_id: rec.id,
                amount: 1,
            },
        )
        .await,
        "not open",
    );
}

#[tokio::test]
async fn stale_close_is_beaten_by_a_challenge_and_settles_after_the_window() {
    let node = Node::start(Opts {
        init_args: vec!["--min-challenge-period".into(), "2".into()],
        ..Opts::default()
    });
    let mut w = Wallets::new();
    let rec = open(&node, &mut w, 2).await;
    let c = ctx(&rec, node.height().await);
    let v0 = Position::opening(ChannelState::opening(CHAIN, rec.id));
    let v2 = pay(&v0, &c, 100, 1);
    let v4 = pay(&v2, &c, 200, 2);
    let (a, b, other) = (w.a.clone(), w.b.clone(), w.other.clone());
    // Only a participant may close.
    let info = w
        .run(
            &node,
            &other,
            TxKind::Close {
                cosigned: cosign(&w, &v2),
                locks: vec![],
            },
        )
        .await;
    failed_with(&info, "not a participant");
    // a closes with the stale v2.
    let info = w
        .run(
            &node,
            &a,
            TxKind::Close {
                cosigned: cosign(&w, &v2),
                locks: vec![],
            },
        )
        .await;
    assert!(info.receipt.success, "{info:?}");
    let settle_after = info.height + PERIOD;
    // A challenge that is not newer fails, and still pays its fee.
    let before = node.account(&other.address()).await;
    let info = w
        .run(
            &node,
            &other,
            TxKind::Challenge {
                cosigned: cosign(&w, &v2),
                locks: vec![],
            },
        )
        .await;
    failed_with(&info, "not above the stored version");
    let after = node.account(&other.address()).await;
    assert_eq!(
        (after.nonce, after.balance),
        (before.nonce + 1, before.balance - 1)
    );
    // Anyone (a watchtower) challenges with v4.
    let info = w
        .run(
            &node,
            &other,
            TxKind::Challenge {
                cosigned: cosign(&w, &v4),
                locks: vec![],
            },
        )
        .await;
    assert!(info.receipt.success, "{info:?}");
    // Too early to settle.
    let info = w
        .run(&node, &b, TxKind::Settle { channel_id: rec.id })
        .await;
    assert!(info.height < settle_after);
    failed_with(&info, "cannot settle before height");
    w.advance_to(&node, settle_after).await;
    let (a0, b0) = (
        node.account(&a.address()).await.balance,
        node.account(&b.address()).await.balance,
    );
    let info = w
        .run(&node, &other, TxKind::Settle { channel_id: rec.id })
        .await;
    assert!(info.receipt.success, "{info:?}");
    assert_eq!(
        channel(&node, &rec.id).await.status,
        ChannelStatus::Settled {
            payout_a: 700,
            payout_b: 800
        }
    );
    assert_eq!(node.account(&a.address()).await.balance, a0 + 700);
    assert_eq!(node.account(&b.address()).await.balance, b0 + 800);
    let evs: Vec<Event> =
        node.ok("events", json!({"from_height": 0, "to_height": info.height, "filter": {"channel_id": rec.id, "kinds": ["ChannelClosing", "ChannelChallenged"]}})).await;
    let versions: Vec<String> = evs
        .iter()
        .map(|e| format!("{}:{:?}", e.event.name(), e.event))
        .collect();
    assert_eq!(evs.len(), 2, "{versions:?}");
    // Watchers of b see the challenge by a third party too.
    let by_b: Vec<Event> =
        node.ok("events", json!({"from_height": 0, "to_height": info.height, "filter": {"participant": b.address(), "kinds": ["ChannelChallenged"]}})).await;
    assert_eq!(by_b.len(), 1);
}

#[tokio::test]
async fn locks_pay_the_receiver_only_if_the_secret_was_registered_in_time() {
    let node = Node::start(Opts {
        init_args: vec!["--min-challenge-period".into(), "2".into()],
        ..Opts::default()
    });
    let mut w = Wallets::new();
    let rec = open(&node, &mut w, 3).await;
    let h = node.height().await;
    let c = ctx(&rec, h);
    let expiry = h + 12;
    let v0 = Position::opening(ChannelState::opening(CHAIN, rec.id));
    let v1 = apply(
        &v0,
        &Change::AddLock {
            lock: lock(100, 7, expiry),
        },
        Party::A,
        &c,
    )
    .expect("lock 1");
    let v2 = apply(
        &v1,
        &Change::AddLock {
            lock: lock(50, 8, expiry),
        },
        Party::A,
        &c,
    )
    .expect("lock 2");
    let (a, b) = (w.a.clone(), w.b.clone());
    // Locks that do not match the state are refused.
    let info = w
        .run(
            &node,
            &a,
            TxKind::Close {
                cosigned: cosign(&w, &v2),
                locks: v1.locks.clone(),
            },
        )
        .await;
    failed_with(&info, "locks");
    let info = w
        .run(
            &node,
            &a,
            TxKind::Close {
                cosigned: cosign(&w, &v2),
                locks: v2.locks.clone(),
            },
        )
        .await;
    assert!(info.receipt.success, "{info:?}");
    let settle_after = info.height + PERIOD;
    assert!(settle_after < expiry);
    // b registers the secret of lock 1 in time.
    let info = w
        .run(
            &node,
            &b,
            TxKind::RegisterSecret {
                secret: Hash32([7; 32]),
            },
        )
        .await;
    assert!(info.receipt.success);
    assert!(info.height < expiry);
    let known: Option<SecretInfo> = node
        .ok("secret", json!({"hashlock": sha256(&[7; 32])}))
        .await;
    assert_eq!(known.expect("registered").height, info.height);
    let twice = w
        .run(
            &node,
            &b,
            TxKind::RegisterSecret {
                secret: Hash32([7; 32]),
            },
        )
        .await;
    failed_with(&twice, "already registered");
    // After the window but before the locks expire: refused.
    w.advance_to(&node, settle_after).await;
    let info = w
        .run(&node, &b, TxKind::Settle { channel_id: rec.id })
        .await;
    assert!(info.height >= settle_after && info.height < expiry);
    failed_with(&info, "every lock expired");
    // Lock 2's secret only shows up at expiry: too late, it refunds a.
    w.advance_to(&node, expiry).await;
    let late = w
        .run(
            &node,
            &b,
            TxKind::RegisterSecret {
                secret: Hash32([8; 32]),
            },
        )
        .await;
    assert!(late.receipt.success && late.height >= expiry);
    let info = w
        .run(&node, &b, TxKind::Settle { channel_id: rec.id })
        .await;
    assert!(info.receipt.success, "{info:?}");
    // a: 1000 − 150 locked + 50 refunded; b: 500 + 100 claimed.
    assert_eq!(
        channel(&node, &rec.id).await.status,
        ChannelStatus::Settled {
            payout_a: 900,
            payout_b: 600
        }
    );
}
