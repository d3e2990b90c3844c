//! A kill campaign: wallets, each its own process, pay each other through a hub on Postgres,
//! with a watchtower guarding them and a dev chain node, while the campaign SIGKILLs one
//! process (the hub, a wallet, the tower, the node or Postgres) at a random moment and restarts
//! it, again and again. Then the payments stop, every wallet is opened once more and left to
//! settle, and [`audit`] counts what a user and the operator would check: units lost, states
//! forked between wallet and hub, payments done on one leg only, and what is stuck.
//!
//! `sluice-bench chaos --kills N` runs it long; a test runs a short one.

pub mod audit;
pub mod market;
pub mod wallet;

use crate::harness::{bin_path, Daemon, HubStore, Network, NetworkOptions};
use audit::{Findings, Holder};
use market::Market;
use rand::{Rng, SeedableRng};
use sluice_client::{keyfile, Wallet, WalletConfig};
use sluice_protocol::{Amount, Hash32};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Campaign {
    pub kills: usize,
    pub wallets: usize,
    /// Seeds the choice of victims and moments, so a failing campaign can be rerun as it was.
    pub seed: u64,
}

const DEPOSIT: Amount = 1_000_000;
/// How long the campaign waits for a step (payments to start, everything to settle).
const WAIT: Duration = Duration::from_secs(180);
const WALLET_BIN: &str = "sluice-chaos-wallet";

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub bench: &'static str,
    pub kills: usize,
    /// Payments attempted: invoices a payer took and started to pay.
    pub payments: usize,
    #[serde(flatten)]
    pub findings: Findings,
    /// Attempts refused before anything was signed (the node or hub was down at that moment,
    /// or the payer was killed first): no record, nothing locked.
    pub not_started: usize,
    /// Kills per process.
    pub killed: BTreeMap<String, usize>,
    /// Processes found dead that the campaign had not killed.
    pub crashed: usize,
    pub wallets: usize,
    pub seed: u64,
    pub seconds: f64,
    /// Where the wallets' and the daemons' homes and logs were kept, when anything was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

/// A wallet the campaign drives: its directory, its channel and its process while it runs.
struct Member {
    dir: PathBuf,
    channel: Hash32,
    process: Option<Daemon>,
}

pub async fn run(c: &Campaign) -> Result<Report, String> {
    let started = Instant::now();
    let scratch = tempfile::Builder::new()
        .prefix("sluice-chaos-")
        .tempdir()
        .map_err(|e| format!("scratch directory: {e}"))?;
    let wallets = c.wallets.max(2);
    let mut dirs = Vec::new();
    let mut fund = Vec::new();
    for i in 0..wallets {
        let dir = scratch.path().join(format!("w{i}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("wallet dir: {e}"))?;
        let key = keyfile::load_or_create(&dir.join(sluice_client::config::KEY_FILE))
            .map_err(|e| format!("wallet key: {e}"))?;
        fund.push((key.address(), 100 * DEPOSIT));
        dirs.push(dir);
    }
    let opts = NetworkOptions {
        fund,
        hub_store: HubStore::Postgres,
        hub_collateral: (DEPOSIT / 2, DEPOSIT),
        ..NetworkOptions::default()
    };
    let mut net = Network::start(opts).map_err(|e| e.to_string())?;
    let mut members = Vec::new();
    for dir in dirs {
        let channel = enroll(&net, &dir).await?;
        members.push(Member {
            dir,
            channel,
            process: None,
        });
    }
    let market = Market::new(&scratch.path().join("market")).map_err(|e| e.to_string())?;
    let bin = bin_path(WALLET_BIN).map_err(|e| e.to_string())?;
    for (i, m) in members.iter_mut().enumerate() {
        m.process = Some(spawn_wallet(&bin, m, &market, i, wallets)?);
    }
    wait_for("the first payments", || async {
        market.claimed() >= wallets
    })
    .await?;

    let mut rng = rand::rngs::StdRng::seed_from_u64(c.seed);
    let mut killed: BTreeMap<String, usize> = BTreeMap::new();
    let mut crashed = 0;
    for _ in 0..c.kills {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..500))).await;
        let down = Duration::from_millis(rng.gen_range(0..300));
        let victim = rng.gen_range(0..4 + members.len());
        let name = tokio::task::block_in_place(|| {
            kill_and_restart(&mut net, &mut members, victim, down, &bin, &market)
        })?;
        *killed.entry(name).or_default() += 1;
        crashed += tokio::task::block_in_place(|| revive(&mut net, &mut members, &bin, &market))?;
    }
    market.stop().map_err(|e| e.to_string())?;
    let payments = market.claimed();
    for m in &mut members {
        if let Some(mut p) = m.process.take() {
            p.stop(Duration::from_secs(10));
        }
    }
    let findings = settle_and_audit(&net, &members).await?;
    let kept = (
        findings.lost,
        findings.forked,
        findings.stuck,
        findings.half_done,
        crashed,
    ) != (0, 0, 0, 0, 0);
    let kept = kept.then(|| {
        let daemons = net.keep();
        let wallets = scratch.keep();
        format!(
            "wallets {}, daemons {}",
            wallets.display(),
            daemons.display()
        )
    });
    let recorded = findings.completed + findings.failed;
    Ok(Report {
        bench: "chaos",
        kills: c.kills,
        payments,
        not_started: payments.saturating_sub(recorded),
        findings,
        killed,
        crashed,
        wallets,
        seed: c.seed,
        seconds: started.elapsed().as_secs_f64(),
        kept,
    })
}

