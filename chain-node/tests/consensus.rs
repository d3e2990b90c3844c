//! Four validators (and a full node) as separate `sluice-node` processes on loopback, driven by
//! Malachite: liveness with one down, safety (a halt, no fork) with two down, sync of a wiped
//! node, transaction gossip from a full node, refusal of a wrong state root, and bad peer input
//! (garbage on the P2P port, junk and oversized gossip, proposals from a non-validator).

mod common;

use common::{key, transfer, CHAIN};
use serde_json::{json, Value};
use sluice_protocol::encoding::Canonical;
use sluice_protocol::{hex, Address};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sluice-node");

/// One five-process network at a time: two cores cannot run several without timeouts firing.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Proc {
    home: PathBuf,
    child: Option<Child>,
    url: String,
    p2p_port: u16,
    env: Vec<(String, String)>,
}

impl Proc {
    fn launch(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.home.join("node.log"))
            .expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--home"])
            .arg(&self.home)
            .env("SLUICE_NODE_TIMEOUT_PROPOSE_MS", "3000")
            .env("SLUICE_NODE_TIMEOUT_PREVOTE_MS", "1000")
            .env("SLUICE_NODE_TIMEOUT_PRECOMMIT_MS", "1000")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn node"));
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("node.log")).unwrap_or_default()
    }

    async fn call(&self, method: &str, params: Value) -> Option<Value> {
        let body = json!({"jsonrpc":"2.0","id":1,"method":method,"params":params});
        let r = sluice_home::tls::http_client()
            .post(&self.url)
            .json(&body)
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v.get("result").cloned()
    }

    async fn height(&self) -> Option<u64> {
        self.call("chain_info", json!({})).await?["height"].as_u64()
    }

    async fn header(&self, h: u64) -> Option<Value> {
        let b = self.call("block", json!({"height": h})).await?;
        (!b.is_null()).then(|| b["header"].clone())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Net {
    _dir: tempfile::TempDir,
    nodes: Vec<Proc>,
    /// Held for the network's life (dropped last, once its processes are gone).
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

/// One five-process network at a time: several at once on a small machine starve consensus
/// timeouts and make the liveness tests flaky, for no gain in total time.
static ONE_NETWORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A base port with `2 * n` free ports above it.
fn base_port(n: usize) -> u16 {
    sluice_test_support::free_ports(2 * n as u16)
}

impl Net {
    /// Four validators (node0..3) and one full node (node4).
    fn start(env: &[(usize, &str, &str)]) -> Net {
        Net::start_with(1, env)
    }

    /// Four validators (node0..3), then `full_nodes` full nodes.
    fn start_with(full_nodes: usize, env: &[(usize, &str, &str)]) -> Net {
        let one_at_a_time = ONE_NETWORK.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().expect("tempdir");
        let total = 4 + full_nodes;
        let base = base_port(total);
        let mut init = Command::new(BIN);
        init.args(["init", "--home"])
            .arg(dir.path())
            .args(["--validators", "4", "--full-nodes", &full_nodes.to_string()])
            .args(["--base-port", &base.to_string()])
            .args(["--chain-id", &CHAIN.to_string()])
            .args(["--block-time-ms", "50"]);
        for n in 1..=4 {
            init.arg("--fund")
                .arg(format!("{}=1000000", key(n).address()));
        }
        let out = init.output().expect("init");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let nodes = (0..total)
            .map(|i| {
                let mut p = Proc {
                    home: dir.path().join(format!("node{i}")),
                    child: None,
                    url: format!("http://127.0.0.1:{}/", base as usize + 2 * i),
                    p2p_port: base + 2 * i as u16 + 1,
                    env: env
                        .iter()
                        .filter(|(n, _, _)| *n == i)
                        .map(|(_, k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                };
                p.launch();
                p
            })
            .collect();
        Net {
            _dir: dir,
            nodes,
            _one_at_a_time: one_at_a_time,
        }
    }

    /// Waits until every node in `which` reaches `height`.
    async fn wait_height(&self, which: &[usize], height: u64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let mut all = true;
            for &i in which {
                if self.nodes[i].height().await.unwrap_or(0) < height {
                    all = false;
                }
            }
            if all {
                return;
            }
            if Instant::now() > deadline {
                let mut hs = vec![];
                for &i in which {
                    hs.push(self.nodes[i].height().await);
                }
                panic!(
                    "nodes {which:?} did not reach height {height}: {hs:?}\n{}",
                    tail(&self.nodes[which[0]].log())
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn max_height(&self, which: &[usize]) -> u64 {
        let mut m = 0;
        for &i in which {
            m = m.max(self.nodes[i].height().await.unwrap_or(0));
        }
        m
    }

    /// Every height `1..=h` has one header, the same on every node in `which`.
    async fn assert_same_chain(&self, which: &[usize], h: u64) {
        for height in 1..=h {
            let first = self.nodes[which[0]].header(height).await.expect("header");
            for &i in &which[1..] {
                let other = self.nodes[i].header(height).await.expect("header");
                assert_eq!(first, other, "node{i} differs at height {height}");
            }
        }
    }
}

/// `s` without terminal colour codes.
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_advance_and_continue_with_one_stopped() {
    let _serial = SERIAL.lock().await;
    let mut net = Net::start(&[]);
    net.wait_height(&[0, 1, 2, 3, 4], 3, 60).await;
    net.nodes[3].kill();
    let h = net.max_height(&[0, 1, 2]).await;
    net.wait_height(&[0, 1, 2, 4], h + 3, 60).await;
    net.assert_same_chain(&[0, 1, 2, 4], h + 3).await;
    // Every decided block carries its commit certificate: the ledger stores it with the block.
    assert!(net.nodes[0].log().contains("block committed"));
}

/// A fresh network decides its first heights in round 0: the first proposal is not gossiped
/// before the validators are connected to each other. Five cold starts in a row, each bounded
/// well below what lost rounds (a propose timeout each, growing) would take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_four_validator_network_starts_every_time() {
    let _serial = SERIAL.lock().await;
    for run in 0..5 {
        let started = Instant::now();
        let net = Net::start_with(0, &[]);
        net.wait_height(&[0, 1, 2, 3], 3, 15).await;
        let log = plain(&net.nodes[0].log());
        assert!(
            log.contains("block committed height=1 txs=0 round=0 "),
            "run {run}: height 1 was not decided in round 0\n{}",
            tail(&log)
        );
        eprintln!("run {run}: height 3 after {:?}", started.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_sent_to_a_full_node_is_committed() {
    let _serial = SERIAL.lock().await;
    let net = Net::start(&[]);
    net.wait_height(&[0, 4], 2, 60).await;
    let to = Address([7; 32]);
    let tx = transfer(&key(1), 0, to, 500, 1);
    let r = net.nodes[4]
        .call("submit_tx", json!({"tx": hex::encode(&tx.to_bytes())}))
        .await;
    assert!(
        r.is_some(),
        "full node refused the transfer\n{}",
        tail(&net.nodes[4].log())
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = net.nodes[0].call("account", json!({"address": to})).await;
        if a.as_ref().and_then(|a| a["balance"].as_u64()) == Some(500) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "transfer not committed\n{}",
            tail(&net.nodes[0].log())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stopped_halts_without_fork_and_resumes_when_one_returns() {
    let _serial = SERIAL.lock().await;
    let mut net = Net::start(&[]);
    net.wait_height(&[0, 1, 2, 3], 2, 60).await;
    net.nodes[2].kill();
    net.nodes[3].kill();
    // A block already in flight may still land; after that, no progress.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let halted = net.max_height(&[0, 1]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        net.max_height(&[0, 1]).await,
        halted,
        "advanced without a quorum"
    );
    net.nodes[2].launch();
    net.wait_height(&[0, 1, 2], halted + 2, 90).await;
    net.assert_same_chain(&[0, 1, 2], halted + 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_syncs_to_the_tip_with_an_equal_state_hash() {
    let _serial = SERIAL.lock().await;
    let mut net = Net::start(&[]);
    net.wait_height(&[0, 1, 2, 3], 3, 60).await;
    net.nodes[3].kill();
    let data = net.nodes[3].home.join("data");
    std::fs::remove_dir_all(&data).expect("wipe");
    let h = net.max_height(&[0, 1, 2]).await + 2;
    net.wait_height(&[0, 1, 2], h, 60).await;
    net.nodes[3].launch();
    net.wait_height(&[3], h, 90).await;
    net.assert_same_chain(&[0, 3], h).await;
    assert!(Path::new(&data).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_with_a_wrong_state_root_gets_no_votes() {
    let _serial = SERIAL.lock().await;
    let net = Net::start(&[(0, "SLUICE_FAULT_BAD_STATE_ROOT", "1")]);
    net.wait_height(&[1, 2, 3], 6, 180).await;
    let bad = net.nodes[0].log();
    assert!(bad.contains("fault injection"), "{}", tail(&bad));
    let honest = net.nodes[1].log();
    assert!(honest.contains("state root mismatch"), "{}", tail(&honest));
    // Node 0 proposes at heights where it is the round-0 proposer; none of its blocks is ever
    // committed: every committed block was proposed by an honest validator.
    let genesis: Value = serde_json::from_str(
        &std::fs::read_to_string(net.nodes[1].home.join("genesis.json")).expect("genesis"),
    )
    .expect("json");
    let byzantine = genesis["validators"][0]["address"].clone();
    for h in 1..=6 {
        let hd = net.nodes[1].header(h).await.expect("header");
        assert_ne!(
            hd["proposer"], byzantine,
            "height {h} committed the faulty proposal"
        );
    }
    net.assert_same_chain(&[1, 2, 3], 6).await;
}

/// Waits until every node in `which` has logged `needle`: gossip from the rogue node reaches
/// each peer at its own pace.
async fn wait_log(net: &Net, which: &[usize], needle: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    for &i in which {
        loop {
            let log = net.nodes[i].log();
            if log.contains(needle) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node{i} never logged {needle:?}\n{}",
                tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The validators' genesis addresses, as the RPC shows them.
fn validator_addresses(net: &Net) -> Vec<Value> {
    let genesis: Value = serde_json::from_str(
        &std::fs::read_to_string(net.nodes[0].home.join("genesis.json")).expect("genesis"),
    )
    .expect("json");
    genesis["validators"]
        .as_array()
        .expect("validators")
        .iter()
        .map(|v| v["address"].clone())
        .collect()
}

/// Validators accept at most 64 KiB per peer message here, so the rogue full node's 256 KiB part
/// (still under the gossip layer's own limit) reaches their codec as oversized.
const SMALL_LIMIT: &str = "65536";
const ROGUE: &str = "SLUICE_FAULT_ROGUE_PROPOSALS";

fn rogue_net() -> Net {
    let mut env: Vec<(usize, &str, &str)> = (0..4)
        .map(|i| (i, "SLUICE_NODE_P2P_MAX_MESSAGE_BYTES", SMALL_LIMIT))
        .collect();
    env.push((4, ROGUE, "1"));
    Net::start(&env)
}

/// Raw bytes on a validator's P2P port, one connection each: libp2p refuses them at the
/// handshake. Write errors are expected once the node hangs up.
async fn send_raw(port: u16, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    if let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    {
        let _ = tokio::time::timeout(Duration::from_secs(5), s.write_all(bytes)).await;
        let _ = s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_peer_input_is_dropped_and_the_chain_advances() {
    let _serial = SERIAL.lock().await;
    let mut net = rogue_net();
    net.wait_height(&[0, 1, 2, 3], 2, 60).await;
    let port = net.nodes[0].p2p_port;
    send_raw(port, b"GET / HTTP/1.1\r\n\r\n").await;
    send_raw(port, &[0xff; 4096]).await;
    send_raw(port, &vec![0x13; 16 * 1024 * 1024]).await;
    let h = net.max_height(&[0, 1, 2, 3]).await;
    net.wait_height(&[0, 1, 2, 3], h + 3, 60).await;
    assert!(net.nodes[0].running(), "validator exited");
    let log = net.nodes[0].log();
    assert!(!log.contains("panicked"), "{}", tail(&log));
    // Raw TCP: refused during the connection handshake.
    assert!(log.contains("Incoming connection failed"), "{}", tail(&log));
    // Well-formed gossip carrying junk: refused by our codec before the engine sees it.
    wait_log(&net, &[0, 1, 2, 3], "dropping undecodable peer message", 60).await;
    wait_log(&net, &[0, 1, 2, 3], "dropping oversized peer message", 60).await;
    assert!(net.nodes[0].running(), "validator exited");
    net.assert_same_chain(&[0, 1, 2, 3], h + 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_from_a_non_validator_are_dropped_and_never_decided() {
    let _serial = SERIAL.lock().await;
    let net = rogue_net();
    net.wait_height(&[0, 1, 2, 3, 4], 4, 60).await;
    let rogue = net.nodes[4].log();
    assert!(
        rogue.contains("fault injection: streaming a proposal from a non-validator"),
        "{}",
        tail(&rogue)
    );
    // Signed by its own key, outside the set.
    wait_log(
        &net,
        &[0, 1, 2, 3],
        "proposal from a non-validator; dropped",
        60,
    )
    .await;
    // Claiming the round's proposer but signed with another key.
    wait_log(
        &net,
        &[0, 1, 2, 3],
        "proposal signature does not verify; dropped",
        60,
    )
    .await;
    let validators = validator_addresses(&net);
    let h = net.max_height(&[0, 1, 2, 3]).await;
    net.wait_height(&[0, 1, 2, 3, 4], h, 60).await;
    for height in 1..=h {
        let hd = net.nodes[1].header(height).await.expect("header");
        assert!(
            validators.contains(&hd["proposer"]),
            "height {height} decided a block from {}",
            hd["proposer"]
        );
    }
    net.assert_same_chain(&[0, 1, 2, 3, 4], h).await;
}
