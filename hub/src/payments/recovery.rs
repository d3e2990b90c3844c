//! Payments no task of this process is driving: their router task died with an earlier hub
//! process or gave up waiting for the payee, or they were started by another hub process.
//! They are carried on from what the store shows, never from memory, so a SIGKILL between any
//! two steps leaves every payment to complete or to be undone:
//!
//! - the payee answers the hub's lock and nobody waits: the payer's lock is claimed or released
//!   at once ([`payee_answered`]);
//! - a sweep every reply timeout ([`run`]) and each party's login ([`resume`]) take every open
//!   payment no task here drives and execute what [`lifecycle::next_step`] decides ([`drive`]):
//!   claim with a known secret, record a forward the payee completed, bury a forward in doubt,
//!   remove or drop an expired one (claiming from the payer if its secret was registered on
//!   chain in time), or fail it and release the payer's lock once the forward is dead.
//!
//! "Stale" (untouched for three reply timeouts) keeps a sweep away from a payment that a live
//! router task of another hub process may still move on: that task is done within two.

use crate::payments::lifecycle::{self, Facts, FailReason, Outgoing, Registry, Step};
use crate::payments::router;
use crate::shared::{Shared, Unlocked};
use crate::store::{
    now_ms, now_secs, ChannelRow, PaymentKey, PaymentRecord, PaymentState, PaymentWrite, StoreError,
};
use crate::updater;
use sluice_protocol::update::Change;
use sluice_protocol::{Address, Direction, Hash32, Height, Snapshot};
use std::sync::Arc;
use std::time::Duration;

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
pub async fn payee_answered(sh: Arc<Shared>, key: PaymentKey, answer: Unlocked) {
    let Unlocked { secret, claim } = answer;
    // Held to the end: this task drives the payment. If another one does, or the payment is
    // unknown, nothing is read and a claim stays `secret_known` for the sweep.
    let routing = sh.start_routing(key);
    let pay = match routing {
        Some(_) => sh.store.payment(&key).await.ok().flatten(),
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
        if !sh.is_routing(&pay.key()) && due(sh, &pay) {
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
    settle(sh, pay).await
}

/// Drives `pay` on from the store, unless a task of this process already does.
pub async fn settle(sh: Arc<Shared>, pay: PaymentRecord) {
    let Some(_routing) = sh.start_routing(pay.key()) else {
        return;
    };
    drive(&sh, &pay, None).await
}

/// Most steps taken for one payment in one go (a removal, a registry read, then the end).
const MAX_STEPS: usize = 4;

/// Gathers the facts, asks the life cycle for the next step and executes it, until it waits or
/// ends. `not_taken` is the reason given should the forward turn out dead before the payee
/// took it (the router knows why it failed).
pub async fn drive(sh: &Shared, pay: &PaymentRecord, not_taken: Option<&str>) {
    let mut registry = Registry::Unknown;
    for _ in 0..MAX_STEPS {
        let outgoing = match outgoing(sh, pay).await {
            Ok(o) => o,
            Err(e) => {
                return tracing::warn!(hashlock = %pay.hashlock, error = %e, "cannot read the payee's channel")
            }
        };
        let facts = Facts {
            pay,
            outgoing,
            registry,
            height: sh.height(),
        };
        let step = lifecycle::next_step(&facts);
        tracing::debug!(hashlock = %pay.hashlock, ?step, ?outgoing, "payment step");
        match step {
            Step::Claim(secret) => return router::complete(sh, pay, secret).await,
            Step::RecordSecret(secret) => return claim_registered(sh, pay, secret).await,
            Step::MarkForwarded => return mark_forwarded(sh, pay).await,
            Step::Bury => {
                let channel = pay.channel_out.unwrap_or(pay.channel_in);
                if let Ok(true) = updater::bury(sh, &channel).await {
                    let why = not_taken.unwrap_or(FailReason::NotTaken.as_str());
                    router::fail(sh, pay, why).await;
                }
                return;
            }
            Step::RemoveExpiredForward => remove_expired_forward(sh, pay).await,
            Step::DropDeadForward => return drop_dead_forward(sh, pay).await,
            Step::Fail(reason) => {
                let why = match reason {
                    FailReason::Expired => reason.as_str(),
                    _ => not_taken.unwrap_or(reason.as_str()),
                };
                return router::fail(sh, pay, why).await;
            }
            Step::ReadRegistry => match read_registry(sh, &pay.hashlock).await {
                Ok(r) => registry = r,
                Err(e) => {
                    return tracing::warn!(hashlock = %pay.hashlock, error = %e, "cannot read the secret registry")
                }
            },
            Step::Wait => return,
        }
    }
}

/// What the chain's registry says of `hashlock` (absent with no chain to ask).
pub async fn read_registry(sh: &Shared, hashlock: &Hash32) -> Result<Registry, String> {
    let Some(chain) = &sh.chain else {
        return Ok(Registry::Absent);
    };
    let info = chain
        .client()
        .secret(hashlock)
        .await
        .map_err(|e| e.to_string())?;
    Ok(match info {
        Some(i) => Registry::Registered {
            secret: i.secret,
            height: i.height,
        },
        None => Registry::Absent,
    })
}

/// The chain follower saw `secret` registered at `height`. For each open payment with its
/// hashlock that this makes the payer owe the hub (the payee can claim the hub's lock on chain
/// with it), the secret is recorded and the payer's lock claimed: by the router task waiting
/// for the payee's unlock, if there is one, else here.
pub async fn secret_registered(sh: &Arc<Shared>, hashlock: Hash32, secret: Hash32, height: Height) {
    let pays = match sh.store.payments_with(&hashlock).await {
        Ok(pays) => pays,
        Err(e) => return tracing::warn!(%hashlock, error = %e, "cannot read payments"),
    };
    for pay in pays {
        if lifecycle::owed_after_registration(&pay, height) {
            claim_on_registration(sh, &pay, secret).await;
        }
    }
}

async fn claim_on_registration(sh: &Arc<Shared>, pay: &PaymentRecord, secret: Hash32) {
    let key = pay.key();
    if let Err(e) = record_secret(sh, pay, secret).await {
        return tracing::error!(%key, error = %e, "cannot record a registered secret");
    }
    tracing::warn!(%key, "the payee claimed on chain; claiming from the payer");
    let answer = Unlocked {
        secret: Some(secret),
        claim: None,
    };
    if sh.deliver_unlock(&key, answer).is_some() {
        // Nobody waited for the payee's answer. If another task drives the payment, the sweep
        // claims once it is done.
        if let Some(_routing) = sh.start_routing(key) {
            router::complete(sh, pay, secret).await;
        }
    }
}

/// Records that the hub knows `pay`'s secret (durable before any claim goes out).
async fn record_secret(sh: &Shared, pay: &PaymentRecord, secret: Hash32) -> Result<(), StoreError> {
    let w = PaymentWrite::Transition {
        key: pay.key(),
        state: PaymentState::SecretKnown,
        reason: None,
        channel_out: None,
        secret: Some(secret),
    };
    sh.store.record_payment(&w).await
}

/// The payee claimed on chain: the hub is owed by the payer, with the same secret.
async fn claim_registered(sh: &Shared, pay: &PaymentRecord, secret: Hash32) {
    if let Err(e) = record_secret(sh, pay, secret).await {
        return tracing::error!(error = %e, "cannot record a registered secret");
    }
    tracing::warn!(hashlock = %pay.hashlock, "the payee claimed on chain; claiming from the payer");
    router::complete(sh, pay, secret).await
}

/// The hub's lock toward the payee expired unanswered and unclaimed: propose its removal.
async fn remove_expired_forward(sh: &Shared, pay: &PaymentRecord) {
    let Some(channel_out) = pay.channel_out else {
        return;
    };
    let change = Change::RemoveLock {
        hashlock: pay.hashlock,
    };
    if let Err(e) = updater::propose_patiently(sh, &channel_out, change, vec![]).await {
        tracing::debug!(hashlock = %pay.hashlock, error = %e, "cannot remove the expired lock yet");
    }
}

/// The forward in doubt expired with no secret registered in time: it is dead; its
/// reservation goes and the payment fails.
async fn drop_dead_forward(sh: &Shared, pay: &PaymentRecord) {
    let Some(channel_out) = pay.channel_out else {
        return;
    };
    let row = sh.store.channel(&channel_out).await.ok().flatten();
    if let Some(v) = row.and_then(|r| r.pending).map(|p| p.version()) {
        if let Err(e) = sh.store.clear_reservation(&channel_out, v).await {
            return tracing::warn!(error = %e, "cannot drop a dead reservation");
        }
    }
    router::fail(sh, pay, FailReason::Expired.as_str()).await
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
        (None, Some(r)) if find(&r.snapshot).is_some() => Outgoing::InDoubt {
            live: r.is_live(now_ms()),
        },
        (None, _) => Outgoing::Absent,
    })
}

/// Records that the payee holds the hub's lock (it was committed through the payee's resync).
pub async fn mark_forwarded(sh: &Shared, pay: &PaymentRecord) {
    let w = PaymentWrite::to(pay.key(), PaymentState::Forwarded);
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
        // The hub's lock toward the client (a forward), or the client's toward the hub.
        let pay = match from {
            PaymentState::Pending => sh.store.payment_out(&row.id, &hashlock).await,
            _ => sh.store.payment_in(&row.id, &hashlock).await,
        };
        if let Ok(Some(p)) = pay {
            if p.state == from {
                writes.push(PaymentWrite::to(p.key(), to));
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
            let failed = matches!(sh.store.payment_in(&row.id, &lock.hashlock).await,
                Ok(Some(p)) if p.state == PaymentState::Failed);
            if failed {
                router::release_lock(sh, client, &row.id, lock.hashlock).await;
            }
        }
    }
}
