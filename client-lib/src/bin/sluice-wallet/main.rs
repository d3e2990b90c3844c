//! `sluice-wallet`: a command-line app on top of the `sluice-client` library.

mod cli;
mod commands;
mod error;
mod invoices;

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = cli::Cli::parse();
    sluice_home::logging::init(cli.global.log_format, "warn");
    let json = cli.global.json;
    if let Err(e) = commands::run(cli).await {
        match json {
            true => println!("{}", serde_json::json!({ "error": e.to_string() })),
            false => eprintln!("error: {e}"),
        }
        std::process::exit(1);
    }
}
