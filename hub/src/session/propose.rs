//! A client's proposal: recompute with the protocol's `check_proposal`, verify the client's
//! signature, apply the hub's policy, commit the co-signed state (with its payment writes), and
//! only then return the hub's signature.
//!
//! When the update sets a hub proposal on another channel in motion (a payer's lock: the lock
//! toward the payee; a payee's unlock: the claim on the payer's lock), that proposal is built
//! here and its reservation is written in the same commit, if its channel is free at once. One
//! durable write then stands for two, which takes one commit latency off each of those hops.

use super::refusal::Refusal;
use crate::payments::lifecycle::{self, Registry};
use crate::payments::{recovery, router};
use crate::shared::{Shared, Unlocked};
use crate::store::{
    ChannelPhase, ChannelRow, Kept, PaymentKey, PaymentRecord, PaymentState, PaymentWrite,
    StoreError,
};
use crate::updater::{self, Prepared};
use sluice_protocol::session;
use sluice_protocol::update::{check_proposal, Change};
use sluice_protocol::wire::hub::{PaymentStatus, Proposal, SessionMsg};
use sluice_protocol::{
    sha256, Address, CoSigned, Direction, Hash32, Party, Signature, Snapshot, MAX_VERSION_SKIP,
};
use std::sync::Arc;
use std::time::Duration;

/// What to do once the hub's signature is out.
enum After {
    Nothing,
    /// Forward the payment; with the lock toward the payee if already reserved.
    Route(Box<PaymentRecord>, Option<Prepared>),
    /// The payee answered the hub's lock: with the secret, or by removing it.
    PayeeAnswered {
        key: PaymentKey,
        secret: Option<Hash32>,
        /// The payment's incoming channel, where the hub claims with the secret.
        channel_in: Option<Hash32>,
        /// That claim, if already reserved.
        claim: Option<Prepared>,
    },
}

/// Handles one proposal and queues the answer (and any follow-up) on the client's session.
pub async fn on_propose(sh: Arc<Shared>, client: Address, p: Proposal) {
    let _busy = sh.work.enter();
    let (channel_id, version) = (p.channel_id, p.state.version);
    let mut floor = 0;
    let reply = match handle(&sh, &client, &p, &mut floor).await {
        Ok((sig, after)) => {
            sh.metrics.updates.with_label_values(&["accepted"]).inc();
            Ok((sig, after))
        }
        Err(why) => {
            sh.metrics.updates.with_label_values(&["rejected"]).inc();
            tracing::debug!(%channel_id, version, code = ?why.code(), reason = %why, "proposal rejected");
            Err(why)
        }
    };
    // The answer goes to the client if it is still connected; what the committed state set in
    // motion (routing, delivering the payee's secret) goes on either way, or a payer that drops
    // right after proposing would leave its lock stranded until expiry.
    let session = sh.sessions.get(&client);
    let send = |msg: SessionMsg| {
        if let Some(s) = &session {
            s.send(msg);
        }
    };
    match reply {
        Err(why) => send(SessionMsg::Reject {
            channel_id,
            version,
            code: why.code(),
            reason: why.to_string(),
            signed: floor,
        }),
        Ok((sig, after)) => {
            send(SessionMsg::Accept {
                channel_id,
                version,
                sig,
            });
            match after {
                After::Nothing => {}
                After::Route(pay, out) => {
                    send(SessionMsg::Payment {
                        hashlock: pay.hashlock,
                        status: PaymentStatus::Pending,
                        reason: None,
                    });
                    // The payment is taken on: a draining hub lets it finish.
                    let busy = sh.work.enter();
                    let sh = sh.clone();
                    tokio::spawn(async move {
                        router::route(sh, *pay, out).await;
                        drop(busy);
                    });
                }
                After::PayeeAnswered {
                    key, secret, claim, ..
                } => {
                    let answer = Unlocked { secret, claim };
                    if let Some(answer) = sh.deliver_unlock(&key, answer) {
                        let busy = sh.work.enter();
                        let sh = sh.clone();
                        tokio::spawn(async move {
                            recovery::payee_answered(sh, key, answer).await;
                            drop(busy);
                        });
                    }
                }
            }
        }
    }
}

