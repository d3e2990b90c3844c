//! The application side of Malachite: answers the engine's requests with our chain.
//!
//! - `GetValue`: the proposer builds the next block from its mempool ([`Chain::build_proposal`])
//!   within the round's propose budget and streams it as [`BlockPart`]s.
//! - `ReceivedProposalPart`: parts are reassembled per stream; a complete block from the round's
//!   proposer is re-executed ([`Chain::execute_proposal`]) and reported *valid* only if its state
//!   root matches ours, so the engine prevotes nil for anything else.
//! - `Decided`: the block is committed with its commit certificate ([`Chain::commit_certified`]).
//! - `GetDecidedValues` / `ProcessSyncedValue`: value sync serves blocks from our ledger and
//!   re-executes blocks received from peers the same way as proposals.

use super::context::{
    BlockId, BlockInit, BlockPart, BlockValue, Height, SluiceContext, ValidatorAddress,
    ValidatorSet, WireBlock,
};
use super::signing::{digest, parts_body, ConsensusTag, SchnorrSigner};
use super::startup::StartupGate;
use crate::block::{make_header, SealedBlock};
use crate::chain::{Chain, ChainError, ProposedBlock};
use arc_malachitebft_app_channel::app::engine::host::{HeightParams, Next, SyncedValueOutcome};
use arc_malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use arc_malachitebft_app_channel::app::types::core::{
    CommitCertificate, ExtendedCommitCertificate, LinearTimeouts, Round, Validity, VoteExtensions,
};
use arc_malachitebft_app_channel::app::types::sync::RawDecidedValue;
use arc_malachitebft_app_channel::app::types::{LocallyProposedValue, PeerId, ProposedValue};
use arc_malachitebft_app_channel::{AppMsg, Channels, NetworkMsg};
use bytes::Bytes;
use sluice_protocol::encoding::Canonical;
use sluice_protocol::{Address, Hash32, SignedTx};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Transactions per streamed part (~300 KB of transfers), well under the gossip size limit.
const TXS_PER_PART: usize = 2_000;
/// Incomplete proposal streams kept at once; the oldest is dropped past this.
const MAX_STREAMS: usize = 64;
/// Complete proposals for future heights kept until we reach them.
const MAX_FUTURE: usize = 32;
/// Most blocks served in one sync response.
const MAX_SYNC_BATCH: u64 = 20;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("consensus engine: {0}")]
    Engine(String),
    #[error("blocking task: {0}")]
    Join(String),
}

/// Fault injection for tests of the validators' defence. Test-only: every switch is off unless
/// its `SLUICE_FAULT_*` variable is set to `1`, and none is ever set outside tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// `SLUICE_FAULT_BAD_STATE_ROOT`: propose blocks whose header claims a wrong state root.
    pub bad_state_root: bool,
    /// `SLUICE_FAULT_ROGUE_PROPOSALS`: on a node outside the validator set, stream at every
    /// round a proposal signed by its own key, one impersonating the round's proposer, and
    /// streams of garbage and oversized bytes (see [`super::codec::JUNK_STREAM`]).
    pub rogue_proposals: bool,
}

impl Faults {
    /// The proposal as a faulty validator sends it; unchanged without `test-fixtures`.
    fn tamper(&self, block: SealedBlock) -> SealedBlock {
        #[cfg(feature = "test-fixtures")]
        if self.bad_state_root {
            let mut block = block;
            let h = &block.header;
            let ids: Vec<Hash32> = block.txs.iter().map(|t| t.id).collect();
            block.header = make_header(
                h.height,
                h.parent,
                Hash32([0xbd; 32]),
                &ids,
                h.time_ms,
                h.proposer,
            );
            tracing::warn!(
                height = block.header.height,
                "fault injection: proposing a wrong state root"
            );
            return block;
        }
        block
    }
}

pub struct App {
    pub chain: Arc<Chain>,
    pub validators: ValidatorSet,
    pub timeouts: LinearTimeouts,
    pub signer: Option<Arc<SchnorrSigner>>,
    pub max_block_txs: usize,
    pub block_time: Duration,
    pub faults: Faults,
    /// Blocks we built or validated, by hash, until their height is committed.
    pub(super) blocks: HashMap<BlockId, Arc<SealedBlock>>,
    /// What we proposed per (height, round): the same value must be re-proposed.
    built: HashMap<(u64, Round), BlockId>,
    /// Validated proposals per (height, round), replayed to the engine on `StartedRound`.
    proposals: HashMap<(u64, Round), Vec<ProposedValue<SluiceContext>>>,
    streams: HashMap<(PeerId, Bytes), PartStream>,
    /// Complete but unchecked proposals for heights above ours.
    future: Vec<Assembled>,
    stream_counter: u64,
    committed_ok: bool,
}

