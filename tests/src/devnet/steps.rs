//! The story's moves, each one user-visible action or wait.

use super::{DevnetError, Narrator, Result};
use crate::harness::{advance_to, Network};
use sluice_chain_client::{ChainClient, TxSender};
use sluice_client::{Wallet, WalletConfig};
use sluice_protocol::onchain::{ChannelRecord, ChannelStatus, EventKind};
use sluice_protocol::rpc::EventFilter;
use sluice_protocol::{sha256, Amount, Hash32, Height, Snapshot, TxKind};
use std::path::Path;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(30);

/// A wallet of the story with its one channel.
pub struct Person {
    pub name: &'static str,
    pub wallet: Wallet,
    pub channel: Hash32,
    chain: ChainClient,
}

impl Person {
    /// Opens the wallet in `dir`, connects to the hub and opens a channel with `deposit`.
    pub async fn open(
        net: &Network,
        name: &'static str,
        dir: &Path,
        deposit: Amount,
    ) -> Result<Self> {
        let config = WalletConfig::new(net.node.addr(), net.hub.addr(), net.hub_key);
        config.save(dir)?;
        let wallet = Wallet::open(dir, config).await?;
        wallet.connect().await?;
        let channel = wallet.open_channel(deposit).await?;
        let chain = ChainClient::new(net.node.addr());
        Ok(Person {
            name,
            wallet,
            channel,
            chain,
        })
    }

    /// What this person can spend in the channel now.
    pub async fn balance(&self) -> Result<Amount> {
        let info = self.wallet.channels().await?;
        info.iter()
            .find(|c| c.id == self.channel)
            .map(|c| c.balance)
            .ok_or_else(|| DevnetError::Story(format!("{} lost track of the channel", self.name)))
    }

    /// The latest co-signed snapshot of the channel from the wallet's own store.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        Ok(self
            .wallet
            .store()
            .require_channel(&self.channel)
            .await?
            .snapshot)
    }

    /// The on-chain account balance.
    pub async fn account(&self) -> Result<Amount> {
        Ok(self.chain.account(&self.wallet.address()).await?.balance)
    }

    pub async fn close_cooperatively(&self) -> Result<(Amount, Amount)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.wallet.is_connected() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(self.wallet.close(&self.channel).await?)
    }
}

/// `payee` makes an invoice, `payer` pays it; checks the proof of payment.
pub async fn pay(n: &mut Narrator, payer: &Person, payee: &Person, amount: Amount) -> Result<()> {
    let invoice = payee
        .wallet
        .create_invoice(amount, "devnet", Duration::from_secs(600))
        .await?;
    let secret = payer.wallet.pay(&invoice.invoice).await?;
    n.check(
        &format!("{} → {} {amount}", payer.name, payee.name),
        sha256(&secret.0) == invoice.hashlock,
        "paid; the secret returned matches the invoice".into(),
    );
    Ok(())
}

async fn poll<T>(what: &str, mut f: impl AsyncFnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DevnetError::Story(format!("timed out waiting for {what}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the hub has a deposit on its side of every channel.
pub async fn wait_for_collateral(net: &Network, people: &[&Person]) -> Result<()> {
    let chain = ChainClient::new(net.node.addr());
    for p in people {
        poll("the hub's collateral", async || {
            let rec = chain.channel(&p.channel).await?;
            Ok(rec.filter(|r| r.deposit_b > 0).map(|_| ()))
        })
        .await?;
    }
    Ok(())
}

/// Waits until a watchtower receipt covers `version` of the person's channel.
pub async fn wait_for_receipt(p: &Person, version: u64) -> Result<()> {
    poll("the watchtower's receipt", async || {
        let towers = p.wallet.watchtowers().await?;
        let done = towers.iter().any(|t| {
            t.receipts
                .iter()
                .any(|r| r.channel_id == p.channel && r.version >= version)
        });
        Ok(done.then_some(()))
    })
    .await
}

/// A transaction sender holding the hub's own key, read from the hub's home.
pub async fn hub_key_sender(net: &Network) -> Result<TxSender> {
    let path = net.hub.home().join(sluice_hub::config::KEY_FILE);
    let key = sluice_hub::keyfile::load(&path).map_err(|e| DevnetError::Story(e.to_string()))?;
    let chain = ChainClient::new(net.node.addr());
    let chain_id = chain.chain_info().await?.chain_id;
    Ok(TxSender::new(chain, key, chain_id, 1))
}

/// Waits for a `ChannelChallenged` event on `channel` from `from` on; returns its version.
pub async fn wait_for_challenge(net: &Network, channel: &Hash32, from: Height) -> Result<u64> {
    let chain = ChainClient::new(net.node.addr());
    let filter = EventFilter {
        channel_id: Some(*channel),
        ..EventFilter::default()
    };
    let mut events = chain.subscribe_events(filter, from).await?;
    let watch = async {
        loop {
            if let EventKind::ChannelChallenged { version, .. } = events.next().await?.event {
                return Ok::<u64, DevnetError>(version);
            }
        }
    };
    tokio::time::timeout(WAIT, watch)
        .await
        .map_err(|_| DevnetError::Story("no challenge within 30 s".into()))?
}

/// Moves the chain past the window and settles; returns the payouts `(a, b)`.
pub async fn settle(sender: &TxSender, channel: &Hash32) -> Result<(Amount, Amount)> {
    let chain = sender.client();
    let rec = chain
        .channel(channel)
        .await?
        .ok_or_else(|| DevnetError::Story("channel vanished".into()))?;
    let ChannelStatus::Closing {
        settle_after,
        stored,
    } = &rec.status
    else {
        return Err(DevnetError::Story(format!(
            "channel is not closing: {:?}",
            rec.status
        )));
    };
    let latest_expiry = stored.locks.iter().map(|l| l.expiry).max().unwrap_or(0);
    advance_to(sender, (*settle_after).max(latest_expiry)).await?;
    sender
        .send(
            TxKind::Settle {
                channel_id: *channel,
            },
            WAIT,
        )
        .await?;
    let rec = chain
        .channel(channel)
        .await?
        .ok_or_else(|| DevnetError::Story("channel vanished".into()))?;
    match rec.status {
        ChannelStatus::Settled { payout_a, payout_b } => Ok((payout_a, payout_b)),
        other => Err(DevnetError::Story(format!(
            "channel did not settle: {other:?}"
        ))),
    }
}

/// The chain's record of `channel`.
pub async fn record(net: &Network, channel: &Hash32) -> Result<ChannelRecord> {
    ChainClient::new(net.node.addr())
        .channel(channel)
        .await?
        .ok_or_else(|| DevnetError::Story("channel vanished".into()))
}

/// Waits until the chain paid the hub a reclaim from `p`'s channel; returns what it withdrew
/// and the hub's side left.
pub async fn wait_for_reclaim(p: &Person) -> Result<(Amount, Amount)> {
    poll("the hub's reclaim", async || {
        let Some(rec) = p.chain.channel(&p.channel).await? else {
            return Ok(None);
        };
        if rec.withdrawn.b == 0 {
            return Ok(None);
        }
        let info = p.wallet.channels().await?;
        let hub_side = info
            .iter()
            .find(|c| c.id == p.channel)
            .map(|c| c.hub_balance);
        Ok(hub_side.map(|h| (rec.withdrawn.b, h)))
    })
    .await
}
