//! `sluice-hub init` and `sluice-hub wallet …` as processes against a real `sluice-node --dev`:
//! the hub's address is printed and taken as `sl1…` text, so a send to an address with one
//! character changed is refused by its checksum and nothing reaches the chain.

use sluice_chain_client::ChainClient;
use sluice_protocol::{Address, Keypair};
use sluice_test_support::{binaries, start_node, NetworkOptions};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sluice-hub");
const FUNDS: u64 = 1_000_000;

/// Runs `sluice-hub ARGS` with the node at `node` (if any); returns (success, stdout, stderr).
fn hub(args: &[&str], node: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    if let Some(rpc) = node {
        cmd.env("SLUICE_HUB_CHAIN_RPC", rpc);
    }
    let out = cmd.output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap().trim().to_string();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn wallet(home: &Path, args: &[&str], node: &str) -> (bool, String, String) {
    let home = home.to_str().unwrap();
    let all = [&["wallet", "--home", home][..], args].concat();
    hub(&all, Some(node))
}

/// `text` with its 10th character swapped for another of the bech32 alphabet.
fn one_character_changed(text: &str) -> String {
    let mut s = text.to_string();
    let swap = if &s[9..10] == "q" { "p" } else { "q" };
    s.replace_range(9..10, swap);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_wallet_prints_and_takes_addresses_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hub");
    let (ok, printed, err) = hub(&["init", "--home", home.to_str().unwrap()], None);
    assert!(ok, "{err}");
    let key = Address::parse_text(&printed).expect("init prints the hub's sl1… address");
    let (ok, hex, err) = hub(
        &[
            "wallet",
            "--home",
            home.to_str().unwrap(),
            "address",
            "--hex",
        ],
        None,
    );
    assert!(ok && hex == key.to_string(), "{hex}{err}");

    let bins = binaries().unwrap();
    let opts = NetworkOptions::default();
    let node = start_node(&bins, &dir.path().join("node"), &[(key, FUNDS)], &opts).unwrap();
    let rpc = node.addr().to_string();
    let (ok, text, err) = wallet(&home, &["balance"], &rpc);
    assert_eq!(
        (ok, text.as_str()),
        (
            true,
            format!("{FUNDS} (address {})", key.to_text()).as_str()
        ),
        "{err}"
    );

    let chain = ChainClient::new(&rpc);
    let before = chain.account(&key).await.unwrap();
    let to = Keypair::generate().address();
    let typo = one_character_changed(&to.to_text());
    let (ok, _, err) = wallet(&home, &["send", &typo, "700"], &rpc);
    assert!(!ok && err.contains("checksum"), "{err}");
    let (ok, _, err) = wallet(&home, &["send", &to.to_string(), "700"], &rpc);
    assert!(!ok && err.contains("hex has no checksum"), "{err}");
    assert_eq!(
        chain.account(&key).await.unwrap(),
        before,
        "nothing was submitted"
    );

    let (ok, out, err) = wallet(&home, &["--json", "send", &to.to_text(), "700"], &rpc);
    assert!(ok, "{err}");
    let sent: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sent["to"], to.to_text());
    assert_eq!(chain.account(&to).await.unwrap().balance, 700);
    let (ok, text, _) = wallet(&home, &["send", &to.to_text(), "1"], &rpc);
    assert!(
        ok && text.contains(&format!(" to {} ", to.to_text())),
        "{text}"
    );
}