/// [`decide`] under the channel's lock; `floor` is set to the channel's floor for the answer. A
/// refused proposal whose signature verified still burns its version: the floor rises to it.
async fn handle(
    sh: &Shared,
    client: &Address,
    p: &Proposal,
    floor: &mut u64,
) -> Result<(Signature, After), Refusal> {
    if sh.proposal_pending(&p.channel_id) {
        return Err(Refusal::HubProposalWins);
    }
    let lock = sh.channel_lock(&p.channel_id);
    let wait = Duration::from_millis(sh.cfg.limits.reply_timeout_ms);
    let _guard = tokio::time::timeout(wait, lock.lock())
        .await
        .map_err(|_| Refusal::ChannelBusy)?;
    let (mut row, kept) = owned_channel(sh, client, &p.channel_id).await?;
    let mut checked = check(sh, &row, p);
    if checked.is_err() && is_signed(&checked) && kept == Kept::Yes {
        // Refused on the row kept in memory, which another hub process may have moved on:
        // decided again on the row as the database holds it. (A bad signature is bad on any
        // row, so it costs no second read.)
        row = owned(
            sh.store.fresh_channel(&p.channel_id).await,
            client,
            &p.channel_id,
        )?;
        checked = check(sh, &row, p);
    }
    let signed = is_signed(&checked);
    // Locks live and die by height: none is taken or settled on a view the node has not
    // confirmed lately (F18). Refused like any other signed proposal: its version is burnt.
    // A stopping hub still settles what is under way, but starts no new payment.
    let draining = sh.work.is_draining() && matches!(p.change, Change::AddLock { .. });
    let r = match (checked, sh.live_height()) {
        (Err(e), _) => Err(Refusal::of_session(e)),
        (Ok(_), Err(stale)) => Err(stale.into()),
        (Ok(_), Ok(_)) if draining => Err(Refusal::Draining),
        (Ok(_), Ok(_)) => decide(sh, client, &row, p).await,
    };
    *floor = row.floor;
    if r.is_err() && signed && p.state.version > row.floor {
        let v = p
            .state
            .version
            .min(row.version().saturating_add(MAX_VERSION_SKIP / 2));
        match sh.store.raise_floor(&row.id, v).await {
            Ok(()) => *floor = v,
            Err(e) => tracing::error!(error = %e, channel = %row.id, "cannot raise the floor"),
        }
    }
    r
}

/// The hub's answer to a checked client proposal: its policy and payment plan, then the commit.
async fn decide(
    sh: &Shared,
    client: &Address,
    row: &ChannelRow,
    p: &Proposal,
) -> Result<(Signature, After), Refusal> {
    if row.pending.is_some() {
        return Err(reserved());
    }
    let row = row.clone();
    let (writes, mut after) = plan(sh, client, &row, p).await?;
    let next = match follow_up(sh, &after) {
        Some((channel, change)) => updater::try_prepare(sh, &channel, change).await,
        None => None,
    };
    let (sig, next) = commit(sh, client, &row, p, writes, next).await?;
    match &mut after {
        After::Route(_, out) => *out = next,
        After::PayeeAnswered { claim, .. } => *claim = next,
        After::Nothing => {}
    }
    Ok((sig, after))
}

/// The hub proposal this update sets in motion, if it can be reserved with it.
fn follow_up(sh: &Shared, after: &After) -> Option<(Hash32, Change)> {
    match after {
        // Reserved only where this process can send it: a payee on another process is
        // forwarded to by that one.
        After::Route(pay, _) if sh.sessions.get(&pay.payee).is_some() => {
            router::forward_change(pay)
        }
        After::PayeeAnswered {
            key,
            secret: Some(secret),
            channel_in: Some(channel_in),
            ..
        } if sh.unlock_awaited(key) => Some((*channel_in, Change::Unlock { secret: *secret })),
        _ => None,
    }
}

/// Whether the proposal carries the client's valid signature on this channel, whatever the
/// verdict: then its version is burnt even if refused.
fn is_signed(checked: &Result<(), session::Refusal>) -> bool {
    !matches!(
        checked,
        Err(session::Refusal::BadSignature | session::Refusal::WrongChannel { .. })
    )
}

