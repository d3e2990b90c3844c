//! A routed payment's life as one pure decision: facts in (the payment record, where the hub's
//! lock toward the payee stands, the height, what the chain's secret registry says), one
//! [`Step`] out. The router (a payment driven live) and recovery (payments no task drives) only
//! gather the facts and execute the step.
//!
//! The rule that keeps the hub whole (DESIGN.md §4, "Versions"): the payer's lock is released
//! only once the forward toward the payee is dead: never signed, superseded by a co-signed
//! higher state without it, or expired with no secret registered before its expiry. A secret
//! registered in time means the payee was paid on chain, so the hub claims from the payer.

use crate::store::{PaymentRecord, PaymentState};
use sluice_protocol::{Hash32, Height};

/// Where the hub's lock toward the payee stands in the payee's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    /// In the channel's latest co-signed state, with this expiry.
    Held(Height),
    /// Only in a hub proposal the payee holds signed: it may have co-signed it. `live`: its
    /// proposer still waits for the answer.
    InDoubt { live: bool },
    /// Nowhere: never signed, or dead (superseded, or removed).
    Absent,
}

/// What the chain's secret registry says of the payment's hashlock, once looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    /// Not looked up: the step that needs it asks for it ([`Step::ReadRegistry`]).
    Unknown,
    /// Not registered.
    Absent,
    /// Registered with this secret at this height.
    Registered { secret: Hash32, height: Height },
}

/// Everything the decision rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    pub pay: &'a PaymentRecord,
    pub outgoing: Outgoing,
    pub registry: Registry,
    pub height: Height,
}

/// Why a payment failed, as the payer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The forward was never signed: the routing task died before it.
    Interrupted,
    /// The payee did not take the lock (refused, or a co-signed state above it buried it).
    NotTaken,
    /// The payee did not unlock before the lock expired, nor claim it on chain in time.
    Expired,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Interrupted => "routing was interrupted before the payee got the lock",
            FailReason::NotTaken => "payee did not take the lock",
            FailReason::Expired => "payee did not unlock before the lock expired",
        }
    }
}

/// The one next move for a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Claim the payer's lock with the secret.
    Claim(Hash32),
    /// The payee claimed on chain in time: record the secret, then claim from the payer.
    RecordSecret(Hash32),
    /// The payee holds the hub's lock: record the payment forwarded.
    MarkForwarded,
    /// Propose a `Bump` above the forward in doubt; once co-signed, the forward is dead.
    Bury,
    /// The hub's lock toward the payee expired unanswered and unclaimed: remove it.
    RemoveExpiredForward,
    /// Drop the forward in doubt that expired with no secret registered in time: it is dead.
    DropDeadForward,
    /// The forward is dead: record the failure and release the payer's lock.
    Fail(FailReason),
    /// Look the hashlock up in the chain's secret registry, then decide again.
    ReadRegistry,
    /// Nothing to do now.
    Wait,
}

/// The next step of `facts.pay`.
pub fn next_step(facts: &Facts<'_>) -> Step {
    let pay = facts.pay;
    match (pay.state, pay.secret) {
        (PaymentState::Completed | PaymentState::Failed, _) => Step::Wait,
        (PaymentState::SecretKnown, Some(secret)) => Step::Claim(secret),
        (PaymentState::SecretKnown, None) => Step::Wait,
        (PaymentState::Pending | PaymentState::Forwarded, _) => open(facts),
    }
}

/// A payment whose secret the hub does not know yet.
fn open(facts: &Facts<'_>) -> Step {
    let pending = facts.pay.state == PaymentState::Pending;
    let expired = facts.pay.expiry_out.is_some_and(|e| facts.height >= e);
    let claimed = registered_in_time(facts).flatten();
    match facts.outgoing {
        Outgoing::Absent if pending => Step::Fail(FailReason::Interrupted),
        Outgoing::Absent if expired => Step::Fail(FailReason::Expired),
        Outgoing::Absent => Step::Fail(FailReason::NotTaken),
        // The payee claimed on chain while it could: the hub is owed by the payer, now.
        _ if claimed.is_some() => claimed.map_or(Step::Wait, Step::RecordSecret),
        Outgoing::Held(_) if !expired => match pending {
            true => Step::MarkForwarded,
            false => Step::Wait,
        },
        Outgoing::InDoubt { live: true } => Step::Wait,
        Outgoing::InDoubt { live: false } if !expired => Step::Bury,
        Outgoing::Held(_) | Outgoing::InDoubt { .. } => match registered_in_time(facts) {
            None => Step::ReadRegistry,
            Some(Some(secret)) => Step::RecordSecret(secret),
            Some(None) => match facts.outgoing {
                Outgoing::Held(_) => Step::RemoveExpiredForward,
                _ => Step::DropDeadForward,
            },
        },
    }
}

/// `None`: not looked up yet; `Some(secret)` if registered before the forward's expiry.
fn registered_in_time(facts: &Facts<'_>) -> Option<Option<Hash32>> {
    let expiry = facts.pay.expiry_out?;
    match facts.registry {
        Registry::Unknown => None,
        Registry::Absent => Some(None),
        Registry::Registered { secret, height } => Some((height < expiry).then_some(secret)),
    }
}

/// Whether a secret registered on chain at `height` makes the payer owe the hub `pay`: the
/// payment is open and the registration came before the forward's expiry, so the payee can
/// claim the hub's lock on chain with it.
pub fn owed_after_registration(pay: &PaymentRecord, height: Height) -> bool {
    let open = matches!(pay.state, PaymentState::Pending | PaymentState::Forwarded);
    open && pay.expiry_out.is_some_and(|e| height < e)
}

/// Why the hub refuses the payer's removal of its own expired lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RemovalRefusal {
    #[error("the hub knows this payment's secret: the lock is owed to the hub")]
    SecretKnown,
    #[error("the payee claimed this payment on chain in time: the lock is owed to the hub")]
    ClaimedOnChain,
    #[error("the hub's lock toward the payee may still be claimed; look the secret up first")]
    RegistryUnread,
}

/// What the payer's removal of its expired lock means for the payment: `Ok(true)` records it
/// failed, `Ok(false)` changes nothing. Refused while the hub is owed the lock.
pub fn payer_removes_expired(
    pay: &PaymentRecord,
    registry: Registry,
) -> Result<bool, RemovalRefusal> {
    match pay.state {
        PaymentState::SecretKnown | PaymentState::Completed => Err(RemovalRefusal::SecretKnown),
        PaymentState::Failed => Ok(false),
        PaymentState::Pending | PaymentState::Forwarded => {
            let facts = Facts {
                pay,
                outgoing: Outgoing::Absent,
                registry,
                height: Height::MAX,
            };
            match (pay.expiry_out, registered_in_time(&facts)) {
                (None, _) => Ok(true),
                (Some(_), None) => Err(RemovalRefusal::RegistryUnread),
                (Some(_), Some(Some(_))) => Err(RemovalRefusal::ClaimedOnChain),
                (Some(_), Some(None)) => Ok(true),
            }
        }
    }
}

#[cfg(test)]
mod tests;
