//! Payments no task of this process is driving: their router task died with an earlier hub
//! process or gave up waiting for the payee, or they were started by another hub process.
//! They are carried on from what the store shows, never from memory, so a SIGKILL between any
//! two steps leaves every payment to complete or to be undone:
//!
//! - the payee answers the hub's lock and nobody waits: the payer's lock is claimed or released
//!   at once ([`payee_answered`]);
//! - a sweep every reply timeout ([`run`]) and each party's login ([`resume`]) take every open
//!   payment no task here drives:
//!   - `secret_known`: the payer's lock is claimed;
//!   - `pending` (the payer's lock is co-signed) and stale: if the hub's lock is in the payee's
//!     channel (the payee completed it in its resync) it is recorded `forwarded`; if it is only
//!     reserved there, the payee's resync must first say whether it holds it (until then the
//!     payer's lock must stay); if it is not there at all, the payment fails and the payer's
//!     lock is released;
//!   - `forwarded` whose lock toward the payee expired unanswered: that lock is removed, then
//!     the payer's is released.
//!
//! "Stale" (untouched for three reply timeouts) keeps a sweep away from a payment that a live
//! router task of another hub process may still move on: that task is done within two.

use crate::router;
use crate::shared::{Shared, Unlocked};
use crate::store::{now_secs, ChannelRow, PaymentRecord, PaymentState, PaymentWrite, StoreError};
use crate::updater;
use sluice_protocol::update::Change;
use sluice_protocol::{Address, Direction, Hash32, Height, Snapshot};
use std::sync::Arc;
use std::time::Duration;

/// Where the hub's lock toward the payee stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    /// In the payee channel's co-signed state, with this expiry.
    Held(Height),
    /// Only in the channel's reservation: the payee may or may not have co-signed it.
    Reserved,
    /// Nowhere: the payee cannot hold it.
    Absent,
}

/// Sweeps open payments every reply timeout, for the life of the hub.
pub async fn run(sh: Arc<Shared>) {
    let every = Duration::from_millis(sh.cfg.limits.reply_timeout_ms.max(100));
    loop {
        tokio::time::sleep(every).await;
        sweep(&sh, None).await;
    }
}

/// After a client logs in: drive on its open payments, and release its locks of payments that
/// failed while it was away.
pub async fn resume(sh: Arc<Shared>, client: Address) {
    sweep(&sh, Some(&client)).await;
    release_failed(&sh, &client).await;
}

/// The payee answered the hub's lock while no router task waited for it.
pub async fn payee_answered(sh: Arc<Shared>, hashlock: Hash32, answer: Unlocked) {
    let Unlocked { secret, claim } = answer;
    // Held to the end: this task drives the payment. If another one does, or the payment is
    // unknown, nothing is read and a claim stays `secret_known` for the sweep.
    let routing = sh.start_routing(hashlock);
    let pay = match routing {
        Some(_) => sh.store.payment(&hashlock).await.ok().flatten(),
        None => None,
    };
    match (pay, secret) {
        (Some(pay), Some(secret)) => router::complete_with(&sh, &pay, secret, claim).await,
        (pay, _) => {
            if let Some(c) = claim {
                updater::abandon_unsent(&sh, c).await;
            }
            let open = |p: &PaymentRecord| {
                matches!(p.state, PaymentState::Pending | PaymentState::Forwarded)
            };
            if let Some(pay) = pay.filter(open) {
                router::fail(&sh, &pay, "payee declined the payment").await;
            }
        }
    }
}

async fn sweep(sh: &Arc<Shared>, only: Option<&Address>) {
    let open = match sh.store.open_payments().await {
        Ok(open) => open,
        Err(e) => return tracing::warn!(error = %e, "cannot list open payments"),
    };
    let mine = |p: &PaymentRecord| only.is_none_or(|c| p.payer == *c || p.payee == *c);
    for pay in open.into_iter().filter(mine) {
        if !sh.is_routing(&pay.hashlock) && due(sh, &pay) {
            tokio::spawn(recover(sh.clone(), pay));
        }
    }
}

/// Whether the sweep has something to do for `pay` now.
fn due(sh: &Shared, pay: &PaymentRecord) -> bool {
    let payer_online = sh.sessions.get(&pay.payer).is_some();
    match pay.state {
        PaymentState::SecretKnown => payer_online,
        PaymentState::Pending => stale(sh, pay),
        PaymentState::Forwarded => pay.expiry_out.is_some_and(|e| sh.height() >= e),
        PaymentState::Completed | PaymentState::Failed => false,
    }
}

