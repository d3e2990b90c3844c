//! The wallet's judgement of what the hub sends, beyond the session's own checks: its policy on
//! incoming locks, and what a state it adopts or a lock due at some height mean for it.

use crate::core::Core;
use crate::error::Result;
use crate::events::WalletEvent;
use crate::store::{ChannelRow, Effect, PaymentDirection};
use sluice_protocol::session::{
    incoming_lock, removal_gives_away, InvoiceFacts, LockRefusal, Refusal,
};
use sluice_protocol::{Change, Direction, Hash32, Height, Snapshot};

/// The wallet's own policy on a hub proposal that passed the session's checks: a lock toward
/// us is taken only as `session::incoming_lock` allows, given our invoice for it, and a lock
/// toward us whose secret we registered on chain in time is not given back (F10).
pub(crate) async fn policy(
    core: &Core,
    ch: &ChannelRow,
    change: &Change,
    height: Height,
) -> Result<Option<Refusal>> {
    let lock = match change {
        Change::AddLock { lock } => lock,
        Change::RemoveLock { hashlock } => return removal_policy(core, ch, hashlock).await,
        _ => return Ok(None),
    };
    let facts = core
        .store
        .invoice(&lock.hashlock)
        .await?
        .map(|inv| InvoiceFacts {
            amount: inv.amount,
            paid: inv.paid,
        });
    Ok(
        incoming_lock(lock, facts, height, core.config.unlock_margin)
            .err()
            .map(Refusal::Lock),
    )
}

/// The hub's removal of its lock toward us: refused once we registered the secret in time.
async fn removal_policy(
    core: &Core,
    ch: &ChannelRow,
    hashlock: &Hash32,
) -> Result<Option<Refusal>> {
    let lock = ch.snapshot.locks.iter().find(|l| l.hashlock == *hashlock);
    let Some(lock) = lock.filter(|l| l.direction == Direction::BtoA) else {
        return Ok(None);
    };
    if core.store.invoice(hashlock).await?.is_none() {
        return Ok(None);
    }
    let registered = registered_at(core, hashlock).await?;
    Ok(removal_gives_away(lock, registered).then_some(Refusal::Lock(LockRefusal::ClaimedOnChain)))
}

/// The height at which `hashlock`'s secret was registered on chain, if it was.
pub(crate) async fn registered_at(core: &Core, hashlock: &Hash32) -> Result<Option<Height>> {
    Ok(core.chain.secret(hashlock).await?.map(|s| s.height))
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
            // Our own expired lock, unless the hub's claim was registered in time: then the
            // lock is the hub's, whatever the hub does about it (F2).
            Direction::AtoB if height >= lock.expiry => {
                let registered = registered_at(core, &lock.hashlock).await?;
                if !removal_gives_away(lock, registered) {
                    return Ok(Some(Change::RemoveLock {
                        hashlock: lock.hashlock,
                    }));
                }
            }
            _ => {}
        }
    }
    Ok(None)
}
