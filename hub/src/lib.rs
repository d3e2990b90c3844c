//! The Sluice payment hub (DESIGN.md §5).

pub mod store;
