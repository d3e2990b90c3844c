//! The node core: ledger, mempool and head notifications behind one handle. Block producers
//! (the dev timer now, a BFT engine later) call [`Chain::build_block`] and [`Chain::commit`].

use crate::block::{make_header, SealedBlock};
use crate::config::NodeConfig;
use crate::execution::{execute_block, ExecParams};
use crate::genesis::Genesis;
use crate::health;
use crate::ledger::Ledger;
use crate::mempool::{AdmitError, AdmitRules, Mempool, MempoolLimits};
use crate::metrics::Metrics;
use crate::sigverify::{self, DecodedTx, VerifiedTx, VerifyError};
use crate::state::{StateRead, StoreError};
use sluice_protocol::rpc::{BlockHeader, Event};
use sluice_protocol::{Address, Hash32};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::broadcast;

/// Committed blocks kept in the notification channel for subscribers that are catching up.
const NOTICE_BACKLOG: usize = 1024;

/// What subscribers hear after each commit.
#[derive(Debug, Clone)]
pub struct BlockNotice {
    pub header: BlockHeader,
    pub events: Arc<Vec<Event>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the ledger was created from another genesis ({stored}), not {given}")]
    GenesisMismatch { stored: Hash32, given: Hash32 },
    #[error("block {got} does not extend the tip {tip}")]
    NotNext { tip: u64, got: u64 },
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A block as another validator proposed it, before re-execution.
#[derive(Debug, Clone)]
pub struct ProposedBlock {
    pub height: u64,
    pub parent: Hash32,
    pub state_root: Hash32,
    pub time_ms: u64,
    pub proposer: Address,
    pub txs: Vec<Vec<u8>>,
}

/// Why a proposed block is not voted for.
#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    #[error("block {height} does not extend the tip {tip}")]
    NotNext { tip: u64, height: u64 },
    #[error("{0} transactions exceed the block limit")]
    TooManyTxs(usize),
    #[error("block time is before its parent's")]
    TimeGoesBack,
    #[error("invalid transaction: {0}")]
    Tx(VerifyError),
    #[error("transaction {0} is not includable: {1}")]
    NotIncludable(Hash32, String),
    #[error("state root mismatch: block claims {claimed}, execution gives {computed}")]
    StateRoot { claimed: Hash32, computed: Hash32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a submitted transaction was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Admit(#[from] AdmitError),
    #[error("ledger unavailable: {0}")]
    Store(String),
}

pub struct Chain {
    pub genesis: Genesis,
    pub config: NodeConfig,
    pub ledger: Ledger,
    pub metrics: Metrics,
    mempool: Mutex<Mempool>,
    tip: RwLock<BlockHeader>,
    notices: broadcast::Sender<Arc<BlockNotice>>,
    /// Serialises build + commit so two producers can never race on the tip.
    produce: Mutex<()>,
    /// Where newly admitted transactions go for gossip to peers (see [`crate::relay`]).
    relay: std::sync::OnceLock<tokio::sync::mpsc::Sender<Vec<Vec<u8>>>>,
    /// When this process last committed a block (Unix ms; 0: not since start).
    last_commit_ms: AtomicU64,
    /// The highest committed height a peer has shown (0: none yet).
    peer_height: AtomicU64,
}

impl Chain {
    /// Opens the ledger in `data_dir`, writing block 0 from `genesis` on first start.
    pub fn open(
        data_dir: &Path,
        genesis: Genesis,
        config: NodeConfig,
    ) -> Result<Arc<Self>, ChainError> {
        let ledger = Ledger::open(data_dir)?;
        let given = genesis.hash();
        let tip = match (ledger.genesis_hash()?, ledger.tip()?) {
            (Some(stored), Some(tip)) if stored == given => tip,
            (Some(stored), _) => return Err(ChainError::GenesisMismatch { stored, given }),
            (None, _) => write_genesis(&ledger, &genesis)?,
        };
        let mempool = Mempool::new(MempoolLimits {
            max_txs: config.mempool_max_txs,
            max_per_account: config.mempool_max_per_account,
            max_nonce_gap: config.mempool_max_nonce_gap,
            max_gapped_blocks: config.mempool_max_gapped_blocks,
        });
        let metrics = Metrics::new()?;
        Metrics::set(&metrics.height, tip.height);
        tracing::info!(height = tip.height, hash = %tip.hash, state_root = %tip.state_root, "ledger opened");
        Ok(Arc::new(Chain {
            genesis,
            config,
            ledger,
            metrics,
            mempool: Mutex::new(mempool),
            tip: RwLock::new(tip),
            notices: broadcast::channel(NOTICE_BACKLOG).0,
            produce: Mutex::new(()),
            relay: std::sync::OnceLock::new(),
            last_commit_ms: AtomicU64::new(0),
            peer_height: AtomicU64::new(0),
        }))
    }

    /// Sends every transaction admitted from now on to `tx` for relay to peers.
    pub fn set_relay(&self, tx: tokio::sync::mpsc::Sender<Vec<Vec<u8>>>) {
        let _ = self.relay.set(tx);
    }

    pub fn tip(&self) -> BlockHeader {
        self.tip
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn height(&self) -> u64 {
        self.tip().height
    }

    /// Subscribe **before** reading the tip to replay history without a gap.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BlockNotice>> {
        self.notices.subscribe()
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Mempool> {
        self.mempool.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn mempool_len(&self) -> usize {
        self.pool().len()
    }

    /// Records that a peer has committed `height` (it proposed or served the block above it).
    pub fn observe_peer_height(&self, height: u64) {
        self.peer_height.fetch_max(height, Relaxed);
    }

    /// What `/health` judges, taken at `now_ms`.
    pub fn observe(&self, now_ms: u64) -> health::Observed {
        let nonzero = |v: u64| (v > 0).then_some(v);
        health::Observed {
            now_ms,
            oldest_pending_ms: self.pool().oldest_executable_ms(),
            last_commit_ms: nonzero(self.last_commit_ms.load(Relaxed)),
            tip_height: self.height(),
            peer_height: nonzero(self.peer_height.load(Relaxed)),
        }
    }

    /// The bounds of a healthy node, from the config.
    pub fn health_bounds(&self) -> health::Bounds {
        health::Bounds {
            max_stall_ms: self.config.health_max_stall_ms,
            max_lag_blocks: self.config.health_max_lag_blocks,
        }
    }

    fn rules(&self) -> AdmitRules {
        AdmitRules {
            chain_id: self.genesis.chain_id,
            min_fee: self.genesis.min_fee,
        }
    }

    /// Verifies and admits one transaction (canonical bytes).
    pub fn submit(&self, bytes: Vec<u8>) -> Result<Hash32, SubmitError> {
        self.submit_many(vec![bytes])
            .pop()
            .unwrap_or(Err(SubmitError::Store("empty".into())))
    }

    /// Verifies many transactions in parallel on every core, then admits them in order.
    ///
    /// A transaction already pending, or below its sender's committed nonce, is refused before its
    /// signature is checked: with mempool gossip every node hears of each transaction from several
    /// peers, often after its block, and verifying each copy would multiply the dominant cost.
    pub fn submit_many(&self, batch: Vec<Vec<u8>>) -> Vec<Result<Hash32, SubmitError>> {
        let max = self.genesis.limits.max_tx_bytes;
        let decoded: Vec<_> = batch
            .into_iter()
            .map(|b| DecodedTx::decode(b, max))
            .collect();
        // `None`: still to verify and admit, in order, from `todo`.
        let mut slots: Vec<Option<Result<Hash32, SubmitError>>> = Vec::with_capacity(decoded.len());
        let mut todo = Vec::new();
        let mut known = 0u64;
        {
            let pool = self.pool();
            for d in decoded {
                match d {
                    Err(e) => slots.push(Some(Err(e.into()))),
                    Ok(d) if pool.contains(&d.id) => {
                        known += 1;
                        slots.push(Some(Err(AdmitError::AlreadyKnown(d.id).into())));
                    }
                    Ok(d) => match self.stale(&d) {
                        Some(next) => {
                            known += 1;
                            let got = d.tx.tx.nonce;
                            slots.push(Some(Err(AdmitError::NonceTooLow { got, next }.into())));
                        }
                        None => {
                            slots.push(None);
                            todo.push(d);
                        }
                    },
                }
            }
        }
        Metrics::add(&self.metrics.txs_rejected, slots.len() - todo.len());
        if known > 0 {
            tracing::trace!(
                known,
                "pending or committed already; signatures not checked"
            );
        }
        let mut admitted = self.admit_checked(sigverify::verify_all(todo)).into_iter();
        slots
            .into_iter()
            .map(|s| {
                s.unwrap_or_else(|| {
                    admitted
                        .next()
                        .unwrap_or_else(|| Err(SubmitError::Store("missing result".into())))
                })
            })
            .collect()
    }

    /// The sender's next nonce, if `d`'s nonce is below it: committed already (a gossiped copy
    /// that arrives after its block, the common case under load) or never includable. Refused
    /// before its signature is checked, like a pending duplicate.
    fn stale(&self, d: &DecodedTx) -> Option<u64> {
        let t = &d.tx.tx;
        let next = self.ledger.account(&t.from).ok()?.nonce;
        (t.nonce < next).then_some(next)
    }

    fn admit_checked(
        &self,
        checked: Vec<Result<VerifiedTx, VerifyError>>,
    ) -> Vec<Result<Hash32, SubmitError>> {
        let rules = self.rules();
        let now_ms = sluice_home::clock::unix_ms();
        let relaying = self.relay.get().is_some();
        let mut fresh = Vec::new();
        let mut pool = self.pool();
        let out: Vec<_> = checked
            .into_iter()
            .map(|c| {
                let vtx = c?;
                // Cheap checks first, so a bad transaction costs no ledger read.
                Mempool::stateless_checks(&vtx, &rules)?;
                let account = self
                    .ledger
                    .account(&vtx.tx.tx.from)
                    .map_err(|e| SubmitError::Store(e.to_string()))?;
                let id = vtx.id;
                let bytes = relaying.then(|| vtx.bytes.clone());
                pool.admit(vtx, account, &rules, now_ms)?;
                fresh.extend(bytes);
                Ok(id)
            })
            .collect();
        let size = pool.len();
        drop(pool);
        if let (Some(relay), false) = (self.relay.get(), fresh.is_empty()) {
            if relay.try_send(fresh).is_err() {
                tracing::debug!("relay queue full; peers will not hear of this batch from us");
            }
        }
        let ok = out.iter().filter(|r| r.is_ok()).count();
        Metrics::add(&self.metrics.txs_admitted, ok);
        Metrics::add(&self.metrics.txs_rejected, out.len() - ok);
        Metrics::set(&self.metrics.mempool_size, size);
        out
    }

    /// Builds the next block from the mempool (at most `max_txs`), executing it against the
    /// committed state. Returns `None` when nothing waits.
    pub fn build_block(
        &self,
        proposer: Address,
        time_ms: u64,
        max_txs: usize,
    ) -> Result<Option<SealedBlock>, ChainError> {
        self.build(proposer, time_ms, max_txs, false)
    }

    /// Like [`Chain::build_block`], but always returns a block, empty if nothing is
    /// includable: BFT consensus decides a value at every height.
    pub fn build_proposal(
        &self,
        proposer: Address,
        time_ms: u64,
        max_txs: usize,
    ) -> Result<SealedBlock, ChainError> {
        match self.build(proposer, time_ms, max_txs, true)? {
            Some(b) => Ok(b),
            None => Err(ChainError::Store(StoreError::Io(
                "empty proposal refused".into(),
            ))),
        }
    }

    fn build(
        &self,
        proposer: Address,
        time_ms: u64,
        max_txs: usize,
        allow_empty: bool,
    ) -> Result<Option<SealedBlock>, ChainError> {
        let candidates = self
            .pool()
            .select(max_txs.min(self.genesis.limits.max_block_txs));
        if candidates.is_empty() && !allow_empty {
            return Ok(None);
        }
        let tip = self.tip();
        let params = ExecParams {
            chain_id: self.genesis.chain_id,
            height: tip.height + 1,
            proposer,
            min_fee: self.genesis.min_fee,
            channel_limits: self.genesis.channel_limits,
        };
        let executed = execute_block(&self.ledger, &params, &candidates)?;
        if !executed.skipped.is_empty() {
            let ids: Vec<Hash32> = executed.skipped.iter().map(|(id, _)| *id).collect();
            for (id, why) in &executed.skipped {
                tracing::debug!(%id, %why, "transaction not includable; dropped");
            }
            Metrics::add(&self.metrics.txs_skipped, ids.len());
            self.pool().on_commit(std::iter::empty(), &ids);
        }
        if executed.included.is_empty() && !allow_empty {
            return Ok(None);
        }
        let ids: Vec<Hash32> = executed.included.iter().map(|t| t.id).collect();
        let state_root = executed.writes.next_root(&tip.state_root);
        let header = make_header(params.height, tip.hash, state_root, &ids, time_ms, proposer);
        Ok(Some(SealedBlock {
            header,
            txs: executed.included,
            events: executed.events,
            writes: executed.writes,
        }))
    }

    /// Re-executes a block someone else proposed on top of the committed tip and checks that
    /// it is exactly what it claims: the next height, on our tip, every transaction validly
    /// signed and includable, and the same state root. Returns the block ready to commit.
    pub fn execute_proposal(&self, p: ProposedBlock) -> Result<SealedBlock, ProposalError> {
        let tip = self.tip();
        if p.height != tip.height + 1 || p.parent != tip.hash {
            return Err(ProposalError::NotNext {
                tip: tip.height,
                height: p.height,
            });
        }
        if p.txs.len() > self.genesis.limits.max_block_txs {
            return Err(ProposalError::TooManyTxs(p.txs.len()));
        }
        if p.time_ms < tip.time_ms {
            return Err(ProposalError::TimeGoesBack);
        }
        let candidates = self.verify_proposed(p.txs)?;
        let params = ExecParams {
            chain_id: self.genesis.chain_id,
            height: p.height,
            proposer: p.proposer,
            min_fee: self.genesis.min_fee,
            channel_limits: self.genesis.channel_limits,
        };
        let executed = execute_block(&self.ledger, &params, &candidates)?;
        if let Some((id, why)) = executed.skipped.first() {
            return Err(ProposalError::NotIncludable(*id, why.to_string()));
        }
        let ids: Vec<Hash32> = executed.included.iter().map(|t| t.id).collect();
        let state_root = executed.writes.next_root(&tip.state_root);
        if state_root != p.state_root {
            return Err(ProposalError::StateRoot {
                claimed: p.state_root,
                computed: state_root,
            });
        }
        let header = make_header(p.height, tip.hash, state_root, &ids, p.time_ms, p.proposer);
        Ok(SealedBlock {
            header,
            txs: executed.included,
            events: executed.events,
            writes: executed.writes,
        })
    }

    /// The proposal's transactions, signature-checked. One whose exact bytes are pending in our
    /// mempool was verified at admission and is taken from there; only the rest (transactions
    /// we never heard of) are verified now. Matching bytes, not just the id, is what makes this
    /// safe: the id does not cover the signature, so a copy with another signature is checked.
    fn verify_proposed(&self, txs: Vec<Vec<u8>>) -> Result<Vec<Arc<VerifiedTx>>, ProposalError> {
        let max = self.genesis.limits.max_tx_bytes;
        let decoded = txs
            .into_iter()
            .map(|b| DecodedTx::decode(b, max))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ProposalError::Tx)?;
        let mut known: Vec<Option<Arc<VerifiedTx>>> = Vec::with_capacity(decoded.len());
        let mut unknown = Vec::new();
        {
            let pool = self.pool();
            for d in decoded {
                match pool.get(&d.id) {
                    Some(v) if v.bytes == d.bytes => known.push(Some(v)),
                    _ => {
                        known.push(None);
                        unknown.push(d);
                    }
                }
            }
        }
        tracing::debug!(
            txs = known.len(),
            verified_now = unknown.len(),
            "proposal signatures"
        );
        let mut fresh = sigverify::verify_all(unknown).into_iter();
        known
            .into_iter()
            .map(|k| match k {
                Some(v) => Ok(v),
                None => match fresh.next() {
                    Some(r) => r.map(Arc::new).map_err(ProposalError::Tx),
                    None => Err(ProposalError::Tx(VerifyError::Signature(
                        sluice_protocol::KeyError::BadSignature,
                    ))),
                },
            })
            .collect()
    }

    /// Commits a block durably, then updates the tip, the mempool and subscribers, in that order.
    pub fn commit(&self, block: SealedBlock) -> Result<(), ChainError> {
        self.commit_certified(block, None)
    }

    /// [`Chain::commit`] with the consensus commit certificate stored in the same batch.
    pub fn commit_certified(
        &self,
        block: SealedBlock,
        certificate: Option<&[u8]>,
    ) -> Result<(), ChainError> {
        let tip = self.tip();
        if block.header.height != tip.height + 1 || block.header.parent != tip.hash {
            return Err(ChainError::NotNext {
                tip: tip.height,
                got: block.header.height,
            });
        }
        self.ledger.commit_certified(&block, None, certificate)?;
        let failed = block.txs.iter().filter(|t| !t.receipt.success).count() as u64;
        {
            let mut pool = self.pool();
            pool.on_commit(block.writes.accounts.iter(), &[]);
            Metrics::set(&self.metrics.mempool_size, pool.len());
        }
        match self.tip.write() {
            Ok(mut t) => *t = block.header.clone(),
            Err(p) => *p.into_inner() = block.header.clone(),
        }
        self.last_commit_ms
            .store(sluice_home::clock::unix_ms(), Relaxed);
        let m = &self.metrics;
        Metrics::set(&m.height, block.header.height);
        m.blocks.inc();
        Metrics::add(&m.txs_included, block.txs.len());
        Metrics::add(&m.txs_failed, failed);
        // No receiver is fine; a lagging one notices on its own.
        let _ = self.notices.send(Arc::new(BlockNotice {
            header: block.header,
            events: Arc::new(block.events),
        }));
        Ok(())
    }

    /// Builds and commits one block if transactions wait; returns the committed header.
    pub fn produce(
        &self,
        proposer: Address,
        time_ms: u64,
        max_txs: usize,
    ) -> Result<Option<BlockHeader>, ChainError> {
        let _guard = self.produce.lock().unwrap_or_else(|p| p.into_inner());
        let Some(block) = self.build_block(proposer, time_ms, max_txs)? else {
            return Ok(None);
        };
        let header = block.header.clone();
        self.commit(block)?;
        Ok(Some(header))
    }
}

/// Block 0: the genesis accounts, committed with the genesis hash.
fn write_genesis(ledger: &Ledger, genesis: &Genesis) -> Result<BlockHeader, ChainError> {
    let header = genesis_header(genesis);
    let block = SealedBlock {
        header: header.clone(),
        txs: vec![],
        events: vec![],
        writes: genesis.writes(),
    };
    ledger.commit(&block, Some(&genesis.hash()))?;
    Ok(header)
}

/// The genesis block header a ledger must start with (for replay checks).
pub fn genesis_header(genesis: &Genesis) -> BlockHeader {
    let state_root = genesis.writes().next_root(&Hash32::default());
    let proposer = genesis
        .validators
        .first()
        .map(|v| v.address)
        .unwrap_or_default();
    make_header(
        0,
        Hash32::default(),
        state_root,
        &[],
        genesis.genesis_time_ms,
        proposer,
    )
}
