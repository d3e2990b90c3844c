//! The devnet's story, on a hub backed by Postgres: payments both ways, a withdrawal and a
//! collateral reclaim from an open channel, a stale close by the
//! hub's operator defeated by the watchtower, settlement paying the honest side in full.

mod common;

use sluice_tests::devnet::{self, Narrator, STEPS};
use sluice_tests::harness::HubStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_devnet_story_holds_on_postgres() {
    let scratch = tempfile::tempdir().unwrap();
    let mut n = Narrator::new(STEPS);
    let net = devnet::run(&mut n, scratch.path(), HubStore::Postgres).await;
    n.summary();
    let _net = net.unwrap();
    assert!(n.all_held(), "every check of the story must hold");
    assert!(n.checks.len() >= 11);
    for name in [
        "withdrawal",
        "collateral reclaim",
        "Alice's channel conserved",
    ] {
        assert!(
            n.checks.iter().any(|c| c.name == name),
            "the story checks {name}"
        );
    }
}
