//! The hub as proposer: builds the next state with the protocol's `apply`, signs it, sends it to
//! the channel's client and commits the co-signed state (with any payment writes) once the
//! client's signature verifies. One update in flight per channel: the channel's lock is held
//! from reading the latest state to committing the next.

use crate::shared::{Reply, Shared};
use crate::store::{ChannelPhase, PaymentWrite, StoreError};
use sluice_protocol::update::{apply, Change, Position, UpdateError};
use sluice_protocol::wire::hub::{ErrorCode, Proposal, SessionMsg};
use sluice_protocol::{CoSigned, Hash32, Party, Snapshot};
use std::time::Duration;

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
    #[error("channel moved on meanwhile (another hub process updated it)")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Proposes `change` on `channel` and returns the committed snapshot. `writes` commit with it.
pub async fn propose(
    sh: &Shared,
    channel: &Hash32,
    change: Change,
    writes: Vec<PaymentWrite>,
) -> Result<Snapshot, ProposeError> {
    let timeout = Duration::from_millis(sh.cfg.limits.reply_timeout_ms);
    let lock = sh.channel_lock(channel);
    let _guard = tokio::time::timeout(timeout, lock.lock())
        .await
        .map_err(|_| ProposeError::Timeout)?;
    let row = sh
        .store
        .channel(channel)
        .await?
        .ok_or(ProposeError::NotOpen)?;
    if row.phase != ChannelPhase::Open {
        return Err(ProposeError::NotOpen);
    }
    let session = sh.sessions.get(&row.client).ok_or(ProposeError::Offline)?;
    let current = Position {
        state: *row.snapshot.state(),
        locks: row.snapshot.locks.clone(),
    };
    let ctx = sh.context(row.deposit_a, row.deposit_b);
    let next = apply(&current, &change, Party::B, &ctx)?;
    let version = next.state.version;
    let sig_b = next.state.sign(&sh.key);
    let rx = sh.expect_reply(*channel, version, row.client);
    let sent = session.send(SessionMsg::Propose(Proposal {
        channel_id: *channel,
        change,
        state: next.state,
        sig: sig_b,
        invoice: None,
    }));
    if !sent {
        sh.forget_reply(channel, version);
        return Err(ProposeError::Offline);
    }
    let reply = tokio::time::timeout(timeout, rx).await;
    sh.forget_reply(channel, version);
    let sig_a = match reply {
        Ok(Ok(Reply::Accept(sig))) => sig,
        Ok(Ok(Reply::Reject(code, reason))) => return Err(ProposeError::Rejected(code, reason)),
        Ok(Err(_)) => return Err(ProposeError::Offline),
        Err(_) => return Err(ProposeError::Timeout),
    };
    row.client
        .verify_hash(&next.state.signing_hash(), &sig_a)
        .map_err(|_| ProposeError::BadSignature)?;
    let snap = Snapshot {
        cosigned: CoSigned {
            state: next.state,
            sig_a,
            sig_b,
        },
        locks: next.locks,
    };
    let old = current.state.version;
    let stored = snap.clone();
    sh.store
        .update_channel(channel, move |row| match row.version() == old {
            true => Ok((stored, writes, ())),
            false => Err(()),
        })
        .await?
        .map_err(|_| ProposeError::Conflict)?;
    sh.metrics.updates.with_label_values(&["committed"]).inc();
    Ok(snap)
}
