//! Against real processes: a `sluice-node` dev chain (100 ms blocks) and the `sluice-watchtower`
//! binary. Channel states are built with the protocol crate, two local keys playing client (a,
//! the victim) and hub (b, who closes with an old state).

use sluice_chain_client::{ChainClient, TxSender};
use sluice_protocol::onchain::ChannelStatus;
use sluice_protocol::rpc::EventFilter;
use sluice_protocol::wire::tower::Receipt;
use sluice_protocol::{Address, Hash32, Height, Keypair, TxKind};
use sluice_test_support::{bin_path, wait_for_file, Daemon};
use sluice_watchtower::fixtures::{appointment_request, auth, register_request, TestChannel};
use sluice_watchtower::store::AppointmentSummary;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CHAIN: u64 = 7;
const DEPOSIT: u64 = 1_000;
const PERIOD: Height = 12;
const T: Duration = Duration::from_secs(20);

struct Net {
    dir: tempfile::TempDir,
    _node: Daemon,
    client: ChainClient,
    tower_key: Address,
    ch: TestChannel,
    funder: Keypair,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn tower_home(dir: &Path) -> PathBuf {
    dir.join("tower")
}

async fn net() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let th = tower_home(dir.path());
    let tower_key: Address = run(Command::new(bin_path("sluice-watchtower").unwrap())
        .args(["init", "--chain-id", &CHAIN.to_string(), "--home"])
        .arg(&th))
    .parse()
    .unwrap();
    let ch = TestChannel::random(CHAIN);
    let funder = Keypair::generate();
    let node_home = dir.path().join("node");
    let mut init = Command::new(bin_path("sluice-node").unwrap());
    init.args([
        "init",
        "--chain-id",
        &CHAIN.to_string(),
        "--rpc-addr",
        "127.0.0.1:0",
    ])
    .args([
        "--block-time-ms",
        "100",
        "--min-challenge-period",
        "2",
        "--home",
    ])
    .arg(&node_home);
    for who in [ch.a.address(), ch.b.address(), tower_key, funder.address()] {
        init.arg("--fund").arg(format!("{who}=1000000"));
    }
    run(&mut init);
    let mut cmd = Command::new(bin_path("sluice-node").unwrap());
    cmd.args(["run", "--dev", "--home"]).arg(&node_home);
    let node = Daemon::spawn("sluice-node", cmd, &dir.path().join("node.log")).unwrap();
    let addr = wait_for_file(&node_home.join("rpc.addr"), T).unwrap();
    let client = ChainClient::new(&addr);
    let net = Net {
        dir,
        _node: node,
        client,
        tower_key,
        ch,
        funder,
    };
    net.open_channel().await;
    net
}

impl Net {
    fn sender(&self, key: &Keypair) -> TxSender {
        TxSender::new(self.client.clone(), key.clone(), CHAIN, 10)
    }

    async fn open_channel(&self) {
        let open = TxKind::OpenChannel {
            counterparty: self.ch.b.address(),
            deposit: DEPOSIT,
            challenge_period: PERIOD,
            salt: self.ch.salt,
        };
        self.sender(&self.ch.a).send(open, T).await.unwrap();
        let dep = TxKind::Deposit {
            channel_id: self.ch.id(),
            amount: DEPOSIT,
        };
        self.sender(&self.ch.b).send(dep, T).await.unwrap();
    }

    fn start_tower(&self) -> Daemon {
        let th = tower_home(self.dir.path());
        let _ = std::fs::remove_file(th.join("tower.addr"));
        let mut cmd = Command::new(bin_path("sluice-watchtower").unwrap());
        cmd.args(["run", "--home"])
            .arg(&th)
            .env("SLUICE_TOWER_NODE_RPC", self.client.url())
            .env("SLUICE_TOWER_POLL_MS", "50");
        let d =
            Daemon::spawn("sluice-watchtower", cmd, &self.dir.path().join("tower.log")).unwrap();
        wait_for_file(&th.join("tower.addr"), T).unwrap();
        d
    }

    fn tower_url(&self) -> String {
        let addr = std::fs::read_to_string(tower_home(self.dir.path()).join("tower.addr")).unwrap();
        format!("http://{addr}")
    }

    /// Registers a with the tower and hands it the latest state (version 2); returns the receipt.
    async fn appoint(&self) -> Receipt {
        let http = reqwest::Client::new();
        let url = self.tower_url();
        let reg = register_request(&self.ch.a, CHAIN, &self.tower_key);
        let r = http
            .post(format!("{url}/register"))
            .json(&reg)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let req = appointment_request(
            &self.ch.a,
            CHAIN,
            &self.tower_key,
            self.ch.appointment_of(self.latest()),
        );
        let r = http
            .post(format!("{url}/appointments"))
            .json(&req)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let receipt: Receipt = r.json().await.unwrap();
        assert_eq!(receipt.verify(), Ok(()));
        receipt
    }

