//! `sluice-wallet` as a process against a real network: init, address, open, invoice, pay,
//! balance, payments and close; readable text by default, JSON that parses with `--json`, and
//! errors that say what to do next. Addresses go in and come out as `sl1…` text, so a typo in
//! one is refused by its checksum; `decode` shows an invoice without any network.

mod support;

use serde_json::Value;
use sluice_client::config::KEY_FILE;
use sluice_protocol::invoice::{Invoice, SignedInvoice};
use sluice_protocol::{Address, Keypair};
use sluice_test_support::Daemon;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::net::{self, Net, DEPOSIT};

const BIN: &str = env!("CARGO_BIN_EXE_sluice-wallet");

/// Runs the CLI in `dir`; returns (success, stdout, stderr).
fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    cli_env(dir, args, &[])
}

/// [`cli`] with environment variables set.
fn cli_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("--dir")
        .arg(dir)
        .args(args)
        .envs(env.iter().copied())
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
    let key = n.net.hub_key.to_text();
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
    let made_b = init(&n, b);
    let key = sluice_client::keyfile::load(&a.join(KEY_FILE)).unwrap();
    assert_eq!(made["address"], key.address().to_text());
    let (ok, text, _) = cli(a, &["address"]);
    assert!(ok && text == key.address().to_text(), "{text}");
    let (ok, text, _) = cli(a, &["address", "--hex"]);
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
    assert_eq!(inv["uri"], format!("sluice:{invoice}"));
    // The payer's wallet reads it as payable: its hub, its chain (recorded at `open`).
    let seen = json(a, &["decode", invoice]);
    assert_eq!(seen["amount"], 700);
    assert_eq!(seen["memo"], "tea");
    assert_eq!(seen["signature_valid"], true);
    assert_eq!(seen["payee"], made_b["address"]);
    assert_eq!(
        seen["wallet"],
        serde_json::json!({ "hub_matches": true, "chain_matches": true })
    );
    assert_qr_invoice(b);

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

    // Withdraw without closing: more than the balance is refused by name, nothing signed.
    let left = DEPOSIT - 700 - fee;
    let (ok, _, err) = cli(a, &["withdraw", &ca, &(left + 1).to_string()]);
    assert!(!ok && err.contains("insufficient balance"), "{err}");
    assert_eq!(json(a, &["balance"])["channels"][0]["balance"], left);
    let on_chain = json(a, &["balance"])["on_chain"].as_u64().unwrap();
    let w = json(a, &["withdraw", &ca, "1000"]);
    assert_eq!(
        (w["amount"].as_u64(), w["balance_left"].as_u64()),
        (Some(1000), Some(left - 1000))
    );
    let bal = json(a, &["balance"]);
    assert_eq!(
        bal["on_chain"].as_u64(),
        Some(on_chain + 1000 - 1),
        "paid, fee 1"
    );
    assert_eq!(bal["channels"][0]["status"], "open");

    let (ok, text, err) = cli(a, &["close", &ca]);
    assert!(ok, "{err}");
    assert_eq!(text, format!("closed; paid out {}", left - 1000));
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
    let text = |v: Value| Address::parse_text(v["address"].as_str().unwrap()).unwrap();
    let (ka, kb) = (text(init(&n, a)), text(init(&n, b)));
    let (before_a, before_b) = (n.account(&ka).await, n.account(&kb).await);

    // One character of the receiver changed: refused by the checksum, nothing sent.
    let (ok, _, err) = cli(a, &["send", &one_character_changed(&kb.to_text()), "1234"]);
    assert!(!ok && err.contains("checksum"), "{err}");
    let (ok, _, err) = cli(a, &["send", &kb.to_string(), "1234"]);
    assert!(!ok && err.contains("hex has no checksum"), "{err}");
    assert_eq!(n.account(&ka).await, before_a, "nothing was submitted");
    assert_eq!(n.account(&kb).await, before_b);

    let sent = json(a, &["send", &kb.to_text(), "1234"]);
    assert_eq!(sent["amount"], 1234);
    assert_eq!(sent["to"], kb.to_text());
    let fee = sent["fee"].as_u64().unwrap();
    assert_eq!(n.account(&kb).await, before_b + 1234);
    assert_eq!(n.account(&ka).await, before_a - 1234 - fee);

    let after_a = n.account(&ka).await;
    let too_much = after_a.to_string();
    let (ok, _, err) = cli(a, &["send", &kb.to_text(), &too_much]);
    assert!(!ok && err.contains("the account holds"), "{err}");
    let (ok, _, err) = cli(a, &["send", &kb.to_text(), "0"]);
    assert!(!ok && err.contains("above zero"), "{err}");
    let (ok, _, err) = cli(a, &["send", &ka.to_text(), "5"]);
    assert!(!ok && err.contains("itself"), "{err}");
    let (ok, _, err) = cli(a, &["send", "not-an-address", "5"]);
    assert!(!ok && err.contains("not-an-address"), "{err}");
    assert_eq!(n.account(&ka).await, after_a, "nothing was submitted");
}

