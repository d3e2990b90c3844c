//! `sluice-bench hub`: K payer/payee pairs over real WebSockets against a real `sluice-hub`
//! process on Postgres (default) or SQLite, on a real dev chain; each payer pays M invoices of
//! its payee in a row, all pairs at once. Reports routed payments per second and per-payment
//! latency (invoice in hand to proof of payment).
//!
//! The clients are lean (`hub/client.rs`): the full session protocol with every check a wallet
//! makes (`check_proposal`, the hub's signatures, invoice signatures), but channel state in
//! memory and the chain followed by one shared poller, so the figure is the hub's and not that
//! of 2K wallet stores fsyncing on the same two cores. The hub itself is the production binary
//! with its production store settings (Postgres with `synchronous_commit` on; SQLite in WAL
//! with `synchronous = FULL`).
//!
//! With `--hubs N` (Postgres), N hub processes share the store and each payer's payee holds
//! its session with the next process, so every payment is handed between processes
//! (`payments/handoff.rs`); the figure is the aggregate.
//!
//! The run is steady state: every pair pays in a row until both `seconds` have passed and
//! `min_payments` are done, after a warm-up payment per pair.
//!
//! Ceilings: the signature work (below), and the durable commits the hub's Postgres sustains:
//! `pgbench` on the same server, over as many connections as the hub's pool, each transaction
//! one autocommitted single-row `UPDATE` (`TempPostgres::commit_ceiling`). A payment is four
//! channel updates, each committed once, so `commit_ceiling / 4` payments per second is what the
//! store alone allows; `commit_ratio` is the payments' share of the commit ceiling itself.
//!
//! Signature ceiling: a payment is four co-signed updates (payer's lock, hub's lock, payee's unlock, hub's
//! unlock); each update costs one signature and one verification for each of its two parties,
//! so 8 signs + 8 verifies per payment. With single-core rates `s` (sign/s) and `v` (verify/s)
//! and `p = v_all / v` the measured all-core parallelism, the signature work alone allows
//! `ceiling = p / (8/s + 8/v)` payments per second on this machine, measured in the same run.

mod client;
mod follower;
mod scale;

use super::{crypto, process};
use crate::harness::{HubStore, Network, NetworkOptions};
use client::LeanClient;
use follower::ChainView;
use serde_json::json;
use sluice_chain_client::{ChainClient, TxSender};
use sluice_protocol::{channel_id, sha256, Hash32, Keypair, TxKind};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct HubBench {
    pub pairs: usize,
    /// Run at least this long…
    pub seconds: f64,
    /// …and at least this many payments.
    pub min_payments: usize,
    pub store: HubStore,
    /// Channels in the hub's store in all (the pairs' and seeded ones; Postgres only).
    pub channels: usize,
    /// Further clients logged in and idle while the pairs pay.
    pub sessions: usize,
    /// Hub processes sharing the store (Postgres only); pair `k`'s payer holds its session
    /// with process `k mod hubs` and its payee with the next one, so with two or more every
    /// payment is handed from one process to another.
    pub hubs: usize,
}

/// Connections `pgbench` measures the commit ceiling over: the hub's store pool
/// (`store_max_connections`'s default).
const HUB_POOL: u32 = 16;
/// Seconds `pgbench` runs for.
const CEILING_SECS: u32 = 5;

