//! Shared moves of the end-to-end tests: a fleet of real wallets on a real network, payments
//! among them, and the accounting checks a hub operator and its users would make.

#![allow(dead_code)]

use serde::Deserialize;
use sluice_chain_client::ChainClient;
use sluice_client::store::{PaymentDirection, PaymentStatus};
use sluice_client::{keyfile, Wallet, WalletConfig};
use sluice_protocol::{Address, Amount, Hash32};
use sluice_tests::harness::{HubStore, Network, NetworkOptions};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(60);

/// Runs the e2e tests of one binary one at a time: each starts a whole network, and this
/// machine has two cores.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Member {
    pub wallet: Wallet,
    pub channel: Hash32,
    pub dir: PathBuf,
    pub deposit: Amount,
}

pub struct Fleet {
    pub net: Network,
    pub members: Vec<Member>,
    pub chain: ChainClient,
}

/// Starts a network with `n` funded wallets, each connected with an open channel of `deposit`,
/// and waits until the hub has put collateral into every channel.
pub async fn fleet(n: usize, deposit: Amount, hub_store: HubStore) -> Fleet {
    let scratch = tempfile::tempdir().unwrap().keep();
    let mut keys = Vec::new();
    for i in 0..n {
        let dir = scratch.join(format!("w{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let key = keyfile::load_or_create(&dir.join(sluice_client::config::KEY_FILE)).unwrap();
        keys.push((dir, key.address()));
    }
    let opts = NetworkOptions {
        fund: keys.iter().map(|(_, a)| (*a, 100 * deposit)).collect(),
        hub_store,
        hub_collateral: (deposit / 2, deposit),
        ..NetworkOptions::default()
    };
    let net = Network::start(opts).unwrap();
    let chain = ChainClient::new(net.node.addr());
    let mut members = Vec::new();
    for (dir, _) in keys {
        let config = WalletConfig::new(net.node.addr(), net.hub.addr(), net.hub_key);
        config.save(&dir).unwrap();
        let wallet = Wallet::open(&dir, config).await.unwrap();
        wallet.connect().await.unwrap();
        let channel = wallet.open_channel(deposit).await.unwrap();
        members.push(Member {
            wallet,
            channel,
            dir,
            deposit,
        });
    }
    for m in &members {
        wait_until("hub collateral", || async {
            chain
                .channel(&m.channel)
                .await
                .ok()
                .flatten()
                .is_some_and(|r| r.deposit_b > 0)
        })
        .await;
    }
    Fleet {
        net,
        members,
        chain,
    }
}

/// Polls `f` until it holds, failing the test after [`WAIT`].
pub async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `payer` pays `amount` to `payee` through the hub; returns whether it completed.
pub async fn pay(payer: &Member, payee: &Member, amount: Amount) -> Result<Hash32, String> {
    let inv = payee
        .wallet
        .create_invoice(amount, "e2e", Duration::from_secs(600))
        .await
        .map_err(|e| e.to_string())?;
    let secret = payer
        .wallet
        .pay(&inv.invoice)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(
        sluice_protocol::sha256(&secret.0),
        inv.hashlock,
        "proof of payment must open the hashlock"
    );
    Ok(inv.hashlock)
}

/// The wallet's latest co-signed state of its channel and the chain's deposits.
pub async fn position(f: &Fleet, m: &Member) -> (sluice_protocol::Snapshot, Amount, Amount) {
    let row = m.wallet.store().require_channel(&m.channel).await.unwrap();
    let rec = f
        .chain
        .channel(&m.channel)
        .await
        .unwrap()
        .expect("channel on chain");
    (row.snapshot, rec.deposit_a, rec.deposit_b)
}

/// Waits until no channel of the fleet has a pending lock (every payment resolved); on time-out
/// fails with what is stuck where.
pub async fn wait_no_locks(f: &Fleet) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut stuck = Vec::new();
        for (i, m) in f.members.iter().enumerate() {
            let (snap, _, _) = position(f, m).await;
            if !snap.locks.is_empty() {
                let pending: Vec<_> = m
                    .wallet
                    .payments()
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|p| matches!(p.status, PaymentStatus::Pending))
                    .map(|p| format!("{:?} {} {}", p.direction, p.amount, p.hashlock))
                    .collect();
                stuck.push(format!(
                    "wallet {i} v{} locks {:?} pending {:?} connected {}",
                    snap.state().version,
                    snap.locks,
                    pending,
                    m.wallet.is_connected()
                ));
            }
        }
        if stuck.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let height = f.chain.chain_info().await.map(|i| i.height).unwrap_or(0);
            panic!(
                "locks still pending at height {height}:\n{}\nhub log:\n{}",
                stuck.join("\n"),
                f.net.hub.tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Per wallet: completed outgoing `(amount + fee)` and completed incoming amounts.
pub async fn completed_flows(m: &Member) -> (Amount, Amount, Amount, usize) {
    let (mut out, mut fees, mut inc, mut pending) = (0, 0, 0, 0);
    for p in m.wallet.payments().await.unwrap() {
        match (p.direction, p.status) {
            (PaymentDirection::Out, PaymentStatus::Completed) => {
                out += p.amount;
                fees += p.fee;
            }
            (PaymentDirection::In, PaymentStatus::Completed) => inc += p.amount,
            (_, PaymentStatus::Pending) => pending += 1,
            _ => {}
        }
    }
    (out, fees, inc, pending)
}

#[derive(Deserialize)]
pub struct HubChannel {
    pub id: Hash32,
    pub client: Address,
    pub version: u64,
    pub locks: usize,
}

/// The hub's own view of its channels, from its admin API.
pub async fn hub_channels(f: &Fleet) -> HashMap<Hash32, HubChannel> {
    let admin = sluice_test_support::HubAdmin::of(f.net.hub.home()).unwrap();
    let mut rows: Vec<HubChannel> = Vec::new();
    let mut path = "/api/v1/channels?limit=1000".to_string();
    loop {
        let page = admin.get(&path).await.unwrap().json();
        rows.extend(serde_json::from_value::<Vec<HubChannel>>(page["items"].clone()).unwrap());
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/channels?limit=1000&after={next}"),
            None => break,
        }
    }
    rows.into_iter().map(|c| (c.id, c)).collect()
}

/// The accounting a user and the operator would check once everything settled: each wallet's
/// channel balance is its deposit plus what it received minus what it paid (fees included);
/// the hub's side grew by exactly the fees; hub and wallets agree on every version; and on
/// chain, accounts plus channel deposits still add up to the genesis total.
pub async fn check_books(f: &Fleet) {
    let hub = hub_channels(f).await;
    let (mut hub_gain, mut fees_paid) = (0i128, 0i128);
    for m in &f.members {
        let (snap, da, db) = position(f, m).await;
        let (out, fees, inc, pending) = completed_flows(m).await;
        assert_eq!(pending, 0, "no payment may stay pending");
        let (ba, bb) = snap.state().balances(da, db).unwrap();
        assert_eq!(
            ba as i128,
            m.deposit as i128 + inc as i128 - out as i128 - fees as i128,
            "wallet books"
        );
        hub_gain += bb as i128 - db as i128;
        fees_paid += fees as i128;
        let h = hub.get(&m.channel).expect("hub knows the channel");
        assert_eq!(
            h.version,
            snap.state().version,
            "hub and wallet agree on the latest version"
        );
        assert_eq!(h.locks, 0);
    }
    assert_eq!(
        hub_gain, fees_paid,
        "the hub's side grew by exactly the fees"
    );
    let admin = sluice_test_support::HubAdmin::of(f.net.hub.home()).unwrap();
    let page = admin
        .get("/api/v1/payments?limit=1000")
        .await
        .unwrap()
        .json();
    let payments: Vec<serde_json::Value> = serde_json::from_value(page["items"].clone()).unwrap();
    let open: Vec<_> = payments
        .iter()
        .filter(|p| !matches!(p["state"].as_str(), Some("completed" | "failed")))
        .collect();
    assert!(
        open.is_empty(),
        "the hub's records close every payment: {open:?}"
    );
    let channels: Vec<Hash32> = f.members.iter().map(|m| m.channel).collect();
    let (on_chain, total_genesis) =
        sluice_tests::chaos::audit::chain_totals(&f.net, &f.chain, &channels)
            .await
            .unwrap();
    assert_eq!(
        on_chain, total_genesis,
        "on-chain accounts + channel deposits = genesis total"
    );
}
