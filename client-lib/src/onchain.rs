//! Transactions the wallet sends itself: open, top up, cooperative close, force-close,
//! challenge, secret registration and settle. These need only the chain, never the hub.

use crate::core::Core;
use crate::error::{Result, WalletError};
use crate::store::ChannelStatus;
use sluice_protocol::onchain::{ChannelRecord, ChannelStatus as OnChain, Reaction};
use sluice_protocol::{Amount, CoSigned, Hash32, Height, TxKind};
use std::time::Duration;

/// How long to wait for a transaction to be included.
pub(crate) const TX_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh random 32-byte value (salts, secrets, nonces).
pub(crate) fn random32() -> Hash32 {
    use secp256k1::rand::RngCore;
    let mut b = [0u8; 32];
    secp256k1::rand::thread_rng().fill_bytes(&mut b);
    Hash32(b)
}

/// Submits the latest co-signed snapshot with `Close`; returns `settle_after`.
pub(crate) async fn force_close(core: &Core, id: &Hash32) -> Result<Height> {
    let ch = core.store.require_channel(id).await?;
    let rec = crate::chain::record(&core.chain, id).await?;
    if let OnChain::Closing { settle_after, .. } = rec.status {
        core.store
            .set_channel_status(id, ChannelStatus::Closing)
            .await?;
        return Ok(settle_after);
    }
    if rec.status != OnChain::Open {
        return Err(WalletError::ChannelState {
            id: *id,
            status: "settled on chain".into(),
            what: "force-close",
        });
    }
    let kind = TxKind::Close {
        cosigned: ch.snapshot.cosigned,
        locks: ch.snapshot.locks.clone(),
    };
    core.sender.send(kind, TX_TIMEOUT).await?;
    core.store
        .set_channel_status(id, ChannelStatus::Closing)
        .await?;
    tracing::info!(channel = %id, version = ch.snapshot.state().version, "force-closed");
    match crate::chain::record(&core.chain, id).await?.status {
        OnChain::Closing { settle_after, .. } => Ok(settle_after),
        _ => Err(WalletError::Corrupt(
            "channel not closing after Close".into(),
        )),
    }
}

/// Answers a stale close with our newer snapshot, if the chain holds an older one and the
/// window is still open (the one reaction rule, `ChannelRecord::reaction`).
pub(crate) async fn challenge_if_stale(core: &Core, id: &Hash32) -> Result<Option<u64>> {
    let ch = core.store.require_channel(id).await?;
    let ours = ch.snapshot.state().version;
    let height = core.chain.chain_info().await?.height;
    let rec = crate::chain::record(&core.chain, id).await?;
    let OnChain::Closing { stored, .. } = &rec.status else {
        return Ok(None);
    };
    if rec.reaction(ours, height) != Reaction::Challenge {
        return Ok(None);
    }
    let kind = TxKind::Challenge {
        cosigned: ch.snapshot.cosigned,
        locks: ch.snapshot.locks.clone(),
    };
    core.sender.send(kind, TX_TIMEOUT).await?;
    tracing::warn!(channel = %id, stale = stored.state().version, ours, "challenged a stale close");
    Ok(Some(ours))
}

/// Settles a closing channel once its window and locks have passed; returns the payouts.
pub(crate) async fn settle(core: &Core, id: &Hash32) -> Result<(Amount, Amount)> {
    core.store.require_channel(id).await?;
    if let OnChain::Settled { payout_a, payout_b } =
        crate::chain::record(&core.chain, id).await?.status
    {
        core.store
            .set_channel_status(id, ChannelStatus::Settled)
            .await?;
        return Ok((payout_a, payout_b));
    }
    core.sender
        .send(TxKind::Settle { channel_id: *id }, TX_TIMEOUT)
        .await?;
    settled(core, id).await
}

/// Submits a cooperative close of a final co-signed state.
pub(crate) async fn cooperative_close(core: &Core, cosigned: CoSigned) -> Result<(Amount, Amount)> {
    let id = cosigned.state.channel_id;
    core.sender
        .send(TxKind::CooperativeClose { cosigned }, TX_TIMEOUT)
        .await?;
    settled(core, &id).await
}

async fn settled(core: &Core, id: &Hash32) -> Result<(Amount, Amount)> {
    let rec: ChannelRecord = crate::chain::record(&core.chain, id).await?;
    match rec.status {
        OnChain::Settled { payout_a, payout_b } => {
            core.store
                .set_channel_status(id, ChannelStatus::Settled)
                .await?;
            core.emit_durable(crate::events::WalletEvent::Settled {
                channel_id: *id,
                payout_a,
                payout_b,
            })
            .await?;
            Ok((payout_a, payout_b))
        }
        _ => Err(WalletError::Corrupt(
            "channel not settled after settling".into(),
        )),
    }
}

/// Registers the secret of an incoming payment on chain (unless already there).
pub(crate) async fn register_secret(core: &Core, hashlock: &Hash32) -> Result<()> {
    let Some(inv) = core.store.invoice(hashlock).await? else {
        return Ok(());
    };
    if core.chain.secret(hashlock).await?.is_some() {
        return Ok(());
    }
    core.sender
        .send(TxKind::RegisterSecret { secret: inv.secret }, TX_TIMEOUT)
        .await?;
    tracing::warn!(%hashlock, "registered a payment secret on chain");
    core.emit_durable(crate::events::WalletEvent::SecretRegistered {
        hashlock: *hashlock,
    })
    .await?;
    Ok(())
}
