//! A child process whose stdout and stderr go to a log file, killed when dropped.

use crate::SupportError;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The first of `n` consecutive free loopback ports (a multi-node network's RPC and P2P ports),
/// below the range the OS hands out for outgoing connections.
pub fn free_ports(n: u16) -> u16 {
    loop {
        let p = free_port();
        if p > 60_000 {
            continue;
        }
        let free = (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok());
        if free {
            return p;
        }
    }
}

/// The path of a workspace binary (`sluice-node`, `sluice-hub`, ...) next to the running test
/// executable in `target/<profile>/`. `cargo test --workspace` builds every binary first; a single
/// package's tests need `cargo build --bins` beforehand, and the error says so.
pub fn bin_path(name: &str) -> Result<PathBuf, SupportError> {
    let exe = std::env::current_exe().map_err(SupportError::io("locate the test executable"))?;
    let candidates = exe.ancestors().skip(1).take(3).map(|d| d.join(name));
    for path in candidates {
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(SupportError::Failed(format!(
        "binary `{name}` not found next to {}; run `cargo build --bins` first",
        exe.display()
    )))
}

/// Waits until `path` exists with non-empty content and returns that content, trimmed.
pub fn wait_for_file(path: &Path, timeout: Duration) -> Result<String, SupportError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.trim().is_empty() {
                return Ok(s.trim().to_string());
            }
        }
        if Instant::now() >= deadline {
            return Err(SupportError::Timeout(path.display().to_string()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A supervised daemon process.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with its output appended to `log` (so restarts keep one history).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self, SupportError> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(SupportError::io(format!("open log {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(SupportError::io("clone log handle"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(SupportError::io(format!(
                "start {name} ({:?})",
                cmd.get_program()
            )))?;
        Ok(Daemon {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// How it exited, once it has.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL: no chance to flush or clean up, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`; how it exited if it did so
    /// by itself.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `n` lines of the log, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
