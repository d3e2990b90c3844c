//! `sluice-client`: the embeddable Sluice wallet (DESIGN.md §7).
//!
//! A payment app opens a [`Wallet`] in a directory (key file, SQLite store, config), connects
//! it to a hub, opens a channel, and then creates and pays invoices. The wallet protects itself
//! rather than trusting the hub: every state the hub proposes is recomputed with the protocol's
//! `check_proposal` and refused if it differs; nothing is signed or acknowledged before it is
//! committed to the store; the chain is followed so that a stale close is challenged and an
//! incoming payment the hub stalls is claimed on chain.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sluice_client::WalletError> {
//! use sluice_client::{Wallet, WalletConfig};
//! let hub_key = "…".parse().map_err(|_| sluice_client::WalletError::Config("hub key".into()))?;
//! let config = WalletConfig::new("127.0.0.1:26657", "127.0.0.1:7000", hub_key);
//! let wallet = Wallet::open(std::path::Path::new("wallet"), config).await?;
//! wallet.connect().await?;
//! let channel = wallet.open_channel(10_000).await?;
//! let proof = wallet.pay("slinv1…").await?;
//! # let _ = (channel, proof); Ok(()) }
//! ```

#![warn(missing_docs)]

mod chain;
pub mod config;
mod core;
pub mod error;
pub mod events;
mod follower;
mod guard;
pub mod keyfile;
mod onchain;
mod session;
pub mod store;
pub mod towers;
mod wallet;
mod withdraw;

pub use config::WalletConfig;
pub use error::{Result, WalletError};
pub use events::WalletEvent;
pub use wallet::{Balances, ChannelInfo, CreatedInvoice, Wallet};
pub use withdraw::Withdrawal;
