//! The wallet's view of the chain for one update: the channel's on-chain deposits and the
//! current height, which `apply` needs as its `Context`.

use crate::error::{Result, WalletError};
use sluice_chain_client::ChainClient;
use sluice_protocol::onchain::{ChannelRecord, ChannelStatus};
use sluice_protocol::{Context, Hash32, Policy};

/// The on-chain record of a channel, or a typed error if the chain does not know it.
pub async fn record(chain: &ChainClient, id: &Hash32) -> Result<ChannelRecord> {
    chain
        .channel(id)
        .await?
        .ok_or_else(|| WalletError::UnknownChannel(id.to_string()))
}

/// The `Context` for an update of an open channel right now.
pub async fn context(chain: &ChainClient, id: &Hash32, policy: Policy) -> Result<Context> {
    let rec = record(chain, id).await?;
    if rec.status != ChannelStatus::Open {
        return Err(WalletError::ChannelState {
            id: *id,
            status: "not open on chain".into(),
            what: "an off-chain update",
        });
    }
    let height = chain.chain_info().await?.height;
    Ok(Context {
        deposit_a: rec.deposit_a,
        deposit_b: rec.deposit_b,
        height,
        policy,
    })
}
