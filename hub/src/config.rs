//! Hub settings: `HOME/hub.toml`, overridden by `SLUICE_HUB_*` environment variables
//! (nested keys with `__`, e.g. `SLUICE_HUB_LIMITS__MAX_CONNECTIONS=500`).

use serde::{Deserialize, Serialize};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::{Amount, ChainId, Height};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "hub.toml";
/// Every setting, commented out at its default, with why: the body of the `hub.toml` that
/// `init` writes.
pub const SAMPLE: &str = include_str!("../hub.sample.toml");
pub const ADDR_FILE: &str = "hub.addr";
pub const KEY_FILE: &str = "hub.key";
pub const ADMIN_ADDR_FILE: &str = "admin.addr";
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Where client sessions connect unless `listen` says otherwise (the node's RPC is 8645, the
/// watchtower's API 8655).
pub const DEFAULT_PORT: u16 = 8650;
/// The admin API's port unless `admin_listen` says otherwise.
pub const DEFAULT_ADMIN_PORT: u16 = 8651;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Client sessions (`/ws` only): `host:port`; port 0 picks a free port, written to
    /// `HOME/hub.addr`.
    pub listen: String,
    /// The admin API and metrics: `host:port`, loopback unless the operator opens it; port 0
    /// picks a free port, written to `HOME/admin.addr`.
    pub admin_listen: String,
    /// The admin API's bearer token file (0600); relative paths are under HOME.
    pub admin_token_file: String,
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://HOME/hub.db`. Postgres over TLS:
    /// `?sslmode=require`, or `?sslmode=verify-full&sslrootcert=PATH` to check its certificate.
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
    /// What the listener (sessions, admin API) puts up with: header deadline, connection caps.
    pub listener: sluice_listener::ListenerLimits,
    /// TLS on both listeners (sessions become `wss://`, the admin API `https://`):
    /// `tls = { cert_file = "hub.crt", key_file = "hub.tls.key" }`, PEM files, relative paths
    /// under HOME. Absent: both listeners are plain. A file that cannot be used stops the start
    /// with the file's name; a handshake must complete within `listener.header_read_timeout_ms`.
    pub tls: Option<sluice_listener::TlsFiles>,
}

/// Every bound the hub enforces (DESIGN.md: bounded everything).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Payments one payer may have in flight at once; past it its next lock is refused, so
    /// one payer cannot take every routing slot (ATTACKS F18).
    pub max_inflight_per_payer: usize,
    /// On SIGTERM the hub takes no new payment and waits this long for the updates and
    /// payments under way to finish before it exits (what is left resumes at the next start).
    pub drain_timeout_ms: u64,
}

/// Keep the hub's side of each channel funded: below `threshold`, deposit up to `target`; idle
/// above `reclaim_threshold` for `reclaim_idle_secs`, withdraw back down to `target`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollateralPolicy {
    pub threshold: Amount,
    pub target: Amount,
    /// Channels whose client deposited less get no collateral: otherwise anyone could freeze
    /// `target` of the hub's capital per channel for the price of opening it (F12).
    pub min_client_deposit: Amount,
    /// Seconds between retries of a job whose transaction is not yet included.
    pub retry_secs: u64,
    /// The hub's side above this, untouched for `reclaim_idle_secs`, is withdrawn back to the
    /// hub's account down to `target` (0: never). Must exceed `target`, or the hub would
    /// deposit and reclaim the same funds in turn.
    pub reclaim_threshold: Amount,
    /// How long a channel's state must go unchanged before its collateral counts as idle.
    pub reclaim_idle_secs: u64,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            listen: format!("127.0.0.1:{DEFAULT_PORT}"),
            admin_listen: format!("127.0.0.1:{DEFAULT_ADMIN_PORT}"),
            admin_token_file: ADMIN_TOKEN_FILE.into(),
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
            listener: Default::default(),
            tls: None,
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
            max_inflight_per_payer: 100,
            drain_timeout_ms: 15_000,
        }
    }
}

/// How the hub enforces its channels on chain when clients stop cooperating.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardPolicy {
    /// When the hub knows a secret but the payer has not unlocked its lock to the hub by
    /// `expiry - claim_margin`, the hub registers the secret and force-closes the channel.
    /// Must be below `terms.reveal_margin` so the claim lands before `E_in`.
    pub claim_margin: Height,
    /// Milliseconds between guard rounds.
    pub interval_ms: u64,
    /// Seconds before an on-chain action of the guard is submitted again if still due.
    pub resubmit_secs: u64,
    /// Highest fee the guard bids on an urgent transaction (each resubmission doubles it).
    pub max_fee: Amount,
    /// Milliseconds the hub's view of the chain height may go without news from the node
    /// before client updates are refused (a stale height would let a lock look alive past its
    /// expiry; ATTACKS F18). The follower hears from the node at least every 5 s.
    pub max_height_age_ms: u64,
}

