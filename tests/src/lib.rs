//! The whole system on one machine: the process harness, the devnet story (`sluice-devnet`) and
//! benchmarks (`sluice-bench`) measured against ceilings taken in the same run.

pub mod bench;
pub mod chaos;
pub mod devnet;

/// The process harness lives in `sluice-test-support` so daemons' own tests can use it too.
pub use sluice_test_support as harness;
