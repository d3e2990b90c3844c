//! What the settlement chain does with a channel: the record it keeps, its life from open to
//! settled, and the events it emits. Pure; the chain node executes these and stores the result.

use crate::amount::{self, Amount};
use crate::channel::{channel_id, CoSigned, Lock, Snapshot, StateError};
use crate::hash::Hash32;
use crate::keys::Address;
use crate::settlement::payouts;
use crate::{ChainId, Height};
use serde::{Deserialize, Serialize};

/// A channel as the chain keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    pub id: Hash32,
    pub a: Address,
    pub b: Address,
    pub deposit_a: Amount,
    pub deposit_b: Amount,
    pub challenge_period: Height,
    pub opened_at: Height,
    pub status: ChannelStatus,
    /// What `Withdraw` transactions paid a and b out of the open channel so far.
    #[serde(default)]
    pub withdrawn: Withdrawn,
}

/// What withdrawals paid out of an open channel, and the version of the last state that paid
/// one. A withdrawal is an advance on the settlement: settlement pays each side its balance in
/// the settled state plus what that state withdraws, less what the chain paid it already (see
/// [`payouts`]). So no state, older or newer, is refused for a withdrawal, and none pays twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawn {
    pub a: Amount,
    pub b: Amount,
    pub version: u64,
}

/// Whether a challenge sent at `height` can still land: the next block is inside the window
/// ending at `settle_after` (the rule `ChannelRecord::challenge` applies).
pub fn challenge_lands(settle_after: Height, height: Height) -> bool {
    height.saturating_add(1) < settle_after
}

/// Whether a holder of a co-signed state at version `ours` must challenge a close that stores
/// version `stored`, its window ending at `settle_after`, at `height`: the one reaction rule of
/// the hub, the wallet and the tower (who knows only the version and window end of a close).
pub fn must_challenge(stored: u64, settle_after: Height, ours: u64, height: Height) -> bool {
    stored < ours && challenge_lands(settle_after, height)
}

/// What to send about a channel (see [`ChannelRecord::reaction`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    Challenge,
    Settle,
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChannelStatus {
    Open,
    /// Closed with `stored`; challenges with higher versions replace it until `settle_after`.
    Closing {
        stored: Box<Snapshot>,
        settle_after: Height,
    },
    Settled {
        payout_a: Amount,
        payout_b: Amount,
    },
}

/// Chain-wide limits on channels, fixed in genesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelLimits {
    pub min_challenge_period: Height,
    pub max_challenge_period: Height,
}

impl Default for ChannelLimits {
    fn default() -> Self {
        ChannelLimits {
            min_challenge_period: 2,
            max_challenge_period: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("a channel cannot be opened with oneself")]
    SelfChannel,
    #[error("challenge period {got} outside [{min}, {max}]")]
    ChallengePeriod {
        got: Height,
        min: Height,
        max: Height,
    },
    #[error("sender is not a participant of this channel")]
    NotParticipant,
    #[error("channel is not open")]
    NotOpen,
    #[error("channel is not closing")]
    NotClosing,
    #[error("cooperative close needs a final state with no locks")]
    NotFinal,
    #[error("challenge window ended at height {0}")]
    WindowClosed(Height),
    #[error("version {got} is not above the stored version {stored}")]
    StaleVersion { stored: u64, got: u64 },
    #[error("cannot settle before height {0}")]
    TooEarly(Height),
    #[error("cannot settle before every lock expired (latest expiry {0})")]
    LocksPending(Height),
    #[error("version {got} is not above {paid_at}, the state of the last withdrawal paid")]
    WithdrawalReplayed { paid_at: u64, got: u64 },
    #[error("the state withdraws nothing the chain has not paid already")]
    NothingToWithdraw,
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Amount(#[from] amount::AmountError),
}

/// Something that happened on chain, for subscribers (hubs, towers, wallets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    Transfer {
        from: Address,
        to: Address,
        amount: Amount,
    },
    ChannelOpened {
        channel_id: Hash32,
        a: Address,
        b: Address,
        deposit: Amount,
        challenge_period: Height,
    },
    Deposited {
        channel_id: Hash32,
        party: Address,
        amount: Amount,
        total: Amount,
    },
    ChannelClosing {
        channel_id: Hash32,
        version: u64,
        settle_after: Height,
        by: Address,
    },
    ChannelChallenged {
        channel_id: Hash32,
        version: u64,
        by: Address,
    },
    SecretRegistered {
        hashlock: Hash32,
        secret: Hash32,
    },
    ChannelSettled {
        channel_id: Hash32,
        payout_a: Amount,
        payout_b: Amount,
    },
    /// A withdrawal from the open channel was paid to `party`; `total` is all it took out.
    Withdrawn {
        channel_id: Hash32,
        party: Address,
        amount: Amount,
        total: Amount,
        version: u64,
    },
}

