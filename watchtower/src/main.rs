//! `sluice-watchtower`: init a home, print the tower's address, or run the daemon.

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
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a home with settings and a fresh key.
    Init {
        #[arg(long)]
        home: PathBuf,
        #[arg(long, default_value_t = 1)]
        chain_id: u64,
        /// The chain node's JSON-RPC address (host:port).
        #[arg(long)]
        node_rpc: Option<String>,
    },
    /// Print the tower key's address (fund it so the tower can pay challenge fees).
    Address {
        #[arg(long)]
        home: PathBuf,
    },
    /// Run the daemon.
    Run {
        #[arg(long)]
        home: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Cli::parse()) {
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
            println!("{}", key.address());
        }
        Cmd::Address { home } => println!("{}", Config::load(&home)?.load_key()?.address()),
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
