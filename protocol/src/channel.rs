//! The off-chain channel between a client (`a`, the opener) and the hub (`b`): its versioned
//! state, its pending hash-time locks, derived balances and co-signature checks.

use crate::amount::{Amount, AmountError};
use crate::encoding::{Canonical, DecodeError, Reader, Writer};
use crate::hash::{sha256, tagged_hash, Hash32, Tag};
use crate::keys::{Address, KeyError, Keypair, Signature};
use crate::{ChainId, Height};
use serde::{Deserialize, Serialize};

/// The most locks any encoded state may carry, whatever a party's policy allows.
pub const MAX_LOCKS: usize = 1024;

/// A side of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    A,
    B,
}

impl Party {
    pub fn other(self) -> Party {
        match self {
            Party::A => Party::B,
            Party::B => Party::A,
        }
    }
}

/// Which way a lock's amount moves when it resolves to its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    AtoB,
    BtoA,
}

impl Direction {
    pub fn sender(self) -> Party {
        match self {
            Direction::AtoB => Party::A,
            Direction::BtoA => Party::B,
        }
    }
    pub fn receiver(self) -> Party {
        self.sender().other()
    }
    /// The direction in which `party` pays.
    pub fn from_sender(party: Party) -> Direction {
        match party {
            Party::A => Direction::AtoB,
            Party::B => Direction::BtoA,
        }
    }
}

/// A hash time-locked amount: paid to the receiver against the preimage of `hashlock` before
/// block `expiry`, otherwise returned to the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lock {
    pub direction: Direction,
    pub amount: Amount,
    pub hashlock: Hash32,
    pub expiry: Height,
}

impl Lock {
    /// Whether `secret` opens this lock (`sha256(secret) == hashlock`).
    pub fn opens_with(&self, secret: &Hash32) -> bool {
        sha256(&secret.0) == self.hashlock
    }
}

impl Canonical for Lock {
    fn encode(&self, w: &mut Writer) {
        w.u8(match self.direction {
            Direction::AtoB => 0,
            Direction::BtoA => 1,
        })
        .u64(self.amount)
        .hash(&self.hashlock)
        .u64(self.expiry);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let direction = match r.u8()? {
            0 => Direction::AtoB,
            1 => Direction::BtoA,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "direction",
                    tag,
                })
            }
        };
        Ok(Lock {
            direction,
            amount: r.amount()?,
            hashlock: r.hash()?,
            expiry: r.u64()?,
        })
    }
}

/// The root a state commits to: the tagged hash of the canonical lock list, which is sorted by
/// hashlock with no duplicates (so one set of locks has one root).
pub fn locks_root(locks: &[Lock]) -> Hash32 {
    let mut w = Writer::new();
    w.list(locks);
    tagged_hash(Tag::Locks, &w.into_bytes())
}

/// A channel's id: `H(chain_id, a, b, salt)` under the `sluice/open` tag.
pub fn channel_id(chain_id: ChainId, a: &Address, b: &Address, salt: &Hash32) -> Hash32 {
    let mut w = Writer::new();
    w.u64(chain_id).address(a).address(b).hash(salt);
    tagged_hash(Tag::Open, &w.into_bytes())
}

/// One version of a channel's off-chain state. Balances are derived from it and the on-chain
/// deposits, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    pub chain_id: ChainId,
    pub channel_id: Hash32,
    pub version: u64,
    /// Cumulative finalized amount paid a→b.
    pub sent_a: Amount,
    /// Cumulative finalized amount paid b→a.
    pub sent_b: Amount,
    /// Sum of pending locks a→b.
    pub locked_a: Amount,
    /// Sum of pending locks b→a.
    pub locked_b: Amount,
    pub locks_root: Hash32,
    pub is_final: bool,
    /// Cumulative amount a took out of the open channel ([`crate::Change::Withdraw`]); paid by
    /// a `Withdraw` transaction, or at settlement if it never reached the chain.
    #[serde(default)]
    pub withdrawn_a: Amount,
    /// Cumulative amount b took out of the open channel.
    #[serde(default)]
    pub withdrawn_b: Amount,
}