impl EventKind {
    /// The event's type name, as used by event filters.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Transfer { .. } => "Transfer",
            EventKind::ChannelOpened { .. } => "ChannelOpened",
            EventKind::Deposited { .. } => "Deposited",
            EventKind::ChannelClosing { .. } => "ChannelClosing",
            EventKind::ChannelChallenged { .. } => "ChannelChallenged",
            EventKind::SecretRegistered { .. } => "SecretRegistered",
            EventKind::ChannelSettled { .. } => "ChannelSettled",
            EventKind::Withdrawn { .. } => "Withdrawn",
        }
    }

    /// The channel the event concerns, if any.
    pub fn channel_id(&self) -> Option<Hash32> {
        match self {
            EventKind::ChannelOpened { channel_id, .. }
            | EventKind::Deposited { channel_id, .. }
            | EventKind::ChannelClosing { channel_id, .. }
            | EventKind::ChannelChallenged { channel_id, .. }
            | EventKind::ChannelSettled { channel_id, .. }
            | EventKind::Withdrawn { channel_id, .. } => Some(*channel_id),
            _ => None,
        }
    }

    /// Accounts named by the event itself (channel events also index the channel's parties,
    /// which the node adds from the channel record).
    pub fn addresses(&self) -> Vec<Address> {
        match self {
            EventKind::Transfer { from, to, .. } => vec![*from, *to],
            EventKind::ChannelOpened { a, b, .. } => vec![*a, *b],
            EventKind::Deposited { party, .. } | EventKind::Withdrawn { party, .. } => {
                vec![*party]
            }
            EventKind::ChannelClosing { by, .. } | EventKind::ChannelChallenged { by, .. } => {
                vec![*by]
            }
            _ => vec![],
        }
    }
}