/// `text` with its 10th character swapped for another of the bech32 alphabet.
fn one_character_changed(text: &str) -> String {
    let mut s = text.to_string();
    let swap = if &s[9..10] == "q" { "p" } else { "q" };
    s.replace_range(9..10, swap);
    s
}

/// An invoice signed by `payee` through `hub`, made here: `decode` needs no network.
fn signed_invoice(payee: &Keypair, hub: Address, expires_at: u64) -> SignedInvoice {
    Invoice {
        chain_id: 7,
        hub,
        payee: payee.address(),
        amount: 1_500,
        hashlock: sluice_protocol::sha256(b"secret"),
        expires_at,
        memo: "coffee\u{1b}[2J".into(),
    }
    .sign(payee)
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `decode` shows every field of an invoice string or URI, in text and as JSON, with no
/// wallet, node or hub; the memo's control characters are escaped in the text.
#[test]
fn decode_shows_every_field_without_a_network() {
    let dir = tempfile::tempdir().unwrap();
    let (payee, hub) = (Keypair::generate(), Address([9; 32]));
    let signed = signed_invoice(&payee, hub, now() + 7_200);
    let s = signed.encode_string().unwrap();
    let (ok, text, err) = cli(dir.path(), &["decode", &s]);
    assert!(ok, "{err}");
    for want in [
        format!("invoice:     {s}"),
        "chain id:    7".into(),
        format!("hub:         {}", hub.to_text()),
        format!("payee:       {}", payee.address().to_text()),
        "amount:      1500".into(),
        format!("hashlock:    {}", signed.invoice.hashlock),
        "memo:        \"coffee\\u{1b}[2J\"".into(),
        "signature:   valid".into(),
        "this wallet: no wallet config".into(),
    ] {
        assert!(text.contains(&want), "{want:?} missing from\n{text}");
    }
    assert!(
        text.contains("(unix time; in 1h 59m)") || text.contains("in 2h"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no raw escape reaches the terminal"
    );

    let uri = signed.to_qr_uri().unwrap();
    let v = json(dir.path(), &["decode", &uri]);
    assert_eq!(v["invoice"], s);
    assert_eq!(v["uri"], format!("sluice:{s}"));
    assert_eq!(v["chain_id"], 7);
    assert_eq!(v["hub"], hub.to_text());
    assert_eq!(v["payee"], payee.address().to_text());
    assert_eq!(v["amount"], 1_500);
    assert_eq!(v["hashlock"], signed.invoice.hashlock.to_string());
    assert_eq!(v["expires_at"], signed.invoice.expires_at);
    assert!(v["expires_in_secs"].as_i64().unwrap() > 7_000, "{v}");
    assert_eq!(v["expired"], false);
    assert_eq!(v["memo"], "coffee\u{1b}[2J");
    assert_eq!(v["signature_valid"], true);
    assert_eq!(v["signature_error"], Value::Null);
    assert_eq!(v["wallet"], Value::Null);
}

/// One changed character fails the checksum, an address is not an invoice, and both exit
/// non-zero with the typed error; a string whose checksum holds but whose signature is not
/// the payee's is shown, marked invalid.
#[test]
fn decode_refuses_a_tampered_string_and_marks_a_forged_signature() {
    let dir = tempfile::tempdir().unwrap();
    let payee = Keypair::generate();
    let s = signed_invoice(&payee, Address([9; 32]), now() + 60)
        .encode_string()
        .unwrap();
    let (ok, out, err) = cli(dir.path(), &["decode", &one_character_changed(&s)]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.starts_with("error: invoice rejected") && err.contains("checksum"),
        "{err}"
    );
    let (ok, out, _) = cli(
        dir.path(),
        &["decode", "--json", &payee.address().to_text()],
    );
    assert!(!ok, "an address decoded as an invoice");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["error"].as_str().unwrap().contains("slinv1"), "{v}");

    let mut forged = signed_invoice(&payee, Address([9; 32]), now() - 90);
    forged.invoice.amount = 1_000_000;
    let forged = forged.encode_string().unwrap();
    let v = json(dir.path(), &["decode", &forged]);
    assert_eq!(v["amount"], 1_000_000);
    assert_eq!(v["signature_valid"], false);
    assert!(v["signature_error"].as_str().is_some(), "{v}");
    assert_eq!(v["expired"], true);
    let (ok, text, _) = cli(dir.path(), &["decode", &forged]);
    assert!(
        ok && text.contains("signature:   INVALID, do not pay"),
        "{text}"
    );
    assert!(
        text.contains("EXPIRED 1m 30s ago") || text.contains("EXPIRED 1m 3"),
        "{text}"
    );
}

/// With a wallet config in `--dir`, `decode` says whether the invoice is for this wallet's hub
/// (the config's `hub_key`, which the environment overrides); the chain is unknown until the
/// wallet has reached its node.
#[test]
fn decode_compares_with_the_wallets_hub() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Address([9; 32]);
    let key = hub.to_text();
    let (ok, _, err) = cli(
        dir.path(),
        &[
            "init",
            "--node",
            "127.0.0.1:1",
            "--hub",
            "127.0.0.1:2",
            "--hub-key",
            &key,
        ],
    );
    assert!(ok, "{err}");
    let config = std::fs::read_to_string(dir.path().join("wallet.toml")).unwrap();
    assert!(config.contains(&format!("hub_key = \"{key}\"")), "{config}");
    let s = signed_invoice(&Keypair::generate(), hub, now() + 60)
        .encode_string()
        .unwrap();
    let v = json(dir.path(), &["decode", &s]);
    assert_eq!(
        v["wallet"],
        serde_json::json!({ "hub_matches": true, "chain_matches": null })
    );
    let (ok, text, _) = cli(dir.path(), &["decode", &s]);
    assert!(
        ok && text.contains("this wallet: its hub; chain not known yet"),
        "{text}"
    );

    let other = Address([8; 32]).to_text();
    let env = [("SLUICE_WALLET_HUB_KEY", other.as_str())];
    let (ok, out, err) = cli_env(dir.path(), &["decode", "--json", &s], &env);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["wallet"]["hub_matches"], false);
    let (ok, _, err) = cli(dir.path(), &["--hub-key", &other[..20], "decode", &s]);
    assert!(!ok && err.contains("--hub-key"), "{err}");
}