/// The machine's verdict on the client's proposal, on `row`.
fn check(sh: &Shared, row: &ChannelRow, p: &Proposal) -> Result<(), session::Refusal> {
    let ctx = sh.context(row.deposit_a, row.deposit_b);
    updater::machine(sh, row).on_proposal(p, &ctx).map(|_| ())
}

/// The client's open channel `id`, kept in memory or read (see `store/hot_rows.rs`).
async fn owned_channel(
    sh: &Shared,
    client: &Address,
    id: &Hash32,
) -> Result<(ChannelRow, Kept), Refusal> {
    let (row, kept) = sh
        .store
        .channel_for_update(id)
        .await
        .map_err(|e| Refusal::Store(e.to_string()))?;
    Ok((owned(Ok(row), client, id)?, kept))
}

fn owned(
    row: Result<Option<ChannelRow>, StoreError>,
    client: &Address,
    id: &Hash32,
) -> Result<ChannelRow, Refusal> {
    match row.map_err(|e| Refusal::Store(e.to_string()))? {
        Some(r) if r.client == *client && r.phase == ChannelPhase::Open => Ok(r),
        Some(r) if r.client == *client => Err(Refusal::NotOpen),
        _ => Err(Refusal::UnknownChannel(*id)),
    }
}

/// A hub proposal (of this or another hub process) holds the channel's next version.
fn reserved() -> Refusal {
    Refusal::HubProposalWins
}

/// The payment side of a proposal: what to record with it and what to do after.
async fn plan(
    sh: &Shared,
    client: &Address,
    row: &ChannelRow,
    p: &Proposal,
) -> Result<(Vec<PaymentWrite>, After), Refusal> {
    match &p.change {
        Change::AddLock { lock } => {
            let Some(invoice) = &p.invoice else {
                return Err(Refusal::NoInvoice);
            };
            let pay = router::plan(sh, client, &row.id, lock, invoice)
                .await
                .map_err(Refusal::Plan)?;
            Ok((
                vec![PaymentWrite::Insert(pay.clone())],
                After::Route(Box::new(pay), None),
            ))
        }
        Change::Unlock { secret } => unlock_plan(sh, row, secret).await,
        Change::RemoveLock { hashlock } => {
            let lock = row.snapshot.locks.iter().find(|l| l.hashlock == *hashlock);
            match lock.map(|l| l.direction) {
                Some(Direction::BtoA) => {
                    let key = PaymentKey {
                        payee: *client,
                        hashlock: *hashlock,
                    };
                    let after = After::PayeeAnswered {
                        key,
                        secret: None,
                        channel_in: None,
                        claim: None,
                    };
                    Ok((vec![], after))
                }
                _ => Ok((
                    expired_payment(sh, &row.id, hashlock).await?,
                    After::Nothing,
                )),
            }
        }
        // A client's withdrawal takes only its own balance (the update rules see to it), and
        // not the stake the hub's collateral is there for (F12); the client sends the on-chain
        // transaction, and settlement pays it if it never does.
        Change::Withdraw { amount, .. } => {
            let policy = &sh.cfg.collateral;
            match crate::chain::collateral::keeps_stake(row, *amount, policy) {
                true => Ok((vec![], After::Nothing)),
                false => Err(Refusal::StakeBelowMinimum {
                    min: policy.min_client_deposit,
                }),
            }
        }
        Change::Finalize | Change::Bump => Ok((vec![], After::Nothing)),
    }
}

async fn unlock_plan(
    sh: &Shared,
    row: &ChannelRow,
    secret: &Hash32,
) -> Result<(Vec<PaymentWrite>, After), Refusal> {
    let hashlock = sha256(&secret.0);
    let pay = sh
        .store
        .payment_out(&row.id, &hashlock)
        .await
        .map_err(|e| Refusal::Store(e.to_string()))?;
    let Some(pay) = pay else {
        return Ok((vec![], After::Nothing));
    };
    if pay.state == PaymentState::Failed {
        return Err(Refusal::PaymentFailed);
    }
    let w = PaymentWrite::Transition {
        key: pay.key(),
        state: PaymentState::SecretKnown,
        reason: None,
        channel_out: None,
        secret: Some(*secret),
    };
    let after = After::PayeeAnswered {
        key: pay.key(),
        secret: Some(*secret),
        channel_in: Some(pay.channel_in),
        claim: None,
    };
    Ok((vec![w], after))
}

