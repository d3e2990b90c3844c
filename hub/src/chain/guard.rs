//! The guard's periodic duties (stale closes are answered by the watcher as they happen):
//! - a payer that withholds its `Unlock` of a lock whose secret the hub knows: near `E_in` the
//!   hub registers the secret on chain and force-closes the channel with its latest co-signed
//!   state, so the lock resolves to the hub at settlement;
//! - channels closing on chain whose window (and every stored lock) has passed are settled, so
//!   the hub's share is paid out.
//!
//! Each action is resubmitted while it is still due (no persisted job is needed: the chain's
//! state says whether it is still due), at most once per `resubmit_secs` per subject.

use crate::shared::Shared;
use crate::store::{ChannelPhase, PaymentState, StoreError};
use sluice_chain_client::{ClientError, TxSender};
use sluice_protocol::onchain::ChannelStatus;
use sluice_protocol::{Hash32, Height, TxKind};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
enum GuardError {
    #[error(transparent)]
    Chain(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// When each subject (hashlock or channel) last had an action submitted.
struct Recent {
    at: HashMap<(Hash32, &'static str), Instant>,
    every: Duration,
}

impl Recent {
    /// True (and remembered) if `what` on `id` was not submitted within the resubmit period.
    fn due(&mut self, id: Hash32, what: &'static str) -> bool {
        let now = Instant::now();
        self.at.retain(|_, t| now.duration_since(*t) < self.every);
        match self.at.contains_key(&(id, what)) {
            true => false,
            false => {
                self.at.insert((id, what), now);
                true
            }
        }
    }
}

pub async fn run(sh: Arc<Shared>) {
    let Some(chain) = sh.chain.clone() else {
        return;
    };
    let mut recent = Recent {
        at: HashMap::new(),
        every: Duration::from_secs(sh.cfg.guard.resubmit_secs.max(1)),
    };
    loop {
        if let Err(e) = tick(&sh, &chain, &mut recent).await {
            tracing::warn!(error = %e, "guard round failed");
        }
        tokio::time::sleep(Duration::from_millis(sh.cfg.guard.interval_ms.max(50))).await;
    }
}

async fn tick(sh: &Shared, chain: &TxSender, recent: &mut Recent) -> Result<(), GuardError> {
    let height = chain.client().chain_info().await?.height;
    sh.set_height(height);
    claim_withheld(sh, chain, height, recent).await?;
    settle_closed(sh, chain, height, recent).await
}

/// Payments whose secret the hub knows but whose incoming lock is still open near `E_in`.
async fn claim_withheld(
    sh: &Shared,
    chain: &TxSender,
    height: Height,
    recent: &mut Recent,
) -> Result<(), GuardError> {
    let margin = sh.cfg.guard.claim_margin;
    for pay in sh.store.open_payments().await? {
        let (PaymentState::SecretKnown, Some(secret)) = (pay.state, pay.secret) else {
            continue;
        };
        if height.saturating_add(margin) < pay.expiry_in || height >= pay.expiry_in {
            continue;
        }
        if chain.client().secret(&pay.hashlock).await?.is_none()
            && recent.due(pay.hashlock, "register")
        {
            let tx = chain.submit(TxKind::RegisterSecret { secret }).await?;
            tracing::warn!(hashlock = %pay.hashlock, %tx, expiry = pay.expiry_in, height, "payer withholds unlock; registered the secret");
        }
        let Some(row) = sh.store.channel(&pay.channel_in).await? else {
            continue;
        };
        let held = row
            .snapshot
            .locks
            .iter()
            .any(|l| l.hashlock == pay.hashlock);
        if row.phase == ChannelPhase::Open && held && recent.due(row.id, "close") {
            let kind = TxKind::Close {
                cosigned: row.snapshot.cosigned,
                locks: row.snapshot.locks.clone(),
            };
            let tx = chain.submit(kind).await?;
            tracing::warn!(channel = %row.id, version = row.version(), %tx, "force-closed to claim a withheld lock");
        }
    }
    Ok(())
}

/// Closing channels past their window and every stored lock's expiry: `Settle`.
async fn settle_closed(
    sh: &Shared,
    chain: &TxSender,
    height: Height,
    recent: &mut Recent,
) -> Result<(), GuardError> {
    for row in sh.store.channels(10_000).await? {
        if row.phase != ChannelPhase::Closing {
            continue;
        }
        let Some(rec) = chain.client().channel(&row.id).await? else {
            continue;
        };
        let ChannelStatus::Closing {
            stored,
            settle_after,
        } = rec.status
        else {
            continue;
        };
        let locks_end = stored.locks.iter().map(|l| l.expiry).max().unwrap_or(0);
        if height > settle_after && height > locks_end && recent.due(row.id, "settle") {
            let tx = chain.submit(TxKind::Settle { channel_id: row.id }).await?;
            tracing::info!(channel = %row.id, %tx, "settling a closed channel");
        }
    }
    Ok(())
}
