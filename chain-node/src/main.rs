//! `sluice-node`: `init` a home directory, `run` a node, `verify` a ledger by replay.

use clap::{Parser, Subcommand};
use sluice_node::chain::Chain;
use sluice_node::config::{NodeConfig, CONFIG_FILE, DATA_DIR, RPC_ADDR_FILE};
use sluice_node::consensus::app::Faults;
use sluice_node::consensus::ConsensusProducer;
use sluice_node::genesis::{
    self, ChainLimits, Genesis, GenesisAccount, Validator, GENESIS_FILE, VALIDATOR_KEY_FILE,
};
use sluice_node::ledger::Ledger;
use sluice_node::producer::{BlockProducer, DevProducer};
use sluice_protocol::onchain::ChannelLimits;
use sluice_protocol::{Address, Keypair};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "sluice-node", version, about = "Sluice settlement chain node")]
struct Cli {
    /// How log lines (on stderr) are written.
    #[arg(long, global = true, value_enum, default_value_t)]
    log_format: sluice_home::logging::LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write genesis.json, config.toml and validator.key into a new home directory.
    Init(InitArgs),
    /// Run the node: Malachite BFT among the genesis validators (a validator if this home's key
    /// is in the set, otherwise a full node), or a one-validator dev chain with --dev.
    Run(RunArgs),
    /// Replay every committed block from genesis and check the ledger equals the replay.
    Verify {
        /// Home directory (default: $SLUICE_HOME/node, else ~/.sluice/node).
        #[arg(long, default_value_os_t = sluice_home::dirs::default_home("node"))]
        home: PathBuf,
    },
}

#[derive(clap::Args)]
struct InitArgs {
    /// Home directory (default: $SLUICE_HOME/node, else ~/.sluice/node).
    #[arg(long, default_value_os_t = sluice_home::dirs::default_home("node"))]
    home: PathBuf,
    #[arg(long, default_value_t = 1)]
    chain_id: u64,
    /// Fund an account at genesis: ADDRESS=AMOUNT (repeatable).
    #[arg(long = "fund", value_parser = parse_fund)]
    fund: Vec<(Address, u64)>,
    #[arg(long, default_value_t = 1)]
    min_fee: u64,
    #[arg(long, default_value_t = 20)]
    default_challenge_period: u64,
    #[arg(long, default_value_t = ChannelLimits::default().min_challenge_period)]
    min_challenge_period: u64,
    #[arg(long, default_value_t = ChannelLimits::default().max_challenge_period)]
    max_challenge_period: u64,
    #[arg(long, default_value_t = ChainLimits::default().max_block_txs)]
    max_block_txs: usize,
    /// RPC listen address written to config.toml (`127.0.0.1:0` picks a free port).
    #[arg(long)]
    rpc_addr: Option<SocketAddr>,
    #[arg(long)]
    block_time_ms: Option<u64>,
    /// Overwrite an existing home directory's files.
    #[arg(long)]
    force: bool,
    /// Write a local testnet instead: genesis with N validators and one home per node
    /// (`HOME/node0` … `HOME/node{N-1}`, then the full nodes), peers and relays wired up.
    #[arg(long)]
    validators: Option<usize>,
    /// With --validators: this many extra non-validator (full) node homes.
    #[arg(long, default_value_t = 0)]
    full_nodes: usize,
    /// With --validators: node i listens for RPC on BASE+2i and for P2P on BASE+2i+1.
    #[arg(long, default_value_t = 26600)]
    base_port: u16,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Home directory (default: $SLUICE_HOME/node, else ~/.sluice/node).
    #[arg(long, default_value_os_t = sluice_home::dirs::default_home("node"))]
    home: PathBuf,
    /// One-validator dev chain: seal a block every block_time when transactions wait (no P2P).
    #[arg(long)]
    dev: bool,
    #[arg(long)]
    rpc_addr: Option<SocketAddr>,
    #[arg(long)]
    block_time_ms: Option<u64>,
}

