//! The receiver's guard, whether or not the hub is reachable:
//! - a withdrawal of ours that was co-signed but not paid (a crash in between) is submitted;
//! - on an open channel, if the hub has not co-signed our unlock of an incoming payment by
//!   `expiry − unlock_margin`, register the secret on chain (so the lock resolves to us) and
//!   force-close; a close that failed is retried as long as the registration was in time (F10);
//! - on a channel closing on chain (whoever closed), challenge it while the chain holds an older
//!   state than ours and the window is open, and register at once the secret of every lock
//!   toward us in the state the chain holds that pays one of our invoices (F5).

use crate::core::Core;
use crate::session::vet::registered_at;
use crate::store::{ChannelRow, ChannelStatus};
use sluice_protocol::onchain::ChannelStatus as OnChain;
use sluice_protocol::session::{must_force_close, must_register};
use sluice_protocol::{Amount, Hash32, Height, Lock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(1);

/// Per channel, the withdrawn total of ours already seen paid (or submitted) by this guard, so
/// the chain is asked again only once a newer withdrawal is co-signed.
type Settled = HashMap<Hash32, Amount>;

/// Runs forever.
pub(crate) async fn run(core: Arc<Core>) {
    let mut paid = Settled::new();
    loop {
        if let Err(e) = check(&core, &mut paid).await {
            tracing::warn!(error = %e, "unlock guard check failed");
        }
        tokio::time::sleep(EVERY).await;
    }
}

async fn check(core: &Core, paid: &mut Settled) -> crate::error::Result<()> {
    let height: Height = core.chain.chain_info().await?.height;
    for ch in core.store.channels().await? {
        match ch.status {
            ChannelStatus::Open | ChannelStatus::Final => {
                pay_withdrawal(core, &ch, paid).await?;
                guard_open(core, &ch, height).await?
            }
            ChannelStatus::Closing => guard_closing(core, &ch, height).await?,
            _ => {}
        }
    }
    Ok(())
}

/// Submits a co-signed withdrawal of ours the chain has not paid (a crash in between).
async fn pay_withdrawal(
    core: &Core,
    ch: &ChannelRow,
    paid: &mut Settled,
) -> crate::error::Result<()> {
    let ours = ch.snapshot.state().withdrawn_a;
    if ours > paid.get(&ch.id).copied().unwrap_or(0) {
        crate::withdraw::submit(core, ch).await?;
        paid.insert(ch.id, ours);
    }
    Ok(())
}

async fn guard_open(core: &Core, ch: &ChannelRow, height: Height) -> crate::error::Result<()> {
    let margin = core.config.unlock_margin;
    let mut close = false;
    for lock in ch.snapshot.locks.iter().filter(|l| near(l, height, margin)) {
        if core.store.invoice(&lock.hashlock).await?.is_none() {
            continue;
        }
        if must_register(lock, height, margin, false) {
            crate::onchain::register_secret(core, &lock.hashlock).await?;
            close = true;
        } else {
            let registered = registered_at(core, &lock.hashlock).await?;
            close |= must_force_close(lock, height, margin, registered);
        }
    }
    if close {
        tracing::warn!(channel = %ch.id, "hub did not take our unlock in time; force-closing");
        crate::onchain::force_close(core, &ch.id).await?;
    }
    Ok(())
}

/// Within the guard's margin of its expiry, or past it (no registry look-up before that).
fn near(lock: &Lock, height: Height, margin: Height) -> bool {
    height.saturating_add(margin) >= lock.expiry
}

async fn guard_closing(core: &Core, ch: &ChannelRow, height: Height) -> crate::error::Result<()> {
    // A challenge the follower sent that did not land is sent again while the window is open.
    if let Some(version) = crate::onchain::challenge_if_stale(core, &ch.id).await? {
        core.emit_durable(crate::events::WalletEvent::ChallengeSubmitted {
            channel_id: ch.id,
            version,
        })
        .await?;
    }
    let rec = crate::chain::record(&core.chain, &ch.id).await?;
    let OnChain::Closing { stored, .. } = rec.status else {
        return Ok(());
    };
    let margin = core.config.unlock_margin;
    for lock in stored
        .locks
        .iter()
        .filter(|l| must_register(l, height, margin, true))
    {
        if core.store.invoice(&lock.hashlock).await?.is_some() {
            crate::onchain::register_secret(core, &lock.hashlock).await?;
        }
    }
    Ok(())
}
