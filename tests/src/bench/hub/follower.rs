//! What the benchmark's clients know of the chain: the height, followed by one shared poller,
//! and each channel's deposits, read once and re-read when a balance looks short (deposits only
//! grow while a channel is open, so a stale figure can refuse a state but never accept a bad
//! one). One follower for all clients keeps chain RPCs out of the per-update path, as a wallet
//! following block headers would.

use sluice_chain_client::ChainClient;
use sluice_protocol::{Hash32, Height};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct ChainView {
    chain: ChainClient,
    height: Arc<AtomicU64>,
    deposits: Arc<Mutex<HashMap<Hash32, (u64, u64)>>>,
}

impl ChainView {
    /// Starts following the chain's height; stops when the last view is dropped.
    pub async fn start(chain: ChainClient) -> Result<ChainView, sluice_chain_client::ClientError> {
        let height = Arc::new(AtomicU64::new(chain.chain_info().await?.height));
        let view = ChainView {
            chain: chain.clone(),
            height: height.clone(),
            deposits: Arc::default(),
        };
        let weak = Arc::downgrade(&height);
        tokio::spawn(async move {
            while let Some(h) = weak.upgrade() {
                if let Ok(info) = chain.chain_info().await {
                    h.fetch_max(info.height, Ordering::AcqRel);
                }
                drop(h);
                tokio::time::sleep(POLL).await;
            }
        });
        Ok(view)
    }

    pub fn height(&self) -> Height {
        self.height.load(Ordering::Acquire)
    }

    /// The channel's deposits `(a, b)` as last read.
    pub fn deposits(&self, id: &Hash32) -> (u64, u64) {
        self.map().get(id).copied().unwrap_or((0, 0))
    }

    /// Re-reads the channel's deposits from the chain.
    pub async fn refresh(&self, id: &Hash32) {
        if let Ok(Some(rec)) = self.chain.channel(id).await {
            self.map().insert(*id, (rec.deposit_a, rec.deposit_b));
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Hash32, (u64, u64)>> {
        self.deposits.lock().unwrap_or_else(|p| p.into_inner())
    }
}
