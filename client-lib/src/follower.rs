//! The wallet's chain listener, driven by the shared chain follower: marks channels open, closing
//! and settled, learns payment secrets from the registry, and challenges a stale close itself
//! while online.

use crate::core::Core;
use crate::error::WalletError;
use crate::events::WalletEvent;
use crate::store::{ChannelStatus, PaymentDirection};
use sluice_chain_client::Listen;
use sluice_protocol::onchain::EventKind;
use sluice_protocol::rpc::{Event, EventFilter};
use sluice_protocol::Height;
use std::sync::Arc;

/// The cursor under the shared follower's rule: the last height fully handled. (An older key,
/// `chain_cursor`, counted a height as seen once one event of it was: it is not read, so an
/// upgraded wallet replays its history once, harmlessly.)
const CURSOR_KEY: &str = "chain_handled";

/// The wallet's chain listener.
pub(crate) struct Follower(pub Arc<Core>);

/// Runs forever through the shared chain follower.
pub(crate) async fn run(core: Arc<Core>) {
    let client = core.chain.clone();
    sluice_chain_client::follow(&client, &Follower(core)).await
}

impl Listen for Follower {
    type Error = WalletError;

    /// The event kinds the wallet acts on; events of channels it does not hold are skipped
    /// locally (a `SecretRegistered` names no participant).
    fn filter(&self) -> EventFilter {
        let kinds = [
            "ChannelOpened",
            "ChannelClosing",
            "ChannelChallenged",
            "ChannelSettled",
            "SecretRegistered",
        ];
        EventFilter {
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            ..EventFilter::default()
        }
    }

    async fn cursor(&self) -> Result<Height, WalletError> {
        Ok(self
            .0
            .store
            .meta(CURSOR_KEY)
            .await?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// A failed reaction is logged and left to the guard, which re-reads the chain every round;
    /// only a store failure stops the follower (and replays from the cursor).
    async fn event(&self, ev: &Event) -> Result<(), WalletError> {
        match act(&self.0, &ev.event).await {
            Err(WalletError::Store(e)) => Err(WalletError::Store(e)),
            Err(e) => {
                tracing::warn!(error = %e, event = ev.event.name(), "handling a chain event failed");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    async fn handled(&self, height: Height) -> Result<(), WalletError> {
        self.0.store.set_meta(CURSOR_KEY, &height.to_string()).await
    }

    fn interrupted(&self, error: &WalletError) {
        tracing::debug!(%error, "chain follower interrupted");
    }
}

async fn act(core: &Core, event: &EventKind) -> crate::error::Result<()> {
    if let EventKind::SecretRegistered { hashlock, secret } = event {
        let row = core.store.payment(hashlock, PaymentDirection::Out).await?;
        if row.is_some_and(|r| r.status == crate::store::PaymentStatus::Pending) {
            let sent = core.store.complete_payment(hashlock, secret).await?;
            core.announce(sent.into_iter().collect());
        }
        return Ok(());
    }
    let Some(id) = event.channel_id() else {
        return Ok(());
    };
    let Some(ch) = core.store.channel(&id).await? else {
        return Ok(());
    };
    match event {
        EventKind::ChannelOpened { .. } if ch.status == ChannelStatus::Opening => {
            core.store
                .set_channel_status(&id, ChannelStatus::Open)
                .await
        }
        EventKind::ChannelClosing {
            version,
            settle_after,
            ..
        } => {
            if ch.status != ChannelStatus::Settled {
                core.store
                    .set_channel_status(&id, ChannelStatus::Closing)
                    .await?;
            }
            core.emit_durable(WalletEvent::ChannelClosing {
                channel_id: id,
                version: *version,
                settle_after: *settle_after,
            })
            .await?;
            challenge(core, &id).await
        }
        EventKind::ChannelChallenged { .. } => challenge(core, &id).await,
        EventKind::ChannelSettled {
            payout_a, payout_b, ..
        } => {
            core.store
                .set_channel_status(&id, ChannelStatus::Settled)
                .await?;
            core.emit_durable(WalletEvent::Settled {
                channel_id: id,
                payout_a: *payout_a,
                payout_b: *payout_b,
            })
            .await
        }
        _ => Ok(()),
    }
}

async fn challenge(core: &Core, id: &sluice_protocol::Hash32) -> crate::error::Result<()> {
    if let Some(version) = crate::onchain::challenge_if_stale(core, id).await? {
        core.emit_durable(WalletEvent::ChallengeSubmitted {
            channel_id: *id,
            version,
        })
        .await?;
    }
    Ok(())
}
