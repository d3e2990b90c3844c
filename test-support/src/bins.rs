//! Finds the daemon binaries next to the running executable, building them first when they are
//! missing (as on a fresh clone, where `cargo run --bin sluice-devnet` builds only the devnet).

use crate::network::HarnessError;
use crate::SupportError;
use std::path::{Path, PathBuf};
use std::process::Command;

const DAEMONS: [&str; 3] = ["sluice-node", "sluice-hub", "sluice-watchtower"];
/// Built with the daemons: the wallet process a kill campaign starts (`sluice-bench chaos`).
const CHAOS_WALLET: &str = "sluice-chaos-wallet";

#[derive(Debug, Clone)]
pub struct Binaries {
    pub node: PathBuf,
    pub hub: PathBuf,
    pub tower: PathBuf,
}

fn profile_dir() -> Result<PathBuf, HarnessError> {
    let exe = std::env::current_exe()
        .map_err(|e| HarnessError::Setup(format!("locate executable: {e}")))?;
    // target/<profile>/<exe> or target/<profile>/deps/<test-exe>
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(match dir.file_name().is_some_and(|n| n == "deps") {
        true => dir.parent().map(Path::to_path_buf).unwrap_or(dir),
        false => dir,
    })
}

fn build(release: bool) -> Result<(), HarnessError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("making sure {} are built …", DAEMONS.join(", "));
    let mut cmd = Command::new(cargo);
    // `--workspace`: a test runs in its own package's folder, where cargo sees only that package.
    cmd.args(["build", "--quiet", "--workspace"]);
    if release {
        cmd.arg("--release");
    }
    for d in DAEMONS.into_iter().chain([CHAOS_WALLET]) {
        cmd.args(["--bin", d]);
    }
    let status = cmd
        .status()
        .map_err(|e| HarnessError::Setup(format!("run cargo build: {e}")))?;
    match status.success() {
        true => Ok(()),
        false => Err(HarnessError::Setup(
            "cargo build of the daemons failed".into(),
        )),
    }
}

/// For programs started with `cargo run` (the devnet, the benchmarks): rebuild the daemons of
/// the caller's profile so a run never uses stale binaries. A no-op outside cargo.
pub fn refresh_daemons() -> Result<(), HarnessError> {
    if std::env::var_os("CARGO").is_none() {
        return Ok(());
    }
    let dir = profile_dir()?;
    build(dir.file_name().is_some_and(|n| n == "release"))
}

/// The three daemon binaries of the same build profile as the caller.
pub fn binaries() -> Result<Binaries, HarnessError> {
    let dir = profile_dir()?;
    let missing = DAEMONS.iter().any(|d| !dir.join(d).is_file());
    if missing {
        build(dir.file_name().is_some_and(|n| n == "release"))?;
    }
    let find = |name: &str| {
        let p = dir.join(name);
        match p.is_file() {
            true => Ok(p),
            false => Err(SupportError::Failed(format!(
                "binary `{name}` not found in {}",
                dir.display()
            ))),
        }
    };
    Ok(Binaries {
        node: find(DAEMONS[0])?,
        hub: find(DAEMONS[1])?,
        tower: find(DAEMONS[2])?,
    })
}
