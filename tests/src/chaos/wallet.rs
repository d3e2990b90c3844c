//! One wallet of a kill campaign, run as its own process (`sluice-chaos-wallet`) so that the
//! campaign can SIGKILL it: it keeps invoices on offer, pays random peers' invoices one at a
//! time, and once the market says stop it only stays online, so that what is in flight
//! resolves. Every restart opens the same wallet directory: the wallet's own recovery is what
//! is under test.

use super::market::Market;
use rand::{Rng, SeedableRng};
use sluice_client::{Wallet, WalletConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Invoices each payee keeps on offer.
const OFFERS: usize = 3;
/// Largest payment, in base units (channels hold a million).
const MAX_AMOUNT: u64 = 5_000;

pub struct WalletProcess {
    pub dir: PathBuf,
    pub market: PathBuf,
    pub me: usize,
    pub peers: usize,
}

pub async fn run(w: WalletProcess) -> Result<(), String> {
    let market = Market::new(&w.market).map_err(|e| format!("market: {e}"))?;
    let config = WalletConfig::load(&w.dir).map_err(|e| e.to_string())?;
    // The node may be down at this moment too (being restarted): try until it answers.
    let wallet = loop {
        match Wallet::open(&w.dir, config.clone()).await {
            Ok(wallet) => break wallet,
            Err(e) => tracing::warn!(error = %e, "cannot open the wallet yet"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    while let Err(e) = wallet.connect().await {
        tracing::warn!(error = %e, "cannot reach the hub yet");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(5..40))).await;
        if market.stopped() {
            continue;
        }
        if market.offered(w.me) < OFFERS {
            let amount = rng.gen_range(1..=MAX_AMOUNT);
            match wallet
                .create_invoice(amount, "chaos", Duration::from_secs(600))
                .await
            {
                Ok(inv) => {
                    let hashlock = inv.hashlock.to_string();
                    if let Err(e) = market.offer(w.me, &hashlock, &inv.invoice) {
                        tracing::warn!(error = %e, "cannot offer an invoice");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot create an invoice"),
            }
        }
        let peer = (w.me + rng.gen_range(1..w.peers.max(2))) % w.peers;
        if let Some(invoice) = market.claim(peer, w.me) {
            match wallet.pay(&invoice).await {
                Ok(_) => tracing::info!(peer, "paid"),
                Err(e) => tracing::info!(peer, error = %e, "payment failed"),
            }
        }
    }
}
