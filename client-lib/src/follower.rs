//! Follows the chain from a persisted cursor: marks channels open, closing and settled, learns
//! payment secrets from the registry, and challenges a stale close itself while online.

use crate::core::Core;
use crate::events::WalletEvent;
use crate::store::{ChannelStatus, PaymentDirection};
use sluice_protocol::onchain::EventKind;
use sluice_protocol::rpc::{Event, EventFilter};
use std::sync::Arc;
use std::time::Duration;

const CURSOR_KEY: &str = "chain_cursor";
const RETRY: Duration = Duration::from_secs(1);

/// The event kinds the wallet acts on. The subscription filters by kind; events of channels
/// the wallet does not hold are skipped locally.
fn filter() -> EventFilter {
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

/// Runs forever, resubscribing after any failure.
pub(crate) async fn run(core: Arc<Core>) {
    loop {
        let from = match core.store.meta(CURSOR_KEY).await {
            Ok(v) => v.and_then(|s| s.parse().ok()).unwrap_or(0),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the chain cursor");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        match core.chain.subscribe_events(filter(), from).await {
            Ok(mut stream) => loop {
                match stream.next().await {
                    Ok(ev) => handle(&core, ev).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "event stream ended");
                        break;
                    }
                }
            },
            Err(e) => tracing::debug!(error = %e, "cannot subscribe to chain events"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Handles one event, then moves the cursor to its height (re-handling a height is harmless).
async fn handle(core: &Core, ev: Event) {
    if let Err(e) = act(core, &ev.event).await {
        tracing::warn!(error = %e, event = ev.event.name(), "handling a chain event failed");
    }
    if let Err(e) = core
        .store
        .set_meta(CURSOR_KEY, &ev.height.to_string())
        .await
    {
        tracing::error!(error = %e, "cannot persist the chain cursor");
    }
}

async fn act(core: &Core, event: &EventKind) -> crate::error::Result<()> {
    if let EventKind::SecretRegistered { hashlock, secret } = event {
        let row = core.store.payment(hashlock, PaymentDirection::Out).await?;
        if row.is_some_and(|r| r.status == crate::store::PaymentStatus::Pending) {
            core.store.complete_payment(hashlock, secret).await?;
            core.emit(WalletEvent::PaymentSent {
                hashlock: *hashlock,
                secret: *secret,
            });
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
            core.emit(WalletEvent::ChannelClosing {
                channel_id: id,
                version: *version,
                settle_after: *settle_after,
            });
            challenge(core, &id).await
        }
        EventKind::ChannelChallenged { .. } => challenge(core, &id).await,
        EventKind::ChannelSettled {
            payout_a, payout_b, ..
        } => {
            core.store
                .set_channel_status(&id, ChannelStatus::Settled)
                .await?;
            core.emit(WalletEvent::Settled {
                channel_id: id,
                payout_a: *payout_a,
                payout_b: *payout_b,
            });
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn challenge(core: &Core, id: &sluice_protocol::Hash32) -> crate::error::Result<()> {
    if let Some(version) = crate::onchain::challenge_if_stale(core, id).await? {
        core.emit(WalletEvent::ChallengeSubmitted {
            channel_id: *id,
            version,
        });
    }
    Ok(())
}
