//! The event follower: `subscribe_events(participant = hub, cursor + 1)`, reconnecting with
//! backoff and resuming from the persisted cursor.

use super::responder::{Action, Responder};
use crate::shared::Shared;
use crate::store::{ChainWrite, ChannelPhase, ChannelRow};
use sluice_chain_client::ClientError;
use sluice_protocol::onchain::EventKind;
use sluice_protocol::rpc::{Event, EventFilter};
use sluice_protocol::{Snapshot, TxKind};
use std::sync::Arc;
use std::time::Duration;

pub async fn run(sh: Arc<Shared>, responder: Arc<Responder>) {
    loop {
        if let Err(e) = follow(&sh, &responder).await {
            tracing::warn!(error = %e, "chain event stream ended; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Keeps the hub's view of the chain height current.
pub async fn follow_heads(sh: Arc<Shared>) {
    let Some(chain) = sh.chain.clone() else {
        return;
    };
    loop {
        if let Ok(mut heads) = chain.client().subscribe_heads().await {
            while let Ok(h) = heads.next().await {
                sh.set_height(h.height);
            }
        }
        if let Ok(info) = chain.client().chain_info().await {
            sh.set_height(info.height);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Chain(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

async fn follow(sh: &Arc<Shared>, r: &Responder) -> Result<(), FollowError> {
    let Some(chain) = sh.chain.clone() else {
        return Ok(());
    };
    let from = sh.store.cursor().await? + 1;
    let filter = EventFilter {
        participant: Some(sh.address()),
        ..Default::default()
    };
    let mut events = chain.client().subscribe_events(filter, from).await?;
    tracing::info!(from, "following chain events");
    loop {
        let ev = events.next().await?;
        sh.set_height(ev.height);
        apply(sh, r, &ev).await?;
    }
}

async fn apply(sh: &Arc<Shared>, r: &Responder, ev: &Event) -> Result<(), FollowError> {
    let mut writes = Vec::new();
    match &ev.event {
        EventKind::ChannelOpened {
            channel_id,
            a,
            b,
            deposit,
            challenge_period,
        } if *b == sh.address() && *challenge_period < sh.cfg.terms.min_challenge_period => {
            // F3: too short a window to answer a stale close in; the hub never funds, routes
            // or signs on it (it is not stored), and the client's deposit is its own to close.
            tracing::warn!(channel = %channel_id, challenge_period, min = sh.cfg.terms.min_challenge_period, "refused a channel with too short a challenge period");
        }
        EventKind::ChannelOpened {
            channel_id,
            a,
            b,
            deposit,
            challenge_period,
        } if *b == sh.address() => {
            writes.push(ChainWrite::Opened(Box::new(ChannelRow {
                id: *channel_id,
                client: *a,
                deposit_a: *deposit,
                deposit_b: 0,
                challenge_period: *challenge_period,
                phase: ChannelPhase::Open,
                snapshot: Snapshot::opening(sh.chain_id, *channel_id),
                pending: None,
                floor: 0,
            })));
        }
        EventKind::Deposited {
            channel_id,
            party,
            total,
            ..
        } => writes.push(ChainWrite::Deposit {
            id: *channel_id,
            party: *party,
            total: *total,
        }),
        EventKind::ChannelClosing {
            channel_id,
            version,
            ..
        }
        | EventKind::ChannelChallenged {
            channel_id,
            version,
            ..
        } => {
            writes.push(ChainWrite::Phase {
                id: *channel_id,
                phase: ChannelPhase::Closing,
            });
            guard_close(sh, r, channel_id, *version).await;
        }
        EventKind::ChannelSettled { channel_id, .. } => {
            writes.push(ChainWrite::Phase {
                id: *channel_id,
                phase: ChannelPhase::Settled,
            });
        }
        _ => {}
    }
    // Replaying the cursor's height is harmless (idempotent writes), so the cursor marks the
    // last height known complete: the one before this event's.
    sh.store
        .apply_chain(ev.height.saturating_sub(1), &writes)
        .await?;
    Ok(())
}

/// A close or challenge with a version below the hub's latest is answered with a challenge at
/// once (the guard resubmits it with rising fees while it has not landed).
async fn guard_close(sh: &Arc<Shared>, r: &Responder, id: &sluice_protocol::Hash32, version: u64) {
    let Ok(Some(row)) = sh.store.channel(id).await else {
        return;
    };
    if row.version() <= version {
        return;
    }
    let kind = TxKind::Challenge {
        cosigned: row.snapshot.cosigned,
        locks: row.snapshot.locks.clone(),
    };
    match r.act(*id, Action::Challenge, kind).await {
        Ok(tx) => {
            tracing::warn!(channel = %id, stale = version, ours = row.version(), ?tx, "challenged a stale close")
        }
        Err(e) => tracing::error!(channel = %id, error = %e, "cannot submit challenge"),
    }
}
