//! Settings: `HOME/tower.toml`, overridden by `SLUICE_TOWER_*` environment variables
//! (e.g. `SLUICE_TOWER_NODE_RPC=127.0.0.1:9000`). Relative paths are taken from the home.

use serde::{Deserialize, Serialize};
use sluice_protocol::wire::tower::MAX_TOWER_BODY;
use sluice_protocol::{Amount, ChainId, Keypair};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "tower.toml";
/// Every setting, commented out at its default, with why: the body of the `tower.toml` that
/// `init` writes.
pub const SAMPLE: &str = include_str!("../tower.sample.toml");
/// Written once the API listens: the bound `host:port` (useful with port 0).
pub const ADDR_FILE: &str = "tower.addr";
/// The API's port unless `listen_addr` says otherwise (the node's RPC is 8645, the hub's
/// sessions 8650 and admin API 8651).
pub const DEFAULT_PORT: u16 = 8655;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] sluice_home::keyfile::KeyFileError),
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    #[error("invalid setting: {0}")]
    Invalid(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError {
    let path = path.to_path_buf();
    move |source| ConfigError::Io { what, path, source }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The chain this tower serves; every state, auth and receipt is bound to it.
    pub chain_id: ChainId,
    /// HTTP API listen address; port 0 picks a free port (see `tower.addr`).
    pub listen_addr: String,
    /// `sqlite://…` (default: `tower.db` in the home) or `postgres://…`.
    pub store_url: String,
    pub store_connections: u32,
    /// The chain node's JSON-RPC address (`host:port`).
    pub node_rpc: String,
    /// Hex secret of the tower's key; its account pays challenge fees.
    pub key_file: PathBuf,
    /// Distinct channels one user may have watched.
    pub quota: u64,
    /// A request's nonce must be stamped within this many seconds of the tower's clock (either
    /// way); spent nonces are forgotten after twice that.
    pub nonce_window_secs: u64,
    /// Fee of a first challenge attempt; each retry doubles it up to `max_fee`.
    pub fee: Amount,
    pub max_fee: Amount,
    /// Blocks to wait for inclusion before resubmitting with a higher fee.
    pub retry_blocks: u64,
    /// How often a pending challenge is checked, in milliseconds.
    pub poll_ms: u64,
    /// Largest request body, in bytes.
    pub max_body: u64,
    /// Appointments waiting to be committed; past it the API answers 503.
    pub ingest_queue: usize,
    /// Most appointments committed in one store transaction.
    pub ingest_batch: usize,
    /// Most challenges tracked at once.
    pub max_responses: usize,
    /// Submissions one challenge may make (its first try and every fee bump) before the tower
    /// gives up on it: a bound on what one appointment can cost the tower.
    pub max_attempts: u32,
    /// Blocks the tower may lag behind the tip before `/health` answers 503: it cannot defend
    /// a close it has not read yet.
    pub health_max_behind: u64,
    /// What the API listener puts up with: header deadline, connection caps.
    pub listener: sluice_listener::ListenerLimits,
    /// TLS on the API listener (`https://`): `tls = { cert_file = "tower.crt", key_file =
    /// "tower.tls.key" }`, PEM files, relative paths under HOME. Absent: plain HTTP. A file that
    /// cannot be used stops the start with the file's name; a handshake must complete within
    /// `listener.header_read_timeout_ms`.
    pub tls: Option<sluice_listener::TlsFiles>,
    /// `POST /appointments` requests per second, and the burst above that rate, one source IP
    /// address may make; past it the API answers 429 `rate_limited`.
    pub submit_rate_per_source: u32,
    pub submit_burst_per_source: u32,
    /// The same for `POST /register`, stricter: every registration adds a user row, and a
    /// user never needs more than one.
    pub register_rate_per_source: u32,
    pub register_burst_per_source: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            chain_id: 1,
            listen_addr: format!("127.0.0.1:{DEFAULT_PORT}"),
            store_url: String::new(),
            store_connections: 8,
            node_rpc: "127.0.0.1:8645".into(),
            key_file: "tower.key".into(),
            quota: 1_000,
            nonce_window_secs: 600,
            fee: 10,
            max_fee: 10_000,
            retry_blocks: 3,
            poll_ms: 50,
            max_body: MAX_TOWER_BODY as u64,
            ingest_queue: 8_192,
            ingest_batch: 512,
            max_responses: 10_000,
            max_attempts: 32,
            health_max_behind: 10,
            listener: Default::default(),
            tls: None,
            // One host may post 100,000 appointments at once (the watchtower benchmark's load,
            // from one address, fits in the burst) and 10,000 a second after that.
            submit_rate_per_source: 10_000,
            submit_burst_per_source: 100_000,
            // Enough for a host that registers a few hundred wallets at once (the benchmark
            // registers about a hundred in a row), then one every 200 ms.
            register_rate_per_source: 5,
            register_burst_per_source: 200,
        }
    }
}