impl Canonical for ChannelState {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.chain_id)
            .hash(&self.channel_id)
            .u64(self.version)
            .u64(self.sent_a)
            .u64(self.sent_b)
            .u64(self.locked_a)
            .u64(self.locked_b)
            .hash(&self.locks_root)
            .bool(self.is_final)
            .u64(self.withdrawn_a)
            .u64(self.withdrawn_b);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChannelState {
            chain_id: r.u64()?,
            channel_id: r.hash()?,
            version: r.u64()?,
            sent_a: r.amount()?,
            sent_b: r.amount()?,
            locked_a: r.amount()?,
            locked_b: r.amount()?,
            locks_root: r.hash()?,
            is_final: r.bool()?,
            withdrawn_a: r.amount()?,
            withdrawn_b: r.amount()?,
        })
    }
}

/// Why a state (with its locks and signatures) is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("state is for chain {got}, expected {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("state is for another channel")]
    WrongChannel,
    #[error("party {0:?}'s balance would be negative")]
    NegativeBalance(Party),
    #[error("locks do not match the state's locks_root or lock sums")]
    LocksMismatch,
    #[error("locks are not sorted by hashlock without duplicates")]
    LocksNotCanonical,
    #[error("too many locks: {0}")]
    TooManyLocks(usize),
    #[error("version 0 must be the untouched opening state")]
    BadOpeningState,
    #[error("signature of party {0:?} is invalid: {1}")]
    BadSignature(Party, KeyError),
    #[error(transparent)]
    Amount(#[from] AmountError),
}

impl ChannelState {
    /// The implicit version-0 state: nothing sent, no locks. It needs no signatures.
    pub fn opening(chain_id: ChainId, channel_id: Hash32) -> Self {
        ChannelState {
            chain_id,
            channel_id,
            version: 0,
            sent_a: 0,
            sent_b: 0,
            locked_a: 0,
            locked_b: 0,
            locks_root: locks_root(&[]),
            is_final: false,
            withdrawn_a: 0,
            withdrawn_b: 0,
        }
    }

    /// The digest both parties sign.
    pub fn signing_hash(&self) -> Hash32 {
        tagged_hash(Tag::State, &self.to_bytes())
    }

    pub fn sign(&self, key: &Keypair) -> Signature {
        key.sign_hash(&self.signing_hash())
    }

    /// Derived balances `(balance_a, balance_b)` given the on-chain deposits; an error if either
    /// would be negative. `balance_a = deposit_a + sent_b − sent_a − locked_a − withdrawn_a`.
    pub fn balances(
        &self,
        deposit_a: Amount,
        deposit_b: Amount,
    ) -> Result<(Amount, Amount), StateError> {
        let side = |deposit: Amount, received: Amount, out: [Amount; 3], p: Party| {
            let v =
                deposit as i128 + received as i128 - out.iter().map(|x| *x as i128).sum::<i128>();
            if v < 0 {
                Err(StateError::NegativeBalance(p))
            } else {
                crate::amount::check(v.min(u64::MAX as i128) as u64).map_err(StateError::from)
            }
        };
        let out_a = [self.sent_a, self.locked_a, self.withdrawn_a];
        let out_b = [self.sent_b, self.locked_b, self.withdrawn_b];
        Ok((
            side(deposit_a, self.sent_b, out_a, Party::A)?,
            side(deposit_b, self.sent_a, out_b, Party::B)?,
        ))
    }

    /// What `party` has taken out of the open channel so far.
    pub fn withdrawn(&self, party: Party) -> Amount {
        match party {
            Party::A => self.withdrawn_a,
            Party::B => self.withdrawn_b,
        }
    }

    /// Checks that `locks` are exactly the locks this state commits to: canonical order, the
    /// right root, and per-direction sums equal to `locked_a`/`locked_b`.
    pub fn check_locks(&self, locks: &[Lock]) -> Result<(), StateError> {
        if locks.len() > MAX_LOCKS {
            return Err(StateError::TooManyLocks(locks.len()));
        }
        if locks.windows(2).any(|w| w[0].hashlock >= w[1].hashlock) {
            return Err(StateError::LocksNotCanonical);
        }
        let (mut sum_a, mut sum_b) = (0u64, 0u64);
        for lock in locks {
            let sum = match lock.direction {
                Direction::AtoB => &mut sum_a,
                Direction::BtoA => &mut sum_b,
            };
            *sum = crate::amount::add(*sum, lock.amount)?;
        }
        if sum_a != self.locked_a || sum_b != self.locked_b || locks_root(locks) != self.locks_root
        {
            return Err(StateError::LocksMismatch);
        }
        Ok(())
    }
}

