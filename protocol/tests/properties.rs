//! Property tests of the protocol's invariants: conservation of funds, no negative balance, domain
//! separation of signatures, canonical round trips, and decoders that never panic.

use proptest::prelude::*;
use sluice_protocol::channel::{ChannelState, CoSigned, Direction, Lock, Party, Snapshot};
use sluice_protocol::encoding::Canonical;
use sluice_protocol::hash::{sha256, Hash32, Tag};
use sluice_protocol::invoice::SignedInvoice;
use sluice_protocol::keys::{Address, Keypair};
use sluice_protocol::settlement::payouts;
use sluice_protocol::tx::{SignedTx, Transaction, TxKind};
use sluice_protocol::update::{apply, Change, Context, Policy, Position};
use sluice_protocol::wire::{self, hub::SessionMsg};

#[derive(Debug, Clone)]
enum Op {
    Add {
        dir: Direction,
        amount: u64,
        n: u8,
        ttl: u64,
    },
    Unlock {
        n: u8,
    },
    Remove {
        n: u8,
        by_sender: bool,
    },
    Advance {
        blocks: u64,
    },
    Finalize,
    Withdraw {
        party: Party,
        amount: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let dir = prop_oneof![Just(Direction::AtoB), Just(Direction::BtoA)];
    prop_oneof![
        4 => (dir, 0u64..700, 0u8..12, 0u64..1_200).prop_map(|(dir, amount, n, ttl)| Op::Add { dir, amount, n, ttl }),
        3 => (0u8..12).prop_map(|n| Op::Unlock { n }),
        2 => (0u8..12, any::<bool>()).prop_map(|(n, by_sender)| Op::Remove { n, by_sender }),
        1 => (0u64..400).prop_map(|blocks| Op::Advance { blocks }),
        1 => Just(Op::Finalize),
        2 => (any::<bool>(), 0u64..900).prop_map(|(a, amount)| Op::Withdraw { party: if a { Party::A } else { Party::B }, amount }),
    ]
}

fn secret(n: u8) -> Hash32 {
    Hash32([n; 32])
}

/// Runs `ops`, skipping rejected ones, checking invariants after every accepted step.
fn run(deposit_a: u64, deposit_b: u64, ops: &[Op]) -> (Position, u64) {
    let pos = Position::opening(ChannelState::opening(1, Hash32([3; 32])));
    run_from(&pos, deposit_a, deposit_b, ops)
}

/// [`run`] from `start`.
fn run_from(start: &Position, deposit_a: u64, deposit_b: u64, ops: &[Op]) -> (Position, u64) {
    let mut pos = start.clone();
    let mut height = 100u64;
    let total = deposit_a + deposit_b;
    for op in ops {
        let ctx = Context {
            deposit_a,
            deposit_b,
            height,
            policy: Policy {
                max_locks: 8,
                ..Policy::default()
            },
        };
        let lock_of = |n: u8, p: &Position| {
            p.locks
                .iter()
                .find(|l| l.hashlock == sha256(&[n; 32]))
                .copied()
        };
        let step = match op {
            Op::Add {
                dir,
                amount,
                n,
                ttl,
            } => {
                let lock = Lock {
                    direction: *dir,
                    amount: *amount,
                    hashlock: sha256(&[*n; 32]),
                    expiry: height + ttl,
                };
                apply(&pos, &Change::AddLock { lock }, dir.sender(), &ctx)
            }
            Op::Unlock { n } => {
                let receiver = lock_of(*n, &pos).map_or(Party::A, |l| l.direction.receiver());
                apply(&pos, &Change::Unlock { secret: secret(*n) }, receiver, &ctx)
            }
            Op::Remove { n, by_sender } => {
                let l = lock_of(*n, &pos);
                let who = l.map_or(Party::B, |l| {
                    if *by_sender {
                        l.direction.sender()
                    } else {
                        l.direction.receiver()
                    }
                });
                apply(
                    &pos,
                    &Change::RemoveLock {
                        hashlock: sha256(&[*n; 32]),
                    },
                    who,
                    &ctx,
                )
            }
            Op::Advance { blocks } => {
                height += blocks;
                continue;
            }
            Op::Finalize => apply(&pos, &Change::Finalize, Party::A, &ctx),
            Op::Withdraw { party, amount } => apply(
                &pos,
                &Change::Withdraw {
                    party: *party,
                    amount: *amount,
                },
                *party,
                &ctx,
            ),
        };
        if let Ok(next) = step {
            assert_eq!(next.state.version, pos.state.version + 1);
            let (ba, bb) = next
                .state
                .balances(deposit_a, deposit_b)
                .expect("accepted state has valid balances");
            let s = &next.state;
            assert_eq!(
                ba + bb + s.locked_a + s.locked_b + s.withdrawn_a + s.withdrawn_b,
                total,
                "funds not conserved"
            );
            next.state
                .check_locks(&next.locks)
                .expect("accepted state commits to its locks");
            pos = next;
        }
    }
    (pos, height)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) + (b): any sequence of proposed changes keeps both balances non-negative and the
    /// total constant; settlement, with any registry, pays out exactly the deposits.
    #[test]
    fn updates_conserve_funds_and_payouts_sum_to_deposits(
        deposit_a in 0u64..2_000,
        deposit_b in 0u64..2_000,
        ops in proptest::collection::vec(op(), 0..60),
        registered in proptest::collection::vec((0u8..12, 0u64..2_000), 0..12),
    ) {
        let (pos, _) = run(deposit_a, deposit_b, &ops);
        let registry = |h: &Hash32| registered.iter().find(|(n, _)| sha256(&[*n; 32]) == *h).map(|(_, at)| *at);
        let (pa, pb) = payouts((deposit_a, deposit_b), (0, 0), &pos.state, &pos.locks, registry).unwrap();
        prop_assert_eq!(pa + pb, deposit_a + deposit_b);
    }

