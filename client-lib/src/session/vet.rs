//! The wallet's judgement of what the hub sends: the protocol's `check_proposal`, the hub's
//! signature, then the wallet's own policy (it takes a lock toward itself only for an unpaid
//! invoice it issued, with enough amount and time to claim it).

use crate::core::Core;
use crate::error::Result;
use crate::events::WalletEvent;
use crate::store::{ChannelRow, Effect, PaymentDirection};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::wire::hub::{ErrorCode, Proposal};
use sluice_protocol::{check_proposal, Change, Direction, Height, Party, Position, Snapshot};

type Refusal = (ErrorCode, String);

/// Checks a hub proposal against our latest state; the next position if acceptable.
pub(crate) async fn hub_proposal(
    core: &Core,
    ch: &ChannelRow,
    p: &Proposal,
    terms: &RoutingTerms,
) -> Result<Position, Refusal> {
    let ctx = crate::chain::context(&core.chain, &ch.id, terms.policy)
        .await
        .map_err(|e| (ErrorCode::Internal, e.to_string()))?;
    let next = check_proposal(&ch.position(), &p.change, &p.state, Party::B, &ctx)
        .map_err(|e| (ErrorCode::InvalidUpdate, e.to_string()))?;
    core.hub()
        .verify_hash(&p.state.signing_hash(), &p.sig)
        .map_err(|e| (ErrorCode::BadSignature, format!("hub signature: {e}")))?;
    if let Change::AddLock { lock } = &p.change {
        let Some(inv) = core.store.invoice(&lock.hashlock).await.map_err(internal)? else {
            return Err(refuse("no invoice of this wallet has this hashlock"));
        };
        if inv.paid {
            return Err(refuse("invoice already paid"));
        }
        if lock.amount < inv.amount {
            return Err(refuse("lock amount is below the invoice amount"));
        }
        if lock.expiry <= ctx.height.saturating_add(core.config.unlock_margin) {
            return Err(refuse("lock expires too soon to claim"));
        }
    }
    Ok(next)
}

fn refuse(reason: &str) -> Refusal {
    (ErrorCode::PaymentFailed, reason.to_string())
}

fn internal(e: crate::error::WalletError) -> Refusal {
    (ErrorCode::Internal, e.to_string())
}

/// The reason the hub gave earlier for a failing payment whose lock it now removes.
pub(crate) async fn removal_reason(core: &Core, change: &Change) -> Result<Option<String>> {
    let Change::RemoveLock { hashlock } = change else {
        return Ok(None);
    };
    let row = core.store.payment(hashlock, PaymentDirection::Out).await?;
    Ok(row.and_then(|r| r.reason))
}

/// What adopting the hub's newer snapshot means for our payments. Any newer co-signed state
/// carries our signature, so it is our own proposal the hub stored before we saw its `Accept`:
/// an incoming lock that disappeared while `sent_b` grew was our unlock.
pub(crate) async fn adoption_effects(
    core: &Core,
    ch: &ChannelRow,
    snap: &Snapshot,
) -> Result<(Vec<Effect>, Vec<WalletEvent>)> {
    let (old, new) = (ch.snapshot.state(), snap.state());
    let mut effects = Vec::new();
    let mut events = Vec::new();
    if new.is_final {
        effects.push(Effect::Status(crate::store::ChannelStatus::Final));
    }
    for lock in &ch.snapshot.locks {
        if snap.locks.iter().any(|l| l.hashlock == lock.hashlock) {
            continue;
        }
        let taken = lock.direction == Direction::BtoA
            && new.sent_b.saturating_sub(old.sent_b) >= lock.amount;
        match (taken, core.store.invoice(&lock.hashlock).await?) {
            (true, Some(inv)) => {
                effects.push(Effect::Completed {
                    hashlock: lock.hashlock,
                    direction: PaymentDirection::In,
                    secret: inv.secret,
                });
                effects.push(Effect::InvoicePaid(lock.hashlock));
                events.push(WalletEvent::PaymentReceived {
                    hashlock: lock.hashlock,
                    amount: lock.amount,
                });
            }
            _ => {
                let direction = match lock.direction {
                    Direction::AtoB => PaymentDirection::Out,
                    Direction::BtoA => PaymentDirection::In,
                };
                let reason = "lock removed".to_string();
                effects.push(Effect::Failed {
                    hashlock: lock.hashlock,
                    direction,
                    reason: reason.clone(),
                });
                events.push(WalletEvent::PaymentFailed {
                    hashlock: lock.hashlock,
                    reason,
                });
            }
        }
    }
    Ok((effects, events))
}

/// The next background update a channel needs at `height`, if any.
pub(crate) async fn due_change(
    core: &Core,
    ch: &ChannelRow,
    height: Height,
) -> Result<Option<Change>> {
    for lock in &ch.snapshot.locks {
        match lock.direction {
            Direction::BtoA if height < lock.expiry => {
                if let Some(inv) = core.store.invoice(&lock.hashlock).await? {
                    return Ok(Some(Change::Unlock { secret: inv.secret }));
                }
            }
            Direction::AtoB if height >= lock.expiry => {
                return Ok(Some(Change::RemoveLock {
                    hashlock: lock.hashlock,
                }));
            }
            _ => {}
        }
    }
    Ok(None)
}
