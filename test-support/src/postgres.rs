//! A throwaway Postgres server: `initdb` into a temporary directory, `postgres` on a free loopback
//! port, removed on drop. Postgres refuses to run as root, so as root the server runs as the
//! `postgres` system user. With [`PostgresOptions::tls`] the server speaks TLS only: a
//! certificate from a [`TestCa`] made for it, and a `pg_hba.conf` that takes TCP connections
//! over TLS (`hostssl`) and rejects the others (`hostnossl … reject`).

use crate::daemon::{free_port, Daemon};
use crate::tls::TestCa;
use crate::SupportError;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct TempPostgres {
    server: Option<Daemon>,
    port: u16,
    bin: PathBuf,
    /// The CA file clients trust (`sslrootcert`) when the server speaks TLS.
    ca_file: Option<PathBuf>,
    opts: PostgresOptions,
    user: Option<(u32, u32)>,
    _dir: tempfile::TempDir,
}

/// How to start a [`TempPostgres`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresOptions {
    /// `ssl=on` with a generated certificate; connections without TLS are rejected.
    pub tls: bool,
}

/// The access rules of a TLS-only server: local socket as initdb made it, TCP over TLS only.
const HBA_TLS_ONLY: &str = "\
local all all trust
hostssl all all 127.0.0.1/32 trust
hostnossl all all 127.0.0.1/32 reject
hostssl all all ::1/128 trust
hostnossl all all ::1/128 reject
";

/// The installed server binaries: `$SLUICE_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Result<PathBuf, SupportError> {
    if let Ok(dir) = std::env::var("SLUICE_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(SupportError::io(
            "look for Postgres in /usr/lib/postgresql (install postgresql)",
        ))?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p)| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).ok_or_else(|| {
        SupportError::Failed("no Postgres server binaries found (install postgresql)".into())
    })
}

/// `(uid, gid)` of the `postgres` user when we are root, so the server can drop privileges.
fn run_as() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid_line = status.lines().find(|l| l.starts_with("Uid:"))?;
    if uid_line.split_whitespace().nth(1)? != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let fields: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))?
        .split(':')
        .collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