    /// (b) directly: a state whose derived balance would be negative is never produced.
    #[test]
    fn no_change_overdraws(deposit in 0u64..1_000, amount in 0u64..3_000) {
        let pos = Position::opening(ChannelState::opening(1, Hash32([3; 32])));
        let ctx = Context { deposit_a: deposit, deposit_b: 0, height: 100, policy: Policy::default() };
        let lock = Lock { direction: Direction::AtoB, amount, hashlock: sha256(&[1; 32]), expiry: 200 };
        let r = apply(&pos, &Change::AddLock { lock }, Party::A, &ctx);
        prop_assert_eq!(r.is_ok(), amount > 0 && amount <= deposit);
    }

    /// (c) a state signature verifies only for its own tag, chain and channel.
    #[test]
    fn signatures_do_not_cross_domains(seed in any::<u8>(), chain in 0u64..1_000, other_chain in 0u64..1_000, chan in any::<[u8; 32]>(), other_chan in any::<[u8; 32]>()) {
        let key = Keypair::from_secret(&sha256(&[seed]).0).unwrap();
        let mut state = ChannelState::opening(chain, Hash32(chan));
        state.version = 1;
        let sig = state.sign(&key);
        prop_assert!(key.address().verify_hash(&state.signing_hash(), &sig).is_ok());
        prop_assert!(key.address().verify(Tag::Tx, &state.to_bytes(), &sig).is_err());
        prop_assert!(key.address().verify(Tag::Receipt, &state.to_bytes(), &sig).is_err());
        if other_chain != chain {
            let moved = ChannelState { chain_id: other_chain, ..state };
            prop_assert!(key.address().verify_hash(&moved.signing_hash(), &sig).is_err());
        }
        if other_chan != chan {
            let moved = ChannelState { channel_id: Hash32(other_chan), ..state };
            prop_assert!(key.address().verify_hash(&moved.signing_hash(), &sig).is_err());
        }
    }

