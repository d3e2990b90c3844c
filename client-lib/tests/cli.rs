//! `sluice-wallet` as a process against a real network: init, address, open, invoice, pay,
//! balance, payments and close; readable text by default, JSON that parses with `--json`, and
//! errors that say what to do next.

mod support;

use serde_json::Value;
use sluice_client::config::KEY_FILE;
use sluice_test_support::Daemon;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::net::{self, Net, DEPOSIT};

const BIN: &str = env!("CARGO_BIN_EXE_sluice-wallet");

/// Runs the CLI in `dir`; returns (success, stdout, stderr).
fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap().trim().to_string();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

/// Runs the CLI with `--json`, asserts success and parses its output.
fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out, err) = cli(dir, &all);
    assert!(ok, "{args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed bad JSON {out:?}: {e}"))
}

fn init(n: &Net, dir: &Path) -> Value {
    let key = n.net.hub_key.to_string();
    let args = [
        "init",
        "--node",
        n.net.node.addr(),
        "--hub",
        n.net.hub.addr(),
        "--hub-key",
        &key,
    ];
    json(dir, &args)
}

#[test]
fn commands_without_a_wallet_say_to_run_init() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        &["balance"][..],
        &["address"],
        &["payments"],
        &["open", "10"],
    ] {
        let (ok, out, err) = cli(dir.path(), cmd);
        assert!(!ok, "{cmd:?} succeeded without a wallet");
        assert!(out.is_empty(), "errors go to stderr");
        assert!(
            err.starts_with("error: ") && err.contains("init"),
            "{cmd:?}: {err}"
        );
    }
    let (ok, out, _) = cli(dir.path(), &["balance", "--json"]);
    assert!(!ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["error"].as_str().unwrap().contains("init"), "{v}");
    let (ok, _, err) = cli(dir.path(), &["init"]);
    assert!(
        !ok && err.contains("--node") && err.contains("--hub-key"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_from_init_to_close_through_the_cli() {
    let n = net::start(2, false).await;
    let (a, b) = (n.dirs[0].as_path(), n.dirs[1].as_path());
    let made = init(&n, a);
    init(&n, b);
    let key = sluice_client::keyfile::load(&a.join(KEY_FILE)).unwrap();
    assert_eq!(made["address"], key.address().to_string());
    let (ok, text, _) = cli(a, &["address"]);
    assert!(ok && text == key.address().to_string(), "{text}");

    let deposit = DEPOSIT.to_string();
    let ca = json(a, &["open", &deposit])["channel"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, text, err) = cli(b, &["open", &deposit]);
    assert!(
        ok && text.starts_with("channel ") && text.ends_with(" open"),
        "{text}{err}"
    );
    let inv = json(b, &["invoice", "700", "--memo", "tea"]);
    let invoice = inv["invoice"].as_str().unwrap();
    assert!(invoice.starts_with("slinv1"));

    // The payee stays online to take the payment.
    let mut run = Command::new(BIN);
    run.arg("--dir").arg(b).args(["run", "--for-secs", "120"]);
    let mut payee = Daemon::spawn("payee", run, &n.net.dir().join("payee.log")).unwrap();
    net::wait_until(
        "the hub's collateral toward B",
        Duration::from_secs(30),
        || async { json(b, &["balance"])["channels"][0]["deposit_b"].as_u64() > Some(0) },
    )
    .await;

    let (ok, bad, err) = cli(a, &["pay", "slinv1garbage"]);
    assert!(
        !ok && bad.is_empty() && err.starts_with("error: invoice rejected"),
        "{err}"
    );
    // F7: a fee above the caller's maximum is refused before anything is locked.
    let (ok, _, err) = cli(a, &["pay", "--max-fee", "0", invoice]);
    assert!(!ok && err.contains("above the maximum 0"), "{err}");
    assert_eq!(json(a, &["payments"]).as_array().map(Vec::len), Some(0));
    let paid = json(a, &["pay", invoice]);
    let secret: sluice_protocol::Hash32 = paid["secret"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        sluice_protocol::sha256(&secret.0).to_string(),
        inv["hashlock"]
    );

    let pays = json(a, &["payments"]);
    assert_eq!(pays[0]["status"], "completed");
    assert_eq!(pays[0]["amount"], 700);
    let fee = pays[0]["fee"].as_u64().unwrap();
    assert_eq!(
        paid["fee"].as_u64(),
        Some(fee),
        "the fee `pay` showed is the one paid"
    );
    let (_, text, _) = cli(a, &["payments"]);
    assert!(text.contains("sent 700 completed"), "{text}");
    let bal = json(a, &["balance"]);
    assert_eq!(bal["channels"][0]["balance"], DEPOSIT - 700 - fee);
    assert_eq!(bal["off_chain"], DEPOSIT - 700 - fee);
    let (_, text, _) = cli(a, &["balance"]);
    assert!(
        text.starts_with("on chain: ") && text.contains("off chain: "),
        "{text}"
    );

    let (ok, text, err) = cli(a, &["close", &ca]);
    assert!(ok, "{err}");
    assert_eq!(text, format!("closed; paid out {}", DEPOSIT - 700 - fee));
    let (ok, _, err) = cli(a, &["close", &ca]);
    assert!(
        !ok && err.contains("settled"),
        "a second close says why: {err}"
    );
    // A service manager's SIGTERM ends `run` as Ctrl-C does: a clean exit, not a kill.
    let stopped = payee.stop(Duration::from_secs(5));
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");
}

/// `send` moves funds on chain between accounts, fee on top; a send above the balance, of
/// nothing, or to itself is refused by name and nothing reaches the chain.
#[tokio::test(flavor = "multi_thread")]
async fn send_moves_funds_on_chain_and_refuses_what_it_cannot_cover() {
    let n = net::start(2, false).await;
    let (a, b) = (n.dirs[0].as_path(), n.dirs[1].as_path());
    let ka: sluice_protocol::Address = init(&n, a)["address"].as_str().unwrap().parse().unwrap();
    let kb: sluice_protocol::Address = init(&n, b)["address"].as_str().unwrap().parse().unwrap();
    let (before_a, before_b) = (n.account(&ka).await, n.account(&kb).await);

    let sent = json(a, &["send", &kb.to_string(), "1234"]);
    assert_eq!(sent["amount"], 1234);
    let fee = sent["fee"].as_u64().unwrap();
    assert_eq!(n.account(&kb).await, before_b + 1234);
    assert_eq!(n.account(&ka).await, before_a - 1234 - fee);

    let after_a = n.account(&ka).await;
    let too_much = after_a.to_string();
    let (ok, _, err) = cli(a, &["send", &kb.to_string(), &too_much]);
    assert!(!ok && err.contains("the account holds"), "{err}");
    let (ok, _, err) = cli(a, &["send", &kb.to_string(), "0"]);
    assert!(!ok && err.contains("above zero"), "{err}");
    let (ok, _, err) = cli(a, &["send", &ka.to_string(), "5"]);
    assert!(!ok && err.contains("itself"), "{err}");
    let (ok, _, err) = cli(a, &["send", "not-an-address", "5"]);
    assert!(!ok && err.contains("not-an-address"), "{err}");
    assert_eq!(n.account(&ka).await, after_a, "nothing was submitted");
}
