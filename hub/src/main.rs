//! `sluice-hub init --home DIR` writes a key and settings; `sluice-hub run --home DIR` runs it.

use clap::{Parser, Subcommand};
use sluice_hub::{keyfile, Hub, HubConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sluice-hub", version, about = "Sluice payment hub")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Creates HOME with a fresh hub key and a default hub.toml.
    Init {
        #[arg(long)]
        home: PathBuf,
        /// Chain node RPC address (host:port) to record in hub.toml.
        #[arg(long)]
        chain_rpc: Option<String>,
        /// Store URL (sqlite://PATH or postgres://…) to record in hub.toml.
        #[arg(long)]
        store_url: Option<String>,
    },
    /// Runs the hub from HOME until SIGINT or SIGTERM.
    Run {
        #[arg(long)]
        home: PathBuf,
        /// Run without a chain node (no collateral, no guard): only for trying the API. A hub
        /// whose `chain_rpc` is empty refuses to start without it.
        #[arg(long)]
        no_chain: bool,
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
    println!("{}", key.address());
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
    tracing::info!("shutting down");
    hub.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let r = match Cli::parse().cmd {
        Cmd::Init {
            home,
            chain_rpc,
            store_url,
        } => init(home, chain_rpc, store_url),
        Cmd::Run { home, no_chain } => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(run(home, no_chain)),
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
