//! The tower's chain listener: every close and challenge is recorded, then reacted to, before the
//! shared follower (`sluice_chain_client::follower`) moves the cursor past it, so a crash replays
//! rather than loses. Watching and pruning follow the tip.

use crate::chain_view::ChainView;
use crate::metrics::Metrics;
use crate::responder::{Responder, ResponderError};
use crate::store::{Closing, Store, StoreError};
use sluice_chain_client::{ChainClient, ClientError, Listen};
use sluice_protocol::onchain::{ChannelStatus, EventKind};
use sluice_protocol::rpc::{ChainInfo, Event, EventFilter};
use sluice_protocol::{ChainId, Hash32, Height};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Chain(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("node serves chain {got}, this tower is configured for chain {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
}

impl From<ResponderError> for MonitorError {
    fn from(e: ResponderError) -> Self {
        match e {
            ResponderError::Store(e) => MonitorError::Store(e),
            ResponderError::Chain(e) => MonitorError::Chain(e),
        }
    }
}

pub struct ChainMonitor {
    pub client: ChainClient,
    pub chain_id: ChainId,
    pub store: Arc<Store>,
    pub view: Arc<ChainView>,
    pub metrics: Arc<Metrics>,
    pub responder: Arc<Responder>,
}

fn filter() -> EventFilter {
    EventFilter {
        kinds: vec!["ChannelClosing".into(), "ChannelChallenged".into()],
        ..EventFilter::default()
    }
}

impl ChainMonitor {
    /// Runs forever through the shared chain follower, reconnecting after any failure.
    pub async fn run(self) {
        let client = self.client.clone();
        sluice_chain_client::follow(&client, &self).await
    }

    async fn handle(&self, ev: &Event) -> Result<(), MonitorError> {
        let (channel_id, closing) = match &ev.event {
            EventKind::ChannelClosing {
                channel_id,
                version,
                settle_after,
                ..
            } => (
                *channel_id,
                Closing {
                    version: *version,
                    settle_after: *settle_after,
                },
            ),
            EventKind::ChannelChallenged {
                channel_id,
                version,
                ..
            } => {
                let Some(settle_after) = self.settle_after(channel_id).await? else {
                    return Ok(());
                };
                (
                    *channel_id,
                    Closing {
                        version: *version,
                        settle_after,
                    },
                )
            }
            _ => return Ok(()),
        };
        tracing::debug!(%channel_id, version = closing.version, height = ev.height, "close seen");
        // Recorded before reacting: an appointment committed after this sees the close and is
        // acted on at once; one committed before is what `react` reads. No gap between them.
        self.store.record_closing(&channel_id, closing).await?;
        match self.responder.react(channel_id, closing).await {
            // One row the store cannot read back must not blind the tower for every other
            // channel (F19): it is reported and set aside, and the monitor carries on.
            Err(ResponderError::Store(StoreError::Corrupt(why))) => {
                self.metrics.quarantined.inc();
                tracing::error!(%channel_id, %why, "appointment unreadable; quarantined");
                Ok(())
            }
            r => Ok(r?),
        }
    }

    /// A challenged channel's window end: from the recorded close, else from the chain.
    async fn settle_after(&self, channel_id: &Hash32) -> Result<Option<Height>, MonitorError> {
        if let Some(c) = self.store.closing(channel_id).await? {
            return Ok(Some(c.settle_after));
        }
        Ok(match self.client.channel(channel_id).await? {
            Some(rec) => match rec.status {
                ChannelStatus::Closing { settle_after, .. } => Some(settle_after),
                _ => None,
            },
            None => None,
        })
    }
}

impl Listen for ChainMonitor {
    type Error = MonitorError;

    fn filter(&self) -> EventFilter {
        filter()
    }

    async fn cursor(&self) -> Result<Height, MonitorError> {
        Ok(self.view.processed())
    }

    async fn connected(&self, info: &ChainInfo) -> Result<(), MonitorError> {
        if info.chain_id != self.chain_id {
            return Err(MonitorError::WrongChain {
                expected: self.chain_id,
                got: info.chain_id,
            });
        }
        self.view.set_connected(true);
        self.responder.prime().await;
        Ok(())
    }

    async fn head(&self, tip: Height) -> Result<(), MonitorError> {
        self.view.set_tip(tip);
        self.metrics.tip_height.set(tip as i64);
        // The fee account is watched, not relied on: a failed read leaves the last value.
        match self.client.account(&self.responder.address()).await {
            Ok(a) => crate::metrics::set_units(&self.metrics.wallet_balance, a.balance),
            Err(e) => tracing::debug!(error = %e, "cannot read the fee account's balance"),
        }
        self.store.prune_closings(tip).await?;
        Ok(())
    }

    async fn event(&self, ev: &Event) -> Result<(), MonitorError> {
        self.handle(ev).await
    }

    /// Versions only rise on chain, so of a span's closes and challenges only each channel's
    /// last one can call for a response: a flood of challenges on one channel costs one.
    async fn events(&self, events: Vec<Event>) -> Result<(), MonitorError> {
        for ev in last_per_channel(events) {
            self.handle(&ev).await?;
        }
        Ok(())
    }

    async fn handled(&self, height: Height) -> Result<(), MonitorError> {
        self.store.set_cursor(height).await?;
        self.view.set_processed(height);
        self.metrics.processed_height.set(height as i64);
        Ok(())
    }

    fn interrupted(&self, error: &MonitorError) {
        self.view.set_connected(false);
        tracing::warn!(%error, node = self.client.url(), "chain monitor interrupted; reconnecting");
    }
}

/// Each channel's last event, in the order of those last events.
fn last_per_channel(events: Vec<Event>) -> Vec<Event> {
    let mut seen = std::collections::HashSet::new();
    let mut last: Vec<Event> = events
        .into_iter()
        .rev()
        .filter(|ev| ev.event.channel_id().is_none_or(|id| seen.insert(id)))
        .collect();
    last.reverse();
    last
}
