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
    /// Sends the background transfers that make the chain seal a block every block time.
    traffic: Keypair,
    period: Height,
    tower_env: Vec<(&'static str, &'static str)>,
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
    net_with(PERIOD, &[], vec![]).await
}

/// A dev node (with `node_env` set) and a funded, open channel of challenge period `period`.
async fn net_with(
    period: Height,
    node_env: &[(&str, &str)],
    tower_env: Vec<(&'static str, &'static str)>,
) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let th = tower_home(dir.path());
    // `init` prints the tower's address as a person copies it: `sl1…` text.
    let printed = run(Command::new(bin_path("sluice-watchtower").unwrap())
        .args(["init", "--chain-id", &CHAIN.to_string(), "--home"])
        .arg(&th));
    let tower_key = Address::parse_text(&printed).unwrap();
    let ch = TestChannel::random(CHAIN);
    let (funder, traffic) = (Keypair::generate(), Keypair::generate());
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
    let funded = [ch.a.address(), ch.b.address(), tower_key, funder.address()];
    for who in funded.into_iter().chain([traffic.address()]) {
        init.arg("--fund").arg(format!("{who}=1000000"));
    }
    run(&mut init);
    let mut cmd = Command::new(bin_path("sluice-node").unwrap());
    cmd.args(["run", "--dev", "--home"]).arg(&node_home);
    cmd.envs(node_env.iter().copied());
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
        traffic,
        period,
        tower_env,
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
            challenge_period: self.period,
            salt: self.ch.salt,
        };
        self.sender(&self.ch.a).send(open, T).await.unwrap();
        let dep = TxKind::Deposit {
            channel_id: self.ch.id(),
            amount: DEPOSIT,
        };
        self.sender(&self.ch.b).send(dep, T).await.unwrap();
    }

    /// Opens another channel on chain, from the funder to the traffic key, with `deposit`.
    async fn open_other(&self, deposit: u64) -> TestChannel {
        self.open_other_for(deposit, self.period).await
    }

    /// [`open_other`](Self::open_other) with its own challenge period.
    async fn open_other_for(&self, deposit: u64, period: Height) -> TestChannel {
        let other = self.other();
        self.open(&other, deposit, period).await;
        other
    }

    /// A channel from the funder to the traffic key, not yet on chain.
    fn other(&self) -> TestChannel {
        let salt = Hash32(Keypair::generate().secret_bytes());
        TestChannel::new(CHAIN, self.funder.clone(), self.traffic.clone(), salt)
    }

    /// Opens `other` on chain with `deposit` from party a.
    async fn open(&self, other: &TestChannel, deposit: u64, period: Height) {
        let salt = other.salt;
        let open = TxKind::OpenChannel {
            counterparty: other.b.address(),
            deposit,
            challenge_period: period,
            salt,
        };
        self.sender(&other.a).send(open, T).await.unwrap();
    }

    fn start_tower(&self) -> Daemon {
        let th = tower_home(self.dir.path());
        let _ = std::fs::remove_file(th.join("tower.addr"));
        let mut cmd = Command::new(bin_path("sluice-watchtower").unwrap());
        cmd.args(["run", "--home"])
            .arg(&th)
            .env("SLUICE_TOWER_NODE_RPC", self.client.url())
            .env("SLUICE_TOWER_POLL_MS", "50")
            .env("SLUICE_TOWER_LISTEN_ADDR", "127.0.0.1:0")
            .envs(self.tower_env.iter().copied());
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
        self.appoint_for(&self.ch, self.latest()).await
    }

    /// Registers `ch`'s party a with the tower and hands it `snap`; returns the receipt.
    async fn appoint_for(&self, ch: &TestChannel, snap: sluice_protocol::Snapshot) -> Receipt {
        let r = self.post_appointment(ch, snap).await;
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let receipt: Receipt = r.json().await.unwrap();
        assert_eq!(receipt.verify(), Ok(()));
        receipt
    }

    /// Registers `ch`'s party a with the tower and posts `snap`; the tower's answer.
    async fn post_appointment(
        &self,
        ch: &TestChannel,
        snap: sluice_protocol::Snapshot,
    ) -> reqwest::Response {
        let http = sluice_home::tls::http_client();
        let url = self.tower_url();
        let reg = register_request(&ch.a, CHAIN, &self.tower_key);
        let r = http
            .post(format!("{url}/register"))
            .json(&reg)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let req = appointment_request(&ch.a, CHAIN, &self.tower_key, ch.appointment_of(snap));
        http.post(format!("{url}/appointments"))
            .json(&req)
            .send()
            .await
            .unwrap()
    }

    async fn health(&self) -> serde_json::Value {
        let url = format!("{}/health", self.tower_url());
        sluice_home::tls::http_client()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
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

    /// Keeps a transfer waiting at all times until the handle is dropped, so the dev node seals
    /// a block every block time whether or not the tower has sent anything.
    fn traffic(&self) -> Traffic {
        let s = self.sender(&self.traffic);
        let to = Keypair::generate().address();
        Traffic(tokio::spawn(async move {
            loop {
                // A refusal only skips one beat.
                let _ = s.submit(TxKind::Transfer { to, amount: 1 }).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }))
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

    /// Starts the tower, which must challenge the stale close made at `closed_at` inside its
    /// window; the honest party a is then paid in full at settlement.
    async fn tower_defeats(&self, closed_at: Height) {
        let _tower = self.start_tower();
        let traffic = self.traffic();
        let challenged_at = self.challenged_at(T).await;
        drop(traffic);
        assert!(challenged_at > closed_at && challenged_at < self.settle_after().await);
        assert_eq!(self.settle().await, (900, 1_100));
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

struct Traffic(tokio::task::JoinHandle<()>);

impl Drop for Traffic {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// With a block sealed every 100 ms regardless, the challenge is in the very next block.
#[tokio::test]
async fn stale_close_is_defeated_and_settlement_pays_the_honest_party() {
    let net = net().await;
    let _tower = net.start_tower();
    let receipt = net.appoint().await;
    assert_eq!((receipt.channel_id, receipt.version), (net.ch.id(), 2));
    let traffic = net.traffic();
    let closed_at = net.stale_close().await;
    let challenged_at = net.challenged_at(T).await;
    drop(traffic);
    assert_eq!(
        challenged_at,
        closed_at + 1,
        "challenge at {challenged_at}, close at {closed_at}: not the first block after"
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
    let listed: Vec<AppointmentSummary> = sluice_home::tls::http_client()
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

/// One transaction per block and a queue of higher-fee transfers ahead of it: the first
/// challenge lingers, and each retry replaces it at the same nonce for a doubled fee until it
/// outbids the queue. Exactly one tower transaction is ever included.
#[tokio::test]
async fn lingering_challenge_is_replaced_at_its_nonce_with_a_higher_fee() {
    let net = net_with(
        40,
        &[("SLUICE_NODE_MAX_BLOCK_TXS", "1")],
        vec![("SLUICE_TOWER_RETRY_BLOCKS", "1")],
    )
    .await;
    let _tower = net.start_tower();
    net.appoint().await;
    let flood = TxSender::new(net.client.clone(), net.funder.clone(), CHAIN, 100);
    let to = Keypair::generate().address();
    for _ in 0..50 {
        flood
            .submit(TxKind::Transfer { to, amount: 1 })
            .await
            .unwrap();
    }
    let stale = net.ch.snapshot_paid(1, 600, 0);
    let close = TxKind::Close {
        cosigned: stale.cosigned,
        locks: vec![],
    };
    let b = TxSender::new(net.client.clone(), net.ch.b.clone(), CHAIN, 1_000);
    let closed_at = b.send(close, T).await.unwrap().height;
    let challenged_at = net.challenged_at(T).await;
    assert!(challenged_at < closed_at + 40, "inside the window");
    assert_eq!(net.stored_version().await, 2);
    assert_eq!(
        net.client.account(&net.tower_key).await.unwrap().nonce,
        1,
        "one tower transaction included: the retries replaced it"
    );
    let url = format!(
        "sqlite://{}",
        tower_home(net.dir.path()).join("tower.db").display()
    );
    let store = sluice_watchtower::store::Store::connect(&url, 1)
        .await
        .unwrap();
    let deadline = Instant::now() + T;
    let r = loop {
        let r = store.response(&net.ch.id()).await.unwrap().unwrap();
        if r.status != sluice_watchtower::store::ResponseStatus::Pending
            || Instant::now() > deadline
        {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        r.status,
        sluice_watchtower::store::ResponseStatus::Challenged,
        "{r:?}"
    );
    assert_eq!(r.tx_nonce, Some(0), "{r:?}");
    assert!(r.attempts >= 2 && r.last_fee > 100, "{r:?}");
}

/// F19: an appointment row the store cannot read back (planted behind the API's back, as a
/// damaged or older row would be) is set aside when its channel closes; the tower goes on and
/// still defeats another channel's stale close in the blocks that follow.
#[tokio::test]
async fn an_unreadable_row_does_not_stop_the_tower_defeating_another_close() {
    let net = net().await;
    let _tower = net.start_tower();
    net.appoint().await;
    let other = net.open_other(DEPOSIT).await;
    let db = format!(
        "sqlite://{}",
        tower_home(net.dir.path()).join("tower.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    sqlx::query(
        "INSERT INTO appointments (channel_id, party_a, party_b, salt, version, snapshot, \
         stored_height) VALUES ($1, $2, $3, $4, 5, $5, 1)",
    )
    .bind(&other.id().0[..])
    .bind(&other.a.address().0[..])
    .bind(&other.b.address().0[..])
    .bind(&other.salt.0[..])
    .bind(&[0xde, 0xad][..])
    .execute(&pool)
    .await
    .unwrap();
    let close = TxKind::Close {
        cosigned: other.snapshot(1, 0).cosigned,
        locks: vec![],
    };
    net.sender(&other.a).send(close, T).await.unwrap();
    let traffic = net.traffic();
    let closed_at = net.stale_close().await;
    let challenged_at = net.challenged_at(T).await;
    drop(traffic);
    assert!(challenged_at > closed_at);
    assert_eq!(
        net.settle().await,
        (900, 1_100),
        "the honest party is paid in full"
    );
}

/// F8: while the tower is away, more closes happen than the node returns per `events` query;
/// back up, the tower splits its catch-up until each query fits, and still defeats the stale
/// close hidden among them.
#[tokio::test]
async fn more_closes_than_one_query_returns_do_not_blind_the_tower() {
    let net = net_with(60, &[("SLUICE_NODE_MAX_EVENTS_PER_QUERY", "3")], vec![]).await;
    let mut tower = net.start_tower();
    net.appoint().await;
    tower.stop(Duration::from_secs(5));
    for _ in 0..8 {
        let other = net.open_other(10).await;
        let close = TxKind::Close {
            cosigned: other.snapshot(1, 0).cosigned,
            locks: vec![],
        };
        net.sender(&other.a).send(close, T).await.unwrap();
    }
    let closed_at = net.stale_close().await;
    net.tower_defeats(closed_at).await;
}

/// F8 at full size: while the tower is away, one channel is closed and then challenged ten
/// thousand times (10,001 matching events, more than the node's default 10,000 per query, all
/// inside one catch-up span), then the watched channel is closed with a stale state. Back up, the
/// tower reads through the flood and defeats the close.
#[tokio::test]
async fn ten_thousand_challenges_in_one_catch_up_span_do_not_blind_the_tower() {
    const FLOOD: u64 = 10_000;
    // One account sends the whole flood: let it queue a pool's worth ahead of its nonce.
    let net = net_with(60, &[("SLUICE_NODE_MEMPOOL_MAX_NONCE_GAP", "1000")], vec![]).await;
    let mut tower = net.start_tower();
    net.appoint().await;
    tower.stop(Duration::from_secs(5));
    let start = net.client.chain_info().await.unwrap().height;
    let other = net.open_other_for(10, 500).await;
    let close = TxKind::Close {
        cosigned: other.snapshot(1, 0).cosigned,
        locks: vec![],
    };
    net.sender(&other.a).send(close, T).await.unwrap();
    flood_challenges(&net, &other, 2..FLOOD + 2).await;
    let closed_at = net.stale_close().await;
    assert!(
        closed_at - start < sluice_chain_client::follower::SPAN,
        "the flood fits one catch-up span"
    );
    let everything = net
        .client
        .events(start, closed_at, EventFilter::default())
        .await;
    assert!(everything.is_err(), "one query cannot return the flood");
    net.tower_defeats(closed_at).await;
}

/// Challenges `other` at every version of `versions`, from party a, a pool's worth at a time.
async fn flood_challenges(net: &Net, other: &TestChannel, versions: std::ops::Range<u64>) {
    let from = other.a.address();
    let mut nonce = net.client.account(&from).await.unwrap().nonce;
    let versions: Vec<u64> = versions.collect();
    for chunk in versions.chunks(1_000) {
        let txs: Vec<_> = chunk
            .iter()
            .map(|&v| {
                let kind = TxKind::Challenge {
                    cosigned: other.snapshot(v, 0).cosigned,
                    locks: vec![],
                };
                let tx = sluice_protocol::Transaction {
                    chain_id: CHAIN,
                    from,
                    nonce,
                    fee: 10,
                    kind,
                };
                nonce += 1;
                tx.sign(&other.a)
            })
            .collect();
        for outcome in net.client.submit_many(&txs).await.unwrap() {
            assert_eq!(outcome.error, None);
        }
        let deadline = Instant::now() + T;
        while net.client.account(&from).await.unwrap().nonce < nonce {
            assert!(Instant::now() < deadline, "challenges not included");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// F9 and F19 at the door: a state that overdraws the channel's deposits on chain would make
/// the tower's challenge fail; it is refused with `does_not_fit` and nothing is stored.
#[tokio::test]
async fn a_state_beyond_the_channels_deposits_is_refused_at_submission() {
    let net = net_with(60, &[], vec![]).await;
    let _tower = net.start_tower();
    let other = net.open_other(10).await;
    // Version 5 pays b 600 out of a deposit of 10: valid signatures, impossible balances.
    let r = net.post_appointment(&other, other.snapshot(5, 600)).await;
    assert_eq!(r.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "does_not_fit", "{body}");
    let health = net.health().await;
    assert_eq!(health["appointments"], 0, "nothing stored");
    assert_eq!(health["ok"], true, "connected and caught up: {health}");
    // A state that fits the same channel is taken.
    net.appoint_for(&other, other.snapshot(6, 10)).await;
    assert_eq!(net.health().await["appointments"], 1);
}

/// F9 past the door: a state handed over before its channel was on chain, which then opens
/// with a smaller deposit, is checked against the chain before any fee is spent: the close goes
/// unanswered at no cost to the tower, and the response is recorded as failed.
#[tokio::test]
async fn an_appointment_that_does_not_fit_the_opened_channel_costs_the_tower_nothing() {
    let net = net_with(60, &[], vec![]).await;
    let _tower = net.start_tower();
    let other = net.other();
    net.appoint_for(&other, other.snapshot(5, 600)).await;
    net.open(&other, 10, 60).await;
    let before = net.client.account(&net.tower_key).await.unwrap();
    let close = TxKind::Close {
        cosigned: other.snapshot(1, 0).cosigned,
        locks: vec![],
    };
    net.sender(&other.b).send(close, T).await.unwrap();
    let traffic = net.traffic();
    let tip = net.client.chain_info().await.unwrap().height;
    net.advance_to(tip + 30).await;
    drop(traffic);
    let after = net.client.account(&net.tower_key).await.unwrap();
    assert_eq!(after, before, "no transaction, no fee");
}

/// F18: one of the tower's challenges waits in the pool when another submission is refused;
/// the next fresh nonce is above the waiting one, so it neither replaces it nor is refused as
/// an underpriced replacement, and both are included.
#[tokio::test]
async fn a_refusal_never_hands_out_the_nonce_of_a_waiting_transaction() {
    let net = net_with(60, &[("SLUICE_NODE_BLOCK_TIME_MS", "1500")], vec![]).await;
    let key = net.funder.clone();
    let s = sluice_watchtower::submitter::Submitter::new(net.client.clone(), key, CHAIN);
    let pay = || TxKind::Transfer {
        to: Keypair::generate().address(),
        amount: 1,
    };
    let (first, n) = s.submit_new(pay(), 10).await.unwrap();
    assert!(
        s.submit_new(pay(), 0).await.is_err(),
        "below the minimum fee"
    );
    let (second, m) = s.submit_new(pay(), 10).await.unwrap();
    assert_eq!(m, n + 1);
    net.client.wait_for_success(&first, T).await.unwrap();
    net.client.wait_for_success(&second, T).await.unwrap();
}

/// The tower's command line prints and takes addresses as `sl1…` text: `send` to an address
/// with one character changed is refused by its checksum, as is one in hex, and nothing
/// reaches the chain; the right text sends, and the JSON names the receiver as text.
#[tokio::test]
async fn the_command_line_takes_addresses_as_text_and_refuses_a_typo() {
    let net = net().await;
    let tower = |args: &[&str]| {
        let out = Command::new(bin_path("sluice-watchtower").unwrap())
            .args(args)
            .arg("--home")
            .arg(tower_home(net.dir.path()))
            .env("SLUICE_TOWER_NODE_RPC", net.client.url())
            .output()
            .unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap().trim().to_string();
        (out.status.success(), text(out.stdout), text(out.stderr))
    };
    let (ok, text, _) = tower(&["address"]);
    assert!(ok && text == net.tower_key.to_text(), "{text}");
    let (ok, text, _) = tower(&["address", "--hex"]);
    assert!(ok && text == net.tower_key.to_string(), "{text}");
    let (ok, text, err) = tower(&["balance"]);
    let shown = format!("(address {})", net.tower_key.to_text());
    assert!(ok && text.ends_with(&shown), "{text}{err}");

    let to = Keypair::generate().address();
    let before = net.client.account(&net.tower_key).await.unwrap();
    let typo = one_character_changed(&to.to_text());
    let (ok, _, err) = tower(&["send", &typo, "500"]);
    assert!(!ok && err.contains("checksum"), "{err}");
    let (ok, _, err) = tower(&["send", &to.to_string(), "500"]);
    assert!(!ok && err.contains("hex has no checksum"), "{err}");
    let after = net.client.account(&net.tower_key).await.unwrap();
    assert_eq!(after, before, "nothing was submitted");

    let (ok, out, err) = tower(&["send", "--json", &to.to_text(), "500"]);
    assert!(ok, "{err}");
    let sent: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sent["to"], to.to_text());
    assert_eq!(net.client.account(&to).await.unwrap().balance, 500);
}

/// `text` with its 10th character swapped for another of the bech32 alphabet.
fn one_character_changed(text: &str) -> String {
    let mut s = text.to_string();
    let swap = if &s[9..10] == "q" { "p" } else { "q" };
    s.replace_range(9..10, swap);
    s
}
