//! Answers stale closes: submits `Challenge` with the stored (newer) state at once, follows it
//! until included, and when it lingers replaces it *at the same nonce* with a doubled fee (and
//! the newest stored state); gives up only once the window has closed. Every attempt and outcome
//! is recorded in the store, and followers re-read it each round: it is the only copy.

use crate::chain_view::ChainView;
use crate::metrics::Metrics;
use crate::store::{Closing, Response, ResponseStatus, Store, StoreError, StoredAppointment};
use crate::submitter::{bumped, Submitter};
use sluice_chain_client::{Broadcaster, ChainClient, ClientError};
use sluice_protocol::onchain::{challenge_lands, must_challenge, ChannelStatus};
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
    /// Submissions one response may make before it is given up as failed (F9).
    pub max_attempts: u32,
}

pub struct Responder {
    store: Arc<Store>,
    submitter: Submitter,
    view: Arc<ChainView>,
    metrics: Arc<Metrics>,
    settings: ResponderSettings,
    /// Channels with a live follower task (bounded by `max_tracked`).
    tracking: Mutex<HashSet<Hash32>>,
}

impl Responder {
    pub fn new(
        store: Arc<Store>,
        submitter: Submitter,
        view: Arc<ChainView>,
        metrics: Arc<Metrics>,
        settings: ResponderSettings,
    ) -> Self {
        Responder {
            store,
            submitter,
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
        if !must_challenge(
            onchain.version,
            onchain.settle_after,
            ap.version(),
            self.view.tip(),
        ) {
            tracing::warn!(%channel_id, settle_after = onchain.settle_after, "stale close seen after its window");
            return Ok(());
        }
        // A newer appointment while an older challenge is pending: replace that one.
        let attempts = prev.as_ref().map_or(0, |r| r.attempts);
        let base = match prev.filter(|r| r.status == ResponseStatus::Pending) {
            Some(mut r) => {
                (r.onchain_version, r.settle_after) = (onchain.version, onchain.settle_after);
                r
            }
            None => Response {
                attempts,
                ..Response::new(channel_id, onchain, self.settings.fee)
            },
        };
        if let Some(why) = self.misfit(&ap).await? {
            let mut r = base;
            self.finish(&mut r, ResponseStatus::Failed, why).await?;
            return Ok(());
        }
        let (fee, nonce) = self.next_try(&base);
        let r = self.attempt(&ap, base, fee, nonce).await?;
        self.follow(r);
        Ok(())
    }

    /// The account the responder pays challenge fees from.
    pub fn address(&self) -> sluice_protocol::Address {
        self.submitter.address()
    }

    /// The chain client the responder reads through.
    pub fn chain(&self) -> &ChainClient {
        self.submitter.client()
    }

    /// Why the chain would refuse a challenge with `ap` (it does not fit the channel's
    /// deposits, say), checked before any fee is spent on it; `None` if it would pass.
    async fn misfit(&self, ap: &StoredAppointment) -> Result<Option<String>, ResponderError> {
        let Some(rec) = self.chain().channel(&ap.channel_id).await? else {
            return Ok(Some("channel not on chain".into()));
        };
        Ok(rec
            .admits(self.submitter.chain_id(), &ap.snapshot)
            .err()
            .map(|why| format!("does not fit the channel on chain: {why}")))
    }

    /// Fee and nonce of the next try: a pending transaction is replaced at its nonce for a
    /// bumped fee (capped; at the cap it is rebroadcast as is); otherwise a fresh nonce.
    fn next_try(&self, r: &Response) -> (Amount, Option<u64>) {
        match (r.last_tx, r.tx_nonce) {
            (Some(_), nonce) => (bumped(r.last_fee).min(self.settings.max_fee), nonce),
            (None, _) => (r.last_fee.max(self.settings.fee), None),
        }
    }

    /// Learns the account's next nonce ahead of need, so the first challenge costs one call.
    pub async fn prime(&self) {
        if let Err(e) = self.submitter.prime().await {
            tracing::debug!(error = %e, "could not read the tower account's nonce yet");
        }
    }

    /// Resumes following responses left pending by a previous run.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        let pending = self.store.pending_responses().await?;
        let n = pending.len();
        for r in pending {
            if let Some(nonce) = r.tx_nonce {
                self.submitter.note_pending(nonce);
            }
            self.follow(r);
        }
        Ok(n)
    }