impl ChannelRecord {
    /// The record an `OpenChannel` by `opener` creates.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        chain_id: ChainId,
        opener: Address,
        counterparty: Address,
        deposit: Amount,
        challenge_period: Height,
        salt: &Hash32,
        height: Height,
        limits: &ChannelLimits,
    ) -> Result<Self, ChannelError> {
        if opener == counterparty {
            return Err(ChannelError::SelfChannel);
        }
        let (min, max) = (limits.min_challenge_period, limits.max_challenge_period);
        if challenge_period < min || challenge_period > max {
            return Err(ChannelError::ChallengePeriod {
                got: challenge_period,
                min,
                max,
            });
        }
        Ok(ChannelRecord {
            id: channel_id(chain_id, &opener, &counterparty, salt),
            a: opener,
            b: counterparty,
            deposit_a: amount::check(deposit)?,
            deposit_b: 0,
            challenge_period,
            opened_at: height,
            status: ChannelStatus::Open,
            withdrawn: Withdrawn::default(),
        })
    }

    pub fn is_participant(&self, who: &Address) -> bool {
        *who == self.a || *who == self.b
    }

    fn require_participant(&self, who: &Address) -> Result<(), ChannelError> {
        match self.is_participant(who) {
            true => Ok(()),
            false => Err(ChannelError::NotParticipant),
        }
    }

    /// Adds to `who`'s deposit while the channel is open; returns the new total.
    pub fn deposit(&mut self, who: &Address, value: Amount) -> Result<Amount, ChannelError> {
        self.require_participant(who)?;
        if self.status != ChannelStatus::Open {
            return Err(ChannelError::NotOpen);
        }
        let (slot, other) = if *who == self.a {
            (&mut self.deposit_a, self.deposit_b)
        } else {
            (&mut self.deposit_b, self.deposit_a)
        };
        let total = amount::add(*slot, value)?;
        // Both deposits together are paid out at settlement, so their sum must stay an amount.
        amount::add(total, other)?;
        *slot = total;
        Ok(total)
    }

    /// Whether a `Close` or `Challenge` with `snapshot` passes this channel's checks: the
    /// parties' signatures and balances that fit the deposits. A watcher holding a state for
    /// this channel asks this before it spends a fee on it (deposits only grow, so a state that
    /// fits now fits later).
    pub fn admits(&self, chain_id: ChainId, snapshot: &Snapshot) -> Result<(), ChannelError> {
        snapshot.verify(chain_id, &self.id, &self.a, &self.b)?;
        snapshot.state().balances(self.deposit_a, self.deposit_b)?;
        Ok(())
    }

    /// Pays what `cosigned` withdraws beyond what the chain paid each side already, only while
    /// the channel is open and only with a version above the last withdrawal's (so one state
    /// pays once), and never more than the channel still holds. Either participant may send
    /// it; each side's part goes to that side. Returns the amounts paid `(to_a, to_b)`.
    ///
    /// A hostile peer may co-sign a party's withdrawal proposal and send it here without
    /// answering; the party then goes on from the state below it. Nothing is lost: the party
    /// was paid early, and settlement nets the advance out (see [`payouts`]).
    pub fn withdraw(
        &mut self,
        chain_id: ChainId,
        by: &Address,
        cosigned: &CoSigned,
    ) -> Result<(Amount, Amount), ChannelError> {
        self.require_participant(by)?;
        if self.status != ChannelStatus::Open {
            return Err(ChannelError::NotOpen);
        }
        let state = &cosigned.state;
        if state.version <= self.withdrawn.version && self.withdrawn.version > 0 {
            return Err(ChannelError::WithdrawalReplayed {
                paid_at: self.withdrawn.version,
                got: state.version,
            });
        }
        cosigned.verify(chain_id, &self.id, &self.a, &self.b)?;
        state.balances(self.deposit_a, self.deposit_b)?;
        let w = self.withdrawn;
        let held = amount::add(self.deposit_a, self.deposit_b)?
            .saturating_sub(w.a)
            .saturating_sub(w.b);
        let to_a = state.withdrawn_a.saturating_sub(w.a).min(held);
        let to_b = state.withdrawn_b.saturating_sub(w.b).min(held - to_a);
        if to_a == 0 && to_b == 0 {
            return Err(ChannelError::NothingToWithdraw);
        }
        self.withdrawn = Withdrawn {
            a: w.a + to_a,
            b: w.b + to_b,
            version: state.version,
        };
        Ok((to_a, to_b))
    }

    /// A final, lock-free, co-signed state pays out at once, only while the channel is open:
    /// once a close is under way, a final state kept from earlier (a `Finalize` the hub said
    /// it refused) must not overtake the dispute over later states (ATTACKS F6). Returns
    /// `(payout_a, payout_b)`.
    pub fn cooperative_close(
        &mut self,
        chain_id: ChainId,
        cosigned: &CoSigned,
    ) -> Result<(Amount, Amount), ChannelError> {
        if self.status != ChannelStatus::Open {
            return Err(ChannelError::NotOpen);
        }
        if !cosigned.state.is_final {
            return Err(ChannelError::NotFinal);
        }
        let snapshot = Snapshot {
            cosigned: *cosigned,
            locks: Vec::new(),
        };
        self.admits(chain_id, &snapshot).map_err(|e| match e {
            ChannelError::State(StateError::LocksMismatch) => ChannelError::NotFinal,
            e => e,
        })?;
        let (payout_a, payout_b) = payouts(
            self.deposits(),
            self.paid_out(),
            snapshot.state(),
            &[],
            |_| None,
        )?;
        self.status = ChannelStatus::Settled { payout_a, payout_b };
        Ok((payout_a, payout_b))
    }

    /// `(deposit_a, deposit_b)`: everything each side ever put in.
    pub fn deposits(&self) -> (Amount, Amount) {
        (self.deposit_a, self.deposit_b)
    }

    /// `(a, b)`: what withdrawals paid each side so far.
    pub fn paid_out(&self) -> (Amount, Amount) {
        (self.withdrawn.a, self.withdrawn.b)
    }

    /// A participant starts the dispute window with `snapshot`. Returns `settle_after`.
    pub fn close(
        &mut self,
        chain_id: ChainId,
        by: &Address,
        snapshot: Snapshot,
        height: Height,
    ) -> Result<Height, ChannelError> {
        self.require_participant(by)?;
        if self.status != ChannelStatus::Open {
            return Err(ChannelError::NotOpen);
        }
        self.admits(chain_id, &snapshot)?;
        let settle_after = height
            .checked_add(self.challenge_period)
            .ok_or(amount::AmountError::Overflow)?;
        self.status = ChannelStatus::Closing {
            stored: Box::new(snapshot),
            settle_after,
        };
        Ok(settle_after)
    }

    /// Anyone replaces the stored state with a higher version inside the window.
    pub fn challenge(
        &mut self,
        chain_id: ChainId,
        snapshot: Snapshot,
        height: Height,
    ) -> Result<(), ChannelError> {
        let ChannelStatus::Closing {
            stored,
            settle_after,
        } = &self.status
        else {
            return Err(ChannelError::NotClosing);
        };
        if height >= *settle_after {
            return Err(ChannelError::WindowClosed(*settle_after));
        }
        let (stored_v, got) = (stored.state().version, snapshot.state().version);
        if got <= stored_v {
            return Err(ChannelError::StaleVersion {
                stored: stored_v,
                got,
            });
        }
        self.admits(chain_id, &snapshot)?;
        let settle_after = *settle_after;
        self.status = ChannelStatus::Closing {
            stored: Box::new(snapshot),
            settle_after,
        };
        Ok(())
    }

    /// Pays out once the window has passed and every lock has expired.
    pub fn settle(
        &mut self,
        height: Height,
        registered_at: impl Fn(&Hash32) -> Option<Height>,
    ) -> Result<(Amount, Amount), ChannelError> {
        let ChannelStatus::Closing {
            stored,
            settle_after,
        } = &self.status
        else {
            return Err(ChannelError::NotClosing);
        };
        if height < *settle_after {
            return Err(ChannelError::TooEarly(*settle_after));
        }
        if let Some(latest) = stored
            .locks
            .iter()
            .map(|l| l.expiry)
            .max()
            .filter(|e| *e > height)
        {
            return Err(ChannelError::LocksPending(latest));
        }
        let (payout_a, payout_b) = payouts(
            self.deposits(),
            self.paid_out(),
            stored.state(),
            &stored.locks,
            registered_at,
        )?;
        self.status = ChannelStatus::Settled { payout_a, payout_b };
        Ok((payout_a, payout_b))
    }

    /// What a party holding a co-signed state at version `ours` should send about this channel
    /// at `height`, judged by the rules `challenge` and `settle` apply to a transaction in the
    /// next block: a challenge while the chain holds a lower version and the window is open, a
    /// settle once the window and every stored lock have passed, else nothing.
    pub fn reaction(&self, ours: u64, height: Height) -> Reaction {
        let ChannelStatus::Closing {
            stored,
            settle_after,
        } = &self.status
        else {
            return Reaction::Nothing;
        };
        let locks_end = stored.locks.iter().map(|l| l.expiry).max().unwrap_or(0);
        if challenge_lands(*settle_after, height) {
            match must_challenge(stored.state().version, *settle_after, ours, height) {
                true => Reaction::Challenge,
                false => Reaction::Nothing,
            }
        } else if height.saturating_add(1) >= locks_end {
            Reaction::Settle
        } else {
            Reaction::Nothing
        }
    }

    /// The locks of the stored closing state, if closing.
    pub fn closing_locks(&self) -> &[Lock] {
        match &self.status {
            ChannelStatus::Closing { stored, .. } => &stored.locks,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelState;
    use crate::keys::Keypair;
    use crate::update::{apply, Change, Context, Policy, Position};
    use crate::{channel::Direction, hash::sha256, Party};

    const CHAIN: ChainId = 9;

    struct Fx {
        ka: Keypair,
        kb: Keypair,
        rec: ChannelRecord,
    }

    fn fx() -> Fx {
        let (ka, kb) = (
            Keypair::from_secret(&[1; 32]).unwrap(),
            Keypair::from_secret(&[2; 32]).unwrap(),
        );
        let mut rec = ChannelRecord::open(
            CHAIN,
            ka.address(),
            kb.address(),
            100,
            5,
            &Hash32([0; 32]),
            10,
            &ChannelLimits::default(),
        )
        .unwrap();
        rec.deposit(&kb.address(), 50).unwrap();
        Fx { ka, kb, rec }
    }

    fn ctx() -> Context {
        Context {
            deposit_a: 100,
            deposit_b: 50,
            height: 10,
            policy: Policy::default(),
        }
    }

    fn sign(f: &Fx, p: &Position) -> Snapshot {
        let s = p.state;
        Snapshot {
            cosigned: CoSigned {
                state: s,
                sig_a: s.sign(&f.ka),
                sig_b: s.sign(&f.kb),
            },
            locks: p.locks.clone(),
        }
    }

    fn pay(p: &Position, n: u8, amount: Amount) -> Position {
        let lock = Lock {
            direction: Direction::AtoB,
            amount,
            hashlock: sha256(&[n; 32]),
            expiry: 30,
        };
        let p = apply(p, &Change::AddLock { lock }, Party::A, &ctx()).unwrap();
        apply(
            &p,
            &Change::Unlock {
                secret: Hash32([n; 32]),
            },
            Party::B,
            &ctx(),
        )
        .unwrap()
    }

    #[test]
    fn open_rejects_self_channels_and_bad_periods() {
        let a = Address([1; 32]);
        let l = ChannelLimits::default();
        assert_eq!(
            ChannelRecord::open(1, a, a, 1, 5, &Hash32([0; 32]), 0, &l),
            Err(ChannelError::SelfChannel)
        );
        let r = ChannelRecord::open(1, a, Address([2; 32]), 1, 1, &Hash32([0; 32]), 0, &l);
        assert!(matches!(r, Err(ChannelError::ChallengePeriod { .. })));
    }

    #[test]
    fn deposit_only_by_participants_and_while_open() {
        let mut f = fx();
        assert_eq!(
            f.rec.deposit(&Address([3; 32]), 1),
            Err(ChannelError::NotParticipant)
        );
        assert_eq!(f.rec.deposit(&f.ka.address(), 5), Ok(105));
        assert!(matches!(
            f.rec.deposit(&f.ka.address(), crate::MAX_AMOUNT),
            Err(ChannelError::Amount(_))
        ));
    }

    #[test]
    fn stale_close_is_overridden_by_challenge() {
        let mut f = fx();
        let v0 = Position::opening(ChannelState::opening(CHAIN, f.rec.id));
        let v2 = pay(&v0, 1, 40);
        let v4 = pay(&v2, 2, 30);
        let (old, new) = (sign(&f, &v2), sign(&f, &v4));
        let a = f.ka.address();
        assert_eq!(f.rec.close(CHAIN, &a, old.clone(), 20), Ok(25));
        assert_eq!(f.rec.settle(24, |_| None), Err(ChannelError::TooEarly(25)));
        assert_eq!(
            f.rec.challenge(CHAIN, old, 21),
            Err(ChannelError::StaleVersion { stored: 2, got: 2 })
        );
        assert_eq!(
            f.rec.challenge(CHAIN, new.clone(), 25),
            Err(ChannelError::WindowClosed(25))
        );
        assert_eq!(f.rec.challenge(CHAIN, new, 24), Ok(()));
        assert_eq!(f.rec.settle(25, |_| None), Ok((30, 120)));
        assert!(matches!(f.rec.status, ChannelStatus::Settled { .. }));
    }

    #[test]
    fn close_needs_a_participant_and_valid_signatures() {
        let mut f = fx();
        let v0 = Position::opening(ChannelState::opening(CHAIN, f.rec.id));
        let mut snap = sign(&f, &pay(&v0, 1, 10));
        assert_eq!(
            f.rec.close(CHAIN, &Address([7; 32]), snap.clone(), 20),
            Err(ChannelError::NotParticipant)
        );
        snap.cosigned.sig_b = snap.cosigned.sig_a;
        assert!(matches!(
            f.rec.close(CHAIN, &f.ka.address(), snap, 20),
            Err(ChannelError::State(_))
        ));
        let foreign = sign(
            &f,
            &Position::opening(ChannelState {
                version: 1,
                ..ChannelState::opening(CHAIN + 1, f.rec.id)
            }),
        );
        assert!(matches!(
            f.rec.close(CHAIN, &f.ka.address(), foreign, 20),
            Err(ChannelError::State(_))
        ));
    }

    #[test]
    fn unsigned_version_zero_can_close() {
        let mut f = fx();
        let snap = Snapshot::opening(CHAIN, f.rec.id);
        assert_eq!(f.rec.close(CHAIN, &f.kb.address(), snap, 0), Ok(5));
        assert_eq!(f.rec.settle(5, |_| None), Ok((100, 50)));
    }

    #[test]
    fn settle_waits_for_lock_expiry() {
        let mut f = fx();
        let v0 = Position::opening(ChannelState::opening(CHAIN, f.rec.id));
        let lock = Lock {
            direction: Direction::AtoB,
            amount: 10,
            hashlock: sha256(&[1; 32]),
            expiry: 30,
        };
        let v1 = apply(&v0, &Change::AddLock { lock }, Party::A, &ctx()).unwrap();
        f.rec
            .close(CHAIN, &f.ka.address(), sign(&f, &v1), 11)
            .unwrap();
        assert_eq!(
            f.rec.settle(20, |_| None),
            Err(ChannelError::LocksPending(30))
        );
        assert_eq!(f.rec.settle(30, |_| Some(29)), Ok((90, 60)));
    }

    #[test]
    fn the_reaction_is_what_the_next_block_would_take() {
        let mut f = fx();
        let v0 = Position::opening(ChannelState::opening(CHAIN, f.rec.id));
        assert_eq!(f.rec.reaction(5, 10), Reaction::Nothing, "open");
        let v3 = pay(&v0, 3, 40);
        let a = f.rec.a;
        let settle_after = f.rec.close(CHAIN, &a, sign(&f, &v3), 10).unwrap();
        let locks_end = f.rec.closing_locks().iter().map(|l| l.expiry).max();
        let stored = locks_end.unwrap_or(0).max(settle_after);
        let v = sign(&f, &v3).state().version;
        assert_eq!(f.rec.reaction(v + 1, 10), Reaction::Challenge);
        assert_eq!(
            f.rec.reaction(v, 10),
            Reaction::Nothing,
            "the chain holds ours"
        );
        assert_eq!(f.rec.reaction(v + 1, settle_after - 2), Reaction::Challenge);
        // From here a transaction lands at `settle_after`: no challenge, a settle if no lock
        // is pending.
        let at_end = f.rec.reaction(v + 1, settle_after - 1);
        assert_ne!(at_end, Reaction::Challenge, "the window would have closed");
        assert_eq!(f.rec.reaction(v, stored - 1), Reaction::Settle);
        if stored > settle_after {
            assert_eq!(at_end, Reaction::Nothing, "locks pending");
        }
    }

    #[test]
    fn cooperative_close_is_refused_once_a_close_is_under_way() {
        let mut f = fx();
        let v0 = Position::opening(ChannelState::opening(CHAIN, f.rec.id));
        let fin = apply(&v0, &Change::Finalize, Party::A, &ctx()).unwrap();
        let kept = sign(&f, &fin).cosigned;
        // Later states exist; one of them is on chain in a close.
        let v3 = pay(&v0, 3, 40);
        let a = f.rec.a;
        f.rec.close(CHAIN, &a, sign(&f, &v3), 10).unwrap();
        assert_eq!(
            f.rec.cooperative_close(CHAIN, &kept),
            Err(ChannelError::NotOpen)
        );
        assert!(matches!(f.rec.status, ChannelStatus::Closing { .. }));
    }

    #[test]
    fn cooperative_close_needs_final_state() {
        let mut f = fx();
        let v0 = Position::opening(ChannelState::opening(CHAIN, f.rec.id));
        let v2 = pay(&v0, 1, 40);
        assert_eq!(
            f.rec.cooperative_close(CHAIN, &sign(&f, &v2).cosigned),
            Err(ChannelError::NotFinal)
        );
        let fin = apply(&v2, &Change::Finalize, Party::A, &ctx()).unwrap();
        assert_eq!(
            f.rec.cooperative_close(CHAIN, &sign(&f, &fin).cosigned),
            Ok((60, 90))
        );
        assert_eq!(
            f.rec.cooperative_close(CHAIN, &sign(&f, &fin).cosigned),
            Err(ChannelError::NotOpen)
        );
    }

    fn withdraw(p: &Position, party: Party, amount: Amount) -> Position {
        apply(p, &Change::Withdraw { party, amount }, party, &ctx()).unwrap()
    }

    #[test]
    fn a_withdrawal_is_paid_once_and_netted_at_settlement() {
        let mut f = fx();
        let v0 = Position::opening(ChannelState::opening(CHAIN, f.rec.id));
        let v2 = pay(&v0, 1, 40);
        let v3 = withdraw(&v2, Party::A, 25);
        let (a, b) = (f.ka.address(), f.kb.address());
        let signed = sign(&f, &v3).cosigned;
        assert_eq!(
            f.rec.withdraw(CHAIN, &Address([7; 32]), &signed),
            Err(ChannelError::NotParticipant)
        );
        assert_eq!(
            f.rec.withdraw(CHAIN, &b, &signed),
            Ok((25, 0)),
            "either side may send it"
        );
        assert_eq!(
            f.rec.withdraw(CHAIN, &a, &signed),
            Err(ChannelError::WithdrawalReplayed { paid_at: 3, got: 3 })
        );
        // A later state that withdraws nothing more pays nothing.
        let v5 = pay(&v3, 2, 5);
        assert_eq!(
            f.rec.withdraw(CHAIN, &a, &sign(&f, &v5).cosigned),
            Err(ChannelError::NothingToWithdraw)
        );
        // A state from before the withdrawal settles with the advance taken off: a: 60 - 25.
        let mut stale = f.rec.clone();
        stale.close(CHAIN, &a, sign(&f, &v2), 20).unwrap();
        assert_eq!(stale.settle(25, |_| None), Ok((35, 90)));
        assert_eq!(f.rec.close(CHAIN, &a, sign(&f, &v5), 20), Ok(25));
        // a: 100 - 40 - 5 - 25 withdrawn = 30; b: 50 + 45.
        assert_eq!(f.rec.settle(25, |_| None), Ok((30, 95)));
        assert_eq!(
            30 + 95 + 25,
            100 + 50,
            "payouts and withdrawals sum to the deposits"
        );
    }

    #[test]
    fn a_withdrawal_that_never_reached_the_chain_is_paid_at_settlement() {
        let mut f = fx();
        let v0 = Position::opening(ChannelState::opening(CHAIN, f.rec.id));
        let v1 = withdraw(&v0, Party::B, 20);
        let v2 = withdraw(&v1, Party::A, 10);
        let a = f.ka.address();
        f.rec.close(CHAIN, &a, sign(&f, &v1), 20).unwrap();
        assert_eq!(
            f.rec.withdraw(CHAIN, &a, &sign(&f, &v2).cosigned),
            Err(ChannelError::NotOpen),
            "a closing channel pays at settlement, not twice"
        );
        f.rec.challenge(CHAIN, sign(&f, &v2), 21).unwrap();
        assert_eq!(f.rec.settle(25, |_| None), Ok((100, 50)));
    }

    #[test]
    fn a_state_without_a_paid_withdrawal_settles_net_of_it() {
        let mut f = fx();
        let v0 = Position::opening(ChannelState::opening(CHAIN, f.rec.id));
        let v1 = withdraw(&v0, Party::A, 30);
        let a = f.ka.address();
        f.rec.withdraw(CHAIN, &a, &sign(&f, &v1).cosigned).unwrap();
        // The peer co-signed A's withdrawal behind A's back; A went on from v0.
        let mut branch = pay(&v0, 1, 10);
        branch.state.version = 9;
        let mut closing = f.rec.clone();
        closing.close(CHAIN, &a, sign(&f, &branch), 20).unwrap();
        assert_eq!(closing.settle(25, |_| None), Ok((90 - 30, 60)));
        let fin = apply(&v1, &Change::Finalize, Party::A, &ctx()).unwrap();
        assert_eq!(
            f.rec.cooperative_close(CHAIN, &sign(&f, &fin).cosigned),
            Ok((70, 50))
        );
    }

    #[test]
    fn an_advance_beyond_a_branch_is_charged_to_the_peer_and_the_chain_pays_no_more_than_it_holds()
    {
        let mut f = fx();
        let v0 = Position::opening(ChannelState::opening(CHAIN, f.rec.id));
        let a = f.ka.address();
        f.rec
            .withdraw(CHAIN, &a, &sign(&f, &withdraw(&v0, Party::A, 30)).cosigned)
            .unwrap();
        // On the branch below the withdrawal A pays B everything, and B withdraws it all.
        let mut all = pay(&v0, 1, 100);
        all.state.version = 5;
        let emptied = withdraw(&all, Party::B, 150);
        let mut net = f.rec.clone();
        net.close(CHAIN, &a, sign(&f, &all), 20).unwrap();
        assert_eq!(
            net.settle(25, |_| None),
            Ok((0, 150 - 30)),
            "B bears A's advance"
        );
        assert_eq!(
            f.rec.withdraw(CHAIN, &a, &sign(&f, &emptied).cosigned),
            Ok((0, 120)),
            "only what the channel still holds"
        );
        f.rec.close(CHAIN, &a, sign(&f, &emptied), 20).unwrap();
        assert_eq!(f.rec.settle(25, |_| None), Ok((0, 0)));
        assert_eq!(f.rec.withdrawn.a + f.rec.withdrawn.b, 150);
    }

    #[test]
    fn a_withdrawal_beyond_the_deposits_or_unsigned_is_refused() {
        let mut f = fx();
        let v0 = Position::opening(ChannelState::opening(CHAIN, f.rec.id));
        let over = Context {
            deposit_a: 1_000,
            ..ctx()
        };
        let big = apply(
            &v0,
            &Change::Withdraw {
                party: Party::A,
                amount: 500,
            },
            Party::A,
            &over,
        )
        .unwrap();
        let a = f.ka.address();
        assert_eq!(
            f.rec.withdraw(CHAIN, &a, &sign(&f, &big).cosigned),
            Err(ChannelError::State(StateError::NegativeBalance(Party::A)))
        );
        let mut half = sign(&f, &withdraw(&v0, Party::A, 5)).cosigned;
        half.sig_b = half.sig_a;
        assert!(matches!(
            f.rec.withdraw(CHAIN, &a, &half),
            Err(ChannelError::State(StateError::BadSignature(..)))
        ));
        assert_eq!(f.rec.withdrawn, Withdrawn::default(), "nothing changed");
    }

    #[test]
    fn settle_requires_closing() {
        let mut f = fx();
        assert_eq!(f.rec.settle(100, |_| None), Err(ChannelError::NotClosing));
        assert_eq!(
            f.rec
                .challenge(CHAIN, Snapshot::opening(CHAIN, f.rec.id), 1),
            Err(ChannelError::NotClosing)
        );
    }
}
