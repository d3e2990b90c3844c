//! Measures committed transfers per second on a dev node:
//! `cargo run --release -p sluice-node --example throughput -- [senders] [per_sender] [block_ms]`
//! (needs `cargo build --release -p sluice-node` first). Prints one JSON line.

use serde_json::{json, Value};
use sluice_protocol::encoding::Canonical;
use sluice_protocol::{hex, Keypair, Transaction, TxKind};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn key(n: u32) -> Keypair {
    let mut s = [0u8; 32];
    s[..4].copy_from_slice(&n.to_be_bytes());
    s[31] = 1;
    Keypair::from_secret(&s).expect("key")
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let senders = *args.first().unwrap_or(&200) as u32;
    let per = *args.get(1).unwrap_or(&50);
    let block_ms = *args.get(2).unwrap_or(&200);
    let bin = std::env::current_exe()
        .expect("exe")
        .parent()
        .and_then(|p| p.parent())
        .expect("dir")
        .join("sluice-node");
    let home = tempfile::tempdir().expect("tmp");
    let keys: Vec<Keypair> = (1..=senders).map(key).collect();
    let mut init = Command::new(&bin);
    init.args([
        "init",
        "--chain-id",
        "1",
        "--rpc-addr",
        "127.0.0.1:0",
        "--block-time-ms",
        &block_ms.to_string(),
        "--home",
    ])
    .arg(home.path());
    for k in &keys {
        init.arg("--fund")
            .arg(format!("{}=1000000000", k.address()));
    }
    assert!(init.status().expect("init").success());
    let mut child = Command::new(&bin)
        .args(["run", "--dev", "--home"])
        .arg(home.path())
        .env("SLUICE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("run");
    let addr_file = home.path().join("rpc.addr");
    let addr = loop {
        if let Ok(s) = std::fs::read_to_string(&addr_file) {
            if s.ends_with('\n') {
                break format!("http://{}", s.trim());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Pre-sign everything (not timed), nonce-major so each request spreads over senders.
    let mut hexes = Vec::new();
    for nonce in 0..per {
        for k in &keys {
            let tx = Transaction {
                chain_id: 1,
                from: k.address(),
                nonce,
                fee: 1,
                kind: TxKind::Transfer {
                    to: key(0).address(),
                    amount: 1,
                },
            }
            .sign(k);
            hexes.push(hex::encode(&tx.to_bytes()));
        }
    }
    let total = hexes.len() as u64;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in hexes.chunks(1000) {
        let body = json!({"jsonrpc":"2.0","id":1,"method":"submit_txs","params":{"txs": chunk}});
        let (http, addr) = (http.clone(), addr.clone());
        tasks.push(tokio::spawn(async move {
            let r: Value = http
                .post(&addr)
                .json(&body)
                .send()
                .await
                .expect("post")
                .json()
                .await
                .expect("json");
            r["result"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|o| o.get("id").is_some()).count())
        }));
        // Keep at most a couple of requests in flight, like a steady client.
        if tasks.len() >= 2 {
            let t = tasks.remove(0);
            t.await.expect("task");
        }
    }
    for t in tasks {
        t.await.expect("task");
    }
    let submitted_in = started.elapsed();
    let last = key(senders);
    loop {
        let r: Value = http
            .post(&addr)
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"account","params":{"address": last.address()}}))
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("json");
        if r["result"]["nonce"].as_u64() == Some(per) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let info: Value = http
        .post(&addr)
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"chain_info"}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "{}",
        json!({"txs": total, "seconds": elapsed.as_secs_f64(), "tx_per_sec": total as f64 / elapsed.as_secs_f64(),
               "submit_seconds": submitted_in.as_secs_f64(), "blocks": info["result"]["height"]})
    );
}
