//! The collateral policy and channel rows the collateral and reclaim tests share.

use crate::config::CollateralPolicy;
use crate::store::{ChannelPhase, ChannelRow};
use sluice_protocol::{Address, Amount, Hash32, Snapshot};

/// Deposit below 500 up to 1,000; clients need 100 at stake; reclaim above 3,000 idle 60 s.
pub fn policy() -> CollateralPolicy {
    CollateralPolicy {
        threshold: 500,
        target: 1_000,
        min_client_deposit: 100,
        retry_secs: 1,
        reclaim_threshold: 3_000,
        reclaim_idle_secs: 60,
    }
}

/// An open channel at its opening state, last changed at `updated_at`.
pub fn row(deposit_a: Amount, deposit_b: Amount, updated_at: u64) -> ChannelRow {
    let id = Hash32([1; 32]);
    ChannelRow {
        id,
        client: Address([2; 32]),
        deposit_a,
        deposit_b,
        challenge_period: 40,
        phase: ChannelPhase::Open,
        snapshot: Snapshot::opening(1, id),
        pending: None,
        floor: 0,
        updated_at,
    }
}