impl Default for GuardPolicy {
    fn default() -> Self {
        GuardPolicy {
            claim_margin: 10,
            interval_ms: 500,
            resubmit_secs: 3,
            max_fee: 100_000,
            max_height_age_ms: 30_000,
        }
    }
}

impl Default for CollateralPolicy {
    fn default() -> Self {
        CollateralPolicy {
            threshold: 0,
            target: 0,
            min_client_deposit: 1_000,
            retry_secs: 5,
            reclaim_threshold: 0,
            reclaim_idle_secs: 3_600,
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
    #[error("setting {key} = {value}: {why}")]
    Invalid {
        key: &'static str,
        value: String,
        why: &'static str,
    },
}

/// The fewest blocks the guard keeps to register a secret and close before a lock expires: one
/// block to include each transaction, with a retry.
pub const MIN_CLAIM_MARGIN: Height = 4;
/// The shortest `guard.max_height_age_ms`: twice the follower's longest quiet spell.
const MIN_HEIGHT_AGE_MS: u64 = 10_000;

impl HubConfig {
    /// Loads `HOME/hub.toml` (optional) with environment overrides, validated.
    pub fn load(home: &Path) -> Result<HubConfig, ConfigError> {
        sluice_home::settings::load(&home.join(CONFIG_FILE))
    }

    /// Refuses settings under which the hub could lose funds or stall, naming the key: the guard
    /// must claim before the incoming lock expires (`claim_margin < reveal_margin`, with room to
    /// include its transactions), collateral must refill to at least its threshold, lock
    /// lifetimes must form a range, and every limit must let something through.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, value: &dyn std::fmt::Display, why| {
            Err(ConfigError::Invalid {
                key,
                value: value.to_string(),
                why,
            })
        };
        let (t, g, c, l) = (&self.terms, &self.guard, &self.collateral, &self.limits);
        if g.claim_margin < MIN_CLAIM_MARGIN {
            return invalid(
                "guard.claim_margin",
                &g.claim_margin,
                "at least 4 blocks, to register and close in time",
            );
        }
        if g.claim_margin >= t.reveal_margin {
            return invalid("guard.claim_margin", &g.claim_margin, "must be below terms.reveal_margin, or the claim lands after the incoming lock expires");
        }
        if t.min_challenge_period <= g.claim_margin {
            return invalid(
                "terms.min_challenge_period",
                &t.min_challenge_period,
                "must exceed guard.claim_margin, or a stale close can settle before the hub reacts",
            );
        }
        if g.max_fee < self.tx_fee {
            return invalid("guard.max_fee", &g.max_fee, "must be at least tx_fee");
        }
        if g.max_height_age_ms < MIN_HEIGHT_AGE_MS {
            return invalid(
                "guard.max_height_age_ms",
                &g.max_height_age_ms,
                "must be at least 10000: the chain follower may be quiet for 5 s",
            );
        }
        if c.threshold > c.target {
            return invalid(
                "collateral.threshold",
                &c.threshold,
                "must not exceed collateral.target",
            );
        }
        if c.reclaim_threshold > 0 && c.reclaim_threshold <= c.target {
            return invalid(
                "collateral.reclaim_threshold",
                &c.reclaim_threshold,
                "must exceed collateral.target (or be 0), or deposits and reclaims alternate",
            );
        }
        if t.policy.min_expiry_delta > t.policy.max_expiry_delta {
            return invalid(
                "terms.policy.min_expiry_delta",
                &t.policy.min_expiry_delta,
                "must not exceed terms.policy.max_expiry_delta",
            );
        }
        if t.policy.max_expiry_delta <= min_lock_lifetime(t) {
            return invalid(
                "terms.policy.max_expiry_delta",
                &t.policy.max_expiry_delta,
                "must exceed min_expiry_delta + reveal_margin, or no payment can be routed",
            );
        }
        for (key, v) in [
            ("limits.max_connections", l.max_connections as u64),
            ("limits.messages_per_sec", u64::from(l.messages_per_sec)),
            ("limits.send_queue", l.send_queue as u64),
            ("limits.reply_timeout_ms", l.reply_timeout_ms),
            (
                "limits.max_inflight_payments",
                l.max_inflight_payments as u64,
            ),
            (
                "limits.max_inflight_per_payer",
                l.max_inflight_per_payer as u64,
            ),
            ("terms.policy.max_locks", t.policy.max_locks as u64),
        ] {
            if v == 0 {
                return invalid(key, &v, "must be above zero");
            }
        }
        Ok(())
    }

