//! Schnorr signing and verification rates: the ceiling every other benchmark is measured against.

use serde_json::json;
use sluice_protocol::hash::{Hash32, Tag};
use sluice_protocol::keys::{Address, Keypair, Signature};
use std::time::{Duration, Instant};

/// Rates in operations per second.
#[derive(Debug, Clone, Copy)]
pub struct CryptoRates {
    pub sign_per_sec: f64,
    pub verify_per_sec: f64,
    pub verify_per_sec_all_cores: f64,
    pub cores: usize,
}

fn digest(i: u64) -> Hash32 {
    sluice_protocol::tagged_hash(Tag::State, &i.to_be_bytes())
}

/// Runs `op` repeatedly for about `budget` and returns operations per second.
fn rate(budget: Duration, mut op: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            op(n);
            n += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn signed_set(key: &Keypair, n: usize) -> Vec<(Hash32, Signature)> {
    (0..n as u64)
        .map(|i| (digest(i), key.sign_hash(&digest(i))))
        .collect()
}

fn verify_rate(addr: Address, set: &[(Hash32, Signature)], budget: Duration) -> f64 {
    rate(budget, |i| {
        let (d, s) = &set[i as usize % set.len()];
        assert!(
            addr.verify_hash(d, s).is_ok(),
            "benchmark signature must verify"
        );
    })
}

/// Measures sign and verify on one core, then verify on every core at once.
pub fn measure(budget: Duration) -> CryptoRates {
    let key = Keypair::from_secret(&[42; 32]).expect("fixed benchmark key is valid");
    let addr = key.address();
    let set = signed_set(&key, 1024);
    let sign_per_sec = rate(budget, |i| {
        std::hint::black_box(key.sign_hash(&digest(i)));
    });
    let verify_per_sec = verify_rate(addr, &set, budget);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let verify_per_sec_all_cores = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores)
            .map(|_| s.spawn(|| verify_rate(addr, &set, budget)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    });
    CryptoRates {
        sign_per_sec,
        verify_per_sec,
        verify_per_sec_all_cores,
        cores,
    }
}

/// The `{"bench":"crypto",…}` line.
pub fn report(r: &CryptoRates) -> serde_json::Value {
    json!({
        "bench": "crypto",
        "sign_per_sec": r.sign_per_sec.round(),
        "verify_per_sec": r.verify_per_sec.round(),
        "verify_per_sec_all_cores": r.verify_per_sec_all_cores.round(),
        "cores": r.cores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_positive_and_all_cores_is_not_slower() {
        let r = measure(Duration::from_millis(100));
        assert!(r.sign_per_sec > 0.0 && r.verify_per_sec > 0.0);
        assert!(
            r.verify_per_sec_all_cores >= r.verify_per_sec * 0.5,
            "{r:?}"
        );
        let line = report(&r);
        assert_eq!(line["bench"], "crypto");
    }
}