/// A state with both parties' signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoSigned {
    pub state: ChannelState,
    pub sig_a: Signature,
    pub sig_b: Signature,
}

impl CoSigned {
    /// The version-0 state, which carries no signatures.
    pub fn opening(chain_id: ChainId, channel_id: Hash32) -> Self {
        CoSigned {
            state: ChannelState::opening(chain_id, channel_id),
            sig_a: Signature::default(),
            sig_b: Signature::default(),
        }
    }

    /// Checks chain, channel and both signatures. Version 0 is valid unsigned but only as the
    /// exact opening state.
    pub fn verify(
        &self,
        chain_id: ChainId,
        channel_id: &Hash32,
        a: &Address,
        b: &Address,
    ) -> Result<(), StateError> {
        let s = &self.state;
        if s.chain_id != chain_id {
            return Err(StateError::WrongChain {
                expected: chain_id,
                got: s.chain_id,
            });
        }
        if &s.channel_id != channel_id {
            return Err(StateError::WrongChannel);
        }
        if s.version == 0 {
            return match *s == ChannelState::opening(chain_id, *channel_id) {
                true => Ok(()),
                false => Err(StateError::BadOpeningState),
            };
        }
        let h = s.signing_hash();
        a.verify_hash(&h, &self.sig_a)
            .map_err(|e| StateError::BadSignature(Party::A, e))?;
        b.verify_hash(&h, &self.sig_b)
            .map_err(|e| StateError::BadSignature(Party::B, e))?;
        Ok(())
    }
}

impl Canonical for CoSigned {
    fn encode(&self, w: &mut Writer) {
        self.state.encode(w);
        w.signature(&self.sig_a).signature(&self.sig_b);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CoSigned {
            state: ChannelState::decode(r)?,
            sig_a: r.signature()?,
            sig_b: r.signature()?,
        })
    }
}

/// Everything a party needs to enforce a state on chain: the co-signed state and its locks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub cosigned: CoSigned,
    pub locks: Vec<Lock>,
}

impl Snapshot {
    pub fn opening(chain_id: ChainId, channel_id: Hash32) -> Self {
        Snapshot {
            cosigned: CoSigned::opening(chain_id, channel_id),
            locks: Vec::new(),
        }
    }

    pub fn state(&self) -> &ChannelState {
        &self.cosigned.state
    }

    /// Signatures, chain, channel and locks, all at once.
    pub fn verify(
        &self,
        chain_id: ChainId,
        channel_id: &Hash32,
        a: &Address,
        b: &Address,
    ) -> Result<(), StateError> {
        self.cosigned.verify(chain_id, channel_id, a, b)?;
        self.cosigned.state.check_locks(&self.locks)
    }
}