fn stale(sh: &Shared, pay: &PaymentRecord) -> bool {
    let after = sh
        .cfg
        .limits
        .reply_timeout_ms
        .saturating_mul(3)
        .div_ceil(1000);
    now_secs().saturating_sub(pay.updated_at) >= after
}

async fn recover(sh: Arc<Shared>, pay: PaymentRecord) {
    let Some(_routing) = sh.start_routing(pay.hashlock) else {
        return;
    };
    match (pay.state, pay.secret) {
        (PaymentState::SecretKnown, Some(secret)) => router::complete(&sh, &pay, secret).await,
        (PaymentState::Pending, _) => pending(&sh, &pay).await,
        (PaymentState::Forwarded, _) => expired(&sh, &pay).await,
        _ => {}
    }
}

async fn pending(sh: &Shared, pay: &PaymentRecord) {
    match outgoing(sh, pay).await {
        Ok(Outgoing::Held(_)) => mark_forwarded(sh, pay).await,
        Ok(Outgoing::Reserved) => in_doubt(sh, pay).await,
        Ok(Outgoing::Absent) => {
            let reason = "routing was interrupted before the payee got the lock";
            router::fail(sh, pay, reason).await
        }
        Err(e) => {
            tracing::warn!(hashlock = %pay.hashlock, error = %e, "cannot read the payee's channel")
        }
    }
}

/// The hub's lock toward the payee is only in a reservation given up on: the payee may hold it
/// co-signed. It is dead once a `Bump` above it is co-signed, or once it expired with no secret
/// registered before its expiry; a secret registered in time is claimed from the payer.
async fn in_doubt(sh: &Shared, pay: &PaymentRecord) {
    let Some(channel_out) = pay.channel_out else {
        return;
    };
    if let Ok(true) = updater::bury(sh, &channel_out).await {
        return router::fail(sh, pay, "payee did not take the lock").await;
    }
    let Some(expiry) = pay.expiry_out.filter(|e| sh.height() >= *e) else {
        return tracing::debug!(hashlock = %pay.hashlock, "the payee may hold the hub's lock; waiting");
    };
    match registered_in_time(sh, &pay.hashlock, expiry).await {
        Ok(Some(secret)) => claim_registered(sh, pay, secret).await,
        Ok(None) => {
            let row = sh.store.channel(&channel_out).await.ok().flatten();
            if let Some(v) = row.and_then(|r| r.pending).map(|p| p.version()) {
                if let Err(e) = sh.store.clear_reservation(&channel_out, v).await {
                    return tracing::warn!(error = %e, "cannot drop a dead reservation");
                }
            }
            router::fail(sh, pay, "payee did not unlock before the lock expired").await
        }
        Err(e) => {
            tracing::warn!(hashlock = %pay.hashlock, error = %e, "cannot read the secret registry")
        }
    }
}

/// The secret of `hashlock`, if the chain's registry shows it registered before `expiry`.
async fn registered_in_time(
    sh: &Shared,
    hashlock: &Hash32,
    expiry: Height,
) -> Result<Option<Hash32>, String> {
    let Some(chain) = &sh.chain else {
        return Ok(None);
    };
    let info = chain
        .client()
        .secret(hashlock)
        .await
        .map_err(|e| e.to_string())?;
    Ok(info.filter(|i| i.height < expiry).map(|i| i.secret))
}

/// The payee claimed on chain: the hub is owed by the payer, with the same secret.
async fn claim_registered(sh: &Shared, pay: &PaymentRecord, secret: Hash32) {
    let w = PaymentWrite::Transition {
        hashlock: pay.hashlock,
        state: PaymentState::SecretKnown,
        reason: None,
        channel_out: None,
        secret: Some(secret),
    };
    if let Err(e) = sh.store.record_payment(&w).await {
        return tracing::error!(error = %e, "cannot record a registered secret");
    }
    tracing::warn!(hashlock = %pay.hashlock, "the payee claimed on chain; claiming from the payer");
    router::complete(sh, pay, secret).await
}

