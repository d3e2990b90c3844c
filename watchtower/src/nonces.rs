//! Request nonces carry their time: the first 8 bytes are unix seconds (big-endian), the rest
//! is random. The tower accepts a nonce only within `window` seconds of its own clock, so it has
//! to remember spent nonces for a bounded time only: older ones are refused by their timestamp
//! and can be forgotten. Without this the spent-nonce table would grow with every request
//! forever.

use crate::store::Store;
use sluice_protocol::wire::tower::stamped_nonce;
use sluice_protocol::{Hash32, Keypair};
use std::sync::Arc;
use std::time::Duration;

/// Why a nonce's timestamp was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceTimeError {
    #[error("nonce time {at} is more than {window} s before the tower's clock ({now})")]
    TooOld { at: u64, now: u64, window: u64 },
    #[error("nonce time {at} is more than {window} s after the tower's clock ({now})")]
    TooNew { at: u64, now: u64, window: u64 },
}

/// The unix seconds a nonce claims (the layout is the protocol's, shared with the wallet).
pub use sluice_protocol::wire::tower::nonce_time;

/// Accepts a nonce stamped within `window` seconds of `now`, either way (clocks drift).
pub fn check(nonce: &Hash32, now: u64, window: u64) -> Result<(), NonceTimeError> {
    let at = nonce_time(nonce);
    if at.saturating_add(window) < now {
        return Err(NonceTimeError::TooOld { at, now, window });
    }
    if at > now.saturating_add(window) {
        return Err(NonceTimeError::TooNew { at, now, window });
    }
    Ok(())
}

pub use sluice_home::clock::unix_secs as now_secs;

/// A nonce stamped `at` with 24 random bytes (from the OS generator behind key generation).
pub fn stamped(at: u64) -> Hash32 {
    stamped_nonce(at, &Hash32(Keypair::generate().secret_bytes()))
}

/// A nonce stamped now: what a client sends.
pub fn fresh() -> Hash32 {
    stamped(now_secs())
}

/// Spent nonces are kept for twice the window, so a request admitted just before its nonce
/// aged out is still checked against the table when its batch commits a moment later.
pub fn prune_cutoff(now: u64, window: u64) -> u64 {
    now.saturating_sub(window.saturating_mul(2))
}

/// Forgets spent nonces past [`prune_cutoff`], every quarter window (at least every second).
pub async fn prune_forever(store: Arc<Store>, window: u64) {
    let every = Duration::from_secs((window / 4).max(1));
    loop {
        match store.prune_nonces(prune_cutoff(now_secs(), window)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "forgot spent nonces past the window"),
            Err(e) => tracing::warn!(error = %e, "pruning spent nonces failed; will retry"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_within_the_window_either_way() {
        let now = 1_700_000_000;
        for at in [now, now - 300, now + 300] {
            assert_eq!(check(&stamped(at), now, 300), Ok(()), "at {at}");
        }
        assert_eq!(
            check(&stamped(now - 301), now, 300),
            Err(NonceTimeError::TooOld {
                at: now - 301,
                now,
                window: 300
            })
        );
        assert!(matches!(
            check(&stamped(now + 301), now, 300),
            Err(NonceTimeError::TooNew { .. })
        ));
        // A random nonce claims a time far from now and is refused, never a panic.
        assert!(check(&Hash32([0xff; 32]), now, 300).is_err());
        assert!(check(&Hash32([0; 32]), now, 300).is_err());
    }

    #[test]
    fn stamps_round_trip_and_pruning_keeps_two_windows() {
        assert_eq!(nonce_time(&stamped(42)), 42);
        assert_ne!(stamped(42), stamped(42), "the rest is random");
        assert_eq!(prune_cutoff(1_000, 300), 400);
        assert_eq!(prune_cutoff(100, 300), 0);
    }
}
