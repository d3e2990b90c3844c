//! A whole network for tests, the devnet and benchmarks: real `sluice-node`, `sluice-hub` and `sluice-watchtower` processes on
//! free loopback ports with temporary homes, their logs collected, torn down on drop. The
//! end-to-end tests, `sluice-devnet` and `sluice-bench` all start the system through here.

use crate::bins::binaries;
use crate::daemons::{self, Process};

use crate::{SupportError, TempPostgres};
use std::path::{Path, PathBuf};

/// Where the hub keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubStore {
    /// A SQLite file in the hub's home (the embedded default).
    Sqlite,
    /// A database on a throwaway Postgres server the harness starts.
    Postgres,
}

/// How to start a network.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    pub block_time_ms: u64,
    pub challenge_period: u64,
    pub hub_store: HubStore,
    /// Genesis balance of each extra account (wallets), besides hub and tower.
    pub fund: Vec<(sluice_protocol::Address, u64)>,
    /// Start a watchtower.
    pub tower: bool,
    /// Hub collateral policy `(threshold, target)` for every channel opened toward it.
    pub hub_collateral: (u64, u64),
    /// Hub collateral reclaim `(reclaim_threshold, reclaim_idle_secs)`; `None`: never.
    pub hub_reclaim: Option<(u64, u64)>,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            block_time_ms: 100,
            challenge_period: 40,
            hub_store: HubStore::Sqlite,
            fund: Vec::new(),
            tower: true,
            hub_collateral: (50_000, 100_000),
            hub_reclaim: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Support(#[from] SupportError),
    #[error("{process} failed: {message}\n--- last lines of its log ({log}) ---\n{tail}")]
    Process {
        process: String,
        message: String,
        log: String,
        tail: String,
    },
    #[error("{0}")]
    Setup(String),
}

/// A running chain node, hub and (optionally) watchtower.
pub struct Network {
    pub node: Process,
    pub hub: Process,
    pub tower: Option<Process>,
    pub hub_key: sluice_protocol::Address,
    pub tower_key: Option<sluice_protocol::Address>,
    pub opts: NetworkOptions,
    /// Further hub processes sharing the first one's key and store (see [`Network::add_hub`]).
    pub extra_hubs: Vec<Process>,
    hub_store_url: Option<String>,
    // Field order matters: processes stop before Postgres and the directory go away.
    _postgres: Option<TempPostgres>,
    root: tempfile::TempDir,
}

/// Genesis balance of the hub's and the tower's accounts.
pub const OPERATOR_FUNDS: u64 = 1_000_000_000_000;

impl Network {
    /// Starts everything and waits until each process is ready.
    pub fn start(opts: NetworkOptions) -> Result<Network, HarnessError> {
        let bins = binaries()?;
        let root = tempfile::Builder::new()
            .prefix("sluice-net-")
            .tempdir()
            .map_err(|e| HarnessError::Setup(format!("temporary directory: {e}")))?;
        let hub_key = daemons::init_hub(&bins, &root.path().join("hub"))?;
        let tower_key = match opts.tower {
            true => Some(daemons::init_tower(&bins, &root.path().join("tower"))?),
            false => None,
        };
        let mut fund = opts.fund.clone();
        fund.push((hub_key, OPERATOR_FUNDS));
        fund.extend(tower_key.map(|k| (k, OPERATOR_FUNDS)));
        let node = daemons::start_node(&bins, &root.path().join("node"), &fund, &opts)?;
        let (postgres, store_url) = match opts.hub_store {
            HubStore::Sqlite => (None, None),
            HubStore::Postgres => {
                let pg = TempPostgres::start()?;
                let url = pg.create_database("hub")?;
                (Some(pg), Some(url))
            }
        };
        let hub = daemons::start_hub(
            &bins,
            &root.path().join("hub"),
            node.addr(),
            store_url.as_deref(),
            opts.hub_collateral,
            opts.hub_reclaim,
        )?;
        let tower = match opts.tower {
            true => Some(daemons::start_tower(
                &bins,
                &root.path().join("tower"),
                node.addr(),
            )?),
            false => None,
        };
        Ok(Network {
            node,
            hub,
            tower,
            hub_key,
            tower_key,
            opts,
            extra_hubs: Vec::new(),
            hub_store_url: store_url,
            _postgres: postgres,
            root,
        })
    }

    /// The hub's store URL when it runs on the harness's Postgres.
    pub fn hub_store_url(&self) -> Option<&str> {
        self.hub_store_url.as_deref()
    }

    /// The throwaway Postgres server the hub's store is on, if it is.
    pub fn postgres(&mut self) -> Option<&mut TempPostgres> {
        self._postgres.as_mut()
    }

    /// Starts one more `sluice-hub` process as the same hub (its key copied into a fresh home)
    /// on the same Postgres database, as an operator scales out; returns its index in
    /// `extra_hubs`. Only with [`HubStore::Postgres`].
    pub fn add_hub(&mut self) -> Result<usize, HarnessError> {
        let Some(url) = self.hub_store_url.clone() else {
            return Err(HarnessError::Setup(
                "a second hub process needs the Postgres store".into(),
            ));
        };
        let bins = binaries()?;
        let home = self
            .root
            .path()
            .join(format!("hub{}", self.extra_hubs.len() + 2));
        std::fs::create_dir_all(&home)
            .map_err(|e| HarnessError::Setup(format!("hub home: {e}")))?;
        for file in ["hub.key", "hub.toml"] {
            std::fs::copy(self.root.path().join("hub").join(file), home.join(file))
                .map_err(|e| HarnessError::Setup(format!("copy {file}: {e}")))?;
        }
        let hub = daemons::start_hub(
            &bins,
            &home,
            self.node.addr(),
            Some(&url),
            self.opts.hub_collateral,
            self.opts.hub_reclaim,
        )?;
        self.extra_hubs.push(hub);
        Ok(self.extra_hubs.len() - 1)
    }

    /// For an error report: each process that is no longer running, with its last log lines
    /// (empty when all are alive).
    pub fn obituaries(&mut self) -> String {
        let mut out = String::new();
        let procs = [
            Some(&mut self.node),
            Some(&mut self.hub),
            self.tower.as_mut(),
        ];
        for p in procs.into_iter().flatten() {
            if !p.is_running() {
                let name = p.name().to_string();
                out.push_str(&format!(
                    "\n{name} is not running; its last log lines:\n{}",
                    p.tail(15)
                ));
            }
        }
        out
    }

    /// The network's scratch directory (wallet homes go here).
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// A fresh directory under the network's root.
    pub fn subdir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Keeps the directory on disk after the network is dropped (for `--keep-running` users
    /// who want to look at logs).
    pub fn keep(self) -> PathBuf {
        let Network {
            node,
            hub,
            tower,
            extra_hubs,
            _postgres,
            root,
            ..
        } = self;
        drop((node, hub, extra_hubs, tower, _postgres));
        root.keep()
    }
}
