//! The update rules of DESIGN.md §4. `apply` is the one function both the proposer and the
//! receiver run: the receiver recomputes the proposer's state with it and accepts only an exact
//! match, so the two can never disagree about what an update means.
//!
//! Versions are never reused (DESIGN.md §4, "Versions"): a proposal goes above every version
//! either side is known to have signed, so it may skip versions, by at most [`MAX_VERSION_SKIP`]
//! past the latest co-signed state.

use crate::amount::{self, Amount, AmountError};
use crate::channel::{locks_root, ChannelState, Direction, Lock, Party, StateError, MAX_LOCKS};
use crate::encoding::{Canonical, DecodeError, Reader, Writer};
use crate::hash::{sha256, Hash32};
use crate::Height;
use serde::{Deserialize, Serialize};

/// One step from a state to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A new pending lock, proposed by its sender.
    AddLock { lock: Lock },
    /// Reveals a lock's secret, proposed by its receiver: the amount becomes `sent`.
    Unlock { secret: Hash32 },
    /// Drops a lock without payment: by its receiver at any time, by its sender once expired.
    RemoveLock { hashlock: Hash32 },
    /// Marks the state final for a cooperative close; only with no locks pending.
    Finalize,
    /// Changes nothing but the version: co-signed, it buries every state either side signed
    /// below it (a proposal that was rejected or left unanswered), since a challenge with it
    /// beats any of them on chain.
    Bump,
    /// Takes `amount` of `party`'s balance out of the open channel, proposed by `party` only.
    /// The state's cumulative `withdrawn_*` grows by it; the co-signed state is the party's
    /// claim, paid by a `Withdraw` transaction (which raises the chain's version floor, so no
    /// older state can close the channel afterwards) or, if it never reached the chain, at
    /// settlement. Either way it is paid once.
    Withdraw { party: Party, amount: Amount },
}

impl Canonical for Change {
    fn encode(&self, w: &mut Writer) {
        match self {
            Change::AddLock { lock } => {
                w.u8(0);
                lock.encode(w);
            }
            Change::Unlock { secret } => {
                w.u8(1).hash(secret);
            }
            Change::RemoveLock { hashlock } => {
                w.u8(2).hash(hashlock);
            }
            Change::Finalize => {
                w.u8(3);
            }
            Change::Bump => {
                w.u8(4);
            }
            Change::Withdraw { party, amount } => {
                w.u8(5).u8(party_tag(*party)).u64(*amount);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => Change::AddLock {
                lock: Lock::decode(r)?,
            },
            1 => Change::Unlock { secret: r.hash()? },
            2 => Change::RemoveLock {
                hashlock: r.hash()?,
            },
            3 => Change::Finalize,
            4 => Change::Bump,
            5 => Change::Withdraw {
                party: match r.u8()? {
                    0 => Party::A,
                    1 => Party::B,
                    tag => return Err(DecodeError::UnknownTag { what: "party", tag }),
                },
                amount: r.amount()?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "change",
                    tag,
                })
            }
        })
    }
}

fn party_tag(party: Party) -> u8 {
    match party {
        Party::A => 0,
        Party::B => 1,
    }
}

/// A party's limits on what it will co-sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Pending locks per channel, both directions together.
    pub max_locks: usize,
    /// A new lock must expire at least this many blocks after the current height.
    pub min_expiry_delta: Height,
    /// ...and at most this many, so funds are never frozen for long.
    pub max_expiry_delta: Height,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_locks: 64,
            min_expiry_delta: 10,
            max_expiry_delta: 1_000,
        }
    }
}

