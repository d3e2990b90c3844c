//! The block-production seam. A [`BlockProducer`] decides *when* a block is made and by whom;
//! [`Chain::build_block`]/[`Chain::commit`] decide *what* it contains. The dev producer seals on
//! a timer as the only validator; a BFT engine (Malachite) will implement the same trait,
//! proposing with `build_block` and committing decided blocks with `commit`.

use crate::chain::{Chain, ChainError};
use sluice_protocol::Keypair;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Drives block production until `shutdown` turns true.
pub trait BlockProducer: Send + 'static {
    fn run(
        self: Box<Self>,
        chain: Arc<Chain>,
        shutdown: watch::Receiver<bool>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ChainError>> + Send>>;
}

/// One-validator dev mode: every `block_time`, seal a block if transactions wait.
pub struct DevProducer {
    pub key: Keypair,
    pub block_time: Duration,
    pub max_block_txs: usize,
}

use sluice_home::clock::unix_ms as now_ms;

impl BlockProducer for DevProducer {
    fn run(
        self: Box<Self>,
        chain: Arc<Chain>,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ChainError>> + Send>> {
        Box::pin(async move {
            let proposer = self.key.address();
            let mut tick = tokio::time::interval(self.block_time);
            // A slow block delays the next tick instead of causing a burst of catch-up ticks.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tracing::info!(%proposer, block_time_ms = self.block_time.as_millis() as u64, "dev block producer started");
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => break,
                }
                if *shutdown.borrow() {
                    break;
                }
                if chain.mempool_len() == 0 {
                    continue;
                }
                let c = chain.clone();
                let max = self.max_block_txs;
                let started = std::time::Instant::now();
                let produced =
                    tokio::task::spawn_blocking(move || c.produce(proposer, now_ms(), max))
                        .await
                        .map_err(|e| {
                            ChainError::Store(crate::state::StoreError::Io(e.to_string()))
                        })??;
                if let Some(h) = produced {
                    let took = started.elapsed();
                    chain.metrics.last_block_seconds.set(took.as_secs_f64());
                    let ms = took.as_millis() as u64;
                    tracing::info!(height = h.height, txs = h.tx_count, ms, state_root = %h.state_root, "block committed");
                }
            }
            tracing::info!("dev block producer stopped");
            Ok(())
        })
    }
}
