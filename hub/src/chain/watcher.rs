//! The hub's channel listener, driven by the shared chain follower: channels opened toward the
//! hub, deposits, closes (a stale one is challenged at once) and settlements, each applied with
//! the cursor in one transaction.

use super::responder::{Action, Responder};
use crate::shared::Shared;
use crate::store::{ChainWrite, ChannelPhase, ChannelRow};
use sluice_chain_client::{ClientError, Listen};
use sluice_protocol::onchain::{EventKind, Reaction};
use sluice_protocol::rpc::{Event, EventFilter};
use sluice_protocol::{Height, Snapshot, TxKind};
use std::sync::Arc;

/// The hub's channel listener: every event naming the hub, with the persisted cursor.
pub struct Channels {
    pub sh: Arc<Shared>,
    pub responder: Arc<Responder>,
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Chain(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Listen for Channels {
    type Error = FollowError;

    fn filter(&self) -> EventFilter {
        EventFilter {
            participant: Some(self.sh.address()),
            ..Default::default()
        }
    }

    async fn cursor(&self) -> Result<Height, FollowError> {
        Ok(self.sh.store.cursor().await?)
    }

    async fn head(&self, height: Height) -> Result<(), FollowError> {
        self.sh.set_height(height);
        Ok(())
    }

    async fn event(&self, ev: &Event) -> Result<(), FollowError> {
        apply(&self.sh, &self.responder, ev).await
    }

    async fn handled(&self, height: Height) -> Result<(), FollowError> {
        Ok(self.sh.store.apply_chain(height, &[]).await?)
    }

    fn interrupted(&self, error: &FollowError) {
        tracing::warn!(%error, "chain follower interrupted; reconnecting");
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
                updated_at: crate::store::now_secs(),
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
    // The cursor is the last height fully handled: the one before this event's (replaying a
    // height is harmless, every write is idempotent).
    sh.store
        .apply_chain(ev.height.saturating_sub(1), &writes)
        .await?;
    Ok(())
}

/// A close or challenge the hub's latest state must answer (the one reaction rule,
/// `ChannelRecord::reaction`, on the chain's record now) is challenged at once; the guard
/// resubmits with rising fees while it has not landed.
async fn guard_close(sh: &Arc<Shared>, r: &Responder, id: &sluice_protocol::Hash32, version: u64) {
    let Ok(Some(row)) = sh.store.channel(id).await else {
        return;
    };
    // A cheap first look: no newer state of ours, nothing to read from the chain.
    if row.version() <= version {
        return;
    }
    let rec = match r.chain().client().channel(id).await {
        Ok(Some(rec)) => rec,
        Ok(None) => return,
        Err(e) => {
            return tracing::warn!(channel = %id, error = %e, "cannot read a closing channel; the guard retries")
        }
    };
    if rec.reaction(row.version(), sh.height()) != Reaction::Challenge {
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