/// The hub's lock toward the payee expired unanswered: unless its secret was registered in time
/// (then the payer owes the hub), remove it, then release the payer's.
async fn expired(sh: &Shared, pay: &PaymentRecord) {
    let Some(channel_out) = pay.channel_out else {
        return;
    };
    if let Some(expiry) = pay.expiry_out {
        match registered_in_time(sh, &pay.hashlock, expiry).await {
            Ok(Some(secret)) => return claim_registered(sh, pay, secret).await,
            Ok(None) => {}
            Err(e) => {
                return tracing::warn!(hashlock = %pay.hashlock, error = %e, "cannot read the secret registry")
            }
        }
    }
    let change = Change::RemoveLock {
        hashlock: pay.hashlock,
    };
    if let Err(e) = updater::propose_patiently(sh, &channel_out, change, vec![]).await {
        tracing::debug!(hashlock = %pay.hashlock, error = %e, "cannot remove the expired lock yet");
    }
    if let Ok(Outgoing::Absent) = outgoing(sh, pay).await {
        router::fail(sh, pay, "payee did not unlock before the lock expired").await;
    }
}

/// Where the hub's lock for `pay` stands in the payee's channel.
pub async fn outgoing(sh: &Shared, pay: &PaymentRecord) -> Result<Outgoing, StoreError> {
    let Some(id) = pay.channel_out else {
        return Ok(Outgoing::Absent);
    };
    let Some(row) = sh.store.channel(&id).await? else {
        return Ok(Outgoing::Absent);
    };
    let find = |s: &Snapshot| {
        s.locks
            .iter()
            .find(|l| l.hashlock == pay.hashlock && l.direction == Direction::BtoA)
            .map(|l| l.expiry)
    };
    Ok(match (find(&row.snapshot), &row.pending) {
        (Some(expiry), _) => Outgoing::Held(expiry),
        (None, Some(r)) if find(&r.snapshot).is_some() => Outgoing::Reserved,
        (None, _) => Outgoing::Absent,
    })
}

/// Records that the payee holds the hub's lock (it was committed through the payee's resync).
pub async fn mark_forwarded(sh: &Shared, pay: &PaymentRecord) {
    let w = PaymentWrite::to(pay.hashlock, PaymentState::Forwarded);
    if let Err(e) = sh.store.record_payment(&w).await {
        tracing::error!(hashlock = %pay.hashlock, error = %e, "cannot record a forwarded payment");
    }
}

/// The payment writes that belong with a newer state a client resynced: hub proposals it
/// completed while the hub was not there to commit them (a forward, a claim).
pub async fn adopted_writes(sh: &Shared, row: &ChannelRow, snap: &Snapshot) -> Vec<PaymentWrite> {
    let had = |h: &Hash32| row.snapshot.locks.iter().any(|l| l.hashlock == *h);
    let has = |h: &Hash32| snap.locks.iter().any(|l| l.hashlock == *h);
    let forwarded = snap
        .locks
        .iter()
        .filter(|l| l.direction == Direction::BtoA && !had(&l.hashlock))
        .map(|l| (l.hashlock, PaymentState::Pending, PaymentState::Forwarded));
    let claimed = row
        .snapshot
        .locks
        .iter()
        .filter(|l| l.direction == Direction::AtoB && !has(&l.hashlock))
        .map(|l| {
            (
                l.hashlock,
                PaymentState::SecretKnown,
                PaymentState::Completed,
            )
        });
    let mut writes = Vec::new();
    for (hashlock, from, to) in forwarded.chain(claimed) {
        if let Ok(Some(p)) = sh.store.payment(&hashlock).await {
            if p.state == from {
                writes.push(PaymentWrite::to(hashlock, to));
            }
        }
    }
    writes
}

/// Releases the client's locks toward the hub whose payments failed.
async fn release_failed(sh: &Shared, client: &Address) {
    let Ok(channels) = sh.store.channels_of(client).await else {
        return;
    };
    for row in channels {
        for lock in row
            .snapshot
            .locks
            .iter()
            .filter(|l| l.direction == Direction::AtoB)
        {
            let failed = matches!(sh.store.payment(&lock.hashlock).await,
                Ok(Some(p)) if p.state == PaymentState::Failed);
            if failed {
                let change = Change::RemoveLock {
                    hashlock: lock.hashlock,
                };
                if let Err(e) = updater::propose_patiently(sh, &row.id, change, vec![]).await {
                    tracing::warn!(error = %e, "cannot release failed payment's lock");
                }
            }
        }
    }
}
