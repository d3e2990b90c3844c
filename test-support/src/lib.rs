//! Real parts for tests: a throwaway Postgres server started from the installed binaries,
//! supervised daemon processes with captured logs that can be stopped or SIGKILLed, and a whole
//! network (`sluice-node --dev`, `sluice-hub`, `sluice-watchtower` on free loopback ports) for
//! the daemons' tests, the end-to-end suite, the devnet and the benchmarks, and a certificate
//! authority made at test time for TLS.

mod admin;
mod bins;
mod blocks;
mod daemon;
mod daemons;
pub mod hostile;
mod network;
mod postgres;
mod tls;

pub use admin::{AdminReply, HubAdmin};
pub use bins::{binaries, refresh_daemons, Binaries};
pub use blocks::advance_to;
pub use daemon::{bin_path, free_port, free_ports, wait_for_file, Daemon};
pub use daemons::{init_hub, init_tower, start_hub, start_node, start_tower, Process};
pub use network::{HarnessError, HubStore, Network, NetworkOptions, OPERATOR_FUNDS};
pub use postgres::{PostgresOptions, TempPostgres};
pub use tls::{Issued, TestCa};

#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

impl SupportError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SupportError {
        let what = what.into();
        move |source| SupportError::Io { what, source }
    }
}
