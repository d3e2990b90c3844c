//! Node settings: `DIR/config.toml`, overridden by `SLUICE_NODE_*` environment variables
//! (e.g. `SLUICE_NODE_RPC_ADDR=127.0.0.1:0`, `SLUICE_NODE_BLOCK_TIME_MS=50`), overridden by CLI
//! flags. Consensus-level values (fees, channel rules, chain limits) live in the genesis file.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

pub const CONFIG_FILE: &str = "config.toml";
/// Every setting, commented out at its default, with why: the body of the `config.toml` that
/// `init` writes.
pub const SAMPLE: &str = include_str!("../node.sample.toml");
/// Written after the RPC listener is bound, holding `host:port` (useful with port 0).
pub const RPC_ADDR_FILE: &str = "rpc.addr";
pub const DATA_DIR: &str = "data";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Where JSON-RPC (HTTP `POST /`, WebSocket `/ws`, `/health`, `/metrics`) listens.
    pub rpc_addr: SocketAddr,
    /// `tls = { cert_file = "node.crt", key_file = "node.tls.key" }`: PEM files (relative paths
    /// under the home) for RPC over TLS (`https://`, `wss://`). Absent: plain.
    pub tls: Option<sluice_listener::TlsFiles>,
    /// Dev producer: seal a block this often when transactions wait.
    pub block_time_ms: u64,
    /// Most transactions this node puts in one block (capped by genesis `limits.max_block_txs`).
    pub max_block_txs: usize,
    pub mempool_max_txs: usize,
    pub mempool_max_per_account: usize,
    /// How far above the account nonce a pending transaction may be.
    pub mempool_max_nonce_gap: u64,
    /// Blocks a transaction that cannot execute yet (a nonce gap) may wait before it goes.
    pub mempool_max_gapped_blocks: u64,
    /// Largest HTTP body or WebSocket message.
    pub max_request_bytes: usize,
    /// Milliseconds a client has to send a request's headers (idle sockets are closed).
    pub header_read_timeout_ms: u64,
    /// RPC connections open at once, in total and from one IP address.
    pub max_connections: usize,
    pub max_connections_per_source: usize,
    /// JSON-RPC calls per second, and the burst above that rate, one source IP address may make
    /// over all its HTTP and WebSocket connections together. Every call counts, each entry of a
    /// batch and every notification included; a call over it is refused with `RATE_LIMITED`.
    pub rpc_rate_per_source: u32,
    pub rpc_burst_per_source: u32,
    /// The same for one connection (an HTTP keep-alive connection or a WebSocket), so one busy
    /// connection cannot take a whole source's allowance.
    pub rpc_rate_per_connection: u32,
    pub rpc_burst_per_connection: u32,
    /// Most calls in one JSON-RPC batch array.
    pub max_batch_len: usize,
    /// Most transactions in one `submit_txs`.
    pub max_submit_txs: usize,
    pub max_subscriptions_per_conn: usize,
    /// Outgoing messages queued per WebSocket before a slow subscriber is dropped.
    pub ws_queue_len: usize,
    /// Most events one `events` call returns; a wider query is refused.
    pub max_events_per_query: usize,
    /// Widest `events` height range.
    pub max_event_range: u64,
    /// `tracing` filter, e.g. `info` or `sluice_node=debug`.
    pub log: String,
    /// Consensus P2P listen address (libp2p multiaddr).
    pub p2p_listen: String,
    /// Consensus peers to stay connected to (multiaddrs). Comma-separated in the environment.
    pub p2p_peers: Vec<String>,
    /// Largest consensus or sync message accepted from a peer.
    pub p2p_max_message_bytes: usize,
    /// JSON-RPC URLs of peers that transactions admitted here are relayed to (mempool gossip).
    pub relay_peers: Vec<String>,
    /// Most transactions per relay request.
    pub relay_batch: usize,
    /// Consensus round timeouts (the propose timeout is also the proposer's build budget).
    pub timeout_propose_ms: u64,
    pub timeout_prevote_ms: u64,
    pub timeout_precommit_ms: u64,
    /// `/health` answers 503 when a transaction that could execute has waited this long with
    /// no block committed (a dev node: keep it above `block_time_ms`).
    pub health_max_stall_ms: u64,
    /// `/health` answers 503 when peers have shown a height more than this many blocks above
    /// our tip (still syncing).
    pub health_max_lag_blocks: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], 8645)),
            tls: None,
            block_time_ms: 500,
            max_block_txs: 10_000,
            mempool_max_txs: 200_000,
            mempool_max_per_account: 1_000,
            mempool_max_nonce_gap: 64,
            mempool_max_gapped_blocks: 20,
            max_request_bytes: 8 * 1024 * 1024,
            header_read_timeout_ms: 10_000,
            max_connections: 8_192,
            max_connections_per_source: 2_048,
            // Far above what a hub, wallets, towers or the benchmarks send (the chain benchmark
            // sends a few `submit_txs` calls of 1,000 transactions a second), yet a bound on
            // what one host can make the node do.
            rpc_rate_per_source: 20_000,
            rpc_burst_per_source: 40_000,
            rpc_rate_per_connection: 10_000,
            rpc_burst_per_connection: 20_000,
            max_batch_len: 100,
            max_submit_txs: 10_000,
            max_subscriptions_per_conn: 16,
            ws_queue_len: 4096,
            max_events_per_query: 10_000,
            max_event_range: 100_000,
            // `libp2p_swarm=debug` keeps one line per refused inbound connection (garbage on
            // the P2P port fails the handshake there, before any of our code sees it).
            log: "info,fjall=warn,lsm_tree=warn,libp2p=warn,libp2p_swarm=debug,informalsystems_malachitebft=warn,malachitebft=warn".into(),
            p2p_listen: "/ip4/127.0.0.1/tcp/26656".into(),
            p2p_peers: vec![],
            p2p_max_message_bytes: 8 * 1024 * 1024,
            relay_peers: vec![],
            relay_batch: 5_000,
            timeout_propose_ms: 2_000,
            timeout_prevote_ms: 1_000,
            timeout_precommit_ms: 1_000,
            health_max_stall_ms: 30_000,
            health_max_lag_blocks: 5,
        }
    }
}