struct PartStream {
    parts: BTreeMap<u64, StreamContent<BlockPart>>,
    fin_at: Option<u64>,
    started: Instant,
}

/// A fully received proposal stream.
#[derive(Clone)]
struct Assembled {
    init: BlockInit,
    txs: Vec<Vec<u8>>,
    sig: super::context::ConsensusSig,
}

pub(super) use sluice_home::clock::unix_ms as now_ms;

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Join(e.to_string()))
}

impl App {
    pub fn new(
        chain: Arc<Chain>,
        timeouts: LinearTimeouts,
        signer: Option<Arc<SchnorrSigner>>,
        faults: Faults,
    ) -> Self {
        let validators = ValidatorSet::from_genesis(&chain.genesis);
        let max_block_txs = chain.config.max_block_txs;
        let block_time = Duration::from_millis(chain.config.block_time_ms);
        App {
            chain,
            validators,
            timeouts,
            signer,
            max_block_txs,
            block_time,
            faults,
            blocks: HashMap::new(),
            built: HashMap::new(),
            proposals: HashMap::new(),
            streams: HashMap::new(),
            future: Vec::new(),
            stream_counter: 0,
            committed_ok: false,
        }
    }

    fn params(&self) -> HeightParams<SluiceContext> {
        HeightParams::new(self.validators.clone(), self.timeouts, None)
    }

    fn next_height(&self) -> Height {
        Height(self.chain.height() + 1)
    }

    /// Runs until the engine closes its channel or `shutdown` turns true.
    pub async fn run(
        mut self,
        channels: &mut Channels<SluiceContext>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), AppError> {
        loop {
            let msg = tokio::select! {
                m = channels.consensus.recv() => match m {
                    Some(m) => m,
                    None => return Err(AppError::Engine("the engine stopped".into())),
                },
                _ = shutdown.changed() => return Ok(()),
            };
            if *shutdown.borrow() {
                return Ok(());
            }
            self.handle(msg, channels).await?;
        }
    }

