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
//! let hub_key = sluice_client::Address::parse_text("sl1…")
//!     .map_err(|e| sluice_client::WalletError::Config(e.to_string()))?;
//! let config = WalletConfig::new("127.0.0.1:26657", "127.0.0.1:7000", hub_key);
//! let wallet = Wallet::open(std::path::Path::new("wallet"), config).await?;
//! wallet.connect().await?;
//! let channel = wallet.open_channel(10_000).await?;
//! let proof = wallet.pay("slinv1…").await?;
//! # let _ = (channel, proof); Ok(()) }
//! ```
//!
//! An app that must not miss anything across its own restarts keeps a cursor into the wallet's
//! event log and a payment's hashlock rather than a live channel or a blocked call: events are
//! stored before they are announced ([`Wallet::events_since`], [`Wallet::subscribe_from`]),
//! and a payment is followed by a [`PayHandle`] that [`Wallet::payment_handle`] finds again.
//!
//! ```no_run
//! # async fn demo(wallet: sluice_client::Wallet, cursor: u64) -> sluice_client::Result<()> {
//! let mut events = wallet.subscribe_from(cursor);
//! let payment = wallet.pay_handle("slinv1…").await?;
//! let proof = payment.wait(std::time::Duration::from_secs(30)).await?;
//! let next = events.next().await?; // everything after `cursor`, then live, exactly once
//! # let _ = (proof, next); Ok(()) }
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
mod pay_handle;
mod session;
pub mod store;
pub mod towers;
mod wallet;
mod withdraw;

pub use config::WalletConfig;
pub use error::{Result, WalletError};
pub use events::{EventStream, StoredEvent, WalletEvent};
pub use pay_handle::{PayHandle, PayStatus};
pub use wallet::{Balances, ChannelInfo, CreatedInvoice, Wallet};
pub use withdraw::Withdrawal;

// The types the wallet's API speaks, re-exported so that an app depends on this crate alone
// (and always on the versions the wallet was built with). The rest of the protocol (the
// fields of a `Snapshot`, for instance) is under `protocol`.
pub use sluice_chain_client::{ClientError, SendError, Sent};
pub use sluice_home::tls::TlsError;
pub use sluice_protocol as protocol;
pub use sluice_protocol::invoice::{Invoice, InvoiceError, SignedInvoice};
pub use sluice_protocol::routing::{TermsCaps, TermsRefusal};
pub use sluice_protocol::session::{Refusal, Signed};
pub use sluice_protocol::wire::hub::ErrorCode;
pub use sluice_protocol::wire::tower::{Appointment, Receipt};
pub use sluice_protocol::{
    Address, Amount, ChainId, Hash32, Height, Keypair, Position, Snapshot, StateError, TextError,
    UpdateError,
};
