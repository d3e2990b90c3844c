//! Hub settings: `HOME/hub.toml`, overridden by `SLUICE_HUB_*` environment variables
//! (nested keys with `__`, e.g. `SLUICE_HUB_LIMITS__MAX_CONNECTIONS=500`).

use serde::{Deserialize, Serialize};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::{Amount, ChainId, Height};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "hub.toml";
pub const ADDR_FILE: &str = "hub.addr";
pub const KEY_FILE: &str = "hub.key";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HubConfig {
    /// `host:port`; port 0 picks a free port, written to `HOME/hub.addr`.
    pub listen: String,
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://HOME/hub.db`.
    pub store_url: String,
    pub store_max_connections: u32,
    /// The chain node's RPC `host:port`; empty runs without a chain (tests, offline).
    pub chain_rpc: String,
    /// Used only without a chain node; with one, the node's chain id is used.
    pub chain_id: ChainId,
    /// Key file path; relative paths are under HOME.
    pub key_file: String,
    pub terms: RoutingTerms,
    pub limits: Limits,
    pub collateral: CollateralPolicy,
    pub guard: GuardPolicy,
    /// Fee the hub pays on its own chain transactions.
    pub tx_fee: Amount,
}

/// Every bound the hub enforces (DESIGN.md: bounded everything).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub max_connections: usize,
    pub messages_per_sec: u32,
    /// Outgoing frames queued per session before the session is dropped as too slow.
    pub send_queue: usize,
    /// A session that sends nothing (not even `Ping`) for this long is closed.
    pub idle_timeout_ms: u64,
    pub auth_timeout_ms: u64,
    /// How long the hub waits for a client to answer its proposal (and a payee to unlock).
    pub reply_timeout_ms: u64,
    /// Largest payment the hub routes.
    pub max_payment: Amount,
    /// Payments being routed at once, hub-wide.
    pub max_inflight_payments: usize,
}

/// Keep the hub's side of each channel funded: below `threshold`, deposit up to `target`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CollateralPolicy {
    pub threshold: Amount,
    pub target: Amount,
    /// Seconds between retries of a job whose transaction is not yet included.
    pub retry_secs: u64,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            listen: "127.0.0.1:0".into(),
            store_url: String::new(),
            store_max_connections: 16,
            chain_rpc: String::new(),
            chain_id: 1,
            key_file: KEY_FILE.into(),
            terms: RoutingTerms::default(),
            limits: Limits::default(),
            collateral: CollateralPolicy::default(),
            guard: GuardPolicy::default(),
            tx_fee: 1,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            messages_per_sec: 1_000,
            send_queue: 256,
            idle_timeout_ms: 120_000,
            auth_timeout_ms: 10_000,
            reply_timeout_ms: 5_000,
            max_payment: 1_000_000_000,
            max_inflight_payments: 10_000,
        }
    }
}

/// How the hub enforces its channels on chain when clients stop cooperating.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GuardPolicy {
    /// When the hub knows a secret but the payer has not unlocked its lock to the hub by
    /// `expiry - claim_margin`, the hub registers the secret and force-closes the channel.
    /// Must be below `terms.reveal_margin` so the claim lands before `E_in`.
    pub claim_margin: Height,
    /// Milliseconds between guard rounds.
    pub interval_ms: u64,
    /// Seconds before an on-chain action of the guard is submitted again if still due.
    pub resubmit_secs: u64,
}

impl Default for GuardPolicy {
    fn default() -> Self {
        GuardPolicy {
            claim_margin: 10,
            interval_ms: 500,
            resubmit_secs: 3,
        }
    }
}

impl Default for CollateralPolicy {
    fn default() -> Self {
        CollateralPolicy {
            threshold: 0,
            target: 0,
            retry_secs: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode settings: {0}")]
    Encode(#[from] toml::ser::Error),
}

impl HubConfig {
    /// Loads `HOME/hub.toml` (optional) with environment overrides.
    pub fn load(home: &Path) -> Result<HubConfig, ConfigError> {
        let cfg = config::Config::builder()
            .add_source(config::File::from(home.join(CONFIG_FILE)).required(false))
            .add_source(
                config::Environment::with_prefix("SLUICE_HUB")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?;
        Ok(cfg.try_deserialize()?)
    }

    /// Writes these settings as `HOME/hub.toml`.
    pub fn write(&self, home: &Path) -> Result<(), ConfigError> {
        let path = home.join(CONFIG_FILE);
        std::fs::write(&path, toml::to_string_pretty(self)?)
            .map_err(|source| ConfigError::Write { path, source })
    }

    pub fn store_url(&self, home: &Path) -> String {
        match self.store_url.is_empty() {
            true => format!("sqlite://{}", home.join("hub.db").display()),
            false => self.store_url.clone(),
        }
    }

    pub fn key_path(&self, home: &Path) -> PathBuf {
        home.join(&self.key_file)
    }
}

/// Blocks from `height` that a lock must still have before the hub routes it.
pub fn min_lock_lifetime(terms: &RoutingTerms) -> Height {
    terms.policy.min_expiry_delta + terms.reveal_margin
}
