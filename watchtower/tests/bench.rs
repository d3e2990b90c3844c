//! Figures for `sluice-bench watchtower`, measured here too (run with `--ignored --nocapture`,
//! ideally in release): verified appointments ingested per second through the request logic,
//! and the resident memory of a `sluice-watchtower` process watching 100,000 channels.

use sluice_protocol::Keypair;
use sluice_test_support::{bin_path, wait_for_file, Daemon};
use sluice_watchtower::fixtures::{appointment_request, random_nonce, TestChannel};
use sluice_watchtower::store::NewAppointment;
use sluice_watchtower::{config, Config};
use std::process::Command;
use std::time::{Duration, Instant};

const CHAIN: u64 = 7;

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn bench_watchtower_figures() {
    let n: usize = std::env::var("BENCH_APPOINTMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let dir = tempfile::tempdir().unwrap();
    config::init(dir.path(), CHAIN, Some("127.0.0.1:1")).unwrap();
    let mut cfg = Config::load(dir.path()).unwrap();
    cfg.quota = 200_000;
    let run = sluice_watchtower::start(dir.path(), cfg).await.unwrap();
    let tower = run.tower.clone();
    let user = Keypair::generate();
    let reg = sluice_watchtower::fixtures::register_request(&user, CHAIN, &tower.address());
    tower.register(reg).await.unwrap();
    let reqs: Vec<_> = (0..n)
        .map(|_| {
            let ch = TestChannel::new(CHAIN, user.clone(), Keypair::generate(), random_nonce());
            appointment_request(&user, CHAIN, &tower.address(), ch.appointment(1, 1))
        })
        .collect();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for chunk in reqs.chunks(n.div_ceil(64)) {
        let (t, chunk) = (tower.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for r in chunk {
                t.submit(r).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let per_sec = n as f64 / start.elapsed().as_secs_f64();

    // Fill up to 100,000 channels directly (same row size), then measure a real process.
    let snapshot = TestChannel::new(CHAIN, user.clone(), Keypair::generate(), random_nonce());
    let ap = snapshot.appointment(1, 1);
    let store = tower.store.clone();
    let mut have = store.appointment_count().await.unwrap() as usize;
    while have < 100_000 {
        let batch: Vec<_> = (0..1_000.min(100_000 - have))
            .map(|_| NewAppointment {
                user: user.address(),
                nonce: random_nonce(),
                channel_id: random_nonce(),
                appointment: ap.clone(),
            })
            .collect();
        let out = store.put_appointments(&batch, 0).await.unwrap();
        assert!(out.iter().all(|r| r.is_ok()));
        have += batch.len();
    }
    run.stop().await;
    let _ = std::fs::remove_file(dir.path().join("tower.addr"));
    let mut cmd = Command::new(bin_path("sluice-watchtower").unwrap());
    cmd.args(["run", "--home"]).arg(dir.path());
    let d = Daemon::spawn("sluice-watchtower", cmd, &dir.path().join("tower.log")).unwrap();
    let addr = wait_for_file(&dir.path().join("tower.addr"), Duration::from_secs(20)).unwrap();
    let health: sluice_watchtower::Health = reqwest::get(format!("http://{addr}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health.appointments, 100_000);
    let rss = rss_mib(d.pid().unwrap());
    println!(
        "{}",
        serde_json::json!({"bench": "watchtower", "appointments_per_sec": per_sec.round(), "appointments": n, "rss_mib_100k_channels": (rss * 10.0).round() / 10.0})
    );
}
