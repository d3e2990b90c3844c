//! Against real `sluice-node` and `sluice-hub` processes: open, pay and receive, close
//! cooperatively. Needs the workspace binaries (`cargo build --bins`).

use sluice_client::store::PaymentStatus;
use sluice_client::{keyfile, Wallet, WalletConfig};
use sluice_test_support::{bin_path, free_port, wait_for_file, Daemon};
use std::process::Command;
use std::time::Duration;

struct Net {
    _node: Daemon,
    _hub: Daemon,
    node: String,
    hub: String,
    hub_key: sluice_protocol::Address,
}

fn start(root: &std::path::Path, funded: &[sluice_protocol::Address]) -> Option<Net> {
    let (Ok(node_bin), Ok(hub_bin)) = (bin_path("sluice-node"), bin_path("sluice-hub")) else {
        eprintln!("skipping: run `cargo build --bins` first");
        return None;
    };
    let rpc = format!("127.0.0.1:{}", free_port());
    let hub_home = root.join("hub");
    let out = Command::new(&hub_bin)
        .args(["init", "--home"])
        .arg(&hub_home)
        .args(["--chain-rpc", &rpc])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hub_key: sluice_protocol::Address =
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let node_home = root.join("node");
    let mut init = Command::new(&node_bin);
    init.args(["init", "--home"])
        .arg(&node_home)
        .args(["--chain-id", "7", "--rpc-addr", &rpc]);
    for a in funded.iter().chain([&hub_key]) {
        init.args(["--fund", &format!("{a}=100000000")]);
    }
    let out = init.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut run = Command::new(&node_bin);
    run.args(["run", "--home"]).arg(&node_home).arg("--dev");
    let node = Daemon::spawn("node", run, &root.join("node.log")).unwrap();
    wait_for_file(&node_home.join("rpc.addr"), Duration::from_secs(20)).unwrap();
    let mut run = Command::new(&hub_bin);
    run.args(["run", "--home"]).arg(&hub_home);
    run.env("SLUICE_HUB_COLLATERAL__THRESHOLD", "1000");
    run.env("SLUICE_HUB_COLLATERAL__TARGET", "5000");
    let hub = Daemon::spawn("hub", run, &root.join("hub.log")).unwrap();
    let hub_addr = wait_for_file(&hub_home.join("hub.addr"), Duration::from_secs(20)).unwrap();
    Some(Net {
        _node: node,
        _hub: hub,
        node: rpc,
        hub: hub_addr,
        hub_key,
    })
}

async fn wallet(dir: &std::path::Path, net: &Net) -> Wallet {
    let cfg = WalletConfig::new(net.node.clone(), net.hub.clone(), net.hub_key);
    Wallet::open(dir, cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn open_pay_receive_and_close_cooperatively() {
    let root = tempfile::tempdir().unwrap();
    let (da, db) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let ka = keyfile::load_or_create(&da.join("wallet.key")).unwrap();
    let kb = keyfile::load_or_create(&db.join("wallet.key")).unwrap();
    let Some(net) = start(root.path(), &[ka.address(), kb.address()]) else {
        return;
    };
    let (a, b) = (wallet(&da, &net).await, wallet(&db, &net).await);
    let ca = a.open_channel(10_000).await.unwrap();
    let cb = b.open_channel(10_000).await.unwrap();
    a.connect().await.unwrap();
    b.connect().await.unwrap();
    // The hub funds its side toward B by its collateral policy.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while b.channels().await.unwrap()[0].deposit_b < 1_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "hub never funded B's channel"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let inv = b
        .create_invoice(500, "lunch", Duration::from_secs(600))
        .await
        .unwrap();
    let secret = a.pay(&inv.invoice).await.unwrap();
    assert_eq!(sluice_protocol::sha256(&secret.0), inv.hashlock);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let p = b.payments().await.unwrap();
        if p.first()
            .is_some_and(|p| p.status == PaymentStatus::Completed)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never saw the payment complete"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b_info = b.channels().await.unwrap().remove(0);
    assert_eq!(b_info.balance, 10_500);
    let (paid_a, _) = a.close(&ca).await.unwrap();
    let fee = a.payments().await.unwrap()[0].fee;
    assert_eq!(paid_a, 10_000 - 500 - fee);
    let _ = cb;
}
