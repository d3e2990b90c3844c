//! The receiver's guard: if the hub has not co-signed our unlock of an incoming payment by
//! `expiry − unlock_margin`, register the secret on chain (so the lock resolves to us) and
//! force-close. Runs whether or not the hub is reachable.

use crate::core::Core;
use crate::store::ChannelStatus;
use sluice_protocol::{Direction, Height};
use std::sync::Arc;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(1);

/// Runs forever.
pub(crate) async fn run(core: Arc<Core>) {
    loop {
        if let Err(e) = check(&core).await {
            tracing::warn!(error = %e, "unlock guard check failed");
        }
        tokio::time::sleep(EVERY).await;
    }
}

async fn check(core: &Core) -> crate::error::Result<()> {
    let height: Height = core.chain.chain_info().await?.height;
    for ch in core.store.channels().await? {
        if !matches!(ch.status, ChannelStatus::Open | ChannelStatus::Final) {
            continue;
        }
        let due = ch.snapshot.locks.iter().filter(|l| {
            l.direction == Direction::BtoA
                && height < l.expiry
                && height.saturating_add(core.config.unlock_margin) >= l.expiry
        });
        let mut claimed = false;
        for lock in due {
            if core.store.invoice(&lock.hashlock).await?.is_some() {
                crate::onchain::register_secret(core, &lock.hashlock).await?;
                claimed = true;
            }
        }
        if claimed {
            tracing::warn!(channel = %ch.id, "hub did not take our unlock in time; force-closing");
            crate::onchain::force_close(core, &ch.id).await?;
        }
    }
    Ok(())
}