    /// Takes up, every `every`, pending responses no follower runs for (those deferred while
    /// every follower was busy, or whose follower ended on an error).
    pub async fn sweep_forever(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.resume().await {
                tracing::warn!(error = %e, "cannot list pending responses");
            }
        }
    }

    /// Submits a challenge with `ap` at `fee`, replacing the transaction at `nonce` if given,
    /// and records the attempt on top of `r`. A refused replacement keeps following the
    /// transaction already pending there (unless its nonce got spent, so the next try is fresh).
    async fn attempt(
        &self,
        ap: &StoredAppointment,
        mut r: Response,
        fee: Amount,
        nonce: Option<u64>,
    ) -> Result<Response, StoreError> {
        let kind = TxKind::Challenge {
            cosigned: ap.snapshot.cosigned,
            locks: ap.snapshot.locks.clone(),
        };
        let channel_id = ap.channel_id;
        let out = &self.submitter;
        let sent = match nonce {
            Some(n) => Broadcaster::replace(out, n, kind, fee)
                .await
                .map(|id| (id, n)),
            None => Broadcaster::submit(out, kind, fee).await,
        };
        match sent {
            Ok((id, n)) => {
                self.metrics.challenges_submitted.inc();
                tracing::info!(%channel_id, version = ap.version(), onchain = r.onchain_version, tx = %id, nonce = n, fee, replaces = nonce.is_some(), "challenge submitted");
                (r.last_tx, r.tx_nonce, r.last_fee) = (Some(id), Some(n), fee);
                r.our_version = ap.version();
                r.detail.clear();
            }
            Err(e) => {
                tracing::warn!(%channel_id, error = %e, fee, ?nonce, "challenge not admitted; will retry");
                if let Some(n) = nonce {
                    if self.submitter.nonce_spent(n).await.unwrap_or(false) {
                        r.tx_nonce = None;
                    }
                }
                r.detail = e.to_string();
            }
        }
        r.attempts = r.attempts.saturating_add(1);
        r.submitted_height = self.view.tip();
        self.store.save_response(&r).await?;
        Ok(r)
    }

    /// Starts a follower for `r` unless one runs already. Past `max_tracked` followers the
    /// response stays pending in the store, is reported, and is taken up by the next
    /// [`Responder::resume`] sweep once a follower is free (F9: never dropped silently).
    fn follow(self: &Arc<Self>, r: Response) {
        {
            let Ok(mut set) = self.tracking.lock() else {
                return;
            };
            if set.contains(&r.channel_id) {
                return;
            }
            if set.len() >= self.settings.max_tracked {
                self.metrics.responses_deferred.inc();
                tracing::warn!(channel_id = %r.channel_id, followers = set.len(), "too many responses followed at once; this one waits for the next sweep");
                return;
            }
            set.insert(r.channel_id);
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

    async fn run_follower(&self, r: Response) {
        let id = r.channel_id;
        loop {
            tokio::time::sleep(self.settings.poll).await;
            match self.step(&id).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(channel_id = %id, error = %e, "following challenge"),
            }
        }
    }

    /// One check of a pending response, read afresh from the store; `true` once it has an
    /// outcome (or is gone).
    async fn step(&self, channel_id: &Hash32) -> Result<bool, ResponderError> {
        let Some(mut r) = self.store.response(channel_id).await? else {
            return Ok(true);
        };
        if r.status != ResponseStatus::Pending {
            return Ok(true);
        }
        let client = self.submitter.client();
        let tip = client.chain_info().await?.height;
        self.view.set_tip(tip);
        if let Some(tx) = r.last_tx {
            if let Some(info) = client.tx(&tx).await? {
                if info.receipt.success {
                    return self
                        .finish(&mut r, ResponseStatus::Challenged, String::new())
                        .await;
                }
                // Included but failed: the chain refused this very state (it does not fit the
                // channel), so trying it again only burns fees (F9). A newer appointment starts
                // a new response.
                let why = info.receipt.error.unwrap_or_default();
                return self
                    .finish(
                        &mut r,
                        ResponseStatus::Failed,
                        format!("failed on chain: {why}"),
                    )
                    .await;
            }
        }
        if let Some(rec) = client.channel(&r.channel_id).await? {
            match rec.status {
                ChannelStatus::Closing {
                    stored,
                    settle_after,
                } => {
                    r.settle_after = settle_after;
                    let onchain = stored.state().version;
                    if onchain >= r.our_version {
                        // Our version on chain is our challenge, even when an earlier attempt
                        // at the same nonce landed before the replacement (`last_tx`) did.
                        let status = match onchain == r.our_version {
                            true => ResponseStatus::Challenged,
                            false => ResponseStatus::Superseded,
                        };
                        let detail = format!("chain holds version {onchain}");
                        return self.finish(&mut r, status, detail).await;
                    }
                }
                ChannelStatus::Settled { .. } => {
                    return self
                        .finish(&mut r, ResponseStatus::WindowClosed, "settled".into())
                        .await;
                }
                ChannelStatus::Open => {}
            }
        }
        if !challenge_lands(r.settle_after, tip) {
            let detail = format!("window ended at {}", r.settle_after);
            return self
                .finish(&mut r, ResponseStatus::WindowClosed, detail)
                .await;
        }
        if r.last_tx.is_none() || tip >= r.submitted_height + self.settings.retry_blocks {
            if r.attempts >= self.settings.max_attempts {
                let detail = format!("gave up after {} attempts", r.attempts);
                return self.finish(&mut r, ResponseStatus::Failed, detail).await;
            }
            self.retry(r).await?;
        }
        Ok(false)
    }

    /// Tries again with the newest stored state: a replacement at the same nonce for a
    /// bumped fee, or a fresh submission when nothing of ours is pending.
    async fn retry(&self, r: Response) -> Result<(), ResponderError> {
        let Some(ap) = self.store.appointment(&r.channel_id).await? else {
            return Ok(());
        };
        let (fee, nonce) = self.next_try(&r);
        self.attempt(&ap, r, fee, nonce).await?;
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
        if let Some(nonce) = r.tx_nonce {
            self.submitter.release(nonce);
        }
        self.metrics
            .responses
            .with_label_values(&[status.as_str()])
            .inc();
        tracing::info!(channel_id = %r.channel_id, outcome = status.as_str(), attempts = r.attempts, "challenge finished");
        Ok(true)
    }
}
