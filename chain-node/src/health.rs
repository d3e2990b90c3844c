//! Whether the node can do its job, decided from observations taken by the caller.
//!
//! [`assess`] is pure: `GET /health` gathers a [`Observed`] (the clock read once, the mempool's
//! oldest executable transaction, the last commit, what peers have shown of their height) and
//! answers 503 with the [`Unhealthy`] reason when it returns one.
//!
//! - **Stalled.** A transaction that could execute has waited longer than the bound, and no
//!   block was committed in that time either. A dev chain with no traffic makes no blocks and is
//!   healthy: an empty mempool never stalls. A busy chain that commits blocks but has not reached
//!   a low-fee transaction yet is advancing, so the wait counts from the later of the
//!   transaction's arrival and the last commit.
//! - **Behind.** Peers have shown (by proposing or serving blocks) a height more than the bound
//!   above our tip: the node is still syncing and what it serves is stale.

use serde::Serialize;

/// The bounds a healthy node stays within (from the node's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Longest an executable transaction may wait with no block committed.
    pub max_stall_ms: u64,
    /// Most blocks the tip may trail the highest height peers have shown.
    pub max_lag_blocks: u64,
}

/// What the caller saw, all times in Unix milliseconds of one clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    pub now_ms: u64,
    /// Arrival of the oldest pending transaction that could execute now (none if none waits).
    pub oldest_pending_ms: Option<u64>,
    /// When this process last committed a block (none since start).
    pub last_commit_ms: Option<u64>,
    pub tip_height: u64,
    /// The highest committed height a peer has shown us (none without peers).
    pub peer_height: Option<u64>,
}

/// Why the node cannot do its job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Unhealthy {
    #[error("not advancing: a transaction has waited {waited_ms} ms without a block (bound {max_stall_ms} ms)")]
    Stalled { waited_ms: u64, max_stall_ms: u64 },
    #[error("not synced: tip {tip_height} is {lag} blocks behind peers at {peer_height} (bound {max_lag_blocks})")]
    Behind {
        tip_height: u64,
        peer_height: u64,
        lag: u64,
        max_lag_blocks: u64,
    },
}

impl Unhealthy {
    /// A short stable name for the reason (`stalled`, `behind`).
    pub fn code(&self) -> &'static str {
        match self {
            Unhealthy::Stalled { .. } => "stalled",
            Unhealthy::Behind { .. } => "behind",
        }
    }
}

/// The verdict on `seen` under `bounds`: `Ok` when healthy, else the first reason found
/// (being behind comes first: a syncing node also stalls, and syncing is the cause).
pub fn assess(seen: &Observed, bounds: &Bounds) -> Result<(), Unhealthy> {
    if let Some(peer_height) = seen.peer_height {
        let lag = peer_height.saturating_sub(seen.tip_height);
        if lag > bounds.max_lag_blocks {
            return Err(Unhealthy::Behind {
                tip_height: seen.tip_height,
                peer_height,
                lag,
                max_lag_blocks: bounds.max_lag_blocks,
            });
        }
    }
    if let Some(arrived) = seen.oldest_pending_ms {
        let since = seen.last_commit_ms.map_or(arrived, |c| c.max(arrived));
        let waited_ms = seen.now_ms.saturating_sub(since);
        if waited_ms > bounds.max_stall_ms {
            return Err(Unhealthy::Stalled {
                waited_ms,
                max_stall_ms: bounds.max_stall_ms,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        max_stall_ms: 1_000,
        max_lag_blocks: 2,
    };

    fn at(now_ms: u64) -> Observed {
        Observed {
            now_ms,
            tip_height: 10,
            ..Observed::default()
        }
    }

    #[test]
    fn an_idle_chain_without_blocks_is_healthy() {
        let seen = Observed {
            last_commit_ms: None,
            ..at(1_000_000)
        };
        assert_eq!(assess(&seen, &BOUNDS), Ok(()));
    }

    #[test]
    fn a_transaction_waiting_past_the_bound_without_a_block_is_a_stall() {
        let seen = Observed {
            oldest_pending_ms: Some(5_000),
            last_commit_ms: Some(1_000),
            ..at(6_001)
        };
        assert_eq!(
            assess(&seen, &BOUNDS),
            Err(Unhealthy::Stalled {
                waited_ms: 1_001,
                max_stall_ms: 1_000
            })
        );
    }

    #[test]
    fn a_wait_exactly_at_the_bound_is_still_healthy() {
        let seen = Observed {
            oldest_pending_ms: Some(5_000),
            ..at(6_000)
        };
        assert_eq!(assess(&seen, &BOUNDS), Ok(()));
    }

    #[test]
    fn a_recent_block_means_the_chain_advances_even_if_an_old_transaction_waits() {
        let seen = Observed {
            oldest_pending_ms: Some(1_000),
            last_commit_ms: Some(9_500),
            ..at(10_000)
        };
        assert_eq!(assess(&seen, &BOUNDS), Ok(()));
    }

    #[test]
    fn a_clock_that_steps_back_is_not_a_stall() {
        let seen = Observed {
            oldest_pending_ms: Some(9_000),
            ..at(1_000)
        };
        assert_eq!(assess(&seen, &BOUNDS), Ok(()));
    }

    #[test]
    fn a_tip_more_than_the_bound_below_peers_is_behind() {
        let seen = Observed {
            peer_height: Some(13),
            ..at(0)
        };
        assert_eq!(
            assess(&seen, &BOUNDS),
            Err(Unhealthy::Behind {
                tip_height: 10,
                peer_height: 13,
                lag: 3,
                max_lag_blocks: 2
            })
        );
    }

    #[test]
    fn a_tip_within_the_bound_or_ahead_of_peers_is_synced() {
        for peer in [8, 10, 12] {
            let seen = Observed {
                peer_height: Some(peer),
                ..at(0)
            };
            assert_eq!(assess(&seen, &BOUNDS), Ok(()), "peer at {peer}");
        }
    }

    #[test]
    fn being_behind_is_reported_before_the_stall_it_causes() {
        let seen = Observed {
            oldest_pending_ms: Some(0),
            peer_height: Some(100),
            ..at(50_000)
        };
        assert_eq!(assess(&seen, &BOUNDS).map_err(|e| e.code()), Err("behind"));
    }

    #[test]
    fn the_reason_serialises_with_its_name() {
        let e = Unhealthy::Stalled {
            waited_ms: 2,
            max_stall_ms: 1,
        };
        let v = serde_json::to_value(&e).expect("serialises");
        assert_eq!(v["reason"], "stalled");
        assert_eq!(v["waited_ms"], 2);
    }
}
