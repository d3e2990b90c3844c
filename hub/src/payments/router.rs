//! Payment routing A → hub → B (DESIGN.md §4, Payments). Before the hub co-signs the payer's
//! lock it checks that the payment can go through (invoice, terms, payee online with a channel
//! and enough hub-side collateral); afterwards it forwards a lock to the payee, waits for the
//! secret, and claims the payer's lock, or releases it with a reason.

use crate::payments::handoff::{self, Kick};
use crate::payments::recovery;
use crate::shared::{Shared, Unlocked};
use crate::store::{now_secs, ChannelPhase, PaymentRecord, PaymentState, PaymentWrite};
use crate::updater::{self, Prepared, ProposeError, Superseded};
use sluice_protocol::invoice::{InvoiceError, SignedInvoice};
use sluice_protocol::routing::RoutingError;
use sluice_protocol::update::Change;
use sluice_protocol::wire::hub::{ErrorCode, PaymentStatus, SessionMsg};
use sluice_protocol::{Address, Amount, Direction, Hash32, Lock};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Times the lock toward the payee goes again after crossing the payee's own proposal.
const RETRIES_AFTER_BUSY: usize = 3;

/// Why the hub will not route a payer's lock (sent as `Reject{PaymentFailed}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanRefusal {
    #[error("invoice: {0}")]
    Invoice(#[from] InvoiceError),
    #[error("lock does not match the invoice's hashlock")]
    LockMismatch,
    #[error("amount {amount} over the hub's limit {limit}")]
    OverLimit { amount: Amount, limit: Amount },
    #[error(transparent)]
    Terms(#[from] RoutingError),
    #[error("payer and payee are the same")]
    SelfPayment,
    #[error("payee is offline or unknown to the hub")]
    PayeeOffline,
    #[error("payee has no open channel with the hub")]
    NoChannel,
    #[error("too little collateral toward the payee ({side} < {amount})")]
    TooLittleCollateral { side: Amount, amount: Amount },
    #[error(
        "{count} payments of this payer are in flight already (limit {limit}); retry when one ends"
    )]
    PayerBusy { count: usize, limit: usize },
    #[error("hub store: {0}")]
    Store(String),
}

/// Checks a payer's `AddLock` with invoice; returns the payment to record with it, or the reason
/// the hub refuses.
pub async fn plan(
    sh: &Shared,
    payer: &Address,
    channel_in: &Hash32,
    lock: &Lock,
    invoice: &str,
) -> Result<PaymentRecord, PlanRefusal> {
    let inv = SignedInvoice::parse(invoice)?;
    inv.check_payable(sh.chain_id, &sh.address(), now_secs())?;
    let inv = inv.invoice;
    if lock.direction != Direction::AtoB || lock.hashlock != inv.hashlock {
        return Err(PlanRefusal::LockMismatch);
    }
    let (count, cap) = (
        sh.payer_slots.count(payer),
        sh.cfg.limits.max_inflight_per_payer,
    );
    if count >= cap {
        return Err(PlanRefusal::PayerBusy { count, limit: cap });
    }
    let limit = sh.cfg.limits.max_payment;
    if inv.amount > limit {
        return Err(PlanRefusal::OverLimit {
            amount: inv.amount,
            limit,
        });
    }
    let height = sh.height();
    let expiry_out = sh.cfg.terms.outgoing_expiry(lock, inv.amount, height)?;
    if inv.payee == *payer {
        return Err(PlanRefusal::SelfPayment);
    }
    if !online(sh, &inv.payee).await? {
        return Err(PlanRefusal::PayeeOffline);
    }
    let channel_out = payee_channel(sh, &inv.payee, inv.amount).await?;
    Ok(PaymentRecord {
        hashlock: inv.hashlock,
        payer: *payer,
        payee: inv.payee,
        channel_in: *channel_in,
        channel_out: Some(channel_out),
        amount: inv.amount,
        amount_in: lock.amount,
        expiry_in: lock.expiry,
        expiry_out: Some(expiry_out),
        state: PaymentState::Pending,
        reason: None,
        secret: None,
        created_at: now_secs(),
        updated_at: now_secs(),
    })
}