/// Opens `dir`'s wallet, its channel with the hub and its watchtower; waits for the hub's
/// collateral. The wallet is closed again: from here on it lives in its own process.
async fn enroll(net: &Network, dir: &Path) -> Result<Hash32, String> {
    let config = WalletConfig::new(net.node.addr(), net.hub.addr(), net.hub_key);
    config.save(dir).map_err(|e| e.to_string())?;
    let wallet = Wallet::open(dir, config).await.map_err(|e| e.to_string())?;
    wallet.connect().await.map_err(|e| e.to_string())?;
    let channel = wallet
        .open_channel(DEPOSIT)
        .await
        .map_err(|e| e.to_string())?;
    if let (Some(tower), Some(key)) = (&net.tower, &net.tower_key) {
        wallet
            .add_watchtower(&tower.url(), key)
            .await
            .map_err(|e| e.to_string())?;
    }
    let chain = sluice_chain_client::ChainClient::new(net.node.addr());
    wait_for("the hub's collateral", || async {
        chain
            .channel(&channel)
            .await
            .ok()
            .flatten()
            .is_some_and(|r| r.deposit_b > 0)
    })
    .await?;
    Ok(channel)
}

fn spawn_wallet(
    bin: &Path,
    m: &Member,
    market: &Market,
    me: usize,
    peers: usize,
) -> Result<Daemon, String> {
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("--dir")
        .arg(&m.dir)
        .arg("--market")
        .arg(market.root())
        .arg("--me")
        .arg(me.to_string())
        .arg("--peers")
        .arg(peers.to_string())
        .env("RUST_LOG", "sluice_client=info,sluice_tests=info");
    Daemon::spawn(WALLET_BIN, cmd, &m.dir.join("wallet.log")).map_err(|e| e.to_string())
}

/// SIGKILLs victim number `victim` (0 hub, 1 node, 2 tower, 3 Postgres, then the wallets),
/// leaves it down for `down` and starts it again; returns what it was.
fn kill_and_restart(
    net: &mut Network,
    members: &mut [Member],
    victim: usize,
    down: Duration,
    bin: &Path,
    market: &Market,
) -> Result<String, String> {
    let restart = |p: &mut crate::harness::Process| {
        p.kill();
        std::thread::sleep(down);
        p.restart().map_err(|e| e.to_string())
    };
    match victim {
        0 => restart(&mut net.hub).map(|_| "hub".into()),
        1 => restart(&mut net.node).map(|_| "node".into()),
        2 => match net.tower.as_mut() {
            Some(t) => restart(t).map(|_| "tower".into()),
            None => Ok("nothing".into()),
        },
        3 => match net.postgres() {
            Some(pg) => pg
                .crash_and_restart(down)
                .map(|_| "postgres".into())
                .map_err(|e| e.to_string()),
            None => Ok("nothing".into()),
        },
        w => {
            let i = w - 4;
            let peers = members.len();
            let m = &mut members[i];
            if let Some(mut p) = m.process.take() {
                p.kill();
            }
            std::thread::sleep(down);
            m.process = Some(spawn_wallet(bin, m, market, i, peers)?);
            Ok("wallet".into())
        }
    }
}

/// Restarts whatever died without being killed (and counts it: a crash is a finding).
fn revive(
    net: &mut Network,
    members: &mut [Member],
    bin: &Path,
    market: &Market,
) -> Result<usize, String> {
    let mut dead = 0;
    let mut daemons = vec![&mut net.hub, &mut net.node];
    daemons.extend(net.tower.as_mut());
    for p in daemons {
        if !p.is_running() {
            tracing::error!(process = p.name(), log = %p.tail(20), "died by itself");
            dead += 1;
            p.restart().map_err(|e| e.to_string())?;
        }
    }
    let peers = members.len();
    for (i, m) in members.iter_mut().enumerate() {
        if !m.process.as_mut().is_some_and(|p| p.is_running()) {
            tracing::error!(wallet = i, "died by itself");
            dead += 1;
            m.process = Some(spawn_wallet(bin, m, market, i, peers)?);
        }
    }
    Ok(dead)
}

/// Opens every wallet once more, lets it resync and resolve what is in flight, and audits once
/// nothing is pending anywhere (or after [`WAIT`], counting what still is).
async fn settle_and_audit(net: &Network, members: &[Member]) -> Result<Findings, String> {
    let mut wallets = Vec::new();
    for m in members {
        let config = WalletConfig::load(&m.dir).map_err(|e| e.to_string())?;
        let wallet = Wallet::open(&m.dir, config)
            .await
            .map_err(|e| e.to_string())?;
        wallet.connect().await.map_err(|e| e.to_string())?;
        wallets.push(wallet);
    }
    let holders: Vec<Holder> = wallets
        .iter()
        .zip(members)
        .map(|(wallet, m)| Holder {
            wallet,
            channel: m.channel,
            deposit: DEPOSIT,
        })
        .collect();
    let settled = wait_for("every payment to settle", || async {
        audit::audit(net, &holders)
            .await
            .is_ok_and(|f| f.stuck == 0)
    })
    .await;
    if let Err(e) = settled {
        tracing::error!(error = %e, "the audit counts what is still stuck");
    }
    let findings = audit::audit(net, &holders).await?;
    for note in &findings.notes {
        tracing::warn!("{note}");
    }
    Ok(findings)
}

async fn wait_for<F, Fut>(what: &str, mut f: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !f().await {
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
