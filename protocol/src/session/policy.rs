//! A wallet's policy on locks: it takes a lock toward itself only for an unpaid invoice it
//! issued, for at least the invoice's amount, with enough blocks left to claim it on chain; and
//! the lock it gives the hub to pay an invoice carries the hub's fee and an expiry the hub's terms
//! accept.

use crate::amount::{Amount, AmountError};
use crate::channel::{Direction, Lock};
use crate::hash::Hash32;
use crate::routing::RoutingTerms;
use crate::Height;

/// Blocks a payer's lock stays below the hub's longest expiry, so that a hub a few blocks behind
/// the payer's view of the chain still accepts it.
pub const PAYER_EXPIRY_SLACK: Height = 5;

/// The payer's lock toward the hub for an invoice of `amount` at `height`: amount plus the hub's
/// fee, expiring as late as the terms allow (less the slack), and never so soon that the hub has
/// no room for its own margin.
pub fn payer_lock(
    terms: &RoutingTerms,
    amount: Amount,
    hashlock: Hash32,
    height: Height,
) -> Result<Lock, AmountError> {
    let floor = height
        .saturating_add(terms.policy.min_expiry_delta)
        .saturating_add(terms.reveal_margin)
        .saturating_add(1);
    Ok(Lock {
        direction: Direction::AtoB,
        amount: terms.incoming_amount(amount)?,
        hashlock,
        expiry: terms
            .incoming_expiry(height)
            .saturating_sub(PAYER_EXPIRY_SLACK)
            .max(floor),
    })
}

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
    #[error("this lock's secret was registered on chain before its expiry: it is not given back")]
    ClaimedOnChain,
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

/// Whether the wallet's guard must register the secret of an incoming `lock` (toward the
/// wallet, for one of its invoices) at `height`: on an open channel once the hub has let it
/// come within `unlock_margin` of its expiry without co-signing the unlock; on a channel
/// closing on chain at once, for every such lock of the state the chain holds, whoever closed
/// (ATTACKS F5: a hub that learnt the secret, ignored the unlock and closed).
pub fn must_register(lock: &Lock, height: Height, unlock_margin: Height, closing: bool) -> bool {
    let live = lock.direction == Direction::BtoA && height < lock.expiry;
    live && (closing || height.saturating_add(unlock_margin) >= lock.expiry)
}

/// Whether removing `lock` would give away what a registration made someone's: a secret
/// registered on chain (at `registered_at`) before the lock's expiry lets its payee claim it at
/// settlement, so neither side may take it back off chain. The wallet never co-signs the hub's
/// removal of a lock it claimed (F10), nor proposes removing its own lock toward the hub once
/// the hub's claim was registered in time (F2).
pub fn removal_gives_away(lock: &Lock, registered_at: Option<Height>) -> bool {
    registered_at.is_some_and(|h| h < lock.expiry)
}

/// Whether an open channel holding `lock` toward the wallet must be closed on chain now: the
/// guard's window before expiry, or, once it expired, as long as the secret was registered in
/// time (a close that failed is retried; the registration is worth nothing on an open channel).
pub fn must_force_close(
    lock: &Lock,
    height: Height,
    unlock_margin: Height,
    registered_at: Option<Height>,
) -> bool {
    let inbound = lock.direction == Direction::BtoA;
    let near = height.saturating_add(unlock_margin) >= lock.expiry;
    inbound && near && (height < lock.expiry || removal_gives_away(lock, registered_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closing_channel_gets_every_live_incoming_secret_registered_at_once() {
        let l = lock(100, 50);
        assert!(
            !must_register(&l, 10, 5, false),
            "open: the hub still has time"
        );
        assert!(must_register(&l, 45, 5, false), "open: within the margin");
        assert!(must_register(&l, 10, 5, true), "closing: at once");
        assert!(!must_register(&l, 50, 5, true), "expired: worth nothing");
        let out = Lock {
            direction: Direction::AtoB,
            ..l
        };
        assert!(!must_register(&out, 10, 5, true), "only locks toward us");
    }

    #[test]
    fn a_lock_registered_in_time_is_never_removed_and_its_close_is_retried() {
        let l = lock(100, 50);
        assert!(removal_gives_away(&l, Some(49)));
        assert!(!removal_gives_away(&l, Some(50)));
        assert!(!removal_gives_away(&l, None));
        assert!(must_force_close(&l, 46, 5, None));
        assert!(
            !must_force_close(&l, 60, 5, None),
            "expired unclaimed: nothing to save"
        );
        assert!(
            must_force_close(&l, 60, 5, Some(47)),
            "claimed in time: close again"
        );
        assert!(!must_force_close(&l, 10, 5, Some(9)), "not yet due");
    }

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

    #[test]
    fn a_payer_lock_carries_the_fee_and_an_expiry_the_hub_accepts() {
        let terms = RoutingTerms::default();
        let l = payer_lock(&terms, 1_000, Hash32([1; 32]), 10).unwrap();
        assert_eq!(l.amount, terms.incoming_amount(1_000).unwrap());
        assert_eq!(
            l.expiry,
            10 + terms.policy.max_expiry_delta - PAYER_EXPIRY_SLACK
        );
        let out = terms.outgoing_expiry(&l, 1_000, 10 + PAYER_EXPIRY_SLACK);
        assert!(out.is_ok(), "a hub a few blocks behind routes it: {out:?}");
        assert!(payer_lock(&terms, u64::MAX, Hash32([1; 32]), 10).is_err());
    }
}
