//! One supervised process per daemon: init its home, start it, wait for its address file, and
//! restart or SIGKILL it on demand.

use crate::bins::Binaries;
use crate::daemon::{wait_for_file, Daemon};
use crate::network::{HarnessError, NetworkOptions};
use sluice_protocol::Address;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a one-shot command (an `init`) and returns its stdout, or an error with its stderr.
fn run_once(what: &str, cmd: &mut Command) -> Result<String, HarnessError> {
    let out = cmd
        .output()
        .map_err(|e| HarnessError::Setup(format!("{what}: {e}")))?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        false => Err(HarnessError::Setup(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

fn parse_address(what: &str, text: &str) -> Result<Address, HarnessError> {
    let line = text.lines().last().unwrap_or_default().trim();
    Address::parse_text(line)
        .map_err(|_| HarnessError::Setup(format!("{what} printed no address: {text:?}")))
}

/// Waits until the daemon announces its address, failing at once if it exits first.
fn wait_ready(daemon: &mut Daemon, addr_file: &Path) -> Result<String, String> {
    let deadline = std::time::Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(addr) = wait_for_file(addr_file, Duration::from_millis(50)) {
            return Ok(addr);
        }
        if !daemon.is_running() {
            return Err("exited during start-up".into());
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "no address in {} after {READY_TIMEOUT:?}",
                addr_file.display()
            ));
        }
    }
}

/// A daemon that runs from a home directory and announces its address in a file there.
pub struct Process {
    name: &'static str,
    bin: PathBuf,
    home: PathBuf,
    addr_file: &'static str,
    /// The variable that sets its listen address; a restart keeps the first address it got.
    listen_env: &'static str,
    env: Vec<(String, String)>,
    daemon: Option<Daemon>,
    addr: String,
}

impl Process {
    fn new(
        name: &'static str,
        bin: &Path,
        home: &Path,
        addr_file: &'static str,
        listen_env: &'static str,
    ) -> Self {
        let mut p = Process {
            name,
            bin: bin.into(),
            home: home.into(),
            addr_file,
            listen_env,
            env: Vec::new(),
            daemon: None,
            addr: String::new(),
        };
        p.set_env(listen_env, "127.0.0.1:0");
        p
    }

    /// Sets an environment variable for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("run").arg("--home").arg(&self.home);
        if self.name == "sluice-node" {
            cmd.arg("--dev");
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// (Re)starts on the same home and address, and waits until it announces it.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill();
        if !self.addr.is_empty() {
            let addr = self.addr.clone();
            self.set_env(self.listen_env, &addr);
        }
        let _ = std::fs::remove_file(self.home.join(self.addr_file));
        let log = self.home.join(format!("{}.log", self.name));
        let mut daemon = Daemon::spawn(self.name, self.command(), &log)?;
        match wait_ready(&mut daemon, &self.home.join(self.addr_file)) {
            Ok(addr) => {
                self.addr = addr;
                self.daemon = Some(daemon);
                Ok(())
            }
            Err(message) => Err(HarnessError::Process {
                process: self.name.to_string(),
                message,
                log: log.display().to_string(),
                tail: daemon.tail(15),
            }),
        }
    }

    /// Drops the announced address, so the next restart takes whatever the listen variable says
    /// instead of the address of the previous run.
    pub fn forget_addr(&mut self) {
        self.addr.clear();
    }

    /// SIGKILL, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
    }

    /// SIGTERM with a grace period.
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop(Duration::from_secs(10));
        }
    }

    /// Whether it is still alive (a crash shows up here).
    pub fn is_running(&mut self) -> bool {
        self.daemon.as_mut().is_some_and(|d| d.is_running())
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().and_then(|d| d.pid())
    }

    /// `host:port` it announced.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://host:port` of its HTTP API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn name(&self) -> &str {
        self.name
    }

    /// The last lines of its log.
    pub fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.home.join(format!("{}.log", self.name)))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Initializes a dev chain with `fund` at genesis and starts `sluice-node --dev`.