/// What `apply` needs to know besides the state: the deposits, the chain height and the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub deposit_a: Amount,
    pub deposit_b: Amount,
    pub height: Height,
    pub policy: Policy,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("channel is final; no further updates")]
    ChannelFinal,
    #[error("version {got} is at or below {floor}, a version already signed")]
    VersionBurnt { floor: u64, got: u64 },
    #[error("version {got} skips too far past the latest co-signed version {latest}")]
    VersionTooFar { latest: u64, got: u64 },
    #[error("party {0:?} may not propose this change")]
    WrongProposer(Party),
    #[error("amount must be positive")]
    ZeroAmount,
    #[error("a lock with this hashlock is already pending")]
    DuplicateHashlock,
    #[error("too many pending locks (limit {0})")]
    TooManyLocks(usize),
    #[error("lock expiry {expiry} outside [{min}, {max}]")]
    ExpiryOutOfBounds {
        expiry: Height,
        min: Height,
        max: Height,
    },
    #[error("no pending lock with this hashlock")]
    UnknownLock,
    #[error("lock expired at height {0}")]
    LockExpired(Height),
    #[error("lock has not expired yet (expiry {0})")]
    LockNotExpired(Height),
    #[error("cannot finalize with pending locks")]
    LocksPending,
    #[error("proposed state differs from the result of applying the change")]
    StateMismatch,
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Amount(#[from] AmountError),
}

/// A channel's current off-chain position: its latest state and the locks it commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub state: ChannelState,
    pub locks: Vec<Lock>,
}

impl Position {
    pub fn opening(state: ChannelState) -> Self {
        Position {
            state,
            locks: Vec::new(),
        }
    }
}

/// Most versions a proposal may go past the latest co-signed one: room for a run of rejected or
/// unanswered proposals, while a peer cannot push a channel's version toward `u64::MAX`.
pub const MAX_VERSION_SKIP: u64 = 1024;

/// The version of the next state built on `latest` when `floor` is the highest version either
/// side is known to have signed on the channel: above both, so no signed version is reused.
pub fn next_version(latest: u64, floor: u64) -> Result<u64, UpdateError> {
    let got = latest
        .max(floor)
        .checked_add(1)
        .ok_or(UpdateError::Amount(AmountError::Overflow))?;
    check_version(latest, floor, got)?;
    Ok(got)
}

/// Whether `got` may follow `latest` when `floor` was already signed: above both, within the skip.
pub fn check_version(latest: u64, floor: u64, got: u64) -> Result<(), UpdateError> {
    let floor = floor.max(latest);
    if got <= floor {
        return Err(UpdateError::VersionBurnt { floor, got });
    }
    if got > latest.saturating_add(MAX_VERSION_SKIP) {
        return Err(UpdateError::VersionTooFar { latest, got });
    }
    Ok(())
}

/// Applies `change`, proposed by `proposer`, to `current`, enforcing every rule; returns the next
/// position (version + 1) or why the change is invalid. Pure and deterministic.
pub fn apply(
    current: &Position,
    change: &Change,
    proposer: Party,
    ctx: &Context,
) -> Result<Position, UpdateError> {
    let version = current.state.version.saturating_add(1);
    apply_at(current, change, proposer, ctx, version)
}

/// [`apply`] with the next state at `version`, which must lie above `current`'s within
/// [`MAX_VERSION_SKIP`] (see [`next_version`]).
pub fn apply_at(
    current: &Position,
    change: &Change,
    proposer: Party,
    ctx: &Context,
    version: u64,
) -> Result<Position, UpdateError> {
    let s = &current.state;
    if s.is_final {
        return Err(UpdateError::ChannelFinal);
    }
    check_version(s.version, s.version, version)?;
    let mut next = current.clone();
    next.state.version = version;
    match change {
        Change::AddLock { lock } => add_lock(&mut next, lock, proposer, ctx)?,
        Change::Unlock { secret } => unlock(&mut next, secret, proposer, ctx)?,
        Change::RemoveLock { hashlock } => remove_lock(&mut next, hashlock, proposer, ctx)?,
        Change::Finalize => {
            if !next.locks.is_empty() {
                return Err(UpdateError::LocksPending);
            }
            next.state.is_final = true;
        }
        Change::Bump => {}
        Change::Withdraw { party, amount } => withdraw(&mut next, *party, *amount, proposer)?,
    }
    next.state.locks_root = locks_root(&next.locks);
    next.state.balances(ctx.deposit_a, ctx.deposit_b)?;
    Ok(next)
}