/// `invoice --qr` prints the invoice, then a QR code of its upper-case payment URI: light
/// modules drawn as blocks (for a dark terminal), the quiet zone included.
fn assert_qr_invoice(dir: &Path) {
    let (ok, text, err) = cli(dir, &["invoice", "5", "--qr"]);
    assert!(ok, "{err}");
    let (invoice, block) = text.split_once('\n').unwrap();
    let uri = SignedInvoice::parse(invoice).unwrap().to_qr_uri().unwrap();
    assert!(uri.starts_with("SLUICE:SLINV1"), "{uri}");
    let code = qrcode::QrCode::new(uri.as_bytes()).unwrap();
    assert_eq!(dark_modules(block), expected_modules(&code), "{block}");
    let v = json(dir, &["invoice", "5", "--qr"]);
    assert!(v["qr"].as_str().is_some_and(|q| q.contains('█')), "{v}");
    assert!(
        v["uri"].as_str().unwrap().starts_with("sluice:slinv1"),
        "{v}"
    );
}

/// Which modules a light-on-dark `Dense1x2` drawing shows dark, row by row: each character
/// is two modules, a block half being a light one.
fn dark_modules(block: &str) -> Vec<Vec<bool>> {
    let mut rows = Vec::new();
    for line in block.lines() {
        let halves: Vec<(bool, bool)> = line
            .chars()
            .map(|c| match c {
                ' ' => (true, true),
                '▄' => (true, false),
                '▀' => (false, true),
                '█' => (false, false),
                other => panic!("{other:?} in a QR block"),
            })
            .collect();
        rows.push(halves.iter().map(|h| h.0).collect());
        rows.push(halves.iter().map(|h| h.1).collect());
    }
    rows
}

/// The code's modules with a four-module light quiet zone, padded to an even row count as
/// the drawing is (the padding half reads dark).
fn expected_modules(code: &qrcode::QrCode) -> Vec<Vec<bool>> {
    let w = code.width();
    let colors = code.to_colors();
    let side = w + 8;
    let mut rows: Vec<Vec<bool>> = (0..side)
        .map(|y| {
            (0..side)
                .map(|x| {
                    let inside = (4..w + 4).contains(&x) && (4..w + 4).contains(&y);
                    inside && colors[(y - 4) * w + (x - 4)] == qrcode::Color::Dark
                })
                .collect()
        })
        .collect();
    if side % 2 == 1 {
        rows.push(vec![true; side]);
    }
    rows
}
