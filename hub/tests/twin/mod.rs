//! The chain tests' fixtures: the test wallet of `sluice_test_support::hostile` (honest unless
//! told otherwise) with sessions to one or several hub processes, channels opened on chain with
//! the tests' deposit, and a wait on the hub's own store for its collateral.

#![allow(dead_code, unused_imports)]

pub use sluice_test_support::hostile::chain::sender;
pub use sluice_test_support::hostile::Wallet as Twin;

use sluice_protocol::{Address, Hash32};
use sluice_test_support::hostile::chain::{self, Opening};
use std::time::Duration;

/// Both sides' deposit in the chain tests: the client's opening deposit and the hub's target.
pub const DEPOSIT: u64 = 100_000;

/// Opens a channel from `key` toward the hub on chain with `salt`; returns its id.
pub async fn open_with_salt(
    node: &str,
    key: &sluice_protocol::Keypair,
    hub: &Address,
    salt: Hash32,
) -> Hash32 {
    let o = Opening {
        salt,
        ..Opening::new(DEPOSIT)
    };
    chain::open(node, key, hub, o).await
}

/// Opens a channel from `key` toward the hub on chain; returns its id.
pub async fn open_on_chain(node: &str, key: &sluice_protocol::Keypair, hub: &Address) -> Hash32 {
    chain::open(node, key, hub, Opening::new(DEPOSIT)).await
}

/// Waits until the hub learned the channel and its collateral deposit landed.
pub async fn wait_funded(store: &sluice_hub::store::Store, id: &Hash32) -> (u64, u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(r)) = store.channel(id).await {
            if r.deposit_b >= DEPOSIT {
                return (r.deposit_a, r.deposit_b);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "channel {id} never funded by the hub"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
