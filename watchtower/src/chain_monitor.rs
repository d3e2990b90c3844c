//! Follows the chain from the persisted cursor: the event subscription (closes and challenges)
//! gives immediate reactions; each new head then confirms, by an `events` query over the heights
//! since the cursor, that nothing was missed, and only then advances the cursor. Reactions are
//! recorded before the cursor moves, so a crash replays rather than loses.

use crate::chain_view::ChainView;
use crate::metrics::Metrics;
use crate::responder::{Responder, ResponderError};
use crate::store::{Closing, Store, StoreError};
use sluice_chain_client::{ChainClient, ClientError};
use sluice_protocol::onchain::{ChannelStatus, EventKind};
use sluice_protocol::rpc::{Event, EventFilter};
use sluice_protocol::{ChainId, Hash32, Height};
use std::sync::Arc;
use std::time::Duration;

/// Most heights asked for in one `events` query while catching up.
const CATCH_UP_SPAN: Height = 1_000;

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
    /// Runs forever, reconnecting after any failure.
    pub async fn run(self) {
        loop {
            if let Err(e) = self.follow().await {
                self.view.set_connected(false);
                tracing::warn!(error = %e, node = self.client.url(), "chain monitor interrupted; reconnecting");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn follow(&self) -> Result<(), MonitorError> {
        let info = self.client.chain_info().await?;
        if info.chain_id != self.chain_id {
            return Err(MonitorError::WrongChain {
                expected: self.chain_id,
                got: info.chain_id,
            });
        }
        let from = self.view.processed() + 1;
        let mut events = self.client.subscribe_events(filter(), from).await?;
        let mut heads = self.client.subscribe_heads().await?;
        self.view.set_connected(true);
        self.responder.prime().await;
        tracing::info!(from, tip = info.height, "following the chain");
        self.catch_up(info.height).await?;
        loop {
            tokio::select! {
                ev = events.next() => self.handle(&ev?).await?,
                head = heads.next() => self.catch_up(head?.height).await?,
            }
        }
    }

    /// Processes every event up to `tip` not yet covered by the cursor, then advances it.
    async fn catch_up(&self, tip: Height) -> Result<(), MonitorError> {
        self.view.set_tip(tip);
        self.metrics.tip_height.set(tip as i64);
        let mut cursor = self.view.processed();
        while cursor < tip {
            let to = tip.min(cursor + CATCH_UP_SPAN);
            for ev in self.client.all_events(cursor + 1, to, &filter()).await? {
                self.handle(&ev).await?;
            }
            self.store.set_cursor(to).await?;
            self.view.set_processed(to);
            self.metrics.processed_height.set(to as i64);
            cursor = to;
        }
        self.store.prune_closings(tip).await?;
        Ok(())
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
