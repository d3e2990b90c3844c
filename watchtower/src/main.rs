//! `sluice-watchtower`: init a home, print the tower's address, or run the daemon. Addresses
//! it prints or takes are `sl1…` text (JSON output included): a mistyped one is refused by its
//! checksum rather than paying a key nobody holds.

use clap::{Parser, Subcommand};
use sluice_watchtower::config::{self, Config};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sluice-watchtower",
    version,
    about = "Sluice watchtower daemon"
)]
struct Cli {
    /// How log lines (on stderr) are written.
    #[arg(long, global = true, value_enum, default_value_t)]
    log_format: sluice_home::logging::LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a home with settings and a fresh key; prints the tower's address (`sl1…`), the
    /// key wallets register with (`sluice-wallet watchtower add URL KEY`).
    Init {
        /// Home directory (default: $SLUICE_HOME/watchtower, else ~/.sluice/watchtower).
        #[arg(long, default_value_os_t = sluice_home::dirs::default_home("watchtower"))]
        home: PathBuf,
        #[arg(long, default_value_t = 1)]
        chain_id: u64,
        /// The chain node's JSON-RPC address (host:port).
        #[arg(long)]
        node_rpc: Option<String>,
    },
    /// Print the tower key's address, `sl1…` (fund it so the tower can pay challenge fees).
    Address {
        /// Home directory (default: $SLUICE_HOME/watchtower, else ~/.sluice/watchtower).
        #[arg(long, default_value_os_t = sluice_home::dirs::default_home("watchtower"))]
        home: PathBuf,
        /// Print the hex wire form instead, for what takes hex (the chain's genesis:
        /// `sluice-node init --fund`). It has no checksum: never type it.
        #[arg(long)]
        hex: bool,
        /// Machine-readable JSON output (`address` as text, `hex` as the wire form).
        #[arg(long)]
        json: bool,
    },
    /// The tower account's balance on chain (it pays the challenge fees).
    Balance {
        /// Home directory (default: $SLUICE_HOME/watchtower, else ~/.sluice/watchtower).
        #[arg(long, default_value_os_t = sluice_home::dirs::default_home("watchtower"))]
        home: PathBuf,
        /// Machine-readable JSON output (the address as `sl1…` text).
        #[arg(long)]
        json: bool,
    },
    /// Send funds from the tower's account to another.
    Send {
        /// Home directory (default: $SLUICE_HOME/watchtower, else ~/.sluice/watchtower).
        #[arg(long, default_value_os_t = sluice_home::dirs::default_home("watchtower"))]
        home: PathBuf,
        /// Machine-readable JSON output (the receiver as `sl1…` text).
        #[arg(long)]
        json: bool,
        /// The receiving address, `sl1…`.
        #[arg(value_parser = sluice_home::cli::parse_address_arg)]
        to: sluice_protocol::Address,
        /// Amount in base units (the fee comes on top).
        amount: sluice_protocol::Amount,
    },
    /// Run the daemon.
    Run {
        /// Home directory (default: $SLUICE_HOME/watchtower, else ~/.sluice/watchtower).
        #[arg(long, default_value_os_t = sluice_home::dirs::default_home("watchtower"))]
        home: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sluice_home::logging::init(cli.log_format, "info");
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.cmd {
        Cmd::Init {
            home,
            chain_id,
            node_rpc,
        } => {
            let key = config::init(&home, chain_id, node_rpc.as_deref())?;
            println!("{}", key.address().to_text());
        }
        Cmd::Address { home, hex, json } => {
            let address = Config::load(&home)?.load_key()?.address();
            sluice_home::output::print_address(json, &address, hex);
        }
        Cmd::Balance { home, json } => {
            let cfg = Config::load(&home)?;
            let address = cfg.load_key()?.address();
            let client = sluice_chain_client::ChainClient::new(&cfg.node_rpc);
            let rt = tokio::runtime::Runtime::new()?;
            let balance = rt.block_on(client.account(&address))?.balance;
            let address = address.to_text();
            let value = serde_json::json!({ "address": address, "balance": balance });
            sluice_home::output::print(json, &value, &format!("{balance} (address {address})"));
        }
        Cmd::Send {
            home,
            json,
            to,
            amount,
        } => {
            let cfg = Config::load(&home)?;
            let key = cfg.load_key()?;
            let client = sluice_chain_client::ChainClient::new(&cfg.node_rpc);
            let sender = sluice_chain_client::TxSender::new(client, key, cfg.chain_id, cfg.fee);
            let wait = std::time::Duration::from_secs(30);
            let s = tokio::runtime::Runtime::new()?.block_on(sender.transfer(to, amount, wait))?;
            sluice_home::output::print(json, &serde_json::json!(s), &s.to_string());
        }
        Cmd::Run { home } => {
            let cfg = Config::load(&home)?;
            tokio::runtime::Runtime::new()?.block_on(serve(home, cfg))?;
        }
    }
    Ok(())
}

async fn serve(home: PathBuf, cfg: Config) -> Result<(), Box<dyn std::error::Error>> {
    let mut running = sluice_watchtower::start(&home, cfg).await?;
    let shutdown = running.shutdown_handle();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    if let Some(tx) = shutdown {
        let _ = tx.send(());
    }
    running.wait().await;
    Ok(())
}
