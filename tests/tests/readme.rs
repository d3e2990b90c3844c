//! The README's "Running the daemons for real" block, run as written: fresh homes, the real
//! binaries on `PATH`, the documented default ports, funding order included. If the README and
//! the daemons part ways, this fails.

use sluice_test_support::{bin_path, binaries};
use std::process::Command;

/// The first `sh` block under the heading.
fn walkthrough() -> String {
    let readme = include_str!("../../README.md");
    let section = readme
        .split_once("## Running the daemons for real")
        .expect("the README has the section")
        .1;
    let block = section.split_once("```sh\n").expect("an sh block").1;
    block
        .split_once("```")
        .expect("the block ends")
        .0
        .to_string()
}

#[test]
fn readme_walkthrough_pays_as_written() {
    let bins = binaries().unwrap();
    let wallet = bin_path("sluice-wallet").unwrap();
    let home = tempfile::tempdir().unwrap();
    let dirs = [bins.node.parent(), wallet.parent()];
    let mut path: Vec<_> = dirs.iter().flatten().map(|d| d.to_path_buf()).collect();
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    // Every daemon the block starts in the background goes when the script ends.
    let script = format!(
        "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n{}",
        walkthrough()
    );
    let out = Command::new("timeout")
        .args(["300", "bash", "-euo", "pipefail", "-c", &script])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("PATH", std::env::join_paths(path).unwrap())
        .env("SLUICE_LOG", "warn")
        .env_remove("SLUICE_HOME")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("paid; proof"), "{stdout}");
    // The tower's fee account: 1,000,000 at genesis and the 5,000 Alice sent it, its address
    // shown as people copy it.
    assert!(stdout.contains("\n1005000 (address sl1"), "{stdout}");
    // `decode` of Bob's invoice from Alice's wallet: signed, and payable from her wallet.
    assert!(stdout.contains("\nsignature:   valid"), "{stdout}");
    assert!(
        stdout.contains("\nthis wallet: its hub; its chain"),
        "{stdout}"
    );
    // Bob's channel: 1,000 deposited and the 2,500 he was paid. (His background `run` may
    // print after it, as the daemons go.)
    let bob = stdout
        .lines()
        .find(|l| l.contains(" open v") && l.contains(" balance 3500 "));
    assert!(bob.is_some(), "{stdout}");
}
