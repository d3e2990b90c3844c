//! The Sluice watchtower (DESIGN.md §6): users register and hand over the latest co-signed state
//! of their channels; the tower stores it before signing a receipt, follows the chain from its
//! last processed height, and challenges any close with an older version inside the window.
//!
//! Rooms: [`api`] (HTTP), [`tower`] (request logic), [`ingest`] (group commit), [`store`],
//! [`chain_monitor`], [`responder`], [`config`], [`metrics`], [`daemon`] (wiring).

pub mod api;
pub mod chain_monitor;
pub mod chain_view;
pub mod config;
pub mod daemon;
pub mod error;
#[cfg(any(test, feature = "test-fixtures"))]
pub mod fixtures;
pub mod ingest;
pub mod metrics;
pub mod nonces;
pub mod responder;
pub mod store;
pub mod submitter;
pub mod tower;

pub use chain_view::Health;
pub use config::Config;
pub use daemon::{start, Running, StartError};
pub use error::ApiError;
pub use tower::{Policy, Registered, Tower};
