//! Test-only fault injection (`SLUICE_FAULT_ROGUE_PROPOSALS=1` on a full node): the
//! misbehaviour of a peer outside the validator set, so process tests can check that honest
//! validators drop it with a log line and never decide it. Inert unless the switch is set; the
//! node's own consensus and ledger are untouched.
//!
//! At every round it publishes, on the proposal-parts gossip channel:
//! - a well-formed, correctly signed proposal from its own (non-validator) key;
//! - a proposal claiming to be from the round's proposer, signed with its own key;
//! - a stream whose bytes are garbage and one larger than the peers' message limit (the codec
//!   turns these marked streams into junk, see [`super::codec::JUNK_STREAM`]).

use super::app::{blocking, now_ms, App, AppError};
use super::codec::{HUGE_STREAM, JUNK_STREAM};
use super::context::{BlockId, BlockPart, Height, SluiceContext, ValidatorAddress};
use super::signing::SchnorrSigner;
use arc_malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use arc_malachitebft_app_channel::app::types::core::Round;
use arc_malachitebft_app_channel::{Channels, NetworkMsg};
use bytes::Bytes;
use sluice_protocol::{Address, Keypair};
use std::sync::Arc;

pub(super) async fn propose(
    app: &mut App,
    channels: &mut Channels<SluiceContext>,
    height: Height,
    round: Round,
    proposer: ValidatorAddress,
) -> Result<(), AppError> {
    let signer = SchnorrSigner {
        chain_id: app.chain.genesis.chain_id,
        key: Keypair::generate(),
    };
    let own = signer.key.address();
    for claimed in [own, proposer.to_address()] {
        let id = build(app, claimed).await?;
        tracing::warn!(%height, %round, proposer = %claimed, "fault injection: streaming a proposal from a non-validator");
        app.stream(channels, &signer, height, round, Round::Nil, id)
            .await?;
    }
    for tag in [JUNK_STREAM, HUGE_STREAM] {
        let mut sid = tag.to_vec();
        sid.extend_from_slice(&height.0.to_be_bytes());
        sid.extend_from_slice(&round.as_i64().to_be_bytes());
        let msg = StreamMessage::new(
            StreamId::new(Bytes::from(sid)),
            0,
            StreamContent::Data(BlockPart::Txs(vec![])),
        );
        tracing::warn!(%height, %round, "fault injection: publishing a junk proposal part");
        channels
            .network
            .send(NetworkMsg::PublishProposalPart(msg))
            .await
            .map_err(|e| AppError::Engine(e.to_string()))?;
    }
    Ok(())
}

/// An empty block on our tip naming `proposer`; kept in `app.blocks` so it can be streamed.
async fn build(app: &mut App, proposer: Address) -> Result<BlockId, AppError> {
    let chain = app.chain.clone();
    let time = now_ms().max(chain.tip().time_ms);
    let block = blocking(move || chain.build_proposal(proposer, time, 0)).await??;
    let id = BlockId(block.header.hash.0);
    app.blocks.insert(id, Arc::new(block));
    Ok(id)
}
