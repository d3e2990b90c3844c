//! Multi-validator BFT block production on Malachite (Tendermint), behind the same
//! [`BlockProducer`] seam as the dev producer.
//!
//! - [`context`]: the engine's type parameters (heights, votes, proposals, the genesis
//!   validator set, streamed block parts).
//! - [`signing`]: consensus signatures with the validators' secp256k1 keys (BIP-340 Schnorr).
//! - [`codec`]: the size-limited borsh codec for every peer message and the WAL.
//! - [`app`]: the engine's requests answered with our chain (build, re-execute, commit, sync).
//! - [`startup`]: the first height waits until the other validators are connected.
//!
//! The libp2p transport identity is an Ed25519 key derived from the validator key (libp2p's
//! own peer authentication); it signs nothing consensus relies on.

pub mod app;
pub mod codec;
pub mod context;
#[cfg(feature = "test-fixtures")]
mod rogue;
pub mod signing;
pub mod startup;

use crate::chain::{Chain, ChainError};
use crate::producer::BlockProducer;
use crate::state::StoreError;
use app::{App, AppError, Faults};
use arc_malachitebft_app_channel::app::config::{
    ConsensusConfig, NodeConfig as EngineNodeConfig, P2pConfig, ValueSyncConfig,
};
use arc_malachitebft_app_channel::app::types::Keypair as P2pKeypair;
use arc_malachitebft_app_channel::{
    ConsensusContext, NetworkContext, NetworkIdentity, RequestContext, SyncContext, WalContext,
};
use codec::WireCodec;
use context::{SluiceContext, ValidatorAddress};
use malachitebft_codec::Codec;
use malachitebft_core_types::LinearTimeouts;
use malachitebft_signing::Signer;
use signing::{SchnorrSigner, SchnorrVerifier};
use sluice_protocol::Keypair;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the engine reads from its configuration.
struct EngineConfig {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl EngineNodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

/// Runs Malachite for this node: a validator when `key` is in the genesis set, otherwise a
/// full node that follows decisions and syncs.
pub struct ConsensusProducer {
    pub data_dir: PathBuf,
    pub key: Option<Keypair>,
    pub faults: Faults,
}

fn engine_err(e: impl std::fmt::Display) -> ChainError {
    ChainError::Store(StoreError::Io(format!("consensus engine: {e}")))
}

/// The libp2p identity: derived from the validator key so a node keeps its peer id across
/// restarts; random for a full node.
fn p2p_keypair(key: Option<&Keypair>) -> Result<P2pKeypair, ChainError> {
    match key {
        Some(k) => {
            let mut seed =
                signing::digest(signing::ConsensusTag::ValidatorProof, 0, &k.secret_bytes()).0;
            P2pKeypair::ed25519_from_bytes(&mut seed).map_err(engine_err)
        }
        None => Ok(P2pKeypair::generate_ed25519()),
    }
}

impl ConsensusProducer {
    async fn start(
        self,
        chain: Arc<Chain>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), ChainError> {
        let cfg = chain.config.clone();
        let chain_id = chain.genesis.chain_id;
        let timeouts = LinearTimeouts {
            propose: Duration::from_millis(cfg.timeout_propose_ms),
            propose_delta: Duration::from_millis(cfg.timeout_propose_ms / 2),
            prevote: Duration::from_millis(cfg.timeout_prevote_ms),
            prevote_delta: Duration::from_millis(cfg.timeout_prevote_ms / 2),
            precommit: Duration::from_millis(cfg.timeout_precommit_ms),
            precommit_delta: Duration::from_millis(cfg.timeout_precommit_ms / 2),
            rebroadcast: Duration::from_millis(
                cfg.timeout_propose_ms + cfg.timeout_prevote_ms + cfg.timeout_precommit_ms,
            ),
            max_timeout: Duration::from_secs(30),
        };
        let ctx = SluiceContext { timeouts };
        let codec = WireCodec {
            max_bytes: cfg.p2p_max_message_bytes,
            junk_streams: self.faults.rogue_proposals,
        };
        let verifier = SchnorrVerifier { chain_id };
        let validators = context::ValidatorSet::from_genesis(&chain.genesis);
        let key = self
            .key
            .filter(|k| validators.contains(&ValidatorAddress::from(k.address())));
        let p2p_key = p2p_keypair(key.as_ref())?;
        let peer_id = p2p_key.public().to_peer_id();
        let listen = cfg.p2p_listen.parse().map_err(engine_err)?;
        let mut peers = Vec::new();
        for p in &cfg.p2p_peers {
            peers.push(p.parse().map_err(engine_err)?);
        }
        // Sync responses are trimmed to what a peer's codec accepts; a larger limit here would
        // make a lagging peer refuse every batch it asked for.
        let p2p = P2pConfig {
            listen_addr: listen,
            persistent_peers: peers,
            rpc_max_size: bytesize::ByteSize::b(cfg.p2p_max_message_bytes as u64),
            ..P2pConfig::default()
        };
        let consensus = ConsensusConfig {
            p2p,
            ..ConsensusConfig::default()
        };
        let value_sync = ValueSyncConfig {
            status_update_interval: Duration::from_millis(500),
            request_timeout: Duration::from_secs(5),
            ..ValueSyncConfig::default()
        };
        let moniker = match &key {
            Some(k) => format!("validator-{}", &k.address().to_string()[..8]),
            None => format!("full-{}", &peer_id.to_string()[..12]),
        };
        let engine_cfg = EngineConfig {
            moniker: moniker.clone(),
            consensus,
            value_sync,
        };
        let (identity, consensus_ctx, app_signer) = match &key {
            Some(k) => {
                let signer = SchnorrSigner {
                    chain_id,
                    key: k.clone(),
                };
                let address = ValidatorAddress::from(k.address());
                let proof = signer
                    .sign_validator_proof(address.0.to_vec(), peer_id.to_bytes())
                    .await
                    .map_err(engine_err)?;
                let proof_bytes = codec.encode(&proof).map_err(engine_err)?;
                let identity = NetworkIdentity::new_validator(
                    moniker,
                    p2p_key,
                    address.to_string(),
                    proof_bytes,
                );
                let ctx = ConsensusContext::new_validator(
                    address,
                    Box::new(verifier.clone()),
                    Box::new(SchnorrSigner {
                        chain_id,
                        key: k.clone(),
                    }),
                );
                (identity, ctx, Some(Arc::new(signer)))
            }
            None => {
                let identity = NetworkIdentity::new(moniker, p2p_key, None);
                let address = ValidatorAddress::from(Keypair::generate().address());
                let ctx = ConsensusContext::new_full_node(address, Box::new(verifier.clone()));
                (identity, ctx, None)
            }
        };
        tracing::info!(
            role = if app_signer.is_some() { "validator" } else { "full node" },
            %peer_id,
            listen = %cfg.p2p_listen,
            peers = cfg.p2p_peers.len(),
            validators = validators.validators.len(),
            "starting consensus"
        );
        let (mut channels, engine) = arc_malachitebft_app_channel::start_engine(
            ctx,
            engine_cfg,
            WalContext::new(self.data_dir.join("consensus.wal"), codec),
            NetworkContext::new(identity, codec),
            consensus_ctx,
            SyncContext::new(codec),
            RequestContext::new(100),
        )
        .await
        .map_err(engine_err)?;
        let app = App::new(chain, timeouts, app_signer, self.faults);
        let result = app.run(&mut channels, shutdown).await;
        engine.actor.stop(None);
        engine.handle.abort();
        match result {
            Ok(()) => Ok(()),
            Err(AppError::Chain(e)) => Err(e),
            Err(e) => Err(engine_err(e)),
        }
    }
}

impl BlockProducer for ConsensusProducer {
    fn run(
        self: Box<Self>,
        chain: Arc<Chain>,
        shutdown: watch::Receiver<bool>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ChainError>> + Send>> {
        Box::pin(async move {
            let r = self.start(chain, shutdown).await;
            tracing::info!("consensus stopped");
            r
        })
    }
}