impl Canonical for Snapshot {
    fn encode(&self, w: &mut Writer) {
        self.cosigned.encode(w);
        w.list(&self.locks);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Snapshot {
            cosigned: CoSigned::decode(r)?,
            locks: r.list(MAX_LOCKS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(dir: Direction, amount: u64, h: u8) -> Lock {
        Lock {
            direction: dir,
            amount,
            hashlock: Hash32([h; 32]),
            expiry: 100,
        }
    }

    fn state_with(locks: &[Lock]) -> ChannelState {
        let mut s = ChannelState::opening(7, Hash32([1; 32]));
        s.locked_a = locks
            .iter()
            .filter(|l| l.direction == Direction::AtoB)
            .map(|l| l.amount)
            .sum();
        s.locked_b = locks
            .iter()
            .filter(|l| l.direction == Direction::BtoA)
            .map(|l| l.amount)
            .sum();
        s.locks_root = locks_root(locks);
        s
    }

    #[test]
    fn balances_are_derived() {
        let mut s = ChannelState::opening(7, Hash32([1; 32]));
        s.sent_a = 30;
        s.sent_b = 5;
        s.locked_a = 10;
        assert_eq!(s.balances(100, 50), Ok((65, 75)));
    }

    #[test]
    fn negative_balance_is_rejected() {
        let mut s = ChannelState::opening(7, Hash32([1; 32]));
        s.sent_a = 101;
        assert_eq!(
            s.balances(100, 0),
            Err(StateError::NegativeBalance(Party::A))
        );
        s.sent_a = 0;
        s.locked_b = 1;
        assert_eq!(
            s.balances(100, 0),
            Err(StateError::NegativeBalance(Party::B))
        );
    }

    #[test]
    fn locks_check_accepts_matching_locks() {
        let locks = [lock(Direction::AtoB, 5, 1), lock(Direction::BtoA, 7, 2)];
        assert_eq!(state_with(&locks).check_locks(&locks), Ok(()));
    }

    #[test]
    fn locks_check_rejects_unsorted_duplicates_and_mismatches() {
        let locks = [lock(Direction::AtoB, 5, 2), lock(Direction::BtoA, 7, 1)];
        assert_eq!(
            state_with(&locks).check_locks(&locks),
            Err(StateError::LocksNotCanonical)
        );
        let dup = [lock(Direction::AtoB, 5, 1), lock(Direction::AtoB, 5, 1)];
        assert_eq!(
            state_with(&dup).check_locks(&dup),
            Err(StateError::LocksNotCanonical)
        );
        let locks = [lock(Direction::AtoB, 5, 1)];
        let other = [lock(Direction::AtoB, 6, 1)];
        assert_eq!(
            state_with(&locks).check_locks(&other),
            Err(StateError::LocksMismatch)
        );
        assert_eq!(
            state_with(&locks).check_locks(&[]),
            Err(StateError::LocksMismatch)
        );
    }

    #[test]
    fn cosigned_verify_checks_everything() {
        let (ka, kb) = (
            Keypair::from_secret(&[1; 32]).unwrap(),
            Keypair::from_secret(&[2; 32]).unwrap(),
        );
        let (a, b) = (ka.address(), kb.address());
        let id = Hash32([9; 32]);
        let mut state = ChannelState::opening(7, id);
        state.version = 1;
        let good = CoSigned {
            state,
            sig_a: state.sign(&ka),
            sig_b: state.sign(&kb),
        };
        assert_eq!(good.verify(7, &id, &a, &b), Ok(()));
        assert_eq!(
            good.verify(8, &id, &a, &b),
            Err(StateError::WrongChain {
                expected: 8,
                got: 7
            })
        );
        assert_eq!(
            good.verify(7, &Hash32([8; 32]), &a, &b),
            Err(StateError::WrongChannel)
        );
        let swapped = CoSigned {
            sig_a: good.sig_b,
            sig_b: good.sig_a,
            ..good
        };
        assert!(matches!(
            swapped.verify(7, &id, &a, &b),
            Err(StateError::BadSignature(Party::A, _))
        ));
        let half = CoSigned {
            sig_b: Signature::default(),
            ..good
        };
        assert!(matches!(
            half.verify(7, &id, &a, &b),
            Err(StateError::BadSignature(Party::B, _))
        ));
    }

    #[test]
    fn version_zero_needs_no_signature_but_must_be_untouched() {
        let id = Hash32([9; 32]);
        let (a, b) = (Address([1; 32]), Address([2; 32]));
        assert_eq!(CoSigned::opening(7, id).verify(7, &id, &a, &b), Ok(()));
        let mut forged = CoSigned::opening(7, id);
        forged.state.sent_b = 1000;
        assert_eq!(
            forged.verify(7, &id, &a, &b),
            Err(StateError::BadOpeningState)
        );
    }

    #[test]
    fn channel_ids_differ_per_chain_party_and_salt() {
        let (a, b, s) = (Address([1; 32]), Address([2; 32]), Hash32([3; 32]));
        let id = channel_id(1, &a, &b, &s);
        assert_ne!(id, channel_id(2, &a, &b, &s));
        assert_ne!(id, channel_id(1, &b, &a, &s));
        assert_ne!(id, channel_id(1, &a, &b, &Hash32([4; 32])));
    }

    #[test]
    fn lock_decode_rejects_unknown_direction() {
        let mut bytes = lock(Direction::AtoB, 1, 1).to_bytes();
        bytes[0] = 9;
        assert_eq!(
            Lock::from_bytes(&bytes),
            Err(DecodeError::UnknownTag {
                what: "direction",
                tag: 9
            })
        );
    }
}
