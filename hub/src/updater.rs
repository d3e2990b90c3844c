//! The hub as proposer: builds the next state with the protocol's `apply`, signs it, reserves
//! the version in the store, sends it to the channel's client and commits the co-signed state
//! (with any payment writes) once the client's signature verifies.
//!
//! Why the reservation: the hub's signature on its proposal leaves the process before the
//! client's answer. Without a durable record of it, a second hub process (or this one after a
//! restart) could sign a different state at the same version, and the client could hold two
//! hub-signed states of one version: a fork. So the proposed state is written as the channel's
//! reservation (a compare-and-swap on the version, see `store/reservations.rs`) before it is
//! sent, and the channel's floor raised to its version, so no hub process ever signs another
//! state at that version. It is resolved by the client's `Accept` (commit); after a `Reject` or
//! silence it stays in doubt (the client holds the hub's signature) until it is dead: buried by
//! a co-signed `Bump` above it ([`bury`]), completed by the client's resync, or expired.
//! In-process, the channel's lock additionally keeps one update in flight per channel.
//!
//! A proposal is [`Prepared`] (built, signed, channel locked), then reserved, then [`finish`]ed
//! (sent, answered, committed). [`propose`] does all three; a client's update that sets a hub
//! proposal in motion prepares it and reserves it in its own commit (`session/propose.rs`).

use crate::registry::SessionHandle;
use crate::shared::{Reply, Shared};
use crate::store::{
    now_ms, ChannelPhase, ChannelRow, Kept, PaymentWrite, Reservation, ReserveWith, StoreError,
};
use sluice_protocol::session::{ChannelSession, Refusal, Signed};
use sluice_protocol::update::{Change, UpdateError};
use sluice_protocol::wire::hub::{ErrorCode, Proposal, SessionMsg};
use sluice_protocol::{
    Address, CoSigned, Direction, Hash32, Party, Signature, Snapshot, MAX_VERSION_SKIP,
};
use std::time::{Duration, Instant};
use tokio::sync::OwnedMutexGuard;

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("client is offline")]
    Offline,
    #[error("channel is unknown or not open")]
    NotOpen,
    #[error("client rejected the update ({0:?}): {1}")]
    Rejected(ErrorCode, String),
    #[error("client did not answer in time")]
    Timeout,
    #[error("client's signature does not verify")]
    BadSignature,
    #[error("update is not valid: {0}")]
    Invalid(#[from] UpdateError),
    #[error("update refused: {0}")]
    Refused(#[from] Refusal),
    #[error("another proposal holds this channel's next version")]
    Busy,
    #[error("a proposal the client did not co-sign in time still stands on this channel")]
    InDoubt,
    #[error("channel moved on meanwhile (another hub process updated it)")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProposeError {
    /// Whether trying again shortly may succeed (the channel was merely taken).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProposeError::Busy | ProposeError::InDoubt | ProposeError::Conflict
        ) || matches!(self, ProposeError::Rejected(ErrorCode::Busy, _))
    }
}

