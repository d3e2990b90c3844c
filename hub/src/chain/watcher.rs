//! The event follower: `subscribe_events(participant = hub, cursor + 1)`, reconnecting with
//! backoff and resuming from the persisted cursor.

use crate::shared::Shared;
use crate::store::{ChainWrite, ChannelPhase, ChannelRow};
use sluice_chain_client::ClientError;
use sluice_protocol::onchain::EventKind;
use sluice_protocol::rpc::{Event, EventFilter};
use sluice_protocol::{Snapshot, TxKind};
use std::sync::Arc;
use std::time::Duration;

pub async fn run(sh: Arc<Shared>) {
    loop {
        if let Err(e) = follow(&sh).await {
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

async fn follow(sh: &Arc<Shared>) -> Result<(), FollowError> {
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
        apply(sh, &ev).await?;
    }
}

async fn apply(sh: &Arc<Shared>, ev: &Event) -> Result<(), FollowError> {
    let Some(chain) = sh.chain.clone() else {
        return Ok(());
    };
    let mut writes = Vec::new();
    match &ev.event {
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
        EventKind::Deposited { channel_id, .. } => {
            if let Some(rec) = chain.client().channel(channel_id).await? {
                writes.push(ChainWrite::Deposits {
                    id: *channel_id,
                    deposit_a: rec.deposit_a,
                    deposit_b: rec.deposit_b,
                });
            }
        }
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
            guard_close(sh, channel_id, *version).await;
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

/// A close or challenge with a version below the hub's latest is answered with a challenge.
async fn guard_close(sh: &Arc<Shared>, id: &sluice_protocol::Hash32, version: u64) {
    let (Some(chain), Ok(Some(row))) = (sh.chain.clone(), sh.store.channel(id).await) else {
        return;
    };
    if row.version() <= version {
        return;
    }
    let kind = TxKind::Challenge {
        cosigned: row.snapshot.cosigned,
        locks: row.snapshot.locks.clone(),
    };
    match chain.submit(kind).await {
        Ok(tx) => {
            tracing::warn!(channel = %id, stale = version, ours = row.version(), %tx, "challenged a stale close")
        }
        Err(e) => tracing::error!(channel = %id, error = %e, "cannot submit challenge"),
    }
}