const AMOUNT: u64 = 10;
const DEPOSIT: u64 = 1_000_000;
const SETUP_WAIT: Duration = Duration::from_secs(60);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Payments per second the signature work alone allows (see the module docs).
fn ceiling(r: &crypto::CryptoRates) -> f64 {
    let parallel = r.verify_per_sec_all_cores / r.verify_per_sec.max(1.0);
    parallel / (8.0 / r.sign_per_sec.max(1.0) + 8.0 / r.verify_per_sec.max(1.0))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Opens one channel toward the hub for each key; returns the channel ids once included.
async fn open_channels(
    chain: &ChainClient,
    keys: &[Keypair],
    hub: sluice_protocol::Address,
) -> Result<Vec<Hash32>, String> {
    let info = chain.chain_info().await.map_err(err)?;
    let mut waits = Vec::new();
    for key in keys {
        let salt = sha256(&key.address().0);
        let id = channel_id(info.chain_id, &key.address(), &hub, &salt);
        let sender = TxSender::new(chain.clone(), key.clone(), info.chain_id, info.min_fee);
        let kind = TxKind::OpenChannel {
            counterparty: hub,
            deposit: DEPOSIT,
            challenge_period: info.default_challenge_period,
            salt,
        };
        waits.push((id, sender.submit(kind).await.map_err(err)?));
    }
    let mut ids = Vec::new();
    for (id, tx) in waits {
        chain.wait_for_success(&tx, SETUP_WAIT).await.map_err(err)?;
        ids.push(id);
    }
    Ok(ids)
}

/// Waits until the hub has put collateral on its side of every channel (so it knows them).
async fn wait_for_collateral(view: &ChainView, ids: &[Hash32]) -> Result<(), String> {
    let deadline = Instant::now() + SETUP_WAIT;
    for id in ids {
        loop {
            view.refresh(id).await;
            if view.deposits(id).1 > 0 {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("the hub put no collateral into channel {id}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// The durable-commit ceiling of the hub's Postgres, measured after the payments so that the
/// two do not share the machine; `None` on SQLite.
fn commit_ceiling(net: &mut Network) -> Result<Option<f64>, String> {
    match net.postgres() {
        Some(pg) => pg
            .commit_ceiling(HUB_POOL, CEILING_SECS)
            .map(Some)
            .map_err(err),
        None => Ok(None),
    }
}

/// The hub's update counters by result, read from its admin `/metrics`.
async fn hub_updates(home: &std::path::Path) -> std::collections::BTreeMap<String, f64> {
    let text = match sluice_test_support::HubAdmin::of(home) {
        Ok(admin) => admin
            .get("/metrics")
            .await
            .map(|r| r.body)
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    let prefix = "sluice_hub_updates_total{result=\"";
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|l| {
            let (name, rest) = l.split_once("\"}")?;
            Some((name.to_string(), rest.trim().parse().ok()?))
        })
        .collect()
}

/// One payment; `Ok(ms)` from invoice in hand to proof of payment.
async fn pay_once(payer: &LeanClient, payee: &LeanClient) -> Result<f64, String> {
    let (invoice, hashlock) = payee.invoice(AMOUNT).map_err(err)?;
    let started = Instant::now();
    let secret = payer.pay(invoice).await.map_err(err)?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    match sha256(&secret.0) == hashlock {
        true => Ok(ms),
        false => Err("the proof of payment does not open the invoice's hashlock".into()),
    }
}

/// The first payment of a pair, retried while the hub is still settling in (warm-up only).
async fn warm_up(payer: &LeanClient, payee: &LeanClient) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match pay_once(payer, payee).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                eprintln!("warm-up payment not yet through: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What the scale case put around the pairs: seeded channels, idle sessions, and the hub's
/// RSS before the channels, before the sessions and after them.
struct Crowd {
    seeded: usize,
    idle: Vec<tokio::task::JoinHandle<()>>,
    rss_mib: (Option<f64>, Option<f64>, Option<f64>),
}

async fn crowd(
    net: &mut Network,
    chain: &ChainClient,
    ws_url: &str,
    b: &HubBench,
) -> Result<Crowd, String> {
    let rss = |net: &Network| {
        net.hub
            .pid()
            .and_then(|p| process::rss_mib(p).ok())
            .map(|r| r.0)
    };
    let before = rss(net);
    let extra = b.channels.saturating_sub(2 * b.pairs);
    let mut keys = Vec::new();
    if extra > 0 {
        let url = net
            .hub_store_url()
            .ok_or("--channels needs the Postgres store")?
            .to_string();
        let chain_id = chain.chain_info().await.map_err(err)?.chain_id;
        keys = scale::seed_channels(&url, net.hub_key, chain_id, extra, DEPOSIT).await?;
        // One collateral round over every channel, so its memory is in the figure.
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    let with_channels = rss(net);
    keys.extend((keys.len()..b.sessions).map(|_| Keypair::generate()));
    keys.truncate(b.sessions);
    let idle = scale::idle_sessions(ws_url, net.hub_key, &keys).await?;
    Ok(Crowd {
        seeded: extra,
        idle,
        rss_mib: (before, with_channels, rss(net)),
    })
}

/// KiB of RSS each of `n` things added, from `from` to `to` MiB.
fn per_kib(from: Option<f64>, to: Option<f64>, n: usize) -> Option<f64> {
    let (from, to) = (from?, to?);
    (n > 0).then(|| ((to - from) * 1024.0 / n as f64 * 100.0).round() / 100.0)
}

pub async fn run(b: &HubBench) -> Result<serde_json::Value, String> {
    let rates = crypto::measure(Duration::from_millis(500));
    let keys: Vec<Keypair> = (0..2 * b.pairs).map(|_| Keypair::generate()).collect();
    let opts = NetworkOptions {
        block_time_ms: 50,
        hub_store: b.store,
        tower: false,
        fund: keys.iter().map(|k| (k.address(), 10 * DEPOSIT)).collect(),
        hub_collateral: (DEPOSIT / 2, DEPOSIT),
        ..NetworkOptions::default()
    };
    let mut net = Network::start(opts).map_err(err)?;
    // The hub's production collateral round (the harness's 1 s would rescan every channel each
    // second), and room for the idle sessions.
    let room = (b.sessions + 2 * b.pairs + 1_000).to_string();
    net.hub.set_env("SLUICE_HUB_COLLATERAL__RETRY_SECS", "5");
    net.hub.set_env("SLUICE_HUB_LIMITS__MAX_CONNECTIONS", &room);
    net.hub
        .set_env("SLUICE_HUB_LISTENER__MAX_CONNECTIONS", &room);
    net.hub
        .set_env("SLUICE_HUB_LISTENER__MAX_CONNECTIONS_PER_SOURCE", &room);
    net.hub.restart().map_err(err)?;
    let mut urls = vec![format!("ws://{}/ws", net.hub.addr())];
    for _ in 1..b.hubs {
        let i = net.add_hub().map_err(err)?;
        let hub = &mut net.extra_hubs[i];
        hub.set_env("SLUICE_HUB_COLLATERAL__RETRY_SECS", "5");
        hub.set_env("SLUICE_HUB_LIMITS__MAX_CONNECTIONS", &room);
        hub.set_env("SLUICE_HUB_LISTENER__MAX_CONNECTIONS", &room);
        hub.set_env("SLUICE_HUB_LISTENER__MAX_CONNECTIONS_PER_SOURCE", &room);
        hub.restart().map_err(err)?;
        urls.push(format!("ws://{}/ws", hub.addr()));
    }
    let chain = ChainClient::new(net.node.addr());
    let ids = open_channels(&chain, &keys, net.hub_key).await?;
    let view = ChainView::start(chain.clone()).await.map_err(err)?;
    wait_for_collateral(&view, &ids).await?;
    let url = urls[0].clone();
    let mut clients = Vec::new();
    for (i, (key, id)) in keys.iter().zip(&ids).enumerate() {
        // Client 2k pays 2k+1: on process k and k+1 (mod hubs).
        let url = &urls[(i / 2 + i % 2) % urls.len()];
        let c = LeanClient::connect(url, key.clone(), net.hub_key, *id, view.clone())
            .await
            .map_err(err)?;
        clients.push(Arc::new(c));
    }
    for pair in clients.chunks(2) {
        warm_up(&pair[0], &pair[1]).await?;
    }
    let crowd = crowd(&mut net, &chain, &url, b).await?;

    let started = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut runs = Vec::new();
    for pair in clients.chunks(2) {
        let (payer, payee, done) = (pair[0].clone(), pair[1].clone(), done.clone());
        let (seconds, min) = (b.seconds, b.min_payments);
        runs.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while started.elapsed().as_secs_f64() < seconds || done.load(Ordering::Relaxed) < min {
                lat.push(pay_once(&payer, &payee).await?);
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut lat = Vec::new();
    for r in runs {
        lat.extend(r.await.map_err(err)??);
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let rate = lat.len() as f64 / secs;
    let ceil = ceiling(&rates);
    let commits = commit_ceiling(&mut net)?;
    let busy: u64 = clients.iter().map(|c| c.busy.load(Ordering::Relaxed)).sum();
    let updates = hub_updates(net.hub.home()).await;
    let held = crowd.idle.iter().filter(|h| !h.is_finished()).count();
    crowd.idle.iter().for_each(|h| h.abort());
    Ok(json!({
        "bench": "hub",
        "store": match b.store { HubStore::Postgres => "postgres", HubStore::Sqlite => "sqlite" },
        "pairs": b.pairs,
        "hubs": urls.len(),
        "payments": lat.len(),
        "payments_per_sec": (rate * 10.0).round() / 10.0,
        "p50_ms": (percentile(&lat, 0.5) * 10.0).round() / 10.0,
        "p99_ms": (percentile(&lat, 0.99) * 10.0).round() / 10.0,
        "seconds": (secs * 10.0).round() / 10.0,
        "crypto_ceiling_per_sec": ceil.round(),
        "ratio": (rate / ceil * 1e4).round() / 1e4,
        "commit_ceiling_per_sec": commits.map(f64::round),
        "commit_connections": HUB_POOL,
        "payments_per_sec_the_commits_allow": commits.map(|c| (c / 4.0).round()),
        "commit_ratio": commits.map(|c| (rate / c * 1e4).round() / 1e4),
        "busy_retries": busy,
        "hub_updates": updates,
        "clients": "lean",
        "channels": ids.len() + crowd.seeded,
        "sessions": crowd.idle.len(),
        "sessions_held_to_the_end": held,
        "hub_rss_mib": crowd.rss_mib.2.map(|m| (m * 10.0).round() / 10.0),
        "rss_kib_per_channel": per_kib(crowd.rss_mib.0, crowd.rss_mib.1, crowd.seeded),
        "rss_kib_per_session": per_kib(crowd.rss_mib.1, crowd.rss_mib.2, crowd.idle.len()),
    }))
}