impl Config {
    /// Reads `HOME/tower.toml` (optional) and the environment; resolves paths against `home`.
    pub fn load(home: &Path) -> Result<Self, ConfigError> {
        let mut cfg: Config = sluice_home::settings::load(&home.join(CONFIG_FILE))?;
        if cfg.store_url.is_empty() {
            cfg.store_url = format!("sqlite://{}", home.join("tower.db").display());
        }
        if cfg.key_file.is_relative() {
            cfg.key_file = home.join(&cfg.key_file);
        }
        Ok(cfg)
    }
}

impl sluice_home::settings::Settings for Config {
    const ENV_PREFIX: &'static str = "SLUICE_TOWER";
    type Error = ConfigError;

    fn validate(&self) -> Result<(), ConfigError> {
        self.check()
    }
}

impl Config {
    fn check(&self) -> Result<(), ConfigError> {
        let positive = [
            ("quota", self.quota),
            ("nonce_window_secs", self.nonce_window_secs),
            ("ingest_queue", self.ingest_queue as u64),
            ("ingest_batch", self.ingest_batch as u64),
            ("max_responses", self.max_responses as u64),
            ("max_attempts", u64::from(self.max_attempts)),
            ("health_max_behind", self.health_max_behind),
            ("poll_ms", self.poll_ms),
            ("retry_blocks", self.retry_blocks),
            ("store_connections", u64::from(self.store_connections)),
            (
                "submit_rate_per_source",
                u64::from(self.submit_rate_per_source),
            ),
            (
                "submit_burst_per_source",
                u64::from(self.submit_burst_per_source),
            ),
            (
                "register_rate_per_source",
                u64::from(self.register_rate_per_source),
            ),
            (
                "register_burst_per_source",
                u64::from(self.register_burst_per_source),
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid(format!("{name} must be positive")));
        }
        if self.fee > self.max_fee {
            return Err(ConfigError::Invalid("fee is above max_fee".into()));
        }
        Ok(())
    }

    pub fn load_key(&self) -> Result<Keypair, ConfigError> {
        read_key(&self.key_file)
    }
}

pub fn read_key(path: &Path) -> Result<Keypair, ConfigError> {
    Ok(sluice_home::keyfile::load(path)?)
}

/// Creates `home` with a settings file and a fresh key (readable by the owner only).
pub fn init(
    home: &Path,
    chain_id: ChainId,
    node_rpc: Option<&str>,
) -> Result<Keypair, ConfigError> {
    std::fs::create_dir_all(home).map_err(io("create home", home))?;
    let cfg_path = home.join(CONFIG_FILE);
    if cfg_path.exists() {
        return Err(ConfigError::Exists(cfg_path));
    }
    let mut cfg = Config {
        chain_id,
        ..Config::default()
    };
    if let Some(rpc) = node_rpc {
        cfg.node_rpc = rpc.to_string();
    }
    let text = sluice_home::settings::init_file(&cfg, &Config::default(), SAMPLE)
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    std::fs::write(&cfg_path, text).map_err(io("write settings", &cfg_path))?;
    Ok(sluice_home::keyfile::create(&home.join(&cfg.key_file))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_shows_the_defaults() {
        let parsed: Config = toml::from_str(&sluice_home::settings::uncomment_sample(SAMPLE))
            .expect("the uncommented sample parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn a_misspelt_key_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), 42, Some("127.0.0.1:9")).unwrap();
        let file = dir.path().join(CONFIG_FILE);
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{text}\nmax_respones = 3\n")).unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("max_respones"), "{err}");
    }

    #[test]
    fn init_then_load_round_trips_and_env_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let key = init(dir.path(), 42, Some("127.0.0.1:9")).unwrap();
        let cfg = Config::load(dir.path()).unwrap();
        assert_eq!(cfg.chain_id, 42);
        assert_eq!(cfg.node_rpc, "127.0.0.1:9");
        assert_eq!(cfg.load_key().unwrap().address(), key.address());
        assert!(cfg.store_url.starts_with("sqlite://"));
        assert!(matches!(
            init(dir.path(), 42, None),
            Err(ConfigError::Exists(_))
        ));
    }

    #[test]
    fn zero_rate_limits_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), 42, None).unwrap();
        let cfg = Config {
            register_burst_per_source: 0,
            ..Config::load(dir.path()).unwrap()
        };
        match cfg.check() {
            Err(ConfigError::Invalid(m)) => assert!(m.contains("register_burst_per_source"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn bad_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            read_key(&path),
            Err(ConfigError::Key(
                sluice_home::keyfile::KeyFileError::Invalid(_)
            ))
        ));
    }
}
