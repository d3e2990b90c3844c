//! Sluice's protocol core: every rule that two parties (or a party and the chain) must agree on,
//! as pure functions with no I/O. Daemons are thin shells around this crate (DESIGN.md §1).
//!
//! - [`keys`], [`hash`], [`encoding`]: BIP-340 Schnorr keys, tagged hashes, canonical bytes.
//! - [`tx`]: settlement-chain transactions.
//! - [`channel`], [`update`]: off-chain channel state and the update rules (`apply`).
//! - [`session`]: the sans-IO channel session every party drives (versions never reused).
//! - [`onchain`], [`settlement`]: what the chain does with a channel and what it pays out.
//! - [`invoice`]: signed payment requests, their `slinv1…` string and `sluice:` URI.
//! - [`text`]: checksummed bech32m text for what people copy: `sl1…` addresses, invoices.
//! - [`wire`]: JSON messages of the hub session and the watchtower API.

pub mod amount;
pub mod channel;
pub mod encoding;
pub mod hash;
pub mod hex;
pub mod invoice;
pub mod keys;
pub mod onchain;
pub mod routing;
pub mod rpc;
pub mod session;
pub mod settlement;
pub mod text;
pub mod tx;
pub mod update;
pub mod wire;

pub use amount::{Amount, AmountError, MAX_AMOUNT};
pub use channel::{
    channel_id, locks_root, ChannelState, CoSigned, Direction, Lock, Party, Snapshot, StateError,
};
pub use encoding::{Canonical, DecodeError};
pub use hash::{sha256, tagged_hash, Hash32, Tag};
pub use keys::{Address, KeyError, Keypair, Signature};
pub use text::TextError;
pub use tx::{SignedTx, Transaction, TxKind};
pub use update::{
    apply, apply_at, check_proposal, next_version, Change, Context, Policy, Position, UpdateError,
    MAX_VERSION_SKIP,
};

/// Identifies one settlement chain; part of every signed payload so that a signature made for one
/// chain is worthless on another.
pub type ChainId = u64;
/// A block height on the settlement chain.
pub type Height = u64;
