//! Pays an invoice from a wallet directory and prints the proof of payment.
//!
//! `cargo run -p sluice-client --example pay -- DIR NODE HUB HUB_KEY INVOICE`

use sluice_client::{Wallet, WalletConfig, WalletError};

#[tokio::main]
async fn main() -> Result<(), WalletError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, node, hub, hub_key, invoice] = args.as_slice() else {
        eprintln!("usage: pay DIR NODE HUB HUB_KEY INVOICE");
        std::process::exit(2);
    };
    let hub_key = sluice_client::Address::parse_text(hub_key)
        .map_err(|e| WalletError::Config(format!("HUB_KEY must be the hub's sl1… address: {e}")))?;
    let wallet = Wallet::open(dir.as_ref(), WalletConfig::new(node, hub, hub_key)).await?;
    println!("wallet {}", wallet.address().to_text());
    wallet.connect().await?;
    if wallet.channels().await?.is_empty() {
        let id = wallet.open_channel(10_000).await?;
        println!("opened channel {id}");
    }
    let secret = wallet.pay(invoice).await?;
    println!("paid; proof of payment {secret}");
    Ok(())
}
