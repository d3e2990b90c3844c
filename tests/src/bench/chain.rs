//! `sluice-bench chain`: many accounts' pre-signed transfers submitted over RPC until all are
//! committed, with a durable sync per block. The ceiling is all-core signature verification
//! measured in the same run: a node that verifies every transaction once can never beat it.
//!
//! A validator net is measured in three phases side by side: low load (a hundred transfers at
//! once), sustained (an offered rate held for a while, paced every 100 ms) and a burst (every
//! sender's transfers at once). Finality is from submission to the block's head arriving.

use super::crypto;
use crate::harness::{binaries, start_node, wait_for_file, Daemon, NetworkOptions};
use serde_json::json;
use sluice_chain_client::ChainClient;
use sluice_protocol::{Keypair, SignedTx, Transaction, TxKind};
use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct ChainBench {
    pub senders: u32,
    pub per_sender: u64,
    pub block_time_ms: u64,
    /// 1: a `--dev` node; more: a Malachite testnet of that many validator processes.
    pub validators: usize,
    /// Transfers per second offered in the sustained phase (validator nets only)…
    pub sustained_rate: u64,
    /// …for this many seconds.
    pub sustained_seconds: u64,
}

/// Senders of the sustained phase: enough that none runs far ahead of the committed nonce.
const SUSTAINED_SENDERS: u32 = 1_000;
/// Transfers of the low-load phase.
const LOW_LOAD_TXS: u32 = 100;
/// The sustained phase is paced in ticks of this length.
const TICK: Duration = Duration::from_millis(100);

/// The running node processes and their RPC addresses; dropping it stops them.
struct Nodes {
    rpcs: Vec<String>,
    _procs: Vec<Daemon>,
    _dev: Option<crate::harness::Process>,
    _home: tempfile::TempDir,
}

async fn start(b: &ChainBench, fund: &[(sluice_protocol::Address, u64)]) -> Result<Nodes, String> {
    let bins = binaries().map_err(|e| e.to_string())?;
    let home = tempfile::tempdir().map_err(|e| e.to_string())?;
    if b.validators <= 1 {
        let opts = NetworkOptions {
            block_time_ms: b.block_time_ms,
            ..NetworkOptions::default()
        };
        let node =
            start_node(&bins, &home.path().join("node"), fund, &opts).map_err(|e| e.to_string())?;
        return Ok(Nodes {
            rpcs: vec![node.addr().to_string()],
            _procs: vec![],
            _dev: Some(node),
            _home: home,
        });
    }
    let mut init = Command::new(&bins.node);
    init.arg("init").arg("--home").arg(home.path());
    init.args([
        "--validators",
        &b.validators.to_string(),
        "--base-port",
        &free_base_port(b.validators).to_string(),
    ]);
    init.args(["--block-time-ms", &b.block_time_ms.to_string()]);
    for (a, amount) in fund {
        init.arg("--fund").arg(format!("{a}={amount}"));
    }
    let out = init.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "init --validators: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut procs = Vec::new();
    let mut rpcs = Vec::new();
    for i in 0..b.validators {
        let dir = home.path().join(format!("node{i}"));
        let mut cmd = Command::new(&bins.node);
        cmd.arg("run")
            .arg("--home")
            .arg(&dir)
            .env("SLUICE_LOG", "warn");
        procs.push(
            Daemon::spawn(&format!("node{i}"), cmd, &dir.join("node.log"))
                .map_err(|e| e.to_string())?,
        );
    }
    for i in 0..b.validators {
        let addr = wait_for_file(
            &home.path().join(format!("node{i}")).join("rpc.addr"),
            Duration::from_secs(30),
        )
        .map_err(|e| e.to_string())?;
        rpcs.push(addr);
    }
    Ok(Nodes {
        rpcs,
        _procs: procs,
        _dev: None,
        _home: home,
    })
}

/// A base port with every node's RPC and P2P ports free above it (a taken P2P port leaves its
/// node at height 0, as if consensus never started).
fn free_base_port(nodes: usize) -> u16 {
    sluice_test_support::free_ports(2 * nodes as u16)
}

fn key(n: u32) -> Keypair {
    let mut s = [0u8; 32];
    s[..4].copy_from_slice(&n.to_be_bytes());
    s[31] = 1;
    Keypair::from_secret(&s).expect("small secrets are valid keys")
}

