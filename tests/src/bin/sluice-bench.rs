//! `sluice-bench <name>`: runs one benchmark and prints its JSON line.

use clap::{Parser, Subcommand};
use sluice_tests::bench::crypto;
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
    /// Schnorr sign and verify rates, one core and all cores.
    Crypto {
        /// Seconds to spend on each measurement.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
    },
}

fn main() {
    match Cli::parse().bench {
        Bench::Crypto { seconds } => {
            let r = crypto::measure(Duration::from_secs_f64(seconds.max(0.01)));
            println!("{}", crypto::report(&r));
        }
    }
}
