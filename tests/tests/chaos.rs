//! A short kill campaign against real processes: four wallet processes pay each other through a
//! hub on Postgres with a watchtower and a dev node, while thirty SIGKILLs hit one of them (or
//! Postgres) at random moments, each restarted at once. Afterwards every payment is done on both
//! legs or undone on both, nothing is locked or pending, wallets and hub hold the same states,
//! and the books balance to the unit off chain and on. The long run is
//! `sluice-bench chaos --kills 1000`.

use sluice_tests::chaos::{run, Campaign};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_random_kills_lose_nothing_fork_nothing_and_leave_nothing_stuck() {
    let c = Campaign {
        kills: 30,
        wallets: 4,
        seed: 30,
    };
    let r = run(&c).await.expect("the campaign runs to its audit");
    let f = &r.findings;
    assert_eq!(
        (f.lost, f.forked, f.stuck, f.half_done, r.crashed),
        (0, 0, 0, 0, 0),
        "lost, forked, stuck, half done, crashed: {r:?}\n{}",
        f.notes.join("\n")
    );
    assert_eq!(r.killed.values().sum::<usize>(), 30, "{r:?}");
    assert!(f.completed > 0, "payments went through: {r:?}");
}
