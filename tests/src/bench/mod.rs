//! Benchmarks. Each prints one JSON line with its figure, the ceiling measured in the same run,
//! and their ratio, so a number is always read against what this machine can do.

pub mod chain;
pub mod crypto;
pub mod hub;
pub mod process;
pub mod watchtower;
