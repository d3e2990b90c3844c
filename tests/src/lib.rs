//! The whole system on one machine: benchmarks (`sluice-bench`) measured against ceilings taken
//! in the same run.

pub mod bench;
