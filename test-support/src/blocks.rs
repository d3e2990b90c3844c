//! Moving the dev chain forward. The dev producer seals a block only when transactions wait, so
//! waiting out a challenge window means giving it something to include.

use sluice_chain_client::{ChainClient, ClientError, TxSender};
use sluice_protocol::{Height, TxKind};
use std::time::Duration;

/// Submits tiny self-transfers from `sender`, one per block, until the chain reaches `height`.
pub async fn advance_to(sender: &TxSender, height: Height) -> Result<Height, ClientError> {
    let chain: &ChainClient = sender.client();
    loop {
        let now = chain.chain_info().await?.height;
        if now >= height {
            return Ok(now);
        }
        let me = sender.key().address();
        sender
            .send(
                TxKind::Transfer { to: me, amount: 1 },
                Duration::from_secs(20),
            )
            .await?;
    }
}
