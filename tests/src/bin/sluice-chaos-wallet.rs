//! `sluice-chaos-wallet`: one wallet of a kill campaign (`sluice-bench chaos`) as its own
//! process, so the campaign can SIGKILL it. Not a wallet for people: `sluice-wallet` is.

use clap::Parser;
use sluice_tests::chaos::wallet::{self, WalletProcess};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "sluice-chaos-wallet", about = "One wallet of a kill campaign")]
struct Cli {
    /// The wallet's directory (key, store, config), made by the campaign.
    #[arg(long)]
    dir: PathBuf,
    /// The folder the campaign's wallets trade invoices through.
    #[arg(long)]
    market: PathBuf,
    /// This wallet's index among the campaign's wallets.
    #[arg(long)]
    me: usize,
    /// How many wallets the campaign has.
    #[arg(long)]
    peers: usize,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let w = WalletProcess {
        dir: cli.dir,
        market: cli.market,
        me: cli.me,
        peers: cli.peers,
    };
    match wallet::run(w).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos wallet failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
