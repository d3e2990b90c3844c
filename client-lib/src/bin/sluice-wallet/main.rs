//! `sluice-wallet`: a command-line app on top of the `sluice-client` library.

mod cli;
mod commands;

use clap::Parser;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    let json = cli.global.json;
    if let Err(e) = commands::run(cli).await {
        match json {
            true => println!("{}", serde_json::json!({ "error": e.to_string() })),
            false => eprintln!("error: {e}"),
        }
        std::process::exit(1);
    }
}