    async fn handle(
        &mut self,
        msg: AppMsg<SluiceContext>,
        channels: &mut Channels<SluiceContext>,
    ) -> Result<(), AppError> {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let h = self.next_height();
                tracing::info!(height = %h, "consensus ready");
                let params = self.params();
                let me = self
                    .signer
                    .as_ref()
                    .map(|s| ValidatorAddress::from(s.key.address()));
                match StartupGate::new(&self.validators, me) {
                    // Answered from a task, so sync requests from peers are served meanwhile.
                    Some(gate) => {
                        let net = channels.net_requests.clone();
                        tokio::spawn(async move {
                            gate.wait(&net).await;
                            let _ = reply.send((h, params));
                        });
                    }
                    None => {
                        let _ = reply.send((h, params));
                    }
                }
            }
            AppMsg::StartedRound {
                height,
                round,
                proposer,
                role,
                reply_value,
            } => {
                tracing::debug!(%height, %round, %proposer, ?role, "round started");
                self.check_future(height).await?;
                #[cfg(feature = "test-fixtures")]
                if self.faults.rogue_proposals && self.signer.is_none() {
                    super::rogue::propose(self, channels, height, round, proposer).await?;
                }
                let known = self
                    .proposals
                    .get(&(height.0, round))
                    .cloned()
                    .unwrap_or_default();
                let _ = reply_value.send(known);
            }
            AppMsg::GetValue {
                height,
                round,
                timeout,
                reply,
            } => {
                let Some(signer) = self.signer.clone() else {
                    tracing::warn!("asked to propose without a validator key");
                    return Ok(());
                };
                let id = match self.built.get(&(height.0, round)) {
                    Some(id) => *id,
                    None => self.build(height, timeout).await?,
                };
                let _ = reply.send(LocallyProposedValue::new(height, round, BlockValue(id)));
                self.stream(channels, &signer, height, round, Round::Nil, id)
                    .await?;
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions {
                extensions, reply, ..
            } => {
                let verdicts = extensions.into_iter().map(|(a, _)| (a, Ok(()))).collect();
                let _ = reply.send(verdicts);
            }
            AppMsg::RestreamProposal {
                height,
                round,
                valid_round,
                address,
                value_id,
            } => {
                if let Some(signer) = self.signer.clone() {
                    if address == ValidatorAddress::from(signer.key.address()) {
                        self.stream(channels, &signer, height, round, valid_round, value_id)
                            .await?;
                    }
                }
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(Height(1));
            }
            AppMsg::ReceivedProposalPart {
                from,
                published_by,
                part,
                reply,
            } => {
                let value = match self.receive_part(published_by.unwrap_or(from), part) {
                    Some(a) => self.judge(a).await?,
                    None => None,
                };
                let _ = reply.send(value);
            }
            AppMsg::Decided {
                certificate, reply, ..
            } => {
                self.committed_ok = self.commit(certificate).await?;
                let _ = reply.send(());
            }
            AppMsg::Finalized {
                certificate, reply, ..
            } => {
                let tip = self.chain.height();
                let next = if tip >= certificate.height.0 {
                    Next::Start(Height(tip + 1), self.params())
                } else {
                    tracing::error!(height = %certificate.height, tip, "decided block not committed; restarting the height");
                    Next::Restart(Height(tip + 1), self.params())
                };
                let _ = reply.send(next);
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let (lo, hi) = (range.start().0, range.end().0);
                let chain = self.chain.clone();
                let values = blocking(move || serve_decided(&chain, lo, hi)).await?;
                let _ = reply.send(values);
            }
            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let outcome = self.synced(height, round, proposer, value_bytes).await?;
                let _ = reply.send(outcome);
            }
        }
        Ok(())
    }

    /// Waits (within the propose budget) for transactions, then builds the next block.
    async fn build(&mut self, height: Height, timeout: Duration) -> Result<BlockId, AppError> {
        let wait = self.block_time.min(timeout / 3);
        let until = Instant::now() + wait;
        while self.chain.mempool_len() == 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let chain = self.chain.clone();
        let proposer = self
            .signer
            .as_ref()
            .map(|s| s.key.address())
            .unwrap_or_default();
        let max = self.max_block_txs;
        let parent_time = chain.tip().time_ms;
        let started = Instant::now();
        let block =
            blocking(move || chain.build_proposal(proposer, now_ms().max(parent_time), max))
                .await??;
        let block = self.faults.tamper(block);
        let id = BlockId(block.header.hash.0);
        tracing::info!(height = %height, txs = block.txs.len(), ms = started.elapsed().as_millis() as u64, block = %id, "built proposal");
        self.blocks.insert(id, Arc::new(block));
        Ok(id)
    }

    pub(super) async fn stream(
        &mut self,
        channels: &mut Channels<SluiceContext>,
        signer: &SchnorrSigner,
        height: Height,
        round: Round,
        pol_round: Round,
        id: BlockId,
    ) -> Result<(), AppError> {
        let Some(block) = self.blocks.get(&id).cloned() else {
            tracing::warn!(%height, %round, block = %id, "cannot stream an unknown block");
            return Ok(());
        };
        self.built.insert((height.0, round), id);
        let h = &block.header;
        let init = BlockInit {
            height,
            round,
            pol_round,
            proposer: ValidatorAddress::from(h.proposer),
            parent: h.parent.0,
            state_root: h.state_root.0,
            time_ms: h.time_ms,
            tx_count: h.tx_count,
        };
        let mut parts = vec![BlockPart::Init(init)];
        for chunk in block.txs.chunks(TXS_PER_PART) {
            parts.push(BlockPart::Txs(
                chunk.iter().map(|t| t.bytes.clone()).collect(),
            ));
        }
        let sig = signer.sign(
            ConsensusTag::ProposalParts,
            &parts_body(height.0, round, &h.hash),
        );
        parts.push(BlockPart::Fin(sig));
        self.stream_counter += 1;
        let mut sid = Vec::with_capacity(24);
        sid.extend_from_slice(&height.0.to_be_bytes());
        sid.extend_from_slice(&round.as_i64().to_be_bytes());
        sid.extend_from_slice(&self.stream_counter.to_be_bytes());
        let stream_id = StreamId::new(Bytes::from(sid));
        let n = parts.len() as u64;
        let msgs = parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| StreamMessage::new(stream_id.clone(), i as u64, StreamContent::Data(p)))
            .chain(std::iter::once(StreamMessage::new(
                stream_id.clone(),
                n,
                StreamContent::Fin,
            )));
        for m in msgs {
            channels
                .network
                .send(NetworkMsg::PublishProposalPart(m))
                .await
                .map_err(|e| AppError::Engine(e.to_string()))?;
        }
        Ok(())
    }

    /// Buffers one stream message; returns the proposal once its stream is complete.
    fn receive_part(&mut self, peer: PeerId, msg: StreamMessage<BlockPart>) -> Option<Assembled> {
        let key = (peer, msg.stream_id.to_bytes());
        if !self.streams.contains_key(&key) && self.streams.len() >= MAX_STREAMS {
            if let Some(oldest) = self
                .streams
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(k, _)| k.clone())
            {
                tracing::warn!(peer = %oldest.0, "too many open proposal streams; dropping the oldest");
                self.streams.remove(&oldest);
            }
        }
        let s = self
            .streams
            .entry(key.clone())
            .or_insert_with(|| PartStream {
                parts: BTreeMap::new(),
                fin_at: None,
                started: Instant::now(),
            });
        if matches!(msg.content, StreamContent::Fin) {
            s.fin_at = Some(msg.sequence);
        }
        if s.parts.len() > 4 + self.chain.genesis.limits.max_block_txs / TXS_PER_PART.max(1) * 2 + 8
        {
            tracing::warn!(%peer, "proposal stream has too many parts; dropped");
            self.streams.remove(&key);
            return None;
        }
        s.parts.insert(msg.sequence, msg.content);
        let fin = s.fin_at?;
        if s.parts.len() as u64 != fin + 1 {
            return None;
        }
        let s = self.streams.remove(&key)?;
        let mut data = s.parts.into_values().filter_map(|c| match c {
            StreamContent::Data(d) => Some(d),
            StreamContent::Fin => None,
        });
        let Some(BlockPart::Init(init)) = data.next() else {
            tracing::warn!(%peer, "proposal stream does not start with Init; dropped");
            return None;
        };
        let mut txs = Vec::new();
        let mut sig = None;
        for p in data {
            match (p, sig.is_some()) {
                (BlockPart::Txs(t), false) => txs.extend(t),
                (BlockPart::Fin(f), false) => sig = Some(f),
                _ => {
                    tracing::warn!(%peer, "malformed proposal stream; dropped");
                    return None;
                }
            }
        }
        let Some(sig) = sig else {
            tracing::warn!(%peer, "proposal stream without signature; dropped");
            return None;
        };
        Some(Assembled { init, txs, sig })
    }

    /// Checks who proposed and re-executes; `None` drops the proposal entirely.
    async fn judge(
        &mut self,
        a: Assembled,
    ) -> Result<Option<ProposedValue<SluiceContext>>, AppError> {
        let init = a.init.clone();
        if !self.validators.contains(&init.proposer) {
            tracing::warn!(proposer = %init.proposer, height = %init.height, "proposal from a non-validator; dropped");
            return Ok(None);
        }
        match self.validators.proposer(init.height, init.round) {
            Some(v) if v.address == init.proposer => {}
            _ => {
                tracing::warn!(proposer = %init.proposer, height = %init.height, round = %init.round, "proposal from a validator that is not this round's proposer; dropped");
                return Ok(None);
            }
        }
        let next = self.chain.height() + 1;
        if init.height.0 < next {
            return Ok(None);
        }
        if init.height.0 > next {
            // A validator's signed proposal shows it has committed the height below: we are
            // behind (what `/health` reports), and the proposal waits until we get there.
            let chain_id = self.chain.genesis.chain_id;
            let copy = a.clone();
            if blocking(move || signed_header(chain_id, &copy).is_some()).await? {
                self.chain.observe_peer_height(init.height.0 - 1);
            }
            if self.future.len() >= MAX_FUTURE {
                self.future.remove(0);
            }
            self.future.push(a);
            return Ok(None);
        }
        let chain = self.chain.clone();
        let chain_id = self.chain.genesis.chain_id;
        let verdict = blocking(move || check_proposal(&chain, chain_id, a)).await?;
        let Some((claimed, block)) = verdict else {
            return Ok(None);
        };
        let validity = match block {
            Ok(b) => {
                self.blocks.insert(claimed, Arc::new(b));
                Validity::Valid
            }
            Err(e) => {
                tracing::warn!(height = %init.height, round = %init.round, proposer = %init.proposer, error = %e, "rejecting proposal; voting nil");
                Validity::Invalid
            }
        };
        let pv = ProposedValue {
            height: init.height,
            round: init.round,
            valid_round: init.pol_round,
            proposer: init.proposer,
            value: BlockValue(claimed),
            validity,
        };
        self.proposals
            .entry((init.height.0, init.round))
            .or_default()
            .push(pv.clone());
        Ok(Some(pv))
    }

    /// Proposals for a height we just reached are checked now and kept for `StartedRound`.
    async fn check_future(&mut self, height: Height) -> Result<(), AppError> {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.future)
            .into_iter()
            .filter(|a| a.init.height >= height)
            .partition(|a| a.init.height == height);
        self.future = later;
        for a in now {
            self.judge(a).await?;
        }
        Ok(())
    }

    async fn commit(&mut self, cert: CommitCertificate<SluiceContext>) -> Result<bool, AppError> {
        let tip = self.chain.height();
        if cert.height.0 <= tip {
            return Ok(true);
        }
        let Some(block) = self.blocks.get(&cert.value_id).cloned() else {
            tracing::error!(height = %cert.height, block = %cert.value_id, "decided a block we do not hold");
            return Ok(false);
        };
        let bytes = match borsh::to_vec(&cert) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the commit certificate");
                return Ok(false);
            }
        };
        let chain = self.chain.clone();
        let started = Instant::now();
        let block = (*block).clone();
        let (h, n) = (block.header.height, block.txs.len());
        let root = block.header.state_root;
        blocking(move || chain.commit_certified(block, Some(&bytes))).await??;
        let took = started.elapsed();
        self.chain
            .metrics
            .last_block_seconds
            .set(took.as_secs_f64());
        tracing::info!(height = h, txs = n, round = %cert.round, signatures = cert.commit_signatures.len(), state_root = %root, "block committed");
        self.blocks.retain(|_, b| b.header.height > h);
        self.built.retain(|(bh, _), _| *bh > h);
        self.proposals.retain(|(bh, _), _| *bh > h);
        self.future.retain(|a| a.init.height.0 > h);
        Ok(true)
    }

    async fn synced(
        &mut self,
        height: Height,
        round: Round,
        proposer: ValidatorAddress,
        value_bytes: Bytes,
    ) -> Result<SyncedValueOutcome<SluiceContext>, AppError> {
        let wire: WireBlock = match borsh::from_slice(&value_bytes) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(%height, error = %e, "undecodable synced block; peer at fault");
                return Ok(SyncedValueOutcome::PeerFault);
            }
        };
        if wire.height != height.0 || wire.proposer != proposer.0 {
            tracing::warn!(%height, "synced block does not match its certificate; peer at fault");
            return Ok(SyncedValueOutcome::PeerFault);
        }
        if height.0 != self.chain.height() + 1 {
            return Ok(SyncedValueOutcome::LocalTransientError);
        }
        let chain = self.chain.clone();
        let p = ProposedBlock {
            height: wire.height,
            parent: Hash32(wire.parent),
            state_root: Hash32(wire.state_root),
            time_ms: wire.time_ms,
            proposer: Address(wire.proposer),
            txs: wire.txs,
        };
        let result = blocking(move || chain.execute_proposal(p)).await?;
        let (id, validity) = match result {
            Ok(b) => {
                let id = BlockId(b.header.hash.0);
                self.blocks.insert(id, Arc::new(b));
                (id, Validity::Valid)
            }
            Err(e) => {
                tracing::warn!(%height, error = %e, "synced block does not re-execute; peer at fault");
                return Ok(SyncedValueOutcome::PeerFault);
            }
        };
        Ok(SyncedValueOutcome::Verdict(ProposedValue {
            height,
            round,
            valid_round: Round::Nil,
            proposer,
            value: BlockValue(id),
            validity,
        }))
    }
}

