//! `sluice-bench <name>`: runs one benchmark and prints its JSON line.

use clap::{Parser, Subcommand};
use sluice_tests::bench::{chain, crypto};
use std::time::Duration;

#[derive(Parser)]
#[command(
    about = "Sluice benchmarks: one JSON line per benchmark, with the ceiling measured in the same run"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Committed transfers per second on a dev node, against the all-core verify ceiling.
    Chain {
        #[arg(long, default_value_t = 200)]
        senders: u32,
        #[arg(long, default_value_t = 100)]
        per_sender: u64,
        #[arg(long, default_value_t = 200)]
        block_time_ms: u64,
    },
    /// Schnorr sign and verify rates, one core and all cores.
    Crypto {
        /// Seconds to spend on each measurement.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().bench {
        Bench::Chain {
            senders,
            per_sender,
            block_time_ms,
        } => {
            let b = chain::ChainBench {
                senders,
                per_sender,
                block_time_ms,
            };
            return report(chain::run(&b).await);
        }
        Bench::Crypto { seconds } => {
            let r = crypto::measure(Duration::from_secs_f64(seconds.max(0.01)));
            println!("{}", crypto::report(&r));
        }
    }
    std::process::ExitCode::SUCCESS
}

fn report(result: Result<serde_json::Value, String>) -> std::process::ExitCode {
    match result {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