/// [`propose`], retried while the channel is taken by another update, for up to the reply
/// timeout: used where giving up would leave a payment half-done (claim, release, forward).
pub async fn propose_patiently(
    sh: &Shared,
    channel: &Hash32,
    change: Change,
    writes: Vec<PaymentWrite>,
) -> Result<Snapshot, ProposeError> {
    let deadline = Instant::now() + Duration::from_millis(sh.cfg.limits.reply_timeout_ms);
    let mut pause = Duration::from_millis(2);
    loop {
        match propose(sh, channel, change.clone(), writes.clone()).await {
            Err(e) if e.is_transient() && Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Proposes `change` on `channel` and returns the committed snapshot. `writes` commit with it.
pub async fn propose(
    sh: &Shared,
    channel: &Hash32,
    change: Change,
    writes: Vec<PaymentWrite>,
) -> Result<Snapshot, ProposeError> {
    let _busy = sh.work.enter();
    let mut p = prepare_or_bury(sh, channel, change.clone()).await?;
    let mut reserved = reserve(sh, &p).await?;
    if !reserved && p.kept == Kept::Yes {
        // Built on a row kept in memory that was stale (it is dropped now): once more on a
        // fresh read. The refused proposal's signature never left this process.
        drop(p);
        p = prepare_or_bury(sh, channel, change).await?;
        reserved = reserve(sh, &p).await?;
    }
    match reserved {
        true => finish(sh, p, writes).await,
        false => Err(ProposeError::Busy),
    }
}

/// [`prepare`] under the channel's lock; a proposal left in doubt is buried first: left
/// standing, it would take every later proposal's version. The `Bump` carries nothing new, so
/// a client that keeps it unanswered gains nothing; then the change goes as usual.
async fn prepare_or_bury(
    sh: &Shared,
    channel: &Hash32,
    change: Change,
) -> Result<Prepared, ProposeError> {
    let guard = channel_guard(sh, channel).await?;
    match prepare(sh, guard, channel, change.clone()).await {
        Err(ProposeError::InDoubt) => {
            if !bury(sh, channel).await? {
                return Err(ProposeError::InDoubt);
            }
            let guard = channel_guard(sh, channel).await?;
            prepare(sh, guard, channel, change).await
        }
        p => p,
    }
}

/// Writes `p`'s reservation; false if the channel moved on or another proposal holds it.
async fn reserve(sh: &Shared, p: &Prepared) -> Result<bool, StoreError> {
    let r = p.reservation();
    sh.store
        .reserve(r.id, r.built_on, r.proposed, r.until_ms)
        .await
}

/// A hub proposal built and signed but not yet sent, holding its channel's in-process lock.
/// Its signature may leave only once [`Prepared::reservation`] is in the store: by
/// [`propose`], or in the same commit as a client's update (`session/propose.rs`), after which
/// [`finish`] (or [`abandon_unsent`]) must follow.
pub struct Prepared {
    _guard: OwnedMutexGuard<()>,
    row: ChannelRow,
    /// Whether `row` came from memory (and may be stale).
    kept: Kept,
    session: SessionHandle,
    change: Change,
    proposed: Snapshot,
    until: u64,
}

impl Prepared {
    pub fn channel(&self) -> Hash32 {
        self.row.id
    }

    fn built_on(&self) -> u64 {
        self.row.version()
    }

    /// What to reserve in the store before the proposal may leave.
    pub fn reservation(&self) -> ReserveWith<'_> {
        ReserveWith {
            id: &self.row.id,
            built_on: self.built_on(),
            proposed: &self.proposed,
            until_ms: self.until,
        }
    }
}

/// [`Prepared`] without waiting: `None` if the channel is busy (locked, reserved, not open) or
/// its client is offline; the caller then proposes the usual way later.
pub async fn try_prepare(sh: &Shared, channel: &Hash32, change: Change) -> Option<Prepared> {
    let guard = sh.channel_lock(channel).try_lock_owned().ok()?;
    prepare(sh, guard, channel, change).await.ok()
}

/// Reads the channel under its lock and has the channel's session machine build and sign the
/// next state, above the channel's floor. A refusal on the row kept in memory is decided again
/// on a fresh read (another hub process may have moved the channel).
async fn prepare(
    sh: &Shared,
    guard: OwnedMutexGuard<()>,
    channel: &Hash32,
    change: Change,
) -> Result<Prepared, ProposeError> {
    let (row, kept) = sh.store.channel_for_update(channel).await?;
    let row = row.ok_or(ProposeError::NotOpen)?;
    match prepare_on(sh, guard, row, change.clone(), kept) {
        // The machine refused on a row that may be stale: once more as the database holds it.
        Err((ProposeError::Invalid(_) | ProposeError::Refused(_), guard)) if kept == Kept::Yes => {
            let row = sh.store.fresh_channel(channel).await?;
            let row = row.ok_or(ProposeError::NotOpen)?;
            prepare_on(sh, guard, row, change, Kept::No).map_err(|(e, _)| e)
        }
        r => r.map_err(|(e, _)| e),
    }
}

/// [`prepare`] on `row`; on refusal the lock comes back with the error.
fn prepare_on(
    sh: &Shared,
    guard: OwnedMutexGuard<()>,
    row: ChannelRow,
    change: Change,
    kept: Kept,
) -> Result<Prepared, (ProposeError, OwnedMutexGuard<()>)> {
    match check_open(&row).and_then(|()| prepare_signed(sh, &row, change.clone())) {
        Ok((session, proposed)) => Ok(Prepared {
            _guard: guard,
            row,
            kept,
            session,
            change,
            proposed,
            until: now_ms().saturating_add(sh.cfg.limits.reply_timeout_ms),
        }),
        Err(e) => Err((e, guard)),
    }
}

/// The channel can take a hub proposal now: open, no proposal reserved.
fn check_open(row: &ChannelRow) -> Result<(), ProposeError> {
    if row.phase != ChannelPhase::Open {
        return Err(ProposeError::NotOpen);
    }
    match &row.pending {
        None => Ok(()),
        Some(p) if p.is_live(now_ms()) => Err(ProposeError::Busy),
        Some(_) => Err(ProposeError::InDoubt),
    }
}

/// The client's session and the hub-signed proposal of `change` on `row`.
fn prepare_signed(
    sh: &Shared,
    row: &ChannelRow,
    change: Change,
) -> Result<(SessionHandle, Snapshot), ProposeError> {
    let session = sh.sessions.get(&row.client).ok_or(ProposeError::Offline)?;
    Ok((session, sign_proposal(sh, row, change)?))
}

/// The hub's side of the channel's session machine, as its row stands.
pub fn machine(sh: &Shared, row: &ChannelRow) -> ChannelSession {
    let signed = Signed {
        version: row.floor,
        is_final: false,
    };
    ChannelSession::new(
        Party::B,
        sh.key.clone(),
        row.client,
        row.snapshot.clone(),
        signed,
    )
}

/// `change` on `row`, built and signed by the machine; the client's signature is left zero.
fn sign_proposal(sh: &Shared, row: &ChannelRow, change: Change) -> Result<Snapshot, ProposeError> {
    let ctx = sh.context(row.deposit_a, row.deposit_b);
    let mut m = machine(sh, row);
    m.propose(change, &ctx, None)?;
    let f = m.in_flight().ok_or(ProposeError::Conflict)?;
    Ok(Snapshot {
        cosigned: CoSigned {
            state: f.next.state,
            sig_a: Signature::default(),
            sig_b: f.sig,
        },
        locks: f.next.locks.clone(),
    })
}

/// Buries a proposal left in doubt on `channel` (rejected, or unanswered): proposes a `Bump`
/// above it, so that once the client co-signs it every state either side signed below is dead
/// (a challenge with the bump beats it). True: it is dead (or there was none); false: still in
/// doubt (the client is offline or refused, or another task claimed the channel).
pub async fn bury(sh: &Shared, channel: &Hash32) -> Result<bool, ProposeError> {
    match supersede(sh, channel, Change::Bump, vec![]).await? {
        Superseded::Done(_) | Superseded::NothingInDoubt => Ok(true),
        Superseded::Refused => Ok(false),
    }
}

/// What [`supersede`] did.
pub enum Superseded {
    /// The change is co-signed above the proposal in doubt, which is dead.
    Done(Box<Snapshot>),
    /// No proposal given up on stands on the channel.
    NothingInDoubt,
    /// The client did not co-sign; the proposal stays in doubt.
    Refused,
}

/// Proposes `change` above a proposal left in doubt on `channel` (the same forward again, or a
/// `Bump`), with `writes` committed with it; once co-signed, the one in doubt is dead.
pub async fn supersede(
    sh: &Shared,
    channel: &Hash32,
    change: Change,
    writes: Vec<PaymentWrite>,
) -> Result<Superseded, ProposeError> {
    let _guard = channel_guard(sh, channel).await?;
    let row = sh
        .store
        .channel(channel)
        .await?
        .ok_or(ProposeError::NotOpen)?;
    let Some(doubt) = row.pending.clone().filter(|p| !p.is_live(now_ms())) else {
        return match row.pending {
            None => Ok(Superseded::NothingInDoubt),
            Some(_) => Err(ProposeError::Busy),
        };
    };
    if row.phase != ChannelPhase::Open {
        return Err(ProposeError::NotOpen);
    }
    let session = sh.sessions.get(&row.client).ok_or(ProposeError::Offline)?;
    let proposed = sign_proposal(sh, &row, change.clone())?;
    let version = proposed.state().version;
    let claimed = sh
        .store
        .claim_bump(channel, row.version(), doubt.version(), version, now_ms())
        .await?;
    if !claimed {
        return Err(ProposeError::Busy);
    }
    let Answer::Accept(sig_a) = send_and_wait(sh, &session, row.client, change, &proposed).await
    else {
        return Ok(Superseded::Refused);
    };
    let snap = completed(&row.client, &proposed, sig_a)?;
    let seen = ChannelRow {
        floor: version,
        ..row.clone()
    };
    let old = row.version();
    let committed = sh
        .store
        .update_channel_from(&seen, |r| {
            match r.version() == old && r.pending == seen.pending {
                true => Ok((snap.clone(), writes.clone(), ())),
                false => Err(()),
            }
        })
        .await;
    resync_if_lost(&session, committed)?.map_err(|_| ProposeError::Conflict)?;
    sh.metrics.updates.with_label_values(&["superseded"]).inc();
    tracing::info!(channel = %channel, version, buried = doubt.version(), "a proposal in doubt is dead");
    Ok(Superseded::Done(Box::new(snap)))
}

/// Drops a reserved proposal that was never sent (the client cannot hold it).
pub async fn abandon_unsent(sh: &Shared, p: Prepared) {
    let version = p.proposed.state().version;
    if let Err(e) = sh.store.clear_reservation(&p.row.id, version).await {
        tracing::error!(error = %e, channel = %p.row.id, "cannot clear an unsent reservation");
    }
}

/// Sends a reserved proposal, waits for the client's answer and commits the co-signed state
/// with `writes`.
pub async fn finish(
    sh: &Shared,
    p: Prepared,
    writes: Vec<PaymentWrite>,
) -> Result<Snapshot, ProposeError> {
    let channel = &p.row.id;
    let version = p.proposed.state().version;
    let old = p.built_on();
    let answer = send_and_wait(sh, &p.session, p.row.client, p.change.clone(), &p.proposed).await;
    let sig_a = match answer {
        Answer::Accept(sig) => sig,
        Answer::NotSent => {
            // Never queued, so the client cannot hold it.
            sh.store.clear_reservation(channel, version).await?;
            return Err(ProposeError::Offline);
        }
        // The client holds our signature and may have co-signed the state anyway: it stays
        // in doubt, its version burnt, until it is dead (see `bury`).
        Answer::Reject(code, reason, signed) => {
            let cap = old.saturating_add(MAX_VERSION_SKIP / 2);
            sh.store.raise_floor(channel, signed.min(cap)).await?;
            let e = ProposeError::Rejected(code, reason);
            return match adds_hub_lock(&p.proposed, &p.row.snapshot) {
                true => Err(abandon(sh, channel, version, e).await),
                // Nothing in it costs the hub should the client enforce it: the version stays
                // burnt (the floor), the reservation goes.
                false => {
                    sh.store.clear_reservation(channel, version).await?;
                    Err(e)
                }
            };
        }
        Answer::Gone => return Err(abandon(sh, channel, version, ProposeError::Offline).await),
        Answer::Silent => {
            // A silent client may still complete the state: end its session so that it
            // reconnects and resyncs, which resolves the reservation.
            p.session.kick.notify_one();
            return Err(abandon(sh, channel, version, ProposeError::Timeout).await);
        }
    };
    let proposed = &p.proposed;
    let snap = match completed(&p.row.client, proposed, sig_a) {
        Ok(snap) => snap,
        Err(e) => return Err(abandon(sh, channel, version, e).await),
    };
    // The row as our reservation left it (floor raised to it): the commit is one statement
    // unless the row moved since.
    let seen = ChannelRow {
        pending: Some(Reservation {
            snapshot: proposed.clone(),
            until_ms: p.until,
        }),
        floor: version,
        ..p.row.clone()
    };
    let committed = sh
        .store
        .update_channel_from(&seen, |row| {
            let ours = row
                .pending
                .as_ref()
                .is_some_and(|r| r.snapshot == *proposed);
            match row.version() == old && ours {
                true => Ok((snap.clone(), writes.clone(), ())),
                false => Err(()),
            }
        })
        .await;
    resync_if_lost(&p.session, committed)?.map_err(|_| ProposeError::Conflict)?;
    sh.metrics.updates.with_label_values(&["committed"]).inc();
    Ok(snap)
}

/// A co-signed hub proposal the store did not take (it is down): the client holds it, the
/// store holds its reservation. Ending the session makes the client log in again and resync,
/// which completes the reservation once the store is back; else it would hold the channel's
/// next version for as long as the session lasts.
fn resync_if_lost<T>(
    session: &SessionHandle,
    committed: Result<T, StoreError>,
) -> Result<T, ProposeError> {
    committed.map_err(|e| {
        tracing::warn!(error = %e, "cannot commit a co-signed proposal; the client resyncs");
        session.kick.notify_one();
        ProposeError::Store(e)
    })
}

/// How the client answered a hub proposal.
enum Answer {
    Accept(Signature),
    Reject(ErrorCode, String, u64),
    /// Never queued on the session: the client cannot hold it.
    NotSent,
    /// The session ended before an answer.
    Gone,
    /// No answer within the reply timeout.
    Silent,
}

/// The channel's in-process lock, waited for up to the reply timeout.
async fn channel_guard(sh: &Shared, channel: &Hash32) -> Result<OwnedMutexGuard<()>, ProposeError> {
    let timeout = Duration::from_millis(sh.cfg.limits.reply_timeout_ms);
    let lock = sh.channel_lock(channel);
    tokio::time::timeout(timeout, lock.lock_owned())
        .await
        .map_err(|_| ProposeError::Busy)
}

/// Sends the hub-signed `proposed` to the client and waits for its answer.
async fn send_and_wait(
    sh: &Shared,
    session: &SessionHandle,
    client: Address,
    change: Change,
    proposed: &Snapshot,
) -> Answer {
    let timeout = Duration::from_millis(sh.cfg.limits.reply_timeout_ms);
    let state = proposed.state();
    let (channel, version) = (state.channel_id, state.version);
    let rx = sh.expect_reply(channel, version, client);
    session.note_proposal(channel, version);
    let sent = session.send(SessionMsg::Propose(Proposal {
        channel_id: channel,
        change,
        state: *state,
        sig: proposed.cosigned.sig_b,
        invoice: None,
    }));
    let answer = match sent {
        false => Answer::NotSent,
        true => match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Reply::Accept(sig))) => Answer::Accept(sig),
            Ok(Ok(Reply::Reject(code, reason, signed))) => Answer::Reject(code, reason, signed),
            Ok(Err(_)) => Answer::Gone,
            Err(_) => Answer::Silent,
        },
    };
    sh.forget_reply(&channel, version);
    answer
}

