//! The Sluice settlement chain node (DESIGN.md §3): a thin I/O shell around the protocol crate.
//!
//! - [`ledger`]: the fjall store; one block is one atomic batch and one durable sync.
//! - [`state`]: the state a block reads and writes, and the state-root commitment over it.
//! - [`execution`]: deterministic execution of a block's transactions with the protocol rules.
//! - [`mempool`]: admission, ordering, replace-by-fee and eviction of pending transactions.
//! - [`chain`]: the node core tying ledger, mempool and notifications together.
//! - [`producer`]: the block-production seam; [`producer::DevProducer`] seals on a timer.
//! - [`consensus`]: Malachite BFT among the genesis validators (proposal, re-execution, sync).
//! - [`rpc`]: JSON-RPC 2.0 over HTTP and WebSocket, with subscriptions.
//! - [`health`]: whether the node can do its job (advancing, synced), as `/health` reports.
//! - [`replay`]: re-executes the committed chain from genesis and compares it with the ledger.

pub mod block;
pub mod chain;
pub mod config;
pub mod consensus;
pub mod execution;
pub mod genesis;
pub mod health;
pub mod ledger;
pub mod mempool;
pub mod metrics;
pub mod producer;
pub mod relay;
pub mod replay;
pub mod rpc;
pub mod sigverify;
pub mod state;