pub fn start_node(
    bins: &Binaries,
    home: &Path,
    fund: &[(Address, u64)],
    opts: &NetworkOptions,
) -> Result<Process, HarnessError> {
    let mut init = Command::new(&bins.node);
    init.arg("init").arg("--home").arg(home);
    init.args(["--rpc-addr", "127.0.0.1:0"]);
    init.args(["--block-time-ms", &opts.block_time_ms.to_string()]);
    init.args([
        "--default-challenge-period",
        &opts.challenge_period.to_string(),
    ]);
    for (addr, amount) in fund {
        init.arg("--fund").arg(format!("{addr}={amount}"));
    }
    run_once("sluice-node init", &mut init)?;
    let mut node = Process::new(
        "sluice-node",
        &bins.node,
        home,
        "rpc.addr",
        "SLUICE_NODE_RPC_ADDR",
    );
    node.restart()?;
    Ok(node)
}

/// Creates the hub's home and key; returns the hub's address.
pub fn init_hub(bins: &Binaries, home: &Path) -> Result<Address, HarnessError> {
    let mut cmd = Command::new(&bins.hub);
    let out = run_once("sluice-hub init", cmd.arg("init").arg("--home").arg(home))?;
    parse_address("sluice-hub init", &out)
}

/// Starts `sluice-hub` against the node at `node_rpc`, on SQLite or the given Postgres URL.
pub fn start_hub(
    bins: &Binaries,
    home: &Path,
    node_rpc: &str,
    store_url: Option<&str>,
    (threshold, target): (u64, u64),
    reclaim: Option<(u64, u64)>,
) -> Result<Process, HarnessError> {
    let mut hub = Process::new(
        "sluice-hub",
        &bins.hub,
        home,
        "hub.addr",
        "SLUICE_HUB_LISTEN",
    );
    hub.set_env("SLUICE_HUB_COLLATERAL__THRESHOLD", &threshold.to_string());
    hub.set_env("SLUICE_HUB_COLLATERAL__TARGET", &target.to_string());
    if let Some((above, idle_secs)) = reclaim {
        hub.set_env(
            "SLUICE_HUB_COLLATERAL__RECLAIM_THRESHOLD",
            &above.to_string(),
        );
        hub.set_env(
            "SLUICE_HUB_COLLATERAL__RECLAIM_IDLE_SECS",
            &idle_secs.to_string(),
        );
    }
    // Test chains are quick: look at collateral every second rather than every five.
    hub.set_env("SLUICE_HUB_COLLATERAL__RETRY_SECS", "1");
    hub.set_env("SLUICE_HUB_CHAIN_RPC", node_rpc);
    if let Some(url) = store_url {
        hub.set_env("SLUICE_HUB_STORE_URL", url);
    }
    // The admin port is one of its own that a restart keeps, like the session port; picked
    // free, it can be taken by another process before the hub binds it: then another one.
    let mut attempt = 0;
    loop {
        attempt += 1;
        hub.set_env(
            "SLUICE_HUB_ADMIN_LISTEN",
            &format!("127.0.0.1:{}", crate::daemon::free_port()),
        );
        match hub.restart() {
            Err(HarnessError::Process { tail, .. })
                if attempt < 4 && tail.contains("Address already in use") => {}
            r => return r.map(|()| hub),
        }
    }
}

/// Creates the tower's home and key; returns the tower's address.
pub fn init_tower(bins: &Binaries, home: &Path) -> Result<Address, HarnessError> {
    let mut init = Command::new(&bins.tower);
    run_once(
        "sluice-watchtower init",
        init.arg("init").arg("--home").arg(home),
    )?;
    let mut addr = Command::new(&bins.tower);
    let out = run_once(
        "sluice-watchtower address",
        addr.arg("address").arg("--home").arg(home),
    )?;
    parse_address("sluice-watchtower address", &out)
}

/// Starts `sluice-watchtower` against the node at `node_rpc`.
pub fn start_tower(bins: &Binaries, home: &Path, node_rpc: &str) -> Result<Process, HarnessError> {
    let mut tower = Process::new(
        "sluice-watchtower",
        &bins.tower,
        home,
        "tower.addr",
        "SLUICE_TOWER_LISTEN_ADDR",
    );
    tower.set_env("SLUICE_TOWER_NODE_RPC", node_rpc);
    tower.restart()?;
    Ok(tower)
}