    /// Writes these settings as `HOME/hub.toml`: what differs from the defaults, then the
    /// commented sample of every setting.
    pub fn write(&self, home: &Path) -> Result<(), ConfigError> {
        let path = home.join(CONFIG_FILE);
        let text = sluice_home::settings::init_file(self, &HubConfig::default(), SAMPLE)?;
        std::fs::write(&path, text).map_err(|source| ConfigError::Write { path, source })
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

    pub fn admin_token_path(&self, home: &Path) -> PathBuf {
        home.join(&self.admin_token_file)
    }
}

impl sluice_home::settings::Settings for HubConfig {
    const ENV_PREFIX: &'static str = "SLUICE_HUB";
    type Error = ConfigError;

    fn validate(&self) -> Result<(), ConfigError> {
        HubConfig::validate(self)
    }
}

/// Blocks from `height` that a lock must still have before the hub routes it.
pub fn min_lock_lifetime(terms: &RoutingTerms) -> Height {
    terms.policy.min_expiry_delta + terms.reveal_margin
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(cfg: &HubConfig) -> Option<&'static str> {
        match cfg.validate() {
            Err(ConfigError::Invalid { key, .. }) => Some(key),
            _ => None,
        }
    }

    #[test]
    fn a_misspelt_key_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[limits]\nmax_conections = 5\n",
        )
        .unwrap();
        let err = HubConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("max_conections"), "{err}");
        std::fs::write(dir.path().join(CONFIG_FILE), "listn = \"127.0.0.1:1\"\n").unwrap();
        let err = HubConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("listn"), "{err}");
    }

    #[test]
    fn the_sample_shows_the_defaults() {
        let parsed: HubConfig = toml::from_str(&sluice_home::settings::uncomment_sample(SAMPLE))
            .expect("the uncommented sample parses");
        let text = |c: &HubConfig| toml::to_string(c).unwrap();
        assert_eq!(text(&parsed), text(&HubConfig::default()));
    }

    #[test]
    fn init_keeps_what_was_chosen() {
        let home = tempfile::tempdir().unwrap();
        let cfg = HubConfig {
            chain_rpc: "10.0.0.9:8645".into(),
            ..HubConfig::default()
        };
        cfg.write(home.path()).unwrap();
        assert_eq!(
            HubConfig::load(home.path()).unwrap().chain_rpc,
            "10.0.0.9:8645"
        );
    }

    #[test]
    fn the_defaults_are_valid() {
        assert!(HubConfig::default().validate().is_ok());
    }

    #[test]
    fn a_claim_margin_at_or_above_the_reveal_margin_is_refused() {
        let mut cfg = HubConfig::default();
        cfg.guard.claim_margin = cfg.terms.reveal_margin;
        assert_eq!(key_of(&cfg), Some("guard.claim_margin"));
        cfg.guard.claim_margin = 1;
        assert_eq!(key_of(&cfg), Some("guard.claim_margin"));
    }

    #[test]
    fn a_challenge_period_minimum_within_the_claim_margin_is_refused() {
        let mut cfg = HubConfig::default();
        cfg.terms.min_challenge_period = cfg.guard.claim_margin;
        assert_eq!(key_of(&cfg), Some("terms.min_challenge_period"));
    }

    #[test]
    fn a_fee_ceiling_below_the_base_fee_is_refused() {
        let mut cfg = HubConfig {
            tx_fee: 10,
            ..HubConfig::default()
        };
        cfg.guard.max_fee = 9;
        assert_eq!(key_of(&cfg), Some("guard.max_fee"));
    }

    #[test]
    fn a_threshold_above_the_target_is_refused() {
        let mut cfg = HubConfig::default();
        cfg.collateral.threshold = 10;
        cfg.collateral.target = 5;
        assert_eq!(key_of(&cfg), Some("collateral.threshold"));
        cfg.collateral.threshold = 5;
        cfg.collateral.reclaim_threshold = 5;
        assert_eq!(key_of(&cfg), Some("collateral.reclaim_threshold"));
    }

    #[test]
    fn lock_lifetimes_must_leave_room_to_route() {
        let mut cfg = HubConfig::default();
        cfg.terms.policy.max_expiry_delta = min_lock_lifetime(&cfg.terms);
        assert_eq!(key_of(&cfg), Some("terms.policy.max_expiry_delta"));
        cfg.terms.policy.min_expiry_delta = cfg.terms.policy.max_expiry_delta + 1;
        assert_eq!(key_of(&cfg), Some("terms.policy.min_expiry_delta"));
    }

    #[test]
    fn zero_limits_are_refused() {
        let mut cfg = HubConfig::default();
        cfg.limits.reply_timeout_ms = 0;
        assert_eq!(key_of(&cfg), Some("limits.reply_timeout_ms"));
    }

    #[test]
    fn an_environment_override_is_validated_at_load() {
        let home = tempfile::tempdir().unwrap();
        let mut cfg = HubConfig::default();
        cfg.guard.claim_margin = 50;
        cfg.write(home.path()).unwrap();
        let err = HubConfig::load(home.path()).unwrap_err().to_string();
        assert!(err.contains("guard.claim_margin"), "{err}");
    }
}