/// Recomputes the claimed header, checks the proposer's signature over it, then re-executes.
/// `None`: not attributable to the claimed proposer (drop). `Some((id, Err))`: signed by the
/// proposer but wrong (vote nil).
fn check_proposal(
    chain: &Chain,
    chain_id: u64,
    a: Assembled,
) -> Option<(BlockId, Result<SealedBlock, crate::chain::ProposalError>)> {
    let claimed = signed_header(chain_id, &a)?;
    let i = &a.init;
    let id = BlockId(claimed.hash.0);
    let result = chain.execute_proposal(ProposedBlock {
        height: i.height.0,
        parent: Hash32(i.parent),
        state_root: Hash32(i.state_root),
        time_ms: i.time_ms,
        proposer: i.proposer.to_address(),
        txs: a.txs,
    });
    let result = result.and_then(|b| {
        if b.header.hash == claimed.hash {
            Ok(b)
        } else {
            Err(crate::chain::ProposalError::StateRoot {
                claimed: claimed.state_root,
                computed: b.header.state_root,
            })
        }
    });
    Some((id, result))
}

/// The header a proposal claims, if its proposer signed it. `None`: malformed or not signed by
/// the claimed proposer (drop).
fn signed_header(chain_id: u64, a: &Assembled) -> Option<sluice_protocol::rpc::BlockHeader> {
    let i = &a.init;
    if a.txs.len() != i.tx_count as usize {
        tracing::warn!(height = %i.height, "proposal tx count does not match its header; dropped");
        return None;
    }
    let mut ids = Vec::with_capacity(a.txs.len());
    for b in &a.txs {
        match SignedTx::from_bytes(b) {
            Ok(t) => ids.push(t.id()),
            Err(e) => {
                tracing::warn!(height = %i.height, error = %e, "undecodable transaction in proposal; dropped");
                return None;
            }
        }
    }
    let proposer = i.proposer.to_address();
    let claimed = make_header(
        i.height.0,
        Hash32(i.parent),
        Hash32(i.state_root),
        &ids,
        i.time_ms,
        proposer,
    );
    let d = digest(
        ConsensusTag::ProposalParts,
        chain_id,
        &parts_body(i.height.0, i.round, &claimed.hash),
    );
    if proposer
        .verify_hash(&d, &sluice_protocol::Signature(a.sig.0))
        .is_err()
    {
        tracing::warn!(height = %i.height, proposer = %i.proposer, "proposal signature does not verify; dropped");
        return None;
    }
    Some(claimed)
}

