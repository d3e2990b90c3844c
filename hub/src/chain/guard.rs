//! The guard's periodic duties, each derived again every round from the store and the chain's
//! state (so nothing is lost to a restart) and submitted through the [`Responder`], which
//! resubmits with rising fees while the action stays due:
//! - a channel closing on chain with a state below the hub's latest co-signed one is
//!   challenged while its window is open (the follower challenges at once when it sees the
//!   close; this catches a challenge that did not land);
//! - a payer that withholds its `Unlock` of a lock whose secret the hub knows: near `E_in` the
//!   hub registers the secret on chain and force-closes the channel with its latest co-signed
//!   state, so the lock resolves to the hub at settlement (past `E_in` too, if the secret was
//!   on chain before it: a hub that was down at `E_in` still claims);
//! - channels closing on chain whose window (and every stored lock) has passed are settled, so
//!   the hub's share is paid out.

use super::responder::{Action, Responder};
use crate::shared::Shared;
use crate::store::ChannelRow;
use crate::store::{ChannelPhase, PaymentState, StoreError};
use sluice_chain_client::ClientError;
use sluice_protocol::onchain::Reaction;
use sluice_protocol::{Height, TxKind};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
enum GuardError {
    #[error(transparent)]
    Chain(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn run(sh: Arc<Shared>, responder: Arc<Responder>) {
    loop {
        if let Err(e) = tick(&sh, &responder).await {
            tracing::warn!(error = %e, "guard round failed");
        }
        tokio::time::sleep(Duration::from_millis(sh.cfg.guard.interval_ms.max(50))).await;
    }
}

async fn tick(sh: &Shared, r: &Responder) -> Result<(), GuardError> {
    let height = r.chain().client().chain_info().await?.height;
    sh.set_height(height);
    // Watched, not relied on: a failed read must not hold up the duties below.
    match r.chain().client().account(&sh.address()).await {
        Ok(a) => crate::metrics::set_saturating(&sh.metrics.wallet_balance, a.balance),
        Err(e) => tracing::debug!(error = %e, "cannot read the hub's balance"),
    }
    claim_withheld(sh, r, height).await?;
    let mut pages = sh.store.pages(ChannelPhase::Closing);
    while let Some(page) = pages.next().await? {
        for row in &page {
            enforce_close(r, row, height).await?;
        }
    }
    Ok(())
}

/// A channel closing on chain: what `ChannelRecord::reaction` says of the hub's latest state
/// (a challenge while the chain holds a lower one and the window is open, a settle once the
/// window and every stored lock have passed).
async fn enforce_close(r: &Responder, row: &ChannelRow, height: Height) -> Result<(), GuardError> {
    let Some(rec) = r.chain().client().channel(&row.id).await? else {
        return Ok(());
    };
    let (action, kind) = match rec.reaction(row.version(), height) {
        Reaction::Challenge => (
            Action::Challenge,
            TxKind::Challenge {
                cosigned: row.snapshot.cosigned,
                locks: row.snapshot.locks.clone(),
            },
        ),
        Reaction::Settle => (Action::Settle, TxKind::Settle { channel_id: row.id }),
        Reaction::Nothing => return Ok(()),
    };
    if let Some(tx) = r.act(row.id, action, kind).await? {
        tracing::warn!(channel = %row.id, ?action, ours = row.version(), %tx, "enforcing a close");
    }
    Ok(())
}

/// Payments whose secret the hub knows but whose incoming lock is still open near `E_in`.
async fn claim_withheld(sh: &Shared, r: &Responder, height: Height) -> Result<(), GuardError> {
    let margin = sh.cfg.guard.claim_margin;
    for pay in sh.store.open_payments().await? {
        let (PaymentState::SecretKnown, Some(secret)) = (pay.state, pay.secret) else {
            continue;
        };
        if height.saturating_add(margin) < pay.expiry_in {
            continue;
        }
        let registered = r.chain().client().secret(&pay.hashlock).await?;
        match registered {
            None if height < pay.expiry_in => {
                let kind = TxKind::RegisterSecret { secret };
                if let Some(tx) = r.act(pay.hashlock, Action::RegisterSecret, kind).await? {
                    tracing::warn!(hashlock = %pay.hashlock, %tx, expiry = pay.expiry_in, height, "payer withholds unlock; registering the secret");
                }
            }
            // Past the lock's expiry the close still pays the hub if the secret was on chain
            // before it (settlement's rule): a hub that was down or behind at `E_in` still
            // claims. Registered late, or not at all, there is nothing left to claim.
            Some(info) if info.height < pay.expiry_in => {}
            _ if height >= pay.expiry_in => continue,
            _ => {}
        }
        let Some(row) = sh.store.channel(&pay.channel_in).await? else {
            continue;
        };
        let held = row
            .snapshot
            .locks
            .iter()
            .any(|l| l.hashlock == pay.hashlock);
        if row.phase == ChannelPhase::Open && held {
            let kind = TxKind::Close {
                cosigned: row.snapshot.cosigned,
                locks: row.snapshot.locks.clone(),
            };
            if let Some(tx) = r.act(row.id, Action::Close, kind).await? {
                tracing::warn!(channel = %row.id, version = row.version(), %tx, "force-closing to claim a withheld lock");
            }
        }
    }
    Ok(())
}