fn command(bin: &Path, name: &str, user: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(bin.join(name));
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

impl TempPostgres {
    /// Initializes and starts a server; returns once it accepts connections.
    pub fn start() -> Result<Self, SupportError> {
        Self::start_with(PostgresOptions::default())
    }

    /// [`TempPostgres::start`] as `opts` say.
    pub fn start_with(opts: PostgresOptions) -> Result<Self, SupportError> {
        let bin = bin_dir()?;
        let user = run_as();
        let dir = tempfile::Builder::new()
            .prefix("sluice-pg-")
            .tempdir()
            .map_err(SupportError::io("create temp dir"))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(SupportError::io("chown temp dir"))?;
        }
        let data = dir.path().join("data");
        let out = command(&bin, "initdb", user)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .map_err(SupportError::io("run initdb"))?;
        if !out.status.success() {
            return Err(SupportError::Failed(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let ca_file = match opts.tls {
            true => Some(setup_tls(dir.path(), &data, user)?),
            false => None,
        };
        let mut pg = TempPostgres {
            server: None,
            port: free_port(),
            bin,
            ca_file,
            opts,
            user,
            _dir: dir,
        };
        pg.server = Some(pg.spawn_server()?);
        pg.wait_ready(Duration::from_secs(30))?;
        Ok(pg)
    }

    /// The server on this directory and port, its output appended to one log.
    fn spawn_server(&self) -> Result<Daemon, SupportError> {
        let mut cmd = command(&self.bin, "postgres", self.user);
        cmd.arg("-D")
            .arg(self._dir.path().join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ])
            .arg("-k")
            .arg(self._dir.path());
        if self.opts.tls {
            cmd.args([
                "-c",
                "ssl=on",
                "-c",
                "ssl_cert_file=server.crt",
                "-c",
                "ssl_key_file=server.key",
            ]);
        }
        Daemon::spawn("postgres", cmd, &self._dir.path().join("postgres.log"))
    }

    fn wait_ready(&self, timeout: Duration) -> Result<(), SupportError> {
        let deadline = Instant::now() + timeout;
        loop {
            let ok = Command::new(self.bin.join("pg_isready"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tail = self.server.as_ref().map(|s| s.tail(20)).unwrap_or_default();
                return Err(SupportError::Timeout(format!(
                    "Postgres to accept connections:\n{tail}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) that signed the server's certificate, if it speaks TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// Creates a fresh database and returns its connection URL.
    pub fn create_database(&self, name: &str) -> Result<String, SupportError> {
        let out = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ])
            .output()
            .map_err(SupportError::io("run createdb"))?;
        if !out.status.success() {
            return Err(SupportError::Failed(format!(
                "createdb {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(self.url(name))
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Durable single-row commits per second this server sustains over `connections` clients
    /// for `seconds`, measured by `pgbench` itself: each transaction is one autocommitted
    /// `UPDATE` of a random row of a 10,000-row table, as the hub's channel commits are. The
    /// table lives in its own database, so the measured one is untouched.
    pub fn commit_ceiling(&self, connections: u32, seconds: u32) -> Result<f64, SupportError> {
        let url = self.create_database("commit_ceiling")?;
        let setup = "CREATE TABLE rows (id INT PRIMARY KEY, v BIGINT NOT NULL); \
            INSERT INTO rows SELECT g, 0 FROM generate_series(1, 10000) g;";
        self.run_tool("psql", &[&url, "-q", "-c", setup])?;
        let script = self._dir.path().join("commit_ceiling.sql");
        std::fs::write(
            &script,
            "\\set id random(1, 10000)\nUPDATE rows SET v = v + 1 WHERE id = :id;\n",
        )
        .map_err(SupportError::io("write the pgbench script"))?;
        let (c, t) = (connections.max(1).to_string(), seconds.max(1).to_string());
        let script = script.to_string_lossy().into_owned();
        let jobs = c.clone();
        let out = self.run_tool(
            "pgbench",
            &["-n", "-c", &c, "-j", &jobs, "-T", &t, "-f", &script, &url],
        )?;
        out.lines()
            .find_map(|l| l.strip_prefix("tps = "))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| SupportError::Failed(format!("no tps in pgbench's output:\n{out}")))
    }

    /// Stops the server the way a crash would (SIGKILL of the postmaster, then of what is left
    /// of its backends), waits `down`, and starts it again on the same data directory and port.
    pub fn crash_and_restart(&mut self, down: Duration) -> Result<(), SupportError> {
        if let Some(mut server) = self.server.take() {
            // Its backends would serve their sessions until they notice the postmaster died;
            // they go with it, as in a machine crash, so the restart finds the data free.
            let children = server.pid().map(children_of).unwrap_or_default();
            server.kill();
            for pid in children {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        }
        std::thread::sleep(down);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.server = Some(self.spawn_server()?);
            match self.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => {
                    if let Some(mut s) = self.server.take() {
                        s.kill();
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// Runs one of the installed client tools against this server; its stdout on success.
    fn run_tool(&self, name: &str, args: &[&str]) -> Result<String, SupportError> {
        let out = Command::new(self.bin.join(name))
            .args(args)
            .output()
            .map_err(SupportError::io(format!("run {name}")))?;
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(SupportError::Failed(format!(
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))),
        }
    }
}

/// The process ids of `pid`'s children.
fn children_of(pid: u32) -> Vec<String> {
    Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Writes a server certificate and key (0600, owned by the server's user) into `data`, and the
/// TLS-only access rules; returns the CA file clients trust.
fn setup_tls(dir: &Path, data: &Path, user: Option<(u32, u32)>) -> Result<PathBuf, SupportError> {
    let ca = TestCa::generate()?;
    let ca_file = dir.join("ca.crt");
    ca.write_cert(&ca_file)?;
    ca.issue()?.write(data, "server.crt", "server.key")?;
    let hba = data.join("pg_hba.conf");
    std::fs::write(&hba, HBA_TLS_ONLY).map_err(SupportError::io("write pg_hba.conf"))?;
    if let Some((uid, gid)) = user {
        for name in ["server.crt", "server.key", "pg_hba.conf"] {
            std::os::unix::fs::chown(data.join(name), Some(uid), Some(gid))
                .map_err(SupportError::io(format!("chown {name}")))?;
        }
    }
    Ok(ca_file)
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.stop(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_accepts_a_database_and_stops() {
        let pg = TempPostgres::start().expect("start throwaway Postgres");
        let url = pg.create_database("probe").expect("createdb");
        assert!(url.ends_with("/probe"));
        let port = pg.port();
        drop(pg);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "server still up after drop"
        );
    }
}