/// Whether `client` has a session with this hub process or another one on the same store.
async fn online(sh: &Shared, client: &Address) -> Result<bool, PlanRefusal> {
    if sh.sessions.get(client).is_some() {
        return Ok(true);
    }
    handoff::held_elsewhere(sh, client)
        .await
        .map_err(|e| PlanRefusal::Store(e.to_string()))
}

/// The payee's open channel with the most hub-side balance, if it covers `amount`.
async fn payee_channel(sh: &Shared, payee: &Address, amount: u64) -> Result<Hash32, PlanRefusal> {
    let rows = sh
        .store
        .channels_of(payee)
        .await
        .map_err(|e| PlanRefusal::Store(e.to_string()))?;
    let best = rows
        .iter()
        .filter(|r| r.phase == ChannelPhase::Open && !r.snapshot.state().is_final)
        .filter_map(|r| {
            let (_, hub_side) = r.snapshot.state().balances(r.deposit_a, r.deposit_b).ok()?;
            Some((hub_side, r.id))
        })
        .max();
    match best {
        None => Err(PlanRefusal::NoChannel),
        Some((side, _)) if side < amount => Err(PlanRefusal::TooLittleCollateral { side, amount }),
        Some((_, id)) => Ok(id),
    }
}

/// The hub's lock toward the payee for a payment: its channel and change.
pub fn forward_change(pay: &PaymentRecord) -> Option<(Hash32, Change)> {
    let (channel_out, expiry) = (pay.channel_out?, pay.expiry_out?);
    let lock = Lock {
        direction: Direction::BtoA,
        amount: pay.amount,
        hashlock: pay.hashlock,
        expiry,
    };
    Some((channel_out, Change::AddLock { lock }))
}

/// Forwards a co-signed incoming payment and drives it to completion or failure. `out` is the
/// lock toward the payee if it was already reserved with the incoming one.
pub async fn route(sh: Arc<Shared>, pay: PaymentRecord, out: Option<Prepared>) {
    let Some(_routing) = sh.start_routing(pay.key()) else {
        // Another task drives it already (a recovery that raced this one).
        if let Some(p) = out {
            updater::abandon_unsent(&sh, p).await;
        }
        return;
    };
    let _slot = sh.payer_slots.take(pay.payer);
    if sh.inflight_payments.fetch_add(1, Ordering::AcqRel) >= sh.cfg.limits.max_inflight_payments {
        sh.inflight_payments.fetch_sub(1, Ordering::AcqRel);
        if let Some(p) = out {
            updater::abandon_unsent(&sh, p).await;
        }
        fail(&sh, &pay, "hub is routing too many payments; try again").await;
        return;
    }
    let started = Instant::now();
    if sh.sessions.get(&pay.payee).is_some() {
        forward(&sh, &pay, out).await;
    } else {
        // The payee's session is on another hub process: that one forwards.
        if let Some(p) = out {
            updater::abandon_unsent(&sh, p).await;
        }
        handoff::kick(&sh, Kick::Forward(pay.key())).await;
    }
    sh.metrics
        .payment_seconds
        .observe(started.elapsed().as_secs_f64());
    sh.inflight_payments.fetch_sub(1, Ordering::AcqRel);
}

