//! `sluice-bench <name>`: runs one benchmark and prints its JSON line.

use clap::{Parser, Subcommand};
use sluice_tests::bench::{chain, crypto, hub, watchtower};
use sluice_tests::chaos;
use sluice_tests::harness::HubStore;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "sluice-bench",
    version,
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
        /// Run a Malachite testnet of this many validator processes instead of a dev node.
        #[arg(long, default_value_t = 1)]
        validators: usize,
        /// With validators: transfers per second offered in the sustained phase…
        #[arg(long, default_value_t = 3_000)]
        sustained_rate: u64,
        /// …for this many seconds.
        #[arg(long, default_value_t = 30)]
        sustained_seconds: u64,
    },
    /// Routed invoice payments per second through a hub process, against the signature ceiling.
    Hub {
        /// Payer/payee wallet pairs paying at once.
        #[arg(long, default_value_t = 8)]
        pairs: usize,
        /// Pay for at least this many seconds…
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// …and at least this many payments in all.
        #[arg(long, default_value_t = 10_000)]
        payments: usize,
        /// The hub's store: postgres or sqlite.
        #[arg(long, default_value = "postgres")]
        store: String,
        /// Channels in the hub's store in all: beyond the pairs' own, seeded (Postgres only).
        #[arg(long, default_value_t = 0)]
        channels: usize,
        /// Further clients logged in and idle while the pairs pay.
        #[arg(long, default_value_t = 0)]
        sessions: usize,
        /// Hub processes on the one Postgres; each payer's payee is on the next process.
        #[arg(long, default_value_t = 1)]
        hubs: usize,
    },
    /// Verified appointments per second into a tower process, its reaction to a stale close in
    /// blocks, and its memory with 100,000 channels watched.
    Watchtower {
        #[arg(long, default_value_t = 100)]
        users: usize,
        #[arg(long, default_value_t = 1_000)]
        channels_per_user: usize,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// Exhaustive model check of the channel session machine against a Byzantine peer, a lossy
    /// network, crashes and the chain (the deep bound; `--short` is the one the tests run), and
    /// of the planted old rule, which must be caught.
    Model {
        #[arg(long)]
        short: bool,
    },
    /// A kill campaign: wallets (each a process) pay each other through a hub on Postgres
    /// with a tower and a node, while one process at a time is SIGKILLed at a random moment
    /// and restarted; then the books are audited (lost, forked, stuck, half done).
    Chaos {
        #[arg(long, default_value_t = 1_000)]
        kills: usize,
        #[arg(long, default_value_t = 4)]
        wallets: usize,
        /// Seed of the victims and moments (default: from the clock; printed in the line).
        #[arg(long)]
        seed: Option<u64>,
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
    let cli = Cli::parse();
    // Findings and progress on stderr; the JSON line alone on stdout.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = sluice_tests::harness::refresh_daemons() {
        eprintln!("cannot build the daemons: {e}");
        return std::process::ExitCode::FAILURE;
    }
    match cli.bench {
        Bench::Chain {
            senders,
            per_sender,
            block_time_ms,
            validators,
            sustained_rate,
            sustained_seconds,
        } => {
            let b = chain::ChainBench {
                senders,
                per_sender,
                block_time_ms,
                validators,
                sustained_rate,
                sustained_seconds,
            };
            return report(chain::run(&b).await);
        }
        Bench::Hub {
            pairs,
            seconds,
            payments,
            store,
            channels,
            sessions,
            hubs,
        } => {
            let store = match store.as_str() {
                "postgres" => HubStore::Postgres,
                "sqlite" => HubStore::Sqlite,
                other => {
                    eprintln!("unknown store {other:?}: use postgres or sqlite");
                    return std::process::ExitCode::FAILURE;
                }
            };
            let b = hub::HubBench {
                pairs: pairs.max(1),
                seconds: seconds.max(0.0),
                min_payments: payments,
                store,
                channels,
                sessions,
                hubs: hubs.max(1),
            };
            return report(hub::run(&b).await);
        }
        Bench::Watchtower {
            users,
            channels_per_user,
            connections,
        } => {
            let b = watchtower::TowerBench {
                users: users.max(1),
                channels_per_user: channels_per_user.max(1),
                connections: connections.max(1),
                ..watchtower::TowerBench::default()
            };
            return report(watchtower::run(&b).await);
        }
        Bench::Model { short } => {
            let depth = match short {
                true => sluice_model::Depth::Short,
                false => sluice_model::Depth::Deep,
            };
            // Printed from the report itself, so the fields keep their documented order.
            let r = tokio::task::spawn_blocking(move || sluice_model::run(depth)).await;
            match r.map(|r| serde_json::to_string(&r)) {
                Ok(Ok(line)) => println!("{line}"),
                Ok(Err(e)) => return report(Err(e.to_string())),
                Err(e) => return report(Err(e.to_string())),
            }
        }
        Bench::Chaos {
            kills,
            wallets,
            seed,
        } => {
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
            let c = chaos::Campaign {
                kills,
                wallets,
                seed,
            };
            // Printed from the report itself, so the fields keep their documented order.
            match chaos::run(&c)
                .await
                .and_then(|r| serde_json::to_string(&r).map_err(|e| e.to_string()))
            {
                Ok(line) => println!("{line}"),
                Err(e) => return report(Err(e)),
            }
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
