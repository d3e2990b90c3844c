//! Answers stale closes: submits `Challenge` with the stored (newer) state at once, follows it
//! until included, resubmits with a doubled fee when it lingers, and gives up only once the
//! window has closed. Every attempt and outcome is recorded in the store.

use crate::chain_view::ChainView;
use crate::metrics::Metrics;
use crate::store::{Closing, Response, ResponseStatus, Store, StoreError, StoredAppointment};
use sluice_chain_client::{ClientError, TxSender};
use sluice_protocol::onchain::ChannelStatus;
use sluice_protocol::{Amount, Hash32, TxKind};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ResponderError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Chain(#[from] ClientError),
}

/// Fee policy and pacing of the responder.
#[derive(Debug, Clone, Copy)]
pub struct ResponderSettings {
    pub fee: Amount,
    pub max_fee: Amount,
    pub retry_blocks: u64,
    pub poll: Duration,
    pub max_tracked: usize,
}

pub struct Responder {
    store: Arc<Store>,
    sender: TxSender,
    view: Arc<ChainView>,
    metrics: Arc<Metrics>,
    settings: ResponderSettings,
    /// Channels with a live follower task (bounded by `max_tracked`).
    tracking: Mutex<HashSet<Hash32>>,
}

impl Responder {
    pub fn new(
        store: Arc<Store>,
        sender: TxSender,
        view: Arc<ChainView>,
        metrics: Arc<Metrics>,
        settings: ResponderSettings,
    ) -> Self {
        Responder {
            store,
            sender,
            view,
            metrics,
            settings,
            tracking: Mutex::new(HashSet::new()),
        }
    }

    /// Reacts to `channel_id` closing (or challenged) on chain at `onchain.version`. Idempotent:
    /// replayed events find the recorded response and only make sure it is followed.
    pub async fn react(
        self: &Arc<Self>,
        channel_id: Hash32,
        onchain: Closing,
    ) -> Result<(), ResponderError> {
        let Some(ap) = self.store.appointment(&channel_id).await? else {
            return Ok(());
        };
        if ap.version() <= onchain.version {
            return Ok(());
        }
        let prev = self.store.response(&channel_id).await?;
        if let Some(r) = prev.as_ref().filter(|r| r.our_version >= ap.version()) {
            if r.status == ResponseStatus::Pending {
                self.follow(r.clone());
            }
            return Ok(());
        }
        if self.view.tip() >= onchain.settle_after {
            tracing::warn!(%channel_id, settle_after = onchain.settle_after, "stale close seen after its window");
            return Ok(());
        }
        let attempts = prev.map_or(0, |r| r.attempts);
        let r = self
            .attempt(&ap, onchain, attempts, self.settings.fee)
            .await?;
        self.follow(r);
        Ok(())
    }

    /// Resumes following responses left pending by a previous run.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        let pending = self.store.pending_responses().await?;
        let n = pending.len();
        for r in pending {
            self.follow(r);
        }
        Ok(n)
    }

    async fn attempt(
        &self,
        ap: &StoredAppointment,
        onchain: Closing,
        attempts: u32,
        fee: Amount,
    ) -> Result<Response, StoreError> {
        let kind = TxKind::Challenge {
            cosigned: ap.snapshot.cosigned,
            locks: ap.snapshot.locks.clone(),
        };
        let channel_id = ap.channel_id;
        let (last_tx, detail) = match self.sender.submit_with_fee(kind, fee).await {
            Ok(id) => {
                self.metrics.challenges_submitted.inc();
                tracing::info!(%channel_id, version = ap.version(), onchain = onchain.version, tx = %id, fee, "challenge submitted");
                (Some(id), String::new())
            }
            Err(e) => {
                tracing::warn!(%channel_id, error = %e, "challenge not admitted; will retry");
                (None, e.to_string())
            }
        };
        let r = Response {
            channel_id,
            our_version: ap.version(),
            onchain_version: onchain.version,
            settle_after: onchain.settle_after,
            status: ResponseStatus::Pending,
            attempts: attempts.saturating_add(1),
            last_tx,
            last_fee: fee,
            submitted_height: self.view.tip(),
            detail,
        };
        self.store.save_response(&r).await?;
        Ok(r)
    }

    /// Starts a follower for `r` unless one runs already or too many do.
    fn follow(self: &Arc<Self>, r: Response) {
        {
            let Ok(mut set) = self.tracking.lock() else {
                return;
            };
            if set.len() >= self.settings.max_tracked || !set.insert(r.channel_id) {
                return;
            }
        }
        let me = self.clone();
        tokio::spawn(async move {
            let id = r.channel_id;
            me.run_follower(r).await;
            if let Ok(mut set) = me.tracking.lock() {
                set.remove(&id);
            }
        });
    }

    async fn run_follower(&self, mut r: Response) {
        loop {
            tokio::time::sleep(self.settings.poll).await;
            match self.step(&mut r).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(channel_id = %r.channel_id, error = %e, "following challenge")
                }
            }
        }
    }

    /// One check of a pending response; `true` once it has an outcome.
    async fn step(&self, r: &mut Response) -> Result<bool, ResponderError> {
        let client = self.sender.client();
        let tip = client.chain_info().await?.height;
        self.view.set_tip(tip);
        if let Some(tx) = r.last_tx {
            if let Some(info) = client.tx(&tx).await? {
                if info.receipt.success {
                    return self
                        .finish(r, ResponseStatus::Challenged, String::new())
                        .await;
                }
                r.detail = info.receipt.error.unwrap_or_default();
                r.last_tx = None;
            }
        }
        if let Some(rec) = client.channel(&r.channel_id).await? {
            match rec.status {
                ChannelStatus::Closing {
                    stored,
                    settle_after,
                } => {
                    r.settle_after = settle_after;
                    if stored.state().version >= r.our_version {
                        let detail = format!("chain holds version {}", stored.state().version);
                        return self.finish(r, ResponseStatus::Superseded, detail).await;
                    }
                }
                ChannelStatus::Settled { .. } => {
                    return self
                        .finish(r, ResponseStatus::WindowClosed, "settled".into())
                        .await;
                }
                ChannelStatus::Open => {}
            }
        }
        if tip >= r.settle_after {
            let detail = format!("window ended at {}", r.settle_after);
            return self.finish(r, ResponseStatus::WindowClosed, detail).await;
        }
        if r.last_tx.is_none() || tip >= r.submitted_height + self.settings.retry_blocks {
            self.retry(r).await?;
        }
        Ok(false)
    }

    /// Resubmits with the newest stored state and a doubled fee (capped).
    async fn retry(&self, r: &mut Response) -> Result<(), ResponderError> {
        let Some(ap) = self.store.appointment(&r.channel_id).await? else {
            return Ok(());
        };
        let fee = match r.last_tx {
            Some(_) => r.last_fee.saturating_mul(2).min(self.settings.max_fee),
            None => r.last_fee.max(self.settings.fee),
        };
        let onchain = Closing {
            version: r.onchain_version,
            settle_after: r.settle_after,
        };
        *r = self.attempt(&ap, onchain, r.attempts, fee).await?;
        Ok(())
    }

    async fn finish(
        &self,
        r: &mut Response,
        status: ResponseStatus,
        detail: String,
    ) -> Result<bool, ResponderError> {
        r.status = status;
        r.detail = detail;
        self.store.save_response(r).await?;
        self.metrics
            .responses
            .with_label_values(&[status.as_str()])
            .inc();
        tracing::info!(channel_id = %r.channel_id, outcome = status.as_str(), attempts = r.attempts, "challenge finished");
        Ok(true)
    }
}
