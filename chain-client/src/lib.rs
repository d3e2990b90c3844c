//! A client for a Sluice chain node's JSON-RPC (DESIGN.md §3): typed calls over HTTP, event and
//! head subscriptions over WebSocket, and a [`TxSender`] that signs, numbers and submits
//! transactions for one key, and the one chain [`follower`] of every daemon. Used by the hub, the watchtower, the wallet and the test harness.

pub mod broadcast;
mod client;
mod error;
pub mod follower;
mod sender;
mod subscription;
pub mod transfer;

pub use broadcast::{Broadcaster, Recorder};
pub use client::ChainClient;
pub use error::ClientError;
pub use follower::{follow, Listen};
pub use sender::TxSender;
pub use subscription::{EventStream, HeadStream};
pub use transfer::{SendError, Sent};
