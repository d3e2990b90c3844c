//! The one channel every run checks: its keys, deposits, heights, locks and the changes each side
//! may propose. All fixed, so that states stay small and every signature is the same on every
//! path (signing is deterministic), which the checker needs to replay a path it found.

use sluice_protocol::onchain::{ChannelLimits, ChannelRecord};
use sluice_protocol::{
    channel_id, sha256, Amount, ChainId, Change, Context, Direction, Hash32, Height, Keypair, Lock,
    Party, Policy, Snapshot,
};
use std::sync::OnceLock;

pub const CHAIN: ChainId = 7;
pub const DEPOSIT_A: Amount = 10;
pub const DEPOSIT_B: Amount = 10;
/// The chain height while the channel is used, and when it is closed.
pub const NOW: Height = 100;
/// The chain's smallest challenge period: a close at [`NOW`] may be challenged until `NOW + 2`.
pub const CHALLENGE_PERIOD: Height = 2;
/// Every lock's expiry, inside the default policy's window (`NOW + 10 ..= NOW + 1000`).
pub const EXPIRY: Height = 120;
/// The one later height the chain moves to: past the challenge window and at every lock's
/// expiry, so a closing channel can settle there and a secret registered there comes too late.
pub const LATER: Height = EXPIRY;

/// The channel's keys and identity, made once: key derivation is slow in a debug build.
pub struct Fixture {
    pub key_a: Keypair,
    pub key_b: Keypair,
    pub channel_id: Hash32,
    /// The payee of the payment model, party A of its channel with the hub (`key_b`).
    pub key_c: Keypair,
    pub payee_channel_id: Hash32,
}

/// Which channel: [`MAIN`] is the channel model's, and the payer's channel of the payment
/// model (payer A, hub B); [`PAYEE`] is the payment model's payee channel (payee A, hub B).
pub type Ch = u8;
pub const MAIN: Ch = 0;
pub const PAYEE: Ch = 1;

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key_a = Keypair::from_secret(&[0xa1; 32]).expect("a fixed valid secret key");
        let key_b = Keypair::from_secret(&[0xb2; 32]).expect("a fixed valid secret key");
        let channel_id = channel_id(CHAIN, &key_a.address(), &key_b.address(), &SALT);
        let key_c = Keypair::from_secret(&[0xc3; 32]).expect("a fixed valid secret key");
        let payee_channel_id =
            sluice_protocol::channel_id(CHAIN, &key_c.address(), &key_b.address(), &SALT);
        Fixture {
            key_a,
            key_b,
            channel_id,
            key_c,
            payee_channel_id,
        }
    })
}

const SALT: Hash32 = Hash32([5; 32]);

pub fn key(p: Party) -> &'static Keypair {
    match p {
        Party::A => &fixture().key_a,
        Party::B => &fixture().key_b,
    }
}

/// Party `p`'s key on channel `ch`.
pub fn channel_key(ch: Ch, p: Party) -> &'static Keypair {
    match (ch, p) {
        (PAYEE, Party::A) => &fixture().key_c,
        _ => key(p),
    }
}

pub fn channel_id_of(ch: Ch) -> Hash32 {
    match ch {
        PAYEE => fixture().payee_channel_id,
        _ => fixture().channel_id,
    }
}

/// What `apply` is told at `height`.
pub fn ctx_at(height: Height) -> Context {
    Context { height, ..ctx() }
}

/// What `apply` is told: the deposits, the height and the default policy. Never changes: the
/// chain's later height matters only once the channel is closing, when nobody updates it.
pub fn ctx() -> Context {
    Context {
        deposit_a: DEPOSIT_A,
        deposit_b: DEPOSIT_B,
        height: NOW,
        policy: Policy::default(),
    }
}

/// What A and B each take out of the open channel when they withdraw.
pub const WITHDRAW_A: Amount = 4;
pub const WITHDRAW_B: Amount = 3;

/// The secret of [`lock_to_b`], known to B (the payee).
pub const SECRET_B: Hash32 = Hash32([0x51; 32]);
/// The secret of [`lock_to_a`], known to A (the payee).
pub const SECRET_A: Hash32 = Hash32([0x52; 32]);

/// A pays B 3 against [`SECRET_B`].
pub fn lock_to_b() -> Lock {
    Lock {
        direction: Direction::AtoB,
        amount: 3,
        hashlock: sha256(&SECRET_B.0),
        expiry: EXPIRY,
    }
}

/// B pays A 2 against [`SECRET_A`].
pub fn lock_to_a() -> Lock {
    Lock {
        direction: Direction::BtoA,
        amount: 2,
        hashlock: sha256(&SECRET_A.0),
        expiry: EXPIRY,
    }
}

/// Every lock any state of the model can hold.
pub fn all_locks() -> [Lock; 2] {
    [lock_to_b(), lock_to_a()]
}

/// The secret `p` knows, and may register on chain.
pub fn secret_of(p: Party) -> Hash32 {
    match p {
        Party::A => SECRET_A,
        Party::B => SECRET_B,
    }
}

/// The changes `p` may propose (the machine refuses those that do not apply): each side pays
/// with a lock, takes the other's lock with its secret, withdraws part of its side, and either
/// may end the channel. A also bumps (the change that buries states in doubt), B removes A's
/// lock (the receiver's refund).
pub fn menu(p: Party) -> Vec<Change> {
    match p {
        Party::A => vec![
            Change::AddLock { lock: lock_to_b() },
            Change::Unlock { secret: SECRET_A },
            Change::Withdraw {
                party: Party::A,
                amount: WITHDRAW_A,
            },
            Change::Finalize,
            Change::Bump,
        ],
        Party::B => vec![
            Change::AddLock { lock: lock_to_a() },
            Change::Unlock { secret: SECRET_B },
            Change::RemoveLock {
                hashlock: lock_to_b().hashlock,
            },
            Change::Withdraw {
                party: Party::B,
                amount: WITHDRAW_B,
            },
            Change::Finalize,
        ],
    }
}

/// The version-0 snapshot (made once: its locks root is a hash).
pub fn opening() -> Snapshot {
    opening_of(MAIN)
}

/// The version-0 snapshot of channel `ch`.
pub fn opening_of(ch: Ch) -> Snapshot {
    static OPENING: OnceLock<[Snapshot; 2]> = OnceLock::new();
    let all =
        OPENING.get_or_init(|| [MAIN, PAYEE].map(|c| Snapshot::opening(CHAIN, channel_id_of(c))));
    all[usize::from(ch == PAYEE)].clone()
}

/// The channel as the chain opened it: A's deposit at opening, then B's.
pub fn record() -> ChannelRecord {
    record_of(MAIN)
}

/// Channel `ch` as the chain opened it.
pub fn record_of(ch: Ch) -> ChannelRecord {
    let (a, b) = (
        channel_key(ch, Party::A).address(),
        channel_key(ch, Party::B).address(),
    );
    let mut rec = ChannelRecord::open(
        CHAIN,
        a,
        b,
        DEPOSIT_A,
        CHALLENGE_PERIOD,
        &SALT,
        NOW,
        &ChannelLimits::default(),
    )
    .expect("fixed, valid opening terms");
    rec.deposit(&b, DEPOSIT_B)
        .expect("a small deposit into an open channel");
    rec
}
