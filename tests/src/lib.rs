//! The whole system on one machine: the process harness, the devnet story (`sluice-devnet`) and
//! benchmarks (`sluice-bench`) measured against ceilings taken in the same run.

pub mod bench;
pub mod devnet;
pub mod harness;