async fn forward(sh: &Arc<Shared>, pay: &PaymentRecord, out: Option<Prepared>) {
    let Some((channel_out, change)) = forward_change(pay) else {
        return fail(sh, pay, "no outgoing channel").await;
    };
    let unlocked = sh.expect_unlock(pay.key());
    let w = PaymentWrite::Transition {
        key: pay.key(),
        state: PaymentState::Forwarded,
        reason: None,
        channel_out: pay.expiry_out.map(|e| (channel_out, e)),
        secret: None,
    };
    let mut sent = send_reserved(sh, out, &channel_out, change.clone(), vec![w.clone()]).await;
    // Crossed on the wire with the payee's own proposal: both are burnt. The same lock goes
    // again above the one in doubt, which is dead once the payee co-signs it.
    for _ in 0..RETRIES_AFTER_BUSY {
        if !matches!(sent, Err(ProposeError::Rejected(ErrorCode::Busy, _))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        sent = match updater::supersede(sh, &channel_out, change.clone(), vec![w.clone()]).await {
            Ok(Superseded::Done(s)) => Ok(*s),
            Ok(_) => sent,
            Err(e) => Err(e),
        };
    }
    if let Err(e) = sent {
        sh.forget_unlock(&pay.key());
        return not_forwarded(sh, pay, &e).await;
    }
    let wait = Duration::from_millis(sh.cfg.limits.reply_timeout_ms);
    match tokio::time::timeout(wait, unlocked).await {
        Ok(Ok(Unlocked {
            secret: Some(secret),
            claim,
        })) => complete_with(sh, pay, secret, claim).await,
        Ok(Ok(Unlocked { claim, .. })) => {
            if let Some(c) = claim {
                updater::abandon_unsent(sh, c).await;
            }
            fail(sh, pay, "payee declined the payment").await
        }
        // The payee holds the hub's lock: the payer's may not be released before that one is
        // unlocked (then claimed by `recovery::payee_answered`) or expires (`recovery`'s sweep).
        _ => {
            sh.forget_unlock(&pay.key());
            tracing::info!(hashlock = %pay.hashlock, "payee has not unlocked yet; payment stays forwarded");
        }
    }
}

/// The lock toward the payee was not committed. The life cycle decides from where it stands:
/// failed only if the payee cannot hold it; if it may (it went silent or rejected after the
/// proposal left), it is buried first, or the payer's lock stays until it is dead.
async fn not_forwarded(sh: &Shared, pay: &PaymentRecord, e: &ProposeError) {
    tracing::debug!(hashlock = %pay.hashlock, error = %e, "forward not committed");
    recovery::drive(sh, pay, Some(&payee_reason(e))).await
}

/// Sends `reserved` if there is one (falling back to a fresh proposal if the channel was
/// merely taken), else proposes `change` on `channel` patiently.
async fn send_reserved(
    sh: &Shared,
    reserved: Option<Prepared>,
    channel: &Hash32,
    change: Change,
    writes: Vec<PaymentWrite>,
) -> Result<sluice_protocol::Snapshot, ProposeError> {
    if let Some(p) = reserved {
        match updater::finish(sh, p, writes.clone()).await {
            Err(e) if e.is_transient() => {}
            other => return other,
        }
    }
    updater::propose_patiently(sh, channel, change, writes).await
}

fn payee_reason(e: &ProposeError) -> String {
    match e {
        ProposeError::Offline => "payee is offline".into(),
        ProposeError::Timeout => "payee did not answer in time".into(),
        other => format!("payee refused the lock: {other}"),
    }
}

/// Claims the payer's lock with the secret and tells the payer.
pub async fn complete(sh: &Shared, pay: &PaymentRecord, secret: Hash32) {
    complete_with(sh, pay, secret, None).await
}

/// [`complete`] with the claim already reserved, if it was.
pub async fn complete_with(
    sh: &Shared,
    pay: &PaymentRecord,
    secret: Hash32,
    claim: Option<Prepared>,
) {
    let w = PaymentWrite::to(pay.key(), PaymentState::Completed);
    let change = Change::Unlock { secret };
    let claimed = match (claim, sh.sessions.get(&pay.payer)) {
        // The payer's session is on another hub process: that one claims.
        (None, None) => Err(ProposeError::Offline),
        (claim, _) => send_reserved(sh, claim, &pay.channel_in, change, vec![w]).await,
    };
    match claimed {
        Ok(_) => {
            sh.metrics.payments.with_label_values(&["completed"]).inc();
            let fee = pay.amount_in.saturating_sub(pay.amount);
            sh.metrics.fees_earned.inc_by(fee);
            notify(sh, pay, PaymentStatus::Completed, None);
        }
        // The payment stays `secret_known`: claimed by the process holding the payer's session
        // (kicked here; else by its sweep or at the payer's next login), enforced on chain by
        // the guard before the lock expires.
        Err(e) => {
            tracing::warn!(hashlock = %pay.hashlock, error = %e, "cannot claim payer's lock yet");
            settle_elsewhere(sh, pay).await;
        }
    }
}

/// Releases the payer's lock and records why the payment failed.
pub async fn fail(sh: &Shared, pay: &PaymentRecord, reason: &str) {
    tracing::info!(hashlock = %pay.hashlock, reason, "payment failed");
    let w = PaymentWrite::Transition {
        key: pay.key(),
        state: PaymentState::Failed,
        reason: Some(reason.to_string()),
        channel_out: None,
        secret: None,
    };
    let change = Change::RemoveLock {
        hashlock: pay.hashlock,
    };
    let released = match sh.sessions.get(&pay.payer) {
        Some(_) => updater::propose_patiently(sh, &pay.channel_in, change, vec![w.clone()]).await,
        None => Err(ProposeError::Offline),
    };
    if released.is_err() {
        // Record the failure now; the lock follows (below, or at the payer's next login).
        if let Err(e) = sh.store.record_payment(&w).await {
            tracing::error!(error = %e, "cannot record payment failure");
        }
    }
    sh.metrics.payments.with_label_values(&["failed"]).inc();
    notify(sh, pay, PaymentStatus::Failed, Some(reason.to_string()));
    if let Err(e) = released {
        tracing::warn!(hashlock = %pay.hashlock, error = %e, "cannot release payer's lock yet");
        settle_elsewhere(sh, pay).await;
        release_lock(sh, &pay.payer, &pay.channel_in, pay.hashlock).await;
    }
}

/// Kicks the process holding the payer's session, if this one does not hold it, to claim or
/// release the payer's lock as the store shows.
async fn settle_elsewhere(sh: &Shared, pay: &PaymentRecord) {
    if sh.sessions.get(&pay.payer).is_none() {
        handoff::kick(sh, Kick::Settle(pay.key())).await;
    }
}

/// The payment failed on another hub process: release the payer's lock here and tell it.
pub async fn released(sh: &Shared, pay: &PaymentRecord) {
    notify(sh, pay, PaymentStatus::Failed, pay.reason.clone());
    release_lock(sh, &pay.payer, &pay.channel_in, pay.hashlock).await;
}

/// Removes a failed payment's lock from the payer's channel, trying again while the channel is
/// taken and the payer is online. A lock left behind holds the payer's funds, and a payer who
/// stays connected never gets the release its next login would bring (`recovery::resume`).
pub async fn release_lock(sh: &Shared, payer: &Address, channel: &Hash32, hashlock: Hash32) {
    let mut pause = Duration::from_millis(100);
    loop {
        let change = Change::RemoveLock { hashlock };
        let e = match updater::propose_patiently(sh, channel, change, vec![]).await {
            Ok(_) => return tracing::info!(%hashlock, "released a failed payment's lock"),
            Err(e) => e,
        };
        let worth_retrying =
            e.is_transient() || matches!(e, ProposeError::Timeout | ProposeError::Store(_));
        let locked = |row: Option<crate::store::ChannelRow>| {
            row.is_some_and(|r| r.snapshot.locks.iter().any(|l| l.hashlock == hashlock))
        };
        let online = sh.sessions.get(payer).is_some();
        if !worth_retrying || !online || !locked(sh.store.channel(channel).await.ok().flatten()) {
            return tracing::warn!(%hashlock, error = %e, online, "failed payment's lock stays until the payer's next login");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

fn notify(sh: &Shared, pay: &PaymentRecord, status: PaymentStatus, reason: Option<String>) {
    if let Some(s) = sh.sessions.get(&pay.payer) {
        s.send(SessionMsg::Payment {
            hashlock: pay.hashlock,
            status,
            reason,
        });
    }
}