    /// a paid b 600, then b paid a 500: a holds 900, b 1100.
    fn latest(&self) -> sluice_protocol::Snapshot {
        self.ch.snapshot_paid(2, 600, 500)
    }

    /// b closes with version 1 (a had paid 600, nothing back): b would take 1600.
    async fn stale_close(&self) -> Height {
        let stale = self.ch.snapshot_paid(1, 600, 0);
        let close = TxKind::Close {
            cosigned: stale.cosigned,
            locks: vec![],
        };
        self.sender(&self.ch.b).send(close, T).await.unwrap().height
    }

    async fn stored_version(&self) -> u64 {
        match self
            .client
            .channel(&self.ch.id())
            .await
            .unwrap()
            .unwrap()
            .status
        {
            ChannelStatus::Closing { stored, .. } => stored.state().version,
            s => panic!("channel not closing: {s:?}"),
        }
    }

    async fn settle_after(&self) -> Height {
        match self
            .client
            .channel(&self.ch.id())
            .await
            .unwrap()
            .unwrap()
            .status
        {
            ChannelStatus::Closing { settle_after, .. } => settle_after,
            s => panic!("channel not closing: {s:?}"),
        }
    }

    /// Blocks are sealed only when transactions wait: small transfers move the chain on.
    async fn advance_to(&self, height: Height) {
        let s = self.sender(&self.funder);
        while self.client.chain_info().await.unwrap().height < height {
            let tx = TxKind::Transfer {
                to: Keypair::generate().address(),
                amount: 1,
            };
            s.send(tx, T).await.unwrap();
        }
    }

    /// Height of the challenge that replaced the stale state, once it is in a block.
    async fn challenged_at(&self, timeout: Duration) -> Height {
        let deadline = Instant::now() + timeout;
        let filter = EventFilter {
            channel_id: Some(self.ch.id()),
            kinds: vec!["ChannelChallenged".into()],
            ..EventFilter::default()
        };
        loop {
            let tip = self.client.chain_info().await.unwrap().height;
            if let Some(e) = self
                .client
                .events(0, tip, filter.clone())
                .await
                .unwrap()
                .first()
            {
                return e.height;
            }
            assert!(Instant::now() < deadline, "no challenge within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn settle(&self) -> (u64, u64) {
        self.advance_to(self.settle_after().await).await;
        let settle = TxKind::Settle {
            channel_id: self.ch.id(),
        };
        self.sender(&self.ch.a).send(settle, T).await.unwrap();
        match self
            .client
            .channel(&self.ch.id())
            .await
            .unwrap()
            .unwrap()
            .status
        {
            ChannelStatus::Settled { payout_a, payout_b } => (payout_a, payout_b),
            s => panic!("not settled: {s:?}"),
        }
    }
}

#[tokio::test]
async fn stale_close_is_defeated_and_settlement_pays_the_honest_party() {
    let net = net().await;
    let _tower = net.start_tower();
    let receipt = net.appoint().await;
    assert_eq!((receipt.channel_id, receipt.version), (net.ch.id(), 2));
    let closed_at = net.stale_close().await;
    let challenged_at = net.challenged_at(T).await;
    println!("reaction_blocks={}", challenged_at - closed_at);
    assert!(
        challenged_at - closed_at <= 2,
        "challenge at {challenged_at}, close at {closed_at}"
    );
    assert_eq!(net.stored_version().await, 2);
    assert_eq!(net.settle().await, (900, 1_100));
}

#[tokio::test]
async fn tower_restarted_inside_the_window_still_defeats_the_close() {
    let net = net().await;
    let mut tower = net.start_tower();
    net.appoint().await;
    tower.stop(Duration::from_secs(5));
    let closed_at = net.stale_close().await;
    net.advance_to(closed_at + 3).await;
    assert_eq!(net.stored_version().await, 1, "nobody has challenged yet");
    let _tower = net.start_tower();
    let challenged_at = net.challenged_at(T).await;
    assert!(challenged_at < net.settle_after().await);
    assert_eq!(net.stored_version().await, 2);
    assert_eq!(net.settle().await, (900, 1_100));
}

#[tokio::test]
async fn appointment_survives_sigkill_right_after_the_receipt() {
    let net = net().await;
    let mut tower = net.start_tower();
    let receipt = net.appoint().await;
    tower.kill();
    let _tower = net.start_tower();
    let a = auth(&net.ch.a, CHAIN, &net.tower_key, "list", &Hash32::default());
    let listed: Vec<AppointmentSummary> = reqwest::Client::new()
        .get(format!("{}/appointments", net.tower_url()))
        .header("x-sluice-auth", serde_json::to_string(&a).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].channel_id, listed[0].version),
        (receipt.channel_id, receipt.version)
    );
    // And it is still acted on.
    let closed_at = net.stale_close().await;
    assert!(net.challenged_at(T).await > closed_at);
}