    /// (d) canonical encodings round-trip.
    #[test]
    fn transactions_round_trip(nonce in any::<u64>(), fee in 0u64..=i64::MAX as u64, amount in 0u64..=i64::MAX as u64, to in any::<[u8; 32]>(), salt in any::<[u8; 32]>(), kind in 0u8..4) {
        let key = Keypair::from_secret(&[7; 32]).unwrap();
        let kind = match kind {
            0 => TxKind::Transfer { to: Address(to), amount },
            1 => TxKind::OpenChannel { counterparty: Address(to), deposit: amount, challenge_period: nonce, salt: Hash32(salt) },
            2 => TxKind::RegisterSecret { secret: Hash32(salt) },
            _ => TxKind::Close {
                cosigned: CoSigned::opening(nonce, Hash32(salt)),
                locks: vec![Lock { direction: Direction::BtoA, amount, hashlock: Hash32(to), expiry: nonce }],
            },
        };
        let stx = Transaction { chain_id: 1, from: key.address(), nonce, fee, kind }.sign(&key);
        prop_assert_eq!(SignedTx::from_bytes(&stx.to_bytes()).unwrap(), stx.clone());
        let json = serde_json::to_string(&stx).unwrap();
        prop_assert_eq!(serde_json::from_str::<SignedTx>(&json).unwrap(), stx);
    }

    #[test]
    fn states_and_snapshots_round_trip(v in any::<u64>(), sa in 0u64..=i64::MAX as u64, lb in 0u64..=i64::MAX as u64, fin in any::<bool>(), root in any::<[u8; 32]>()) {
        let state = ChannelState { chain_id: v, channel_id: Hash32(root), version: v, sent_a: sa, sent_b: lb, locked_a: sa, locked_b: lb, locks_root: Hash32(root), is_final: fin, withdrawn_a: lb, withdrawn_b: sa };
        prop_assert_eq!(ChannelState::from_bytes(&state.to_bytes()).unwrap(), state);
        let snap = Snapshot { cosigned: CoSigned { state, sig_a: Default::default(), sig_b: Default::default() }, locks: vec![] };
        prop_assert_eq!(Snapshot::from_bytes(&snap.to_bytes()).unwrap(), snap);
    }

    /// (e) decoders never panic on arbitrary input; they return a value or a typed error.
    #[test]
    fn binary_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = SignedTx::from_bytes(&bytes);
        let _ = Snapshot::from_bytes(&bytes);
        let _ = ChannelState::from_bytes(&bytes);
        let _ = Change::from_bytes(&bytes);
    }

    #[test]
    fn text_decoders_never_panic(s in ".{0,300}") {
        let _ = SignedInvoice::parse(&s);
        let _ = SignedInvoice::parse(&format!("slinv1{s}"));
        let _ = SignedInvoice::parse(&format!("sluice:slinv1{s}"));
        let _ = sluice_protocol::Address::parse_text(&s);
        let _ = sluice_protocol::Address::parse_text(&format!("sl1{s}"));
        let _ = wire::decode::<SessionMsg>(s.as_bytes(), 1 << 16);
        let _ = serde_json::from_str::<SignedTx>(&s);
    }

    #[test]
    fn json_shaped_garbage_never_panics(t in "[a-z_]{0,12}", v in any::<i64>(), h in "[0-9a-f]{0,70}") {
        let frame = format!(r#"{{"v":1,"msg":{{"type":"{t}","channel_id":"{h}","version":{v},"nonce":{v},"address":"{h}","sig":"{h}"}}}}"#);
        let _ = wire::decode::<SessionMsg>(frame.as_bytes(), 1 << 16);
    }
}

