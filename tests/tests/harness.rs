//! The harness (and so the devnet) fails loudly and clearly: which process, and its last log
//! lines, when a binary is missing, a port is taken or a process dies.

use sluice_tests::harness::{binaries, start_node, Binaries, HarnessError, NetworkOptions};
use std::path::PathBuf;

fn no_funds() -> Vec<(sluice_protocol::Address, u64)> {
    vec![]
}

#[test]
fn a_missing_binary_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bins = Binaries {
        node: PathBuf::from("/nonexistent/sluice-node"),
        hub: PathBuf::new(),
        tower: PathBuf::new(),
    };
    let err = start_node(&bins, dir.path(), &no_funds(), &NetworkOptions::default())
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(text.contains("sluice-node"), "{text}");
}

#[test]
fn a_taken_port_fails_with_the_process_and_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let bins = binaries().unwrap();
    let mut node = start_node(
        &bins,
        &dir.path().join("node"),
        &no_funds(),
        &NetworkOptions::default(),
    )
    .unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    node.stop();
    node.set_env(
        "SLUICE_NODE_RPC_ADDR",
        &taken.local_addr().unwrap().to_string(),
    );
    // Forget the old address so the restart uses the taken one.
    let err = restart_on(&mut node).expect_err("a taken port must fail the start");
    match err {
        HarnessError::Process { process, tail, .. } => {
            assert_eq!(process, "sluice-node");
            assert!(
                !tail.is_empty(),
                "the error carries the process's last log lines"
            );
        }
        other => panic!("unexpected error: {other}"),
    }
}

fn restart_on(node: &mut sluice_tests::harness::Process) -> Result<(), HarnessError> {
    node.forget_addr();
    node.restart()
}

#[test]
fn a_process_that_dies_at_start_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let bins = binaries().unwrap();
    let node = start_node(
        &bins,
        &dir.path().join("node"),
        &no_funds(),
        &NetworkOptions::default(),
    )
    .unwrap();
    let hub_home = dir.path().join("hub");
    sluice_tests::harness::init_hub(&bins, &hub_home).unwrap();
    let err = sluice_tests::harness::start_hub(
        &bins,
        &hub_home,
        node.addr(),
        Some("mysql://nowhere/none"),
        (0, 0),
        None,
    )
    .err();
    let text = err
        .expect("a hub with an unusable store must fail to start")
        .to_string();
    assert!(text.contains("sluice-hub"), "{text}");
    assert!(text.contains("last lines of its log"), "{text}");
}
