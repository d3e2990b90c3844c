//! `sluice-bench hub`: K payer/payee pairs of real `sluice-client` wallets (each with its own
//! SQLite store) over real WebSockets against a real `sluice-hub` process on Postgres (default)
//! or SQLite, on a real dev chain; each payer pays M invoices of its payee in a row, all pairs
//! at once. Reports routed payments per second and per-payment latency (invoice to proof).
//!
//! Ceiling: a payment is four co-signed updates (payer's lock, hub's lock, payee's unlock, hub's
//! unlock); each update costs one signature and one verification for each of its two parties,
//! so 8 signs + 8 verifies per payment. With single-core rates `s` (sign/s) and `v` (verify/s)
//! and `p = v_all / v` the measured all-core parallelism, the signature work alone allows
//! `ceiling = p / (8/s + 8/v)` payments per second on this machine, measured in the same run.

use super::crypto;
use crate::devnet::steps::{wait_for_collateral, Person};
use crate::harness::{HubStore, Network, NetworkOptions};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct HubBench {
    pub pairs: usize,
    pub payments: usize,
    pub store: HubStore,
}

const AMOUNT: u64 = 10;
const DEPOSIT: u64 = 1_000_000;

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

/// One payment, retried while the hub has not yet learned its collateral (warm-up only).
async fn pay_once(payer: &Person, payee: &Person, retry: bool) -> Result<f64, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let inv = payee
            .wallet
            .create_invoice(AMOUNT, "bench", Duration::from_secs(600))
            .await
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        match payer.wallet.pay(&inv.invoice).await {
            Ok(_) => return Ok(started.elapsed().as_secs_f64() * 1e3),
            Err(e) if retry && Instant::now() < deadline => {
                tracing_note(&e.to_string());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn tracing_note(e: &str) {
    eprintln!("warm-up payment not yet through: {e}");
}

pub async fn run(b: &HubBench) -> Result<serde_json::Value, String> {
    let rates = crypto::measure(Duration::from_millis(500));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut keys = Vec::new();
    for i in 0..2 * b.pairs {
        let home = dir.path().join(format!("w{i}"));
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        let key =
            sluice_client::keyfile::load_or_create(&home.join(sluice_client::config::KEY_FILE))
                .map_err(|e| e.to_string())?;
        keys.push((home, key.address()));
    }
    let opts = NetworkOptions {
        block_time_ms: 50,
        hub_store: b.store,
        tower: false,
        fund: keys.iter().map(|(_, a)| (*a, 10 * DEPOSIT)).collect(),
        hub_collateral: (DEPOSIT / 2, DEPOSIT),
        ..NetworkOptions::default()
    };
    let net = Network::start(opts).map_err(|e| e.to_string())?;
    let mut people = Vec::new();
    for (home, _) in &keys {
        let p = Person::open(&net, "bench", home, DEPOSIT)
            .await
            .map_err(|e| e.to_string())?;
        people.push(Arc::new(p));
    }
    let refs: Vec<&Person> = people.iter().map(|p| p.as_ref()).collect();
    wait_for_collateral(&net, &refs)
        .await
        .map_err(|e| e.to_string())?;
    for pair in people.chunks(2) {
        pay_once(&pair[0], &pair[1], true).await?;
    }

    let started = Instant::now();
    let mut runs = Vec::new();
    for pair in people.chunks(2) {
        let (payer, payee) = (pair[0].clone(), pair[1].clone());
        let m = b.payments;
        runs.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(m);
            for _ in 0..m {
                lat.push(pay_once(&payer, &payee, false).await?);
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut lat = Vec::new();
    for r in runs {
        lat.extend(r.await.map_err(|e| e.to_string())??);
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let rate = lat.len() as f64 / secs;
    let ceil = ceiling(&rates);
    Ok(json!({
        "bench": "hub",
        "store": match b.store { HubStore::Postgres => "postgres", HubStore::Sqlite => "sqlite" },
        "pairs": b.pairs,
        "payments": lat.len(),
        "payments_per_sec": (rate * 10.0).round() / 10.0,
        "p50_ms": (percentile(&lat, 0.5) * 10.0).round() / 10.0,
        "p99_ms": (percentile(&lat, 0.99) * 10.0).round() / 10.0,
        "crypto_ceiling_per_sec": ceil.round(),
        "ratio": (rate / ceil * 1e4).round() / 1e4,
    }))
}
