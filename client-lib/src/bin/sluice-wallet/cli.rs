//! Command-line arguments.

use clap::{Args, Parser, Subcommand};
use sluice_home::cli::parse_address_arg;
use sluice_protocol::{Address, Amount, Hash32};
use std::path::PathBuf;

/// A Sluice wallet: channels with a hub, invoices, payments.
///
/// Addresses are checksummed `sl1…` text, in arguments, in what is printed (JSON included) and
/// in `wallet.toml`: a mistyped address is refused by its checksum instead of paying a key
/// nobody holds. Hex, which has no checksum, is refused.
#[derive(Debug, Parser)]
#[command(name = "sluice-wallet", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Wallet directory: key, database, config (default: $SLUICE_HOME/wallet, else
    /// ~/.sluice/wallet).
    #[arg(
        long,
        alias = "home",
        global = true,
        default_value_os_t = sluice_home::dirs::default_home("wallet")
    )]
    pub dir: PathBuf,
    /// How log lines (on stderr) are written.
    #[arg(long, global = true, value_enum, default_value_t)]
    pub log_format: sluice_home::logging::LogFormat,
    /// Chain node RPC address (overrides the config).
    #[arg(long, global = true)]
    pub node: Option<String>,
    /// Hub address (overrides the config).
    #[arg(long, global = true)]
    pub hub: Option<String>,
    /// Hub public key, `sl1…` (overrides the config).
    #[arg(long, global = true, value_parser = parse_address_arg)]
    pub hub_key: Option<Address>,
    /// PEM file of a CA to trust for a `wss://` hub and an `https://` node, besides the webpki
    /// roots (overrides the config's `ca_file`).
    #[arg(long, global = true)]
    pub ca_file: Option<String>,
    /// Machine-readable JSON output, one object per line; addresses in it are `sl1…` text, as
    /// the arguments take them.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the wallet key and config (needs --node, --hub and --hub-key).
    Init,
    /// Show this wallet's address (`sl1…`).
    Address {
        /// Print the hex wire form instead, for what takes hex (the chain's genesis:
        /// `sluice-node init --fund`). It has no checksum: never type it.
        #[arg(long)]
        hex: bool,
    },
    /// On-chain and channel balances.
    Balance,
    /// Open a channel with the hub.
    Open {
        /// Deposit in base units.
        deposit: Amount,
    },
    /// Top up a channel.
    Deposit {
        /// Channel id.
        channel: Hash32,
        /// Amount in base units.
        amount: Amount,
    },
    /// Take part of a channel's balance out to the wallet's account, keeping the channel open
    /// (co-signed with the hub, then paid on chain; the fee comes from the account).
    Withdraw {
        /// Channel id.
        channel: Hash32,
        /// Amount in base units.
        amount: Amount,
    },
    /// Create an invoice to be paid.
    Invoice {
        /// Amount in base units.
        amount: Amount,
        /// Free text shown to the payer.
        #[arg(long, default_value = "")]
        memo: String,
        /// Validity in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Also print the payment URI as a QR code for a phone to scan (drawn for a dark
        /// terminal; with --json, the drawing is the `qr` field).
        #[arg(long)]
        qr: bool,
    },
    /// Show every field of an invoice (a `slinv1…` string or a `sluice:` URI), whether its
    /// payee signed it and, given a wallet config, whether this wallet could pay it. Needs no
    /// node or hub; a string with a wrong checksum or prefix is refused.
    Decode {
        /// The invoice or payment URI.
        invoice: String,
    },
    /// Pay an invoice; prints the secret (proof of payment).
    Pay {
        /// The `slinv1…` invoice.
        invoice: String,
        /// Refuse to pay if the hub's fee is above this (the fee is printed either way).
        #[arg(long)]
        max_fee: Option<u64>,
    },
    /// List payments.
    Payments,
    /// Close a channel cooperatively with the hub.
    Close {
        /// Channel id.
        channel: Hash32,
    },
    /// Close a channel on chain with the latest co-signed state (no hub needed).
    ForceClose {
        /// Channel id.
        channel: Hash32,
    },
    /// Pay out a closed channel after its challenge window.
    Settle {
        /// Channel id.
        channel: Hash32,
    },
    /// Send funds from the wallet's account on chain (not through a channel).
    Send {
        /// The receiving address, `sl1…`.
        #[arg(value_parser = parse_address_arg)]
        to: Address,
        /// Amount in base units (the fee comes on top).
        amount: Amount,
    },
    /// Watchtowers.
    #[command(subcommand)]
    Watchtower(TowerCommand),
    /// Stay online: receive payments, resolve in-flight ones, watch the chain.
    Run {
        /// Exit after this many seconds (default: until interrupted).
        #[arg(long)]
        for_secs: Option<u64>,
    },
}

/// Watchtower subcommands.
#[derive(Debug, Subcommand)]
pub enum TowerCommand {
    /// Register with a tower.
    Add {
        /// Tower URL, e.g. 127.0.0.1:7100.
        url: String,
        /// Tower public key, `sl1…` (what `sluice-watchtower address` prints).
        #[arg(value_parser = parse_address_arg)]
        key: Address,
    },
    /// List towers and their receipts.
    List,
}