/// `proposed` with the client's signature, once it verifies.
fn completed(
    client: &Address,
    proposed: &Snapshot,
    sig_a: Signature,
) -> Result<Snapshot, ProposeError> {
    client
        .verify_hash(&proposed.state().signing_hash(), &sig_a)
        .map_err(|_| ProposeError::BadSignature)?;
    Ok(Snapshot {
        cosigned: CoSigned {
            sig_a,
            ..proposed.cosigned
        },
        locks: proposed.locks.clone(),
    })
}

/// Whether `proposed` holds a hub lock toward the client that `latest` does not: the one kind of
/// hub proposal the client gains by enforcing, so the one that must stay recorded in doubt.
pub fn adds_hub_lock(proposed: &Snapshot, latest: &Snapshot) -> bool {
    proposed.locks.iter().any(|l| {
        l.direction == Direction::BtoA && !latest.locks.iter().any(|m| m.hashlock == l.hashlock)
    })
}

/// Marks the reservation as given up (the client may hold a completed copy) and returns `e`.
async fn abandon(sh: &Shared, channel: &Hash32, version: u64, e: ProposeError) -> ProposeError {
    match sh.store.expire_reservation(channel, version).await {
        Ok(()) => e,
        Err(s) => ProposeError::Store(s),
    }
}