#[test]
fn truncations_of_a_valid_transaction_all_fail_cleanly() {
    let key = Keypair::from_secret(&[7; 32]).unwrap();
    let stx = Transaction {
        chain_id: 1,
        from: key.address(),
        nonce: 0,
        fee: 1,
        kind: TxKind::Settle {
            channel_id: Hash32([1; 32]),
        },
    }
    .sign(&key);
    let bytes = stx.to_bytes();
    for cut in 0..bytes.len() {
        assert!(SignedTx::from_bytes(&bytes[..cut]).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(SignedTx::from_bytes(&longer).is_err());
}

/// Signs `pos` with both keys, as the channel's parties would have.
fn cosign(pos: &Position, ka: &Keypair, kb: &Keypair) -> Snapshot {
    let s = pos.state;
    Snapshot {
        cosigned: CoSigned {
            state: s,
            sig_a: s.sign(ka),
            sig_b: s.sign(kb),
        },
        locks: pos.locks.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Withdrawals on chain: whichever states get withdrawn with and whichever older state a
    /// cheater closes with, each side receives in total (withdrawals paid plus settlement)
    /// exactly what the latest state gives it, and nothing is paid twice.
    #[test]
    fn withdrawals_are_paid_once_and_never_undone(
        deposit_a in 0u64..2_000,
        deposit_b in 0u64..2_000,
        ops in proptest::collection::vec(op(), 0..40),
        submit in proptest::collection::vec(any::<bool>(), 40),
        stale in any::<prop::sample::Index>(),
        answered in any::<bool>(),
    ) {
        use sluice_protocol::onchain::{ChannelLimits, ChannelRecord};
        let (ka, kb) = (Keypair::from_secret(&[1; 32]).unwrap(), Keypair::from_secret(&[2; 32]).unwrap());
        let (a, b) = (ka.address(), kb.address());
        let mut rec = ChannelRecord::open(1, a, b, deposit_a, 5, &Hash32([0; 32]), 0, &ChannelLimits::default()).unwrap();
        rec.deposit(&b, deposit_b).unwrap();
        let mut pos = Position::opening(ChannelState::opening(1, rec.id));
        let mut history = vec![cosign(&pos, &ka, &kb)];
        let mut received = (0u64, 0u64);
        for (i, op) in ops.iter().enumerate() {
            let (next, _) = run_from(&pos, deposit_a, deposit_b, std::slice::from_ref(op));
            if next.state.version == pos.state.version {
                continue;
            }
            pos = next;
            let snap = cosign(&pos, &ka, &kb);
            history.push(snap.clone());
            if submit[i] {
                if let Ok((to_a, to_b)) = rec.withdraw(1, &a, &snap.cosigned) {
                    received.0 += to_a;
                    received.1 += to_b;
                }
            }
        }
        let old = stale.get(&history).clone();
        let latest = history.last().unwrap().clone();
        let closed_with_old = rec.close(1, &b, old, 10).is_ok();
        prop_assert!(closed_with_old, "every co-signed state may start a close");
        if !closed_with_old {
            rec.close(1, &b, latest.clone(), 10).unwrap();
        } else if answered {
            // The honest side answers an older close with its latest state.
            let _ = rec.challenge(1, latest.clone(), 11);
        }
        if !answered && closed_with_old {
            // Nobody answered the older close: it pays what it says net of the withdrawals paid
            // since, never more than the deposits, and it settles.
            let (pa, pb) = rec.settle(10_000, |_| None).unwrap();
            prop_assert_eq!(received.0 + received.1 + pa + pb, deposit_a + deposit_b);
            return Ok(());
        }
        let (pa, pb) = rec.settle(10_000, |_| None).unwrap();
        let (ba, bb) = latest.state().balances(deposit_a, deposit_b).unwrap();
        let refund = |dir: Direction| latest.locks.iter().filter(|l| l.direction == dir).map(|l| l.amount).sum::<u64>();
        prop_assert_eq!(received.0 + pa, ba + latest.state().withdrawn_a + refund(Direction::AtoB));
        prop_assert_eq!(received.1 + pb, bb + latest.state().withdrawn_b + refund(Direction::BtoA));
    }
}