/// The receiver's check of a proposal: its version lies above `floor`, the highest version the
/// receiver has signed or seen signed on the channel (within the skip), and `apply` at that
/// version gives exactly the proposed state.
pub fn check_proposal(
    current: &Position,
    change: &Change,
    proposed: &ChannelState,
    proposer: Party,
    ctx: &Context,
    floor: u64,
) -> Result<Position, UpdateError> {
    check_version(current.state.version, floor, proposed.version)?;
    let next = apply_at(current, change, proposer, ctx, proposed.version)?;
    if &next.state != proposed {
        return Err(UpdateError::StateMismatch);
    }
    Ok(next)
}

fn locked_mut(state: &mut ChannelState, dir: Direction) -> &mut Amount {
    match dir {
        Direction::AtoB => &mut state.locked_a,
        Direction::BtoA => &mut state.locked_b,
    }
}

fn sent_mut(state: &mut ChannelState, dir: Direction) -> &mut Amount {
    match dir {
        Direction::AtoB => &mut state.sent_a,
        Direction::BtoA => &mut state.sent_b,
    }
}

fn add_lock(
    next: &mut Position,
    lock: &Lock,
    proposer: Party,
    ctx: &Context,
) -> Result<(), UpdateError> {
    if lock.direction.sender() != proposer {
        return Err(UpdateError::WrongProposer(proposer));
    }
    if lock.amount == 0 {
        return Err(UpdateError::ZeroAmount);
    }
    amount::check(lock.amount)?;
    let limit = ctx.policy.max_locks.min(MAX_LOCKS);
    if next.locks.len() >= limit {
        return Err(UpdateError::TooManyLocks(limit));
    }
    let min = ctx.height.saturating_add(ctx.policy.min_expiry_delta);
    let max = ctx.height.saturating_add(ctx.policy.max_expiry_delta);
    if lock.expiry < min || lock.expiry > max {
        return Err(UpdateError::ExpiryOutOfBounds {
            expiry: lock.expiry,
            min,
            max,
        });
    }
    let pos = match next
        .locks
        .binary_search_by(|l| l.hashlock.cmp(&lock.hashlock))
    {
        Ok(_) => return Err(UpdateError::DuplicateHashlock),
        Err(pos) => pos,
    };
    next.locks.insert(pos, *lock);
    let locked = locked_mut(&mut next.state, lock.direction);
    *locked = amount::add(*locked, lock.amount)?;
    Ok(())
}

fn take_lock(next: &mut Position, hashlock: &Hash32) -> Result<Lock, UpdateError> {
    let pos = next
        .locks
        .binary_search_by(|l| l.hashlock.cmp(hashlock))
        .map_err(|_| UpdateError::UnknownLock)?;
    let lock = next.locks.remove(pos);
    let locked = locked_mut(&mut next.state, lock.direction);
    *locked = amount::sub(*locked, lock.amount)?;
    Ok(lock)
}

fn unlock(
    next: &mut Position,
    secret: &Hash32,
    proposer: Party,
    ctx: &Context,
) -> Result<(), UpdateError> {
    let lock = take_lock(next, &sha256(&secret.0))?;
    if lock.direction.receiver() != proposer {
        return Err(UpdateError::WrongProposer(proposer));
    }
    if ctx.height >= lock.expiry {
        return Err(UpdateError::LockExpired(lock.expiry));
    }
    let sent = sent_mut(&mut next.state, lock.direction);
    *sent = amount::add(*sent, lock.amount)?;
    Ok(())
}

fn remove_lock(
    next: &mut Position,
    hashlock: &Hash32,
    proposer: Party,
    ctx: &Context,
) -> Result<(), UpdateError> {
    let lock = take_lock(next, hashlock)?;
    if proposer == lock.direction.sender() && ctx.height < lock.expiry {
        return Err(UpdateError::LockNotExpired(lock.expiry));
    }
    Ok(())
}