/// The payer removes its own expired lock: refused while the hub is owed it (the hub knows the
/// secret, or the payee claimed on chain in time, ATTACKS.md F2); else the payment fails.
async fn expired_payment(
    sh: &Shared,
    channel_in: &Hash32,
    hashlock: &Hash32,
) -> Result<Vec<PaymentWrite>, Refusal> {
    let internal = Refusal::Store;
    let Some(pay) = sh
        .store
        .payment_in(channel_in, hashlock)
        .await
        .map_err(|e| internal(e.to_string()))?
    else {
        return Ok(vec![]);
    };
    let registry = match (pay.state, pay.expiry_out) {
        (PaymentState::Pending | PaymentState::Forwarded, Some(_)) => {
            recovery::read_registry(sh, hashlock)
                .await
                .map_err(internal)?
        }
        _ => Registry::Unknown,
    };
    match lifecycle::payer_removes_expired(&pay, registry) {
        Ok(true) => Ok(vec![PaymentWrite::Transition {
            key: pay.key(),
            state: PaymentState::Failed,
            reason: Some("payer reclaimed its expired lock".into()),
            channel_out: None,
            secret: None,
        }]),
        Ok(false) => Ok(vec![]),
        Err(e) => Err(Refusal::Removal(e)),
    }
}

/// Signs and commits over `seen`; should the row have changed meanwhile, the store re-runs the
/// check on the latest row under its lock. `next` is reserved in the same commit if it can be;
/// it comes back only if it was.
async fn commit(
    sh: &Shared,
    client: &Address,
    seen: &ChannelRow,
    p: &Proposal,
    writes: Vec<PaymentWrite>,
    next: Option<Prepared>,
) -> Result<(Signature, Option<Prepared>), Refusal> {
    let decide = |row: &ChannelRow| {
        if row.client != *client {
            return Err(Refusal::UnknownChannel(row.id));
        }
        // Re-checked on the row being committed: a close the chain watcher applied since the
        // first read must stop the hub's signature (ATTACKS.md F13).
        if row.phase != ChannelPhase::Open {
            return Err(Refusal::NotOpen);
        }
        if row.pending.is_some() {
            return Err(reserved());
        }
        let ctx = sh.context(row.deposit_a, row.deposit_b);
        // The machine's rule, on the row as it is now (the signature was checked above).
        let next = check_proposal(
            &row.position(),
            &p.change,
            &p.state,
            Party::A,
            &ctx,
            row.floor,
        )
        .map_err(Refusal::of_update)?;
        let sig_b = next.state.sign(&sh.key);
        let snap = Snapshot {
            cosigned: CoSigned {
                state: next.state,
                sig_a: p.sig,
                sig_b,
            },
            locks: next.locks,
        };
        Ok((snap, writes.clone(), sig_b))
    };
    let r = match &next {
        Some(n) => {
            sh.store
                .update_channel_reserving(seen, decide, n.reservation())
                .await
        }
        None => sh
            .store
            .update_channel_from(seen, decide)
            .await
            .map(|r| r.map(|sig| (sig, false))),
    };
    match r {
        Ok(inner) => inner.map(|(sig, reserved)| {
            if reserved {
                let m = &sh.metrics.updates;
                m.with_label_values(&["reserved_with_update"]).inc();
            }
            (sig, next.filter(|_| reserved))
        }),
        // Only a payment's insert can collide: this payee's invoice was paid or tried already.
        Err(e) if e.is_duplicate() => Err(Refusal::InvoiceUsed),
        Err(e) => {
            tracing::error!(error = %e, "cannot commit client update");
            Err(Refusal::Store(e.to_string()))
        }
    }
}