/// Transfers nonce-major, so each batch spreads over senders as real traffic would.
fn presign(keys: &[Keypair], per: u64) -> Vec<SignedTx> {
    let to = key(0).address();
    (0..per)
        .flat_map(|nonce| keys.iter().map(move |k| (nonce, k)))
        .map(|(nonce, k)| {
            let kind = TxKind::Transfer { to, amount: 1 };
            Transaction {
                chain_id: 1,
                from: k.address(),
                nonce,
                fee: 1,
                kind,
            }
            .sign(k)
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// When each block's head arrived, since the bench's start, filled in by a background task.
type HeadTimes = Arc<Mutex<HashMap<u64, f64>>>;

fn follow_heads(mut heads: sluice_chain_client::HeadStream, origin: Instant) -> HeadTimes {
    let times: HeadTimes = Arc::default();
    let t = times.clone();
    tokio::spawn(async move {
        while let Ok(h) = heads.next().await {
            let at = origin.elapsed().as_secs_f64();
            t.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(h.height, at);
        }
    });
    times
}

/// One phase's figures: transfers committed per second from its first submission to the head
/// of the block holding its last, and finality percentiles of a sample.
struct Phase {
    tx_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Submits `txs` (all at once, or `per_tick` every [`TICK`]) round-robin over the nodes and
/// waits until they are committed.
async fn phase(
    clients: &[ChainClient],
    heads: &HeadTimes,
    origin: Instant,
    txs: &[SignedTx],
    per_tick: Option<usize>,
) -> Result<Phase, String> {
    let started = origin.elapsed().as_secs_f64();
    let batch = per_tick.unwrap_or(1_000).max(1);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sends = Vec::new();
    // Every 97th transaction is sampled for finality.
    let mut sampled: Vec<(sluice_protocol::Hash32, f64)> = Vec::new();
    for (i, chunk) in txs.chunks(batch).enumerate() {
        if per_tick.is_some() {
            tick.tick().await;
        }
        let at = origin.elapsed().as_secs_f64();
        sampled.extend(chunk.iter().step_by(97).map(|t| (t.id(), at)));
        let client = clients[i % clients.len()].clone();
        let chunk = chunk.to_vec();
        let send = async move {
            let out = client
                .submit_many(&chunk)
                .await
                .map_err(|e| e.to_string())?;
            match out.iter().find_map(|o| o.error.clone()) {
                Some(e) => Err(format!("batch {i} refused: {e}")),
                None => Ok(()),
            }
        };
        match per_tick {
            // Paced: a slow answer must not hold the next tick back.
            Some(_) => sends.push(tokio::spawn(send)),
            None => send.await?,
        }
    }
    for s in sends {
        s.await.map_err(|e| e.to_string())??;
    }
    let last = txs.last().map(|t| (t.id(), started));
    sampled.extend(last);
    let chain = &clients[0];
    let mut finality = Vec::new();
    let mut done_at = started;
    for (id, at) in &sampled {
        let info = chain
            .wait_for_tx(id, Duration::from_secs(120))
            .await
            .map_err(|e| format!("transfer {id} not committed: {e}"))?;
        let seen = wait_head(heads, origin, info.height).await;
        done_at = done_at.max(seen);
        finality.push((seen - at) * 1_000.0);
    }
    finality.pop();
    finality.sort_by(|a, b| a.total_cmp(b));
    Ok(Phase {
        tx_per_sec: txs.len() as f64 / (done_at - started).max(1e-3),
        p50_ms: percentile(&finality, 0.5).round(),
        p99_ms: percentile(&finality, 0.99).round(),
    })
}

/// When the head at `height` arrived, waiting a little for the subscription to deliver it; if
/// it never does, now (an upper bound).
async fn wait_head(heads: &HeadTimes, origin: Instant, height: u64) -> f64 {
    for _ in 0..200 {
        if let Some(t) = heads.lock().unwrap_or_else(|p| p.into_inner()).get(&height) {
            return *t;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    origin.elapsed().as_secs_f64()
}

pub async fn run(b: &ChainBench) -> Result<serde_json::Value, String> {
    let ceiling = crypto::measure(Duration::from_millis(500));
    let keys: Vec<Keypair> = (1..=b.senders).map(key).collect();
    if b.validators <= 1 {
        let fund: Vec<_> = keys.iter().map(|k| (k.address(), 1_000_000_000)).collect();
        let nodes = start(b, &fund).await?;
        return dev(b, &nodes, &keys, ceiling.verify_per_sec_all_cores).await;
    }
    // Each phase has its own senders, so none waits on another's nonces.
    let low: Vec<Keypair> = (0..LOW_LOAD_TXS).map(|i| key(1_000_000 + i)).collect();
    let steady: Vec<Keypair> = (0..SUSTAINED_SENDERS).map(|i| key(2_000_000 + i)).collect();
    let per_steady = (b.sustained_rate * b.sustained_seconds).div_ceil(SUSTAINED_SENDERS as u64);
    let fund: Vec<_> = [&keys, &low, &steady]
        .into_iter()
        .flatten()
        .map(|k| (k.address(), 1_000_000_000))
        .collect();
    let (low_txs, steady_txs, burst_txs) = (
        presign(&low, 1),
        presign(&steady, per_steady),
        presign(&keys, b.per_sender),
    );
    let nodes = start(b, &fund).await?;
    let clients: Vec<ChainClient> = nodes.rpcs.iter().map(|a| ChainClient::new(a)).collect();
    let chain = &clients[0];
    chain
        .wait_for_height(1, Duration::from_secs(60))
        .await
        .map_err(|e| e.to_string())?;
    let origin = Instant::now();
    let heads = follow_heads(
        chain.subscribe_heads().await.map_err(|e| e.to_string())?,
        origin,
    );
    let start_height = chain.chain_info().await.map_err(|e| e.to_string())?.height;
    let low = phase(&clients, &heads, origin, &low_txs, None).await?;
    let per_tick = (b.sustained_rate as f64 * TICK.as_secs_f64()).round() as usize;
    let steady = phase(&clients, &heads, origin, &steady_txs, Some(per_tick)).await?;
    let burst = phase(&clients, &heads, origin, &burst_txs, None).await?;
    let end_height = chain.chain_info().await.map_err(|e| e.to_string())?.height;
    let verify = ceiling.verify_per_sec_all_cores;
    Ok(json!({
        "bench": "chain",
        "validators": b.validators,
        "tx_per_sec": burst.tx_per_sec.round(),
        "p50_finality_ms": burst.p50_ms,
        "p99_finality_ms": burst.p99_ms,
        "txs": burst_txs.len(),
        "low_load_p50_finality_ms": low.p50_ms,
        "low_load_p99_finality_ms": low.p99_ms,
        "sustained_offered_tx_per_sec": b.sustained_rate,
        "sustained_seconds": b.sustained_seconds,
        "sustained_tx_per_sec": steady.tx_per_sec.round(),
        "sustained_p50_finality_ms": steady.p50_ms,
        "sustained_p99_finality_ms": steady.p99_ms,
        "verify_ceiling_per_sec": verify.round(),
        "ratio": (burst.tx_per_sec / verify * 1_000.0).round() / 1_000.0,
        "blocks": end_height - start_height,
    }))
}

/// The dev node: every sender's transfers at once, committed per second, with inclusion time.
async fn dev(
    b: &ChainBench,
    nodes: &Nodes,
    keys: &[Keypair],
    verify: f64,
) -> Result<serde_json::Value, String> {
    let clients: Vec<ChainClient> = nodes.rpcs.iter().map(|a| ChainClient::new(a)).collect();
    let txs = presign(keys, b.per_sender);
    let chain = &clients[0];
    let origin = Instant::now();
    let heads = follow_heads(
        chain.subscribe_heads().await.map_err(|e| e.to_string())?,
        origin,
    );
    let start_height = chain.chain_info().await.map_err(|e| e.to_string())?.height;
    let burst = phase(&clients, &heads, origin, &txs, None).await?;
    let end_height = chain.chain_info().await.map_err(|e| e.to_string())?.height;
    Ok(json!({
        "bench": "chain",
        "tx_per_sec": burst.tx_per_sec.round(),
        "verify_ceiling_per_sec": verify.round(),
        "ratio": (burst.tx_per_sec / verify * 1_000.0).round() / 1_000.0,
        "blocks": end_height - start_height,
        "p50_inclusion_ms": burst.p50_ms,
        "txs": txs.len(),
        "block_time_ms": b.block_time_ms,
    }))
}