impl sluice_home::settings::Settings for NodeConfig {
    const ENV_PREFIX: &'static str = "SLUICE_NODE";
    const LIST_KEYS: &'static [&'static str] = &["p2p_peers", "relay_peers"];
    type Error = ConfigError;

    fn validate(&self) -> Result<(), ConfigError> {
        NodeConfig::validate(self)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl NodeConfig {
    /// Defaults, then `home/config.toml` if present, then `SLUICE_NODE_*` variables; validated.
    pub fn load(home: &Path) -> Result<Self, ConfigError> {
        sluice_home::settings::load(&home.join(CONFIG_FILE))
    }

    /// What the RPC listener puts up with.
    pub fn listener_limits(&self) -> sluice_listener::ListenerLimits {
        sluice_listener::ListenerLimits {
            header_read_timeout_ms: self.header_read_timeout_ms,
            max_connections: self.max_connections,
            max_connections_per_source: self.max_connections_per_source,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("block_time_ms", self.block_time_ms as usize),
            ("max_block_txs", self.max_block_txs),
            ("mempool_max_txs", self.mempool_max_txs),
            ("mempool_max_per_account", self.mempool_max_per_account),
            (
                "mempool_max_gapped_blocks",
                self.mempool_max_gapped_blocks as usize,
            ),
            ("max_request_bytes", self.max_request_bytes),
            (
                "header_read_timeout_ms",
                self.header_read_timeout_ms as usize,
            ),
            ("max_connections", self.max_connections),
            (
                "max_connections_per_source",
                self.max_connections_per_source,
            ),
            ("rpc_rate_per_source", self.rpc_rate_per_source as usize),
            ("rpc_burst_per_source", self.rpc_burst_per_source as usize),
            (
                "rpc_rate_per_connection",
                self.rpc_rate_per_connection as usize,
            ),
            (
                "rpc_burst_per_connection",
                self.rpc_burst_per_connection as usize,
            ),
            ("max_batch_len", self.max_batch_len),
            ("max_submit_txs", self.max_submit_txs),
            ("ws_queue_len", self.ws_queue_len),
            ("max_events_per_query", self.max_events_per_query),
            ("p2p_max_message_bytes", self.p2p_max_message_bytes),
            ("relay_batch", self.relay_batch),
            ("timeout_propose_ms", self.timeout_propose_ms as usize),
            ("health_max_stall_ms", self.health_max_stall_ms as usize),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(ConfigError::Invalid(format!("{name} must be positive"))),
            None => Ok(()),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = sluice_home::settings::init_file(self, &NodeConfig::default(), SAMPLE)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        std::fs::write(path, text).map_err(|source| ConfigError::Write {
            path: path.display().to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sample_shows_the_defaults() {
        let text = sluice_home::settings::uncomment_sample(super::SAMPLE);
        let parsed: super::NodeConfig = toml::from_str(&text).expect("the sample parses");
        assert_eq!(parsed, super::NodeConfig::default());
    }

    use super::*;

    #[test]
    fn a_misspelt_key_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "block_time = 5\n").unwrap();
        let err = NodeConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("block_time"), "{err}");
    }

    #[test]
    fn file_round_trips_and_missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(NodeConfig::load(dir.path()).unwrap(), NodeConfig::default());
        let cfg = NodeConfig {
            block_time_ms: 77,
            ..NodeConfig::default()
        };
        cfg.save(&dir.path().join(CONFIG_FILE)).unwrap();
        assert_eq!(NodeConfig::load(dir.path()).unwrap(), cfg);
    }

    #[test]
    fn zero_rate_limits_are_refused() {
        let cfg = NodeConfig {
            rpc_burst_per_connection: 0,
            ..NodeConfig::default()
        };
        match cfg.validate() {
            Err(ConfigError::Invalid(m)) => assert!(m.contains("rpc_burst_per_connection"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