/// Only the owner takes its own funds out; the balance check in `apply_at` keeps it within them.
fn withdraw(
    next: &mut Position,
    party: Party,
    value: Amount,
    proposer: Party,
) -> Result<(), UpdateError> {
    if party != proposer {
        return Err(UpdateError::WrongProposer(proposer));
    }
    if value == 0 {
        return Err(UpdateError::ZeroAmount);
    }
    let slot = match party {
        Party::A => &mut next.state.withdrawn_a,
        Party::B => &mut next.state.withdrawn_b,
    };
    *slot = amount::add(*slot, value)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Height = 100;

    fn ctx() -> Context {
        Context {
            deposit_a: 1_000,
            deposit_b: 500,
            height: H,
            policy: Policy::default(),
        }
    }

    fn open() -> Position {
        Position::opening(ChannelState::opening(1, Hash32([7; 32])))
    }

    fn secret(n: u8) -> Hash32 {
        Hash32([n; 32])
    }

    fn lock(dir: Direction, amount: Amount, n: u8) -> Lock {
        Lock {
            direction: dir,
            amount,
            hashlock: sha256(&[n; 32]),
            expiry: H + 50,
        }
    }

    fn add(p: &Position, l: Lock) -> Result<Position, UpdateError> {
        apply(
            p,
            &Change::AddLock { lock: l },
            l.direction.sender(),
            &ctx(),
        )
    }

    #[test]
    fn add_then_unlock_pays_the_receiver() {
        let p = add(&open(), lock(Direction::AtoB, 300, 1)).unwrap();
        assert_eq!((p.state.version, p.state.locked_a), (1, 300));
        assert_eq!(p.state.balances(1_000, 500), Ok((700, 500)));
        let p = apply(&p, &Change::Unlock { secret: secret(1) }, Party::B, &ctx()).unwrap();
        assert_eq!(
            (p.state.version, p.state.locked_a, p.state.sent_a),
            (2, 0, 300)
        );
        assert_eq!(p.state.balances(1_000, 500), Ok((700, 800)));
        assert_eq!(p.state.locks_root, locks_root(&[]));
    }

    #[test]
    fn remove_lock_refunds_the_sender() {
        let p = add(&open(), lock(Direction::BtoA, 200, 1)).unwrap();
        let h = lock(Direction::BtoA, 200, 1).hashlock;
        let p = apply(&p, &Change::RemoveLock { hashlock: h }, Party::A, &ctx()).unwrap();
        assert_eq!(p.state.balances(1_000, 500), Ok((1_000, 500)));
        assert_eq!(p.state.version, 2);
    }

    #[test]
    fn sender_may_remove_only_after_expiry() {
        let l = lock(Direction::AtoB, 10, 1);
        let p = add(&open(), l).unwrap();
        let rm = Change::RemoveLock {
            hashlock: l.hashlock,
        };
        assert_eq!(
            apply(&p, &rm, Party::A, &ctx()),
            Err(UpdateError::LockNotExpired(l.expiry))
        );
        let later = Context {
            height: l.expiry,
            ..ctx()
        };
        assert!(apply(&p, &rm, Party::A, &later).is_ok());
    }

    #[test]
    fn only_the_sender_adds_a_lock() {
        let l = lock(Direction::AtoB, 10, 1);
        let r = apply(&open(), &Change::AddLock { lock: l }, Party::B, &ctx());
        assert_eq!(r, Err(UpdateError::WrongProposer(Party::B)));
    }

    #[test]
    fn only_the_receiver_unlocks() {
        let p = add(&open(), lock(Direction::AtoB, 10, 1)).unwrap();
        let r = apply(&p, &Change::Unlock { secret: secret(1) }, Party::A, &ctx());
        assert_eq!(r, Err(UpdateError::WrongProposer(Party::A)));
    }

    #[test]
    fn unlock_needs_the_right_secret_and_time() {
        let l = lock(Direction::AtoB, 10, 1);
        let p = add(&open(), l).unwrap();
        let wrong = apply(&p, &Change::Unlock { secret: secret(2) }, Party::B, &ctx());
        assert_eq!(wrong, Err(UpdateError::UnknownLock));
        let late = Context {
            height: l.expiry,
            ..ctx()
        };
        let r = apply(&p, &Change::Unlock { secret: secret(1) }, Party::B, &late);
        assert_eq!(r, Err(UpdateError::LockExpired(l.expiry)));
    }

    #[test]
    fn overdraft_is_rejected() {
        let r = add(&open(), lock(Direction::AtoB, 1_001, 1));
        assert_eq!(
            r,
            Err(UpdateError::State(StateError::NegativeBalance(Party::A)))
        );
    }

    #[test]
    fn zero_and_overflowing_amounts_are_rejected() {
        assert_eq!(
            add(&open(), lock(Direction::AtoB, 0, 1)),
            Err(UpdateError::ZeroAmount)
        );
        assert!(matches!(
            add(&open(), lock(Direction::AtoB, u64::MAX, 1)),
            Err(UpdateError::Amount(_))
        ));
    }

    #[test]
    fn duplicate_hashlock_is_rejected() {
        let p = add(&open(), lock(Direction::AtoB, 1, 1)).unwrap();
        assert_eq!(
            add(&p, lock(Direction::BtoA, 1, 1)),
            Err(UpdateError::DuplicateHashlock)
        );
    }

    #[test]
    fn lock_count_is_bounded_by_policy() {
        let c = Context {
            policy: Policy {
                max_locks: 2,
                ..Policy::default()
            },
            ..ctx()
        };
        let mut p = open();
        for n in 0..2 {
            let l = lock(Direction::AtoB, 1, n);
            p = apply(&p, &Change::AddLock { lock: l }, Party::A, &c).unwrap();
        }
        let l = lock(Direction::AtoB, 1, 9);
        assert_eq!(
            apply(&p, &Change::AddLock { lock: l }, Party::A, &c),
            Err(UpdateError::TooManyLocks(2))
        );
    }

    #[test]
    fn expiry_is_bounded() {
        let mut l = lock(Direction::AtoB, 1, 1);
        l.expiry = H + 5;
        assert!(matches!(
            add(&open(), l),
            Err(UpdateError::ExpiryOutOfBounds { .. })
        ));
        l.expiry = H + 5_000;
        assert!(matches!(
            add(&open(), l),
            Err(UpdateError::ExpiryOutOfBounds { .. })
        ));
    }

    #[test]
    fn finalize_needs_no_locks_and_ends_the_channel() {
        let p = add(&open(), lock(Direction::AtoB, 1, 1)).unwrap();
        assert_eq!(
            apply(&p, &Change::Finalize, Party::A, &ctx()),
            Err(UpdateError::LocksPending)
        );
        let f = apply(&open(), &Change::Finalize, Party::B, &ctx()).unwrap();
        assert!(f.state.is_final);
        assert_eq!(
            add(&f, lock(Direction::AtoB, 1, 1)),
            Err(UpdateError::ChannelFinal)
        );
    }

    #[test]
    fn proposal_must_match_apply_exactly() {
        let l = lock(Direction::AtoB, 10, 1);
        let change = Change::AddLock { lock: l };
        let good = apply(&open(), &change, Party::A, &ctx()).unwrap();
        assert_eq!(
            check_proposal(&open(), &change, &good.state, Party::A, &ctx(), 0),
            Ok(good.clone())
        );
        let mut skewed = good.state;
        skewed.sent_b = 5;
        assert_eq!(
            check_proposal(&open(), &change, &skewed, Party::A, &ctx(), 0),
            Err(UpdateError::StateMismatch)
        );
    }

    #[test]
    fn a_proposal_goes_above_every_signed_version() {
        let change = Change::AddLock {
            lock: lock(Direction::AtoB, 10, 1),
        };
        let at = |v| {
            apply_at(&open(), &change, Party::A, &ctx(), v)
                .unwrap()
                .state
        };
        // Version 3 was signed (and burnt): 3 is refused, 4 and 5 are fine.
        assert_eq!(
            check_proposal(&open(), &change, &at(3), Party::A, &ctx(), 3),
            Err(UpdateError::VersionBurnt { floor: 3, got: 3 })
        );
        assert!(check_proposal(&open(), &change, &at(4), Party::A, &ctx(), 3).is_ok());
        assert!(check_proposal(&open(), &change, &at(5), Party::A, &ctx(), 3).is_ok());
        assert_eq!(next_version(0, 3), Ok(4));
        assert_eq!(next_version(7, 3), Ok(8));
    }

    #[test]
    fn a_version_may_skip_only_so_far() {
        let far = MAX_VERSION_SKIP + 1;
        assert_eq!(
            check_version(0, 0, far),
            Err(UpdateError::VersionTooFar {
                latest: 0,
                got: far
            })
        );
        assert!(check_version(0, 0, MAX_VERSION_SKIP).is_ok());
        assert_eq!(
            next_version(0, MAX_VERSION_SKIP),
            Err(UpdateError::VersionTooFar {
                latest: 0,
                got: far
            })
        );
        assert!(matches!(
            next_version(u64::MAX, 0),
            Err(UpdateError::Amount(_))
        ));
    }

    #[test]
    fn bump_changes_only_the_version() {
        let p = add(&open(), lock(Direction::AtoB, 10, 1)).unwrap();
        let b = apply_at(&p, &Change::Bump, Party::B, &ctx(), 9).unwrap();
        assert_eq!(b.state.version, 9);
        assert_eq!(b.locks, p.locks);
        assert_eq!(
            ChannelState {
                version: 1,
                ..b.state
            },
            p.state
        );
        assert_eq!(
            Change::from_bytes(&Change::Bump.to_bytes()),
            Ok(Change::Bump)
        );
    }

    #[test]
    fn change_decode_rejects_unknown_tag() {
        assert_eq!(
            Change::from_bytes(&[9]),
            Err(DecodeError::UnknownTag {
                what: "change",
                tag: 9
            })
        );
        assert_eq!(
            Change::from_bytes(&Change::Finalize.to_bytes()),
            Ok(Change::Finalize)
        );
    }

    #[test]
    fn only_the_owner_withdraws_and_only_what_it_has() {
        let w = |party, amount, proposer| {
            apply(
                &open(),
                &Change::Withdraw { party, amount },
                proposer,
                &ctx(),
            )
        };
        let p = w(Party::A, 400, Party::A).unwrap();
        assert_eq!((p.state.withdrawn_a, p.state.version), (400, 1));
        assert_eq!(p.state.balances(1_000, 500), Ok((600, 500)));
        assert_eq!(
            w(Party::A, 400, Party::B),
            Err(UpdateError::WrongProposer(Party::B))
        );
        assert_eq!(w(Party::B, 0, Party::B), Err(UpdateError::ZeroAmount));
        assert_eq!(
            w(Party::B, 501, Party::B),
            Err(UpdateError::State(StateError::NegativeBalance(Party::B)))
        );
        let locked = add(&open(), lock(Direction::AtoB, 900, 1)).unwrap();
        let r = apply(
            &locked,
            &Change::Withdraw {
                party: Party::A,
                amount: 101,
            },
            Party::A,
            &ctx(),
        );
        assert_eq!(
            r,
            Err(UpdateError::State(StateError::NegativeBalance(Party::A))),
            "locked funds stay"
        );
        let change = Change::Withdraw {
            party: Party::B,
            amount: 7,
        };
        assert_eq!(Change::from_bytes(&change.to_bytes()), Ok(change));
    }
}
