//! A wallet's acceptance policy for a lock toward itself: it takes one only for an unpaid invoice
//! it issued, for at least the invoice's amount, with enough blocks left to claim it on chain.

use crate::amount::Amount;
use crate::channel::Lock;
use crate::Height;

/// What the wallet's store says of the invoice behind a lock's hashlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvoiceFacts {
    pub amount: Amount,
    pub paid: bool,
}

/// Why an incoming lock is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LockRefusal {
    #[error("no invoice of this wallet has this hashlock")]
    NoInvoice,
    #[error("invoice already paid")]
    AlreadyPaid,
    #[error("lock amount {got} is below the invoice amount {needed}")]
    BelowInvoice { needed: Amount, got: Amount },
    #[error("lock expires at {expiry}, too soon to claim (needs more than {min})")]
    ExpiresTooSoon { expiry: Height, min: Height },
}

/// Whether to take `lock` at `height`, given its invoice and the blocks the wallet keeps to
/// register the secret and close on chain (`unlock_margin`).
pub fn incoming_lock(
    lock: &Lock,
    invoice: Option<InvoiceFacts>,
    height: Height,
    unlock_margin: Height,
) -> Result<(), LockRefusal> {
    let inv = invoice.ok_or(LockRefusal::NoInvoice)?;
    if inv.paid {
        return Err(LockRefusal::AlreadyPaid);
    }
    if lock.amount < inv.amount {
        return Err(LockRefusal::BelowInvoice {
            needed: inv.amount,
            got: lock.amount,
        });
    }
    let min = height.saturating_add(unlock_margin);
    if lock.expiry <= min {
        return Err(LockRefusal::ExpiresTooSoon {
            expiry: lock.expiry,
            min,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Direction;
    use crate::Hash32;

    fn lock(amount: Amount, expiry: Height) -> Lock {
        Lock {
            direction: Direction::BtoA,
            amount,
            hashlock: Hash32([1; 32]),
            expiry,
        }
    }

    const INV: InvoiceFacts = InvoiceFacts {
        amount: 100,
        paid: false,
    };

    #[test]
    fn a_lock_for_an_unpaid_invoice_with_time_left_is_taken() {
        assert_eq!(incoming_lock(&lock(100, 20), Some(INV), 10, 5), Ok(()));
    }

    #[test]
    fn a_lock_without_an_invoice_is_refused() {
        assert_eq!(
            incoming_lock(&lock(100, 20), None, 10, 5),
            Err(LockRefusal::NoInvoice)
        );
    }

    #[test]
    fn a_lock_for_a_paid_invoice_is_refused() {
        let paid = InvoiceFacts { paid: true, ..INV };
        assert_eq!(
            incoming_lock(&lock(100, 20), Some(paid), 10, 5),
            Err(LockRefusal::AlreadyPaid)
        );
    }

    #[test]
    fn a_lock_below_the_invoice_is_refused() {
        assert_eq!(
            incoming_lock(&lock(99, 20), Some(INV), 10, 5),
            Err(LockRefusal::BelowInvoice {
                needed: 100,
                got: 99
            })
        );
    }

    #[test]
    fn a_lock_expiring_within_the_margin_is_refused() {
        assert_eq!(
            incoming_lock(&lock(100, 15), Some(INV), 10, 5),
            Err(LockRefusal::ExpiresTooSoon {
                expiry: 15,
                min: 15
            })
        );
    }
}
