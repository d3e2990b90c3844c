//! The Sluice payment hub (DESIGN.md §5): WebSocket sessions for clients, HTLC payment routing,
//! collateral policy and a chain guard for its own channels, a Postgres/SQLite store, an admin
//! API and metrics on a listener of their own. [`Hub::start`] runs one in-process (the `sluice-hub` binary, tests and
//! benchmarks all use it).

pub mod admin;
pub mod chain;
pub mod config;
pub mod drain;
pub use sluice_home::keyfile;
pub mod metrics;
pub mod payments;
pub mod registry;
pub mod server;
pub mod session;
pub mod shared;
pub mod store;
pub mod updater;

pub use config::HubConfig;
pub use server::{Hub, StartError};
