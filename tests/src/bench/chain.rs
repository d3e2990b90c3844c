//! `sluice-bench chain`: many accounts' pre-signed transfers submitted over RPC to a dev node
//! until all are committed, with a durable sync per block. The ceiling is all-core signature
//! verification measured in the same run: a node that verifies every transaction once can never
//! beat it.

use super::crypto;
use crate::harness::{binaries, start_node, wait_for_file, Daemon, NetworkOptions};
use serde_json::json;
use sluice_chain_client::ChainClient;
use sluice_protocol::{Keypair, SignedTx, Transaction, TxKind};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct ChainBench {
    pub senders: u32,
    pub per_sender: u64,
    pub block_time_ms: u64,
    /// 1: a `--dev` node; more: a Malachite testnet of that many validator processes.
    pub validators: usize,
}

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

pub async fn run(b: &ChainBench) -> Result<serde_json::Value, String> {
    let ceiling = crypto::measure(Duration::from_millis(500));
    let keys: Vec<Keypair> = (1..=b.senders).map(key).collect();
    let fund: Vec<_> = keys.iter().map(|k| (k.address(), 1_000_000_000)).collect();
    let nodes = start(b, &fund).await?;
    let clients: Vec<ChainClient> = nodes.rpcs.iter().map(|a| ChainClient::new(a)).collect();
    let chain = clients[0].clone();
    if b.validators > 1 {
        chain
            .wait_for_height(1, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())?;
    }
    let txs = presign(&keys, b.per_sender);
    let mut heads = chain.subscribe_heads().await.map_err(|e| e.to_string())?;
    let start_height = chain.chain_info().await.map_err(|e| e.to_string())?.height;
    let started = Instant::now();
    // Sample every 97th transaction for inclusion latency.
    let mut sampled: Vec<(sluice_protocol::Hash32, f64)> = Vec::new();
    for (i, batch) in txs.chunks(1_000).enumerate() {
        let at = started.elapsed().as_secs_f64();
        let out = clients[i % clients.len()]
            .submit_many(batch)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(e) = out.iter().find_map(|o| o.error.clone()) {
            return Err(format!("batch {i} refused: {e}"));
        }
        sampled.extend(batch.iter().step_by(97).map(|t| (t.id(), at)));
    }
    let last = keys.last().map(|k| k.address()).unwrap_or_default();
    let mut head_at: HashMap<u64, f64> = HashMap::new();
    // Blocks committed before the last batch went in are caught up from the chain below.
    loop {
        let h = tokio::time::timeout(Duration::from_secs(60), heads.next())
            .await
            .map_err(|_| "no block for 60 s".to_string())?
            .map_err(|e| e.to_string())?;
        head_at.insert(h.height, started.elapsed().as_secs_f64());
        if chain.account(&last).await.map_err(|e| e.to_string())?.nonce >= b.per_sender {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let end_height = chain.chain_info().await.map_err(|e| e.to_string())?.height;
    let mut inclusion = Vec::new();
    for (id, at) in &sampled {
        if let Some(info) = chain.tx(id).await.map_err(|e| e.to_string())? {
            if let Some(t) = head_at.get(&info.height) {
                inclusion.push((t - at) * 1_000.0);
            }
        }
    }
    inclusion.sort_by(|a, b| a.total_cmp(b));
    let tx_per_sec = txs.len() as f64 / elapsed;
    if b.validators > 1 {
        return Ok(json!({
            "bench": "chain",
            "validators": b.validators,
            "tx_per_sec": tx_per_sec.round(),
            "verify_ceiling_per_sec": ceiling.verify_per_sec_all_cores.round(),
            "ratio": (tx_per_sec / ceiling.verify_per_sec_all_cores * 1_000.0).round() / 1_000.0,
            "blocks": end_height - start_height,
            "p50_finality_ms": percentile(&inclusion, 0.5).round(),
            "p99_finality_ms": percentile(&inclusion, 0.99).round(),
            "txs": txs.len(),
        }));
    }
    Ok(json!({
        "bench": "chain",
        "tx_per_sec": tx_per_sec.round(),
        "verify_ceiling_per_sec": ceiling.verify_per_sec_all_cores.round(),
        "ratio": (tx_per_sec / ceiling.verify_per_sec_all_cores * 1_000.0).round() / 1_000.0,
        "blocks": end_height - start_height,
        "p50_inclusion_ms": percentile(&inclusion, 0.5).round(),
        "txs": txs.len(),
        "block_time_ms": b.block_time_ms,
    }))
}
