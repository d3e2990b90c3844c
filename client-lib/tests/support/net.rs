//! A whole real network for the wallet's process tests: `sluice-node --dev`, `sluice-hub` and
//! optionally `sluice-watchtower`, started by the shared harness, plus funded wallet directories.

use sluice_chain_client::{ChainClient, TxSender};
use sluice_client::config::KEY_FILE;
use sluice_client::store::PaymentStatus;
use sluice_client::{keyfile, Wallet, WalletConfig};
use sluice_protocol::{Address, Amount, Hash32, Keypair};
use sluice_test_support::{Network, NetworkOptions};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Genesis balance of every wallet.
pub const FUNDS: Amount = 10_000_000;
/// Deposit of every channel the tests open.
pub const DEPOSIT: Amount = 100_000;

/// Wallet directories with funded keys, and the network they live on.
pub struct Net {
    pub net: Network,
    pub dirs: Vec<PathBuf>,
    /// A funded key that only moves blocks forward (`advance_to`).
    pub miner: Keypair,
    _root: tempfile::TempDir,
}

/// Creates `wallets` funded wallet directories and starts the network (with a watchtower if
/// `tower`). Fails loudly if the daemon binaries cannot be found or built.
pub async fn start(wallets: usize, tower: bool) -> Net {
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..wallets)
        .map(|i| root.path().join(format!("wallet{i}")))
        .collect();
    let miner = Keypair::generate();
    let mut fund = vec![(miner.address(), FUNDS)];
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
        fund.push((
            keyfile::load_or_create(&d.join(KEY_FILE))
                .unwrap()
                .address(),
            FUNDS,
        ));
    }
    let opts = NetworkOptions {
        fund,
        tower,
        ..NetworkOptions::default()
    };
    let net = tokio::task::spawn_blocking(move || Network::start(opts))
        .await
        .unwrap()
        .expect("start the network (daemon binaries are built by `cargo build --bins`)");
    Net {
        net,
        dirs,
        miner,
        _root: root,
    }
}

impl Net {
    /// The wallet config for this network (also saved into `dir` for the CLI).
    pub fn config(&self, dir: &Path) -> WalletConfig {
        let mut cfg =
            WalletConfig::new(self.net.node.addr(), self.net.hub.addr(), self.net.hub_key);
        cfg.pay_timeout_secs = 20;
        cfg.save(dir).unwrap();
        cfg
    }

    /// Opens the `i`-th wallet.
    pub async fn wallet(&self, i: usize) -> Wallet {
        let dir = &self.dirs[i];
        Wallet::open(dir, self.config(dir)).await.unwrap()
    }

    pub fn chain(&self) -> ChainClient {
        ChainClient::new(self.net.node.addr())
    }

    /// A sender for the miner key, to pass challenge windows with `advance_to`.
    pub async fn miner(&self) -> TxSender {
        let chain = self.chain();
        let chain_id = chain.chain_info().await.unwrap().chain_id;
        TxSender::new(chain, self.miner.clone(), chain_id, 1)
    }

    /// On-chain balance of an account.
    pub async fn account(&self, who: &Address) -> Amount {
        self.chain().account(who).await.unwrap().balance
    }

    /// The hub's admin view of one channel (`/api/v1/channels/ID`).
    pub async fn hub_channel(&self, id: &Hash32) -> Option<serde_json::Value> {
        let admin = sluice_test_support::HubAdmin::of(self.net.hub.home()).ok()?;
        let r = admin.get(&format!("/api/v1/channels/{id}")).await.ok()?;
        (r.status == 200).then(|| r.json())
    }
}

/// Polls `check` every 100 ms until it holds; panics naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the hub has put collateral on its side of `channel`.
pub async fn collateral(w: &Wallet, channel: &Hash32) {
    wait_until("the hub's collateral", Duration::from_secs(30), || async {
        let chans = w.channels().await.unwrap();
        chans.iter().any(|c| &c.id == channel && c.deposit_b > 0)
    })
    .await;
}

/// Waits until no payment of `w` is pending.
pub async fn settled_payments(w: &Wallet, timeout: Duration) {
    wait_until("no pending payment", timeout, || async {
        let pays = w.payments().await.unwrap();
        pays.iter().all(|p| p.status != PaymentStatus::Pending)
    })
    .await;
}

/// Wallets 0 and 1 with a channel of [`DEPOSIT`] each, connected, and the hub's collateral in
/// place toward wallet 1; returns them with their channel ids.
pub async fn pair(n: &Net) -> (Wallet, Hash32, Wallet, Hash32) {
    let (a, b) = (n.wallet(0).await, n.wallet(1).await);
    let ca = a.open_channel(DEPOSIT).await.unwrap();
    let cb = b.open_channel(DEPOSIT).await.unwrap();
    a.connect().await.unwrap();
    b.connect().await.unwrap();
    collateral(&b, &cb).await;
    (a, ca, b, cb)
}

/// `to` invoices `amount` and `from` pays it.
pub async fn pay(from: &Wallet, to: &Wallet, amount: u64) -> sluice_client::Result<Hash32> {
    let inv = to
        .create_invoice(amount, "", Duration::from_secs(600))
        .await
        .unwrap();
    from.pay(&inv.invoice).await
}
