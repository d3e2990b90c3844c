//! `sluice-hub init --home DIR` writes a key and settings; `sluice-hub run --home DIR` runs it.
//! Addresses it prints or takes are `sl1…` text (JSON output included): a mistyped one is
//! refused by its checksum rather than paying a key nobody holds.

use clap::{Parser, Subcommand};
use sluice_hub::{keyfile, Hub, HubConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sluice-hub", version, about = "Sluice payment hub")]
struct Cli {
    /// How log lines (on stderr) are written.
    #[arg(long, global = true, value_enum, default_value_t)]
    log_format: sluice_home::logging::LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Creates HOME with a fresh hub key and a default hub.toml; prints the hub's address
    /// (`sl1…`), the `--hub-key` its wallets take.
    Init {
        /// Home directory (default: $SLUICE_HOME/hub, else ~/.sluice/hub).
        #[arg(long, default_value_os_t = sluice_home::dirs::default_home("hub"))]
        home: PathBuf,
        /// Chain node RPC address (host:port) to record in hub.toml.
        #[arg(long)]
        chain_rpc: Option<String>,
        /// Store URL (sqlite://PATH or postgres://…) to record in hub.toml.
        #[arg(long)]
        store_url: Option<String>,
    },
    /// The hub's own account on chain (it pays for collateral and the guard's transactions).
    Wallet {
        /// Home directory (default: $SLUICE_HOME/hub, else ~/.sluice/hub).
        #[arg(long, default_value_os_t = sluice_home::dirs::default_home("hub"))]
        home: PathBuf,
        /// Machine-readable JSON output; addresses in it are `sl1…` text, as the arguments take
        /// them.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        cmd: WalletCmd,
    },
    /// Runs the hub from HOME until SIGINT or SIGTERM.
    Run {
        /// Home directory (default: $SLUICE_HOME/hub, else ~/.sluice/hub).
        #[arg(long, default_value_os_t = sluice_home::dirs::default_home("hub"))]
        home: PathBuf,
        /// Run without a chain node (no collateral, no guard): only for trying the API. A hub
        /// whose `chain_rpc` is empty refuses to start without it.
        #[arg(long)]
        no_chain: bool,
    },
}

#[derive(Subcommand)]
enum WalletCmd {
    /// Print the hub's address, `sl1…` (fund it so the hub can put up collateral).
    Address {
        /// Print the hex wire form instead, for what takes hex (the chain's genesis:
        /// `sluice-node init --fund`). It has no checksum: never type it.
        #[arg(long)]
        hex: bool,
    },
    /// The account's balance on chain.
    Balance,
    /// Send funds from the hub's account to another.
    Send {
        /// The receiving address, `sl1…`.
        #[arg(value_parser = sluice_home::cli::parse_address_arg)]
        to: sluice_protocol::Address,
        /// Amount in base units (the fee comes on top).
        amount: sluice_protocol::Amount,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Config(#[from] sluice_hub::config::ConfigError),
    #[error(transparent)]
    Key(#[from] keyfile::KeyFileError),
    #[error(transparent)]
    Start(#[from] sluice_hub::StartError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    AdminToken(#[from] sluice_hub::admin::token::TokenError),
    #[error(transparent)]
    Chain(#[from] sluice_chain_client::ClientError),
    #[error(transparent)]
    Send(#[from] sluice_chain_client::SendError),
    #[error("no chain node configured (chain_rpc is empty): a hub without one can neither fund nor defend its channels; set chain_rpc, or pass --no-chain to run without one anyway")]
    NoChain,
}

fn init(
    home: PathBuf,
    chain_rpc: Option<String>,
    store_url: Option<String>,
) -> Result<(), CliError> {
    std::fs::create_dir_all(&home)?;
    let cfg = HubConfig {
        chain_rpc: chain_rpc.unwrap_or_default(),
        store_url: store_url.unwrap_or_default(),
        ..HubConfig::default()
    };
    let key = keyfile::create(&cfg.key_path(&home))?;
    sluice_hub::admin::token::load_or_create(&cfg.admin_token_path(&home))?;
    cfg.write(&home)?;
    println!("{}", key.address().to_text());
    Ok(())
}

/// `sluice-hub wallet …`: what the hub's key holds and sends on chain.
async fn wallet(home: PathBuf, json: bool, cmd: WalletCmd) -> Result<(), CliError> {
    let cfg = HubConfig::load(&home)?;
    let key = keyfile::load(&cfg.key_path(&home))?;
    let address = key.address();
    if let WalletCmd::Address { hex } = cmd {
        sluice_home::output::print_address(json, &address, hex);
        return Ok(());
    }
    if cfg.chain_rpc.is_empty() {
        return Err(CliError::NoChain);
    }
    let client = sluice_chain_client::ChainClient::new(&cfg.chain_rpc);
    match cmd {
        WalletCmd::Address { .. } => {}
        WalletCmd::Balance => {
            let account = client.account(&address).await?;
            let address = address.to_text();
            let text = format!("{} (address {address})", account.balance);
            let value = serde_json::json!({ "address": address, "balance": account.balance });
            sluice_home::output::print(json, &value, &text);
        }
        WalletCmd::Send { to, amount } => {
            let chain_id = client.chain_info().await?.chain_id;
            let sender = sluice_chain_client::TxSender::new(client, key, chain_id, cfg.tx_fee);
            let s = sender
                .transfer(to, amount, std::time::Duration::from_secs(30))
                .await?;
            sluice_home::output::print(json, &serde_json::json!(s), &s.to_string());
        }
    }
    Ok(())
}

async fn run(home: PathBuf, no_chain: bool) -> Result<(), CliError> {
    let cfg = HubConfig::load(&home)?;
    if cfg.chain_rpc.is_empty() && !no_chain {
        return Err(CliError::NoChain);
    }
    let hub = Hub::start(&home, cfg).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("draining, then shutting down");
    hub.drain().await;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sluice_home::logging::init(cli.log_format, "info");
    let r = match cli.cmd {
        Cmd::Init {
            home,
            chain_rpc,
            store_url,
        } => init(home, chain_rpc, store_url),
        Cmd::Run { home, no_chain } => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(run(home, no_chain)),
            Err(e) => Err(e.into()),
        },
        Cmd::Wallet { home, json, cmd } => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(wallet(home, json, cmd)),
            Err(e) => Err(e.into()),
        },
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-hub: {e}");
            ExitCode::FAILURE
        }
    }
}
