//! `sluice-devnet`: starts a dev chain, a hub and a watchtower as real processes, plays a payment
//! story with two wallets including a stale close that the watchtower defeats, prints a summary
//! table, and exits 0 only if every check held. `--keep-running` leaves the network up.

use clap::Parser;
use sluice_tests::devnet::{self, Narrator, STEPS};
use sluice_tests::harness::HubStore;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sluice-devnet",
    version,
    about = "Run the whole Sluice system on this machine and show it working"
)]
struct Cli {
    /// Leave the network running after the story, and print how to use it.
    #[arg(long)]
    keep_running: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = sluice_tests::harness::refresh_daemons() {
        eprintln!("cannot build the daemons: {e}");
        return ExitCode::FAILURE;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let scratch = match tempfile::Builder::new().prefix("sluice-devnet-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a scratch directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut n = Narrator::new(STEPS);
    let outcome = devnet::run(&mut n, scratch.path(), HubStore::Sqlite).await;
    n.summary();
    let net = match outcome {
        Ok(net) => net,
        Err(e) => {
            eprintln!("\nthe devnet stopped: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !n.all_held() {
        eprintln!("\nsome checks failed; logs are in {}", net.dir().display());
        return ExitCode::FAILURE;
    }
    if cli.keep_running {
        keep_running(&net, scratch.path()).await;
    }
    ExitCode::SUCCESS
}

async fn keep_running(net: &sluice_tests::harness::Network, scratch: &std::path::Path) {
    println!("\nThe network stays up until Ctrl-C. Point sluice-wallet at it:");
    println!("  cargo run --release --bin sluice-wallet -- --dir /tmp/my-wallet init \\");
    println!(
        "      --node {} --hub {} --hub-key {}",
        net.node.addr(),
        net.hub.addr(),
        net.hub_key.to_text()
    );
    println!(
        "  (Alice's wallet, funded at genesis, is in {})",
        scratch.join("alice").display()
    );
    println!("  logs: {}", net.dir().display());
    let _ = tokio::signal::ctrl_c().await;
}
