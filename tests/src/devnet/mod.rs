//! `sluice-devnet`: the whole product on one machine, told as a story. A dev chain, a hub on
//! SQLite and a watchtower start as real processes; Alice and Bob open channels and pay each
//! other; Alice takes money out of her open channel and the hub takes back the collateral that
//! sits idle in it; then Bob goes offline and the hub's operator turns dishonest, closing Bob's channel
//! with an old state. Bob's watchtower challenges, and settlement pays Bob in full.

mod narrator;
pub mod steps;

pub use narrator::Narrator;

use crate::harness::{HarnessError, HubStore, Network, NetworkOptions};
use sluice_chain_client::ClientError;
use sluice_client::{keyfile, WalletError};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::{Amount, TxKind};
use steps::Person;

/// How many steps the story has (for the progress display).
pub const STEPS: usize = 9;
const DEPOSIT: Amount = 100_000;
const GENESIS_FUNDS: Amount = 1_000_000;
/// The hub reclaims its side of a channel above this once idle for [`RECLAIM_IDLE_SECS`].
const RECLAIM_ABOVE: Amount = 120_000;
const RECLAIM_IDLE_SECS: u64 = 2;
/// What Alice takes out of her open channel.
const WITHDRAWAL: Amount = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error("wallet: {0}")]
    Wallet(#[from] WalletError),
    #[error("chain: {0}")]
    Chain(#[from] ClientError),
    #[error("{0}")]
    Story(String),
}

pub type Result<T> = std::result::Result<T, DevnetError>;

/// Runs the story, recording every check in `n`; returns the network, still running.
pub async fn run(
    n: &mut Narrator,
    scratch: &std::path::Path,
    hub_store: HubStore,
) -> Result<Network> {
    n.step(&format!(
        "Starting a one-validator dev chain, a hub on {hub_store:?} and a watchtower"
    ));
    for who in ["alice", "bob"] {
        std::fs::create_dir_all(scratch.join(who))
            .map_err(|e| DevnetError::Story(format!("create wallet directory: {e}")))?;
    }
    let alice_key =
        keyfile::load_or_create(&scratch.join("alice").join(sluice_client::config::KEY_FILE))?;
    let bob_key =
        keyfile::load_or_create(&scratch.join("bob").join(sluice_client::config::KEY_FILE))?;
    let opts = NetworkOptions {
        fund: vec![
            (alice_key.address(), GENESIS_FUNDS),
            (bob_key.address(), GENESIS_FUNDS),
        ],
        hub_store,
        hub_reclaim: Some((RECLAIM_ABOVE, RECLAIM_IDLE_SECS)),
        ..NetworkOptions::default()
    };
    let mut net = Network::start(opts)?;
    match play(n, scratch, &mut net).await {
        Ok(()) => Ok(net),
        Err(e) => Err(DevnetError::Story(format!("{e}{}", net.obituaries()))),
    }
}

/// The story proper, on a running network.
async fn play(n: &mut Narrator, scratch: &std::path::Path, net: &mut Network) -> Result<()> {
    n.say(&format!("chain node   http://{}", net.node.addr()));
    n.say(&format!(
        "hub          ws://{}/ws (key {})",
        net.hub.addr(),
        net.hub_key.to_text()
    ));
    if let Some(t) = &net.tower {
        n.say(&format!("watchtower   {}", t.url()));
    }

    n.step("Alice and Bob open wallets, connect to the hub and open channels");
    let alice = Person::open(net, "Alice", &scratch.join("alice"), DEPOSIT).await?;
    let bob = Person::open(net, "Bob", &scratch.join("bob"), DEPOSIT).await?;
    steps::wait_for_collateral(net, &[&alice, &bob]).await?;
    n.say("the hub has deposited collateral on its side of both channels");
    if let (Some(t), Some(key)) = (&net.tower, net.tower_key) {
        bob.wallet.add_watchtower(&t.url(), &key).await?;
        n.say("Bob registered with the watchtower: each new state of his channel goes to it");
    }

    n.step("Alice pays Bob 20,000; Bob's state at this point will be replayed later");
    steps::pay(n, &alice, &bob, 20_000).await?;
    let old = bob.snapshot().await?;
    n.say(&format!(
        "Bob's channel is at version {}",
        old.state().version
    ));

    n.step("More payments both ways: Alice pays Bob 30,000, Bob pays Alice 5,000");
    steps::pay(n, &alice, &bob, 30_000).await?;
    steps::pay(n, &bob, &alice, 5_000).await?;
    for p in [&alice, &bob] {
        let b = p.balance().await?;
        n.say(&format!("{:<5} can spend {b:>7} in the channel", p.name));
    }
    let bob_due = bob.balance().await?;
    let fee = RoutingTerms::default()
        .fee(5_000)
        .map_err(|e| DevnetError::Story(e.to_string()))?;
    n.check(
        "channel balances",
        bob_due == DEPOSIT + 50_000 - 5_000 - fee,
        format!("Bob has {DEPOSIT} + 50000 − 5000 − {fee} (hub fee) = {bob_due}"),
    );

    money_out(n, &alice).await?;

    n.step("Bob goes offline; the hub's operator turns dishonest and closes with the old state");
    let newest = bob.snapshot().await?;
    steps::wait_for_receipt(&bob, newest.state().version).await?;
    n.say(&format!(
        "the watchtower holds Bob's version {}",
        newest.state().version
    ));
    let bob_account = bob.account().await?;
    let (bob_channel, bob_address) = (bob.channel, bob.wallet.address());
    drop(bob);
    net.hub.stop();
    let rogue = steps::hub_key_sender(net).await?;
    let close = TxKind::Close {
        cosigned: old.cosigned,
        locks: old.locks.clone(),
    };
    let closed = rogue.send(close, steps::WAIT).await?;
    n.say(&format!(
        "Bob's wallet is shut; the hub's key closed his channel at height {} with version {} (newest: {})",
        closed.height,
        old.state().version,
        newest.state().version
    ));

    n.step("The watchtower sees the stale close and challenges it with Bob's newest state");
    let version = steps::wait_for_challenge(net, &bob_channel, closed.height).await?;
    n.check(
        "stale close defeated",
        version == newest.state().version,
        format!("challenged with version {version}"),
    );

    n.step("The challenge window passes; the channel is settled");
    let (to_bob, _) = steps::settle(&rogue, &bob_channel).await?;
    n.check(
        "Bob paid in full",
        to_bob == bob_due,
        format!("settlement paid Bob {to_bob} of {bob_due}"),
    );
    let after = rogue.client().account(&bob_address).await?.balance;
    n.check(
        "Bob's account credited",
        after == bob_account + to_bob,
        format!("{bob_account} → {after}"),
    );

    n.step("The hub comes back; Alice closes her channel cooperatively");
    net.hub.restart()?;
    let alice_due = alice.balance().await?;
    let (to_alice, to_hub) = alice.close_cooperatively().await?;
    n.check(
        "cooperative close",
        to_alice == alice_due,
        format!("Alice got {to_alice}, her channel balance was {alice_due}"),
    );
    let rec = steps::record(net, &alice.channel).await?;
    let out = to_alice + to_hub + rec.withdrawn.a + rec.withdrawn.b;
    n.check(
        "Alice's channel conserved",
        out == rec.deposit_a + rec.deposit_b,
        format!(
            "payouts {to_alice} + {to_hub} and withdrawals {} + {} = deposits {} + {}",
            rec.withdrawn.a, rec.withdrawn.b, rec.deposit_a, rec.deposit_b
        ),
    );
    Ok(())
}

/// Money out of an open channel: Alice withdraws, and the hub reclaims its collateral that sits
/// idle above the threshold in her channel (she paid more than she received).
async fn money_out(n: &mut Narrator, alice: &Person) -> Result<()> {
    n.step(&format!(
        "Alice takes {WITHDRAWAL} out of her open channel; the hub takes back idle collateral"
    ));
    let (before, account) = (alice.balance().await?, alice.account().await?);
    let w = alice.wallet.withdraw(&alice.channel, WITHDRAWAL).await?;
    let after = alice.account().await?;
    n.check(
        "withdrawal",
        w.balance_left == before - WITHDRAWAL && after + 1 == account + WITHDRAWAL,
        format!(
            "channel {before} → {}, account {account} → {after} (fee 1), channel still open",
            w.balance_left
        ),
    );
    let (reclaimed, hub_side) = steps::wait_for_reclaim(alice).await?;
    n.check(
        "collateral reclaim",
        hub_side == NetworkOptions::default().hub_collateral.1,
        format!(
            "the hub withdrew {reclaimed} idle for {RECLAIM_IDLE_SECS} s above {RECLAIM_ABOVE}; \
             its side is back to {hub_side}"
        ),
    );
    Ok(())
}