fn parse_fund(s: &str) -> Result<(Address, u64), String> {
    let (addr, amount) = s.split_once('=').ok_or("expected ADDRESS=AMOUNT")?;
    let addr: Address = addr.parse().map_err(|e| format!("address: {e}"))?;
    let amount: u64 = amount.parse().map_err(|e| format!("amount: {e}"))?;
    sluice_protocol::amount::check(amount).map_err(|e| e.to_string())?;
    Ok((addr, amount))
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Genesis(#[from] genesis::GenesisError),
    #[error(transparent)]
    Config(#[from] sluice_node::config::ConfigError),
    #[error(transparent)]
    Chain(#[from] sluice_node::chain::ChainError),
    #[error(transparent)]
    Store(#[from] sluice_node::state::StoreError),
    #[error(transparent)]
    Replay(#[from] sluice_node::replay::ReplayError),
    #[error("{0}")]
    Other(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Init(a) => init(a),
        Cmd::Run(a) => run(a, cli.log_format),
        Cmd::Verify { home } => verify(&home),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-node: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init(a: InitArgs) -> Result<(), CliError> {
    if a.validators.is_some() {
        return init_testnet(a);
    }
    std::fs::create_dir_all(&a.home)
        .map_err(|e| CliError::Other(format!("{}: {e}", a.home.display())))?;
    let gpath = a.home.join(GENESIS_FILE);
    if gpath.exists() && !a.force {
        return Err(CliError::Other(format!(
            "{} exists; use --force to overwrite",
            gpath.display()
        )));
    }
    let key = Keypair::generate();
    let genesis = make_genesis(&a, vec![key.address()]);
    genesis.validate()?;
    genesis.save(&gpath)?;
    genesis::save_validator_key(&a.home.join(VALIDATOR_KEY_FILE), &key)?;
    let mut cfg = NodeConfig::default();
    if let Some(addr) = a.rpc_addr {
        cfg.rpc_addr = addr;
    }
    if let Some(ms) = a.block_time_ms {
        cfg.block_time_ms = ms;
    }
    cfg.save(&a.home.join(CONFIG_FILE))?;
    println!(
        "initialised {} (chain {}, validator {})",
        a.home.display(),
        a.chain_id,
        key.address()
    );
    Ok(())
}

fn make_genesis(a: &InitArgs, validators: Vec<Address>) -> Genesis {
    Genesis {
        chain_id: a.chain_id,
        genesis_time_ms: sluice_home::clock::unix_ms(),
        accounts: a
            .fund
            .iter()
            .map(|(address, balance)| GenesisAccount {
                address: *address,
                balance: *balance,
            })
            .collect(),
        validators: validators
            .into_iter()
            .map(|address| Validator { address, power: 1 })
            .collect(),
        default_challenge_period: a.default_challenge_period,
        channel_limits: ChannelLimits {
            min_challenge_period: a.min_challenge_period,
            max_challenge_period: a.max_challenge_period,
        },
        min_fee: a.min_fee,
        limits: ChainLimits {
            max_block_txs: a.max_block_txs,
            ..ChainLimits::default()
        },
    }
}

/// `init --validators N [--full-nodes M]`: one genesis, one home per node, every node peered
/// with (and relaying transactions to) every other.
fn init_testnet(a: InitArgs) -> Result<(), CliError> {
    let n = a.validators.unwrap_or(1);
    if n == 0 {
        return Err(CliError::Other("--validators must be at least 1".into()));
    }
    let total = n + a.full_nodes;
    let port = |i: usize, p2p: bool| -> Result<u16, CliError> {
        u16::try_from(a.base_port as usize + 2 * i + p2p as usize)
            .map_err(|_| CliError::Other("--base-port too high for this many nodes".into()))
    };
    let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate()).collect();
    let genesis = make_genesis(&a, keys.iter().map(|k| k.address()).collect());
    genesis.validate()?;
    std::fs::create_dir_all(&a.home)
        .map_err(|e| CliError::Other(format!("{}: {e}", a.home.display())))?;
    genesis.save(&a.home.join(GENESIS_FILE))?;
    for i in 0..total {
        let home = a.home.join(format!("node{i}"));
        if home.join(GENESIS_FILE).exists() && !a.force {
            return Err(CliError::Other(format!(
                "{} exists; use --force to overwrite",
                home.display()
            )));
        }
        std::fs::create_dir_all(&home)
            .map_err(|e| CliError::Other(format!("{}: {e}", home.display())))?;
        genesis.save(&home.join(GENESIS_FILE))?;
        if let Some(k) = keys.get(i) {
            genesis::save_validator_key(&home.join(VALIDATOR_KEY_FILE), k)?;
        }
        let mut cfg = NodeConfig {
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], port(i, false)?)),
            p2p_listen: format!("/ip4/127.0.0.1/tcp/{}", port(i, true)?),
            ..NodeConfig::default()
        };
        for j in (0..total).filter(|j| *j != i) {
            cfg.p2p_peers
                .push(format!("/ip4/127.0.0.1/tcp/{}", port(j, true)?));
            cfg.relay_peers
                .push(format!("http://127.0.0.1:{}/", port(j, false)?));
        }
        if let Some(ms) = a.block_time_ms {
            cfg.block_time_ms = ms;
        }
        cfg.save(&home.join(CONFIG_FILE))?;
    }
    println!(
        "initialised a testnet in {} (chain {}, {n} validators, {} full nodes)",
        a.home.display(),
        a.chain_id,
        a.full_nodes
    );
    Ok(())
}

/// Fault injection for tests, built only with `test-fixtures`; inert unless a variable is
/// exactly `1`.
#[cfg(feature = "test-fixtures")]
fn faults_from_env() -> Faults {
    let fault = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    Faults {
        bad_state_root: fault("SLUICE_FAULT_BAD_STATE_ROOT"),
        rogue_proposals: fault("SLUICE_FAULT_ROGUE_PROPOSALS"),
    }
}

/// A release build injects nothing, whatever the environment says.
#[cfg(not(feature = "test-fixtures"))]
fn faults_from_env() -> Faults {
    Faults::default()
}

fn run(a: RunArgs, log_format: sluice_home::logging::LogFormat) -> Result<(), CliError> {
    let mut cfg = NodeConfig::load(&a.home)?;
    if let Some(addr) = a.rpc_addr {
        cfg.rpc_addr = addr;
    }
    if let Some(ms) = a.block_time_ms {
        cfg.block_time_ms = ms;
    }
    cfg.validate()?;
    sluice_home::logging::init(log_format, &cfg.log);
    let genesis = Genesis::load(&a.home.join(GENESIS_FILE))?;
    let key_path = a.home.join(VALIDATOR_KEY_FILE);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(format!("tokio runtime: {e}")))?;
    if !a.dev {
        // No key file: a full node. A key outside the set also runs as a full node.
        let key = match key_path.exists() {
            true => Some(genesis::load_validator_key(&key_path)?),
            false => None,
        };
        let producer = Box::new(ConsensusProducer {
            data_dir: a.home.join(DATA_DIR),
            key,
            faults: faults_from_env(),
        });
        return runtime.block_on(serve(a.home, cfg, genesis, producer));
    }
    let key = genesis::load_validator_key(&key_path)?;
    if !genesis
        .validators
        .iter()
        .any(|v| v.address == key.address())
    {
        return Err(CliError::Other(format!(
            "validator key {} is not in the genesis validator set",
            key.address()
        )));
    }
    let producer = Box::new(DevProducer {
        key,
        block_time: Duration::from_millis(cfg.block_time_ms),
        max_block_txs: cfg.max_block_txs,
    });
    runtime.block_on(serve(a.home, cfg, genesis, producer))
}

async fn serve(
    home: PathBuf,
    cfg: NodeConfig,
    genesis: Genesis,
    producer: Box<dyn BlockProducer>,
) -> Result<(), CliError> {
    let rpc_addr = cfg.rpc_addr;
    let relay_peers = cfg.relay_peers.clone();
    let relay_batch = cfg.relay_batch;
    let chain = Chain::open(&home.join(DATA_DIR), genesis, cfg)?;
    // A certificate that cannot be used stops the start, naming the file.
    let tls = match &chain.config.tls {
        Some(files) => Some(
            files
                .load(&home)
                .map_err(|e| CliError::Other(e.to_string()))?,
        ),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(rpc_addr)
        .await
        .map_err(|e| CliError::Other(format!("bind {rpc_addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::Other(e.to_string()))?;
    write_addr_file(&home, bound)?;
    tracing::info!(tls = tls.is_some(), "rpc listening on {bound}");
    if !relay_peers.is_empty() {
        let (tx, rx) = tokio::sync::mpsc::channel(sluice_node::relay::RELAY_QUEUE);
        chain.set_relay(tx);
        tokio::spawn(sluice_node::relay::run(relay_peers, relay_batch, rx));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let producing = tokio::spawn(producer.run(chain.clone(), stop_rx.clone()));
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(sluice_node::rpc::serve(
        chain.clone(),
        listener,
        tls,
        async move {
            let _ = server_stop.wait_for(|s| *s).await;
        },
    ));
    let mut producing = producing;
    // A producer that stops on its own hit a storage error: stop serving rather than serve a
    // chain that no longer moves.
    let early = tokio::select! {
        _ = shutdown_signal() => None,
        r = &mut producing => Some(r),
    };
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let produced = match early {
        Some(r) => r,
        None => producing.await,
    }
    .map_err(|e| CliError::Other(e.to_string()))?;
    let _ = tokio::time::timeout(Duration::from_secs(3), server).await;
    let _ = std::fs::remove_file(home.join(RPC_ADDR_FILE));
    produced?;
    Ok(())
}

/// Writes `DIR/rpc.addr` atomically (temp file + rename), so a reader never sees half of it.
fn write_addr_file(home: &Path, addr: SocketAddr) -> Result<(), CliError> {
    let tmp = home.join(format!("{RPC_ADDR_FILE}.tmp"));
    std::fs::write(&tmp, format!("{addr}\n"))
        .and_then(|_| std::fs::rename(&tmp, home.join(RPC_ADDR_FILE)))
        .map_err(|e| CliError::Other(format!("write {RPC_ADDR_FILE}: {e}")))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn verify(home: &Path) -> Result<(), CliError> {
    let genesis = Genesis::load(&home.join(GENESIS_FILE))?;
    let ledger = Ledger::open(&home.join(DATA_DIR))?;
    let report = sluice_node::replay::replay(&ledger, &genesis)?;
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    Ok(())
}
