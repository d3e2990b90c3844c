//! Settlement maths: what a closed channel pays each side, from the deposits, the withdrawals
//! already paid, the stored state, its locks and the on-chain secret registry. Payouts and paid
//! withdrawals together always sum to the deposits.

use crate::amount::{self, Amount};
use crate::channel::{ChannelState, Direction, Lock, StateError};
use crate::hash::Hash32;
use crate::Height;

/// Payouts `(to_a, to_b)`. A lock goes to its receiver only if its secret was registered at a
/// height strictly below the lock's expiry; otherwise it returns to its sender.
///
/// Withdrawals are advances: each side gets its balance in the state plus what the state
/// withdraws, less what the chain paid it already (`paid`). A side paid more than that was paid
/// from a state this one does not follow: its peer co-signed its withdrawal proposal and then
/// kept signing on the state below. That side gets nothing more, and the difference comes out
/// of the peer's payout, the one who made it possible. Payouts and `paid` together always sum to
/// the deposits.
pub fn payouts(
    (deposit_a, deposit_b): (Amount, Amount),
    paid: (Amount, Amount),
    state: &ChannelState,
    locks: &[Lock],
    registered_at: impl Fn(&Hash32) -> Option<Height>,
) -> Result<(Amount, Amount), StateError> {
    state.check_locks(locks)?;
    let (bal_a, bal_b) = state.balances(deposit_a, deposit_b)?;
    let wide = |x: Amount| i128::from(x);
    let mut a = wide(bal_a) + wide(state.withdrawn_a) - wide(paid.0);
    let mut b = wide(bal_b) + wide(state.withdrawn_b) - wide(paid.1);
    for lock in locks {
        let paid = registered_at(&lock.hashlock).is_some_and(|h| h < lock.expiry);
        let to_receiver_a = lock.direction == Direction::BtoA;
        let credit_a = if paid { to_receiver_a } else { !to_receiver_a };
        *(if credit_a { &mut a } else { &mut b }) += wide(lock.amount);
    }
    if a < 0 {
        (a, b) = (0, b + a);
    }
    if b < 0 {
        (a, b) = (a + b, 0);
    }
    // a + b is the deposits less `paid`, which the chain never lets exceed the deposits.
    let narrow = |x: i128| {
        u64::try_from(x.max(0))
            .map_err(|_| amount::AmountError::Overflow)
            .and_then(amount::check)
    };
    let (to_a, to_b) = (narrow(a)?, narrow(b)?);
    debug_assert_eq!(
        to_a as u128 + to_b as u128 + paid.0 as u128 + paid.1 as u128,
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
            payouts((100, 100), (0, 0), &s, &locks, |_| None),
            Ok((90, 110))
        );
    }

    #[test]
    fn registered_in_time_pays_the_receiver() {
        let (s, locks) = setup();
        let a_to_b = sha256(&[1]);
        let r = payouts((100, 100), (0, 0), &s, &locks, |h| {
            (*h == a_to_b).then_some(49)
        });
        assert_eq!(r, Ok((60, 140)));
    }

    #[test]
    fn registered_at_or_after_expiry_refunds() {
        let (s, locks) = setup();
        let a_to_b = sha256(&[1]);
        let r = payouts((100, 100), (0, 0), &s, &locks, |h| {
            (*h == a_to_b).then_some(50)
        });
        assert_eq!(r, Ok((90, 110)));
    }

    #[test]
    fn mismatched_locks_are_rejected() {
        let (s, mut locks) = setup();
        locks.pop();
        assert_eq!(
            payouts((100, 100), (0, 0), &s, &locks, |_| None),
            Err(StateError::LocksMismatch)
        );
    }

    #[test]
    fn state_beyond_deposits_is_rejected() {
        let (s, locks) = setup();
        assert!(matches!(
            payouts((10, 100), (0, 0), &s, &locks, |_| None),
            Err(StateError::NegativeBalance(_))
        ));
    }
}
