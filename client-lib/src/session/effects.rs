//! What a co-signed change means for this wallet's payments and invoices: the store effects to
//! commit with it and the events to announce after. One function for both directions, so a
//! change has the same meaning whoever proposed it.

use crate::events::WalletEvent;
use crate::store::{ChannelStatus, Effect, PaymentDirection, PaymentRow, PaymentStatus};
use sluice_protocol::{sha256, Change, Direction, Hash32, Party, Position};

/// Effects and events of `change` applied to `before` (the client is party `a`).
pub(crate) fn of_change(
    before: &Position,
    change: &Change,
    reason: Option<String>,
) -> (Vec<Effect>, Vec<WalletEvent>) {
    let find = |h: &Hash32| before.locks.iter().find(|l| &l.hashlock == h).copied();
    let channel_id = before.state.channel_id;
    match change {
        Change::AddLock { lock } if lock.direction == Direction::BtoA => {
            let row = PaymentRow {
                hashlock: lock.hashlock,
                direction: PaymentDirection::In,
                channel_id,
                amount: lock.amount,
                fee: 0,
                status: PaymentStatus::Pending,
                secret: None,
                reason: None,
                invoice: None,
                created_at: crate::store::now(),
            };
            (vec![Effect::Insert(row)], vec![])
        }
        Change::AddLock { .. } => (vec![], vec![]),
        Change::Unlock { secret } => {
            let hashlock = sha256(&secret.0);
            match find(&hashlock) {
                Some(l) if l.direction == Direction::AtoB => (
                    vec![Effect::Completed {
                        hashlock,
                        direction: PaymentDirection::Out,
                        secret: *secret,
                    }],
                    vec![WalletEvent::PaymentSent {
                        hashlock,
                        secret: *secret,
                    }],
                ),
                Some(l) => (
                    vec![
                        Effect::Completed {
                            hashlock,
                            direction: PaymentDirection::In,
                            secret: *secret,
                        },
                        Effect::InvoicePaid(hashlock),
                    ],
                    vec![WalletEvent::PaymentReceived {
                        hashlock,
                        amount: l.amount,
                    }],
                ),
                None => (vec![], vec![]),
            }
        }
        Change::RemoveLock { hashlock } => {
            let direction = match find(hashlock).map(|l| l.direction) {
                Some(Direction::AtoB) => PaymentDirection::Out,
                _ => PaymentDirection::In,
            };
            let reason = reason.unwrap_or_else(|| "lock removed".into());
            (
                vec![Effect::Failed {
                    hashlock: *hashlock,
                    direction,
                    reason: reason.clone(),
                }],
                vec![WalletEvent::PaymentFailed {
                    hashlock: *hashlock,
                    reason,
                }],
            )
        }
        Change::Finalize => (vec![Effect::Status(ChannelStatus::Final)], vec![]),
        // Withdrawals are paid by a transaction the withdrawer sends (see `withdraw`), or at
        // settlement; no payment or invoice changes.
        Change::Withdraw { party, amount } => (
            vec![],
            vec![WalletEvent::WithdrawalAgreed {
                channel_id,
                by_hub: *party == Party::B,
                amount: *amount,
            }],
        ),
        Change::Bump => (vec![], vec![]),
    }
}