/// Reads decided blocks `lo..=hi` (capped) with their certificates for a syncing peer.
fn serve_decided(chain: &Chain, lo: u64, hi: u64) -> Vec<RawDecidedValue<SluiceContext>> {
    let hi = hi
        .min(chain.height())
        .min(lo.saturating_add(MAX_SYNC_BATCH - 1));
    let mut out = Vec::new();
    for h in lo.max(1)..=hi {
        match decided_at(chain, h) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => break,
            Err(e) => {
                tracing::error!(height = h, error = %e, "cannot read a decided block for sync");
                break;
            }
        }
    }
    out
}

fn decided_at(
    chain: &Chain,
    h: u64,
) -> Result<Option<RawDecidedValue<SluiceContext>>, crate::state::StoreError> {
    let (Some(block), Some(cert)) = (chain.ledger.block(h)?, chain.ledger.certificate(h)?) else {
        return Ok(None);
    };
    let cert: CommitCertificate<SluiceContext> = match borsh::from_slice(&cert) {
        Ok(c) => c,
        Err(e) => {
            return Err(crate::state::StoreError::Corrupt {
                what: "commit certificate",
                detail: e.to_string(),
            })
        }
    };
    let mut txs = Vec::with_capacity(block.txs.len());
    for id in &block.txs {
        match chain.ledger.stored_tx(id)? {
            Some(st) => txs.push(st.bytes),
            None => {
                return Err(crate::state::StoreError::Corrupt {
                    what: "block",
                    detail: format!("transaction {id} missing"),
                })
            }
        }
    }
    let hd = &block.header;
    let wire = WireBlock {
        height: hd.height,
        parent: hd.parent.0,
        state_root: hd.state_root.0,
        time_ms: hd.time_ms,
        proposer: hd.proposer.0,
        txs,
    };
    let bytes = borsh::to_vec(&wire).map_err(|e| crate::state::StoreError::Io(e.to_string()))?;
    let ext = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
        cert,
        VoteExtensions::default(),
    );
    Ok(Some(RawDecidedValue::new(Bytes::from(bytes), ext)))
}
