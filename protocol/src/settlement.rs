//! Settlement maths: what a closed channel pays each side, from the deposits, the withdrawals
//! already paid, the stored state, its locks and the on-chain secret registry. Payouts and paid
//! withdrawals together always sum to the deposits.

use crate::amount::{self, Amount};
use crate::channel::{ChannelState, Direction, Lock, StateError};
use crate::hash::Hash32;
use crate::onchain::Withdrawn;
use crate::Height;

/// Payouts `(to_a, to_b)`. A lock goes to its receiver only if its secret was registered at a
/// height strictly below the lock's expiry; otherwise it returns to its sender. What the state
/// withdraws beyond the withdrawals the chain paid (`paid`) is paid now, to its side.
pub fn payouts(
    (deposit_a, deposit_b): (Amount, Amount),
    paid: Withdrawn,
    state: &ChannelState,
    locks: &[Lock],
    registered_at: impl Fn(&Hash32) -> Option<Height>,
) -> Result<(Amount, Amount), StateError> {
    state.check_locks(locks)?;
    let (mut to_a, mut to_b) = state.balances(deposit_a, deposit_b)?;
    let unpaid_a =
        amount::sub(state.withdrawn_a, paid.a).map_err(|_| StateError::WithdrawalUndone)?;
    let unpaid_b =
        amount::sub(state.withdrawn_b, paid.b).map_err(|_| StateError::WithdrawalUndone)?;
    to_a = amount::add(to_a, unpaid_a)?;
    to_b = amount::add(to_b, unpaid_b)?;
    for lock in locks {
        let paid = registered_at(&lock.hashlock).is_some_and(|h| h < lock.expiry);
        let to_receiver_a = lock.direction == Direction::BtoA;
        let credit_a = if paid { to_receiver_a } else { !to_receiver_a };
        let side = if credit_a { &mut to_a } else { &mut to_b };
        *side = amount::add(*side, lock.amount)?;
    }
    debug_assert_eq!(
        to_a as u128 + to_b as u128 + paid.a as u128 + paid.b as u128,
        deposit_a as u128 + deposit_b as u128,
        "settlement must conserve the deposits"
    );
    Ok((to_a, to_b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::locks_root;
    use crate::hash::sha256;

    fn setup() -> (ChannelState, Vec<Lock>) {
        let mut locks = vec![
            Lock {
                direction: Direction::AtoB,
                amount: 30,
                hashlock: sha256(&[1]),
                expiry: 50,
            },
            Lock {
                direction: Direction::BtoA,
                amount: 20,
                hashlock: sha256(&[2]),
                expiry: 60,
            },
        ];
        locks.sort_by_key(|l| l.hashlock);
        let mut s = ChannelState::opening(1, Hash32([0; 32]));
        s.version = 3;
        s.sent_a = 10;
        s.locked_a = 30;
        s.locked_b = 20;
        s.locks_root = locks_root(&locks);
        (s, locks)
    }

    #[test]
    fn unregistered_locks_refund_their_senders() {
        let (s, locks) = setup();
        assert_eq!(
            payouts((100, 100), Withdrawn::default(), &s, &locks, |_| None),
            Ok((90, 110))
        );
    }

    #[test]
    fn registered_in_time_pays_the_receiver() {
        let (s, locks) = setup();
        let a_to_b = sha256(&[1]);
        let r = payouts((100, 100), Withdrawn::default(), &s, &locks, |h| {
            (*h == a_to_b).then_some(49)
        });
        assert_eq!(r, Ok((60, 140)));
    }

    #[test]
    fn registered_at_or_after_expiry_refunds() {
        let (s, locks) = setup();
        let a_to_b = sha256(&[1]);
        let r = payouts((100, 100), Withdrawn::default(), &s, &locks, |h| {
            (*h == a_to_b).then_some(50)
        });
        assert_eq!(r, Ok((90, 110)));
    }

    #[test]
    fn mismatched_locks_are_rejected() {
        let (s, mut locks) = setup();
        locks.pop();
        assert_eq!(
            payouts((100, 100), Withdrawn::default(), &s, &locks, |_| None),
            Err(StateError::LocksMismatch)
        );
    }

    #[test]
    fn state_beyond_deposits_is_rejected() {
        let (s, locks) = setup();
        assert!(matches!(
            payouts((10, 100), Withdrawn::default(), &s, &locks, |_| None),
            Err(StateError::NegativeBalance(_))
        ));
    }
}
