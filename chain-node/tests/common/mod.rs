//! Test harness: starts the real `sluice-node` binary on port 0 in a temp home, and talks to it
//! over JSON-RPC with reqwest and tokio-tungstenite.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use sluice_protocol::encoding::Canonical;
use sluice_protocol::rpc::{Account, TxInfo};
use sluice_protocol::{hex, Address, Hash32, Keypair, Transaction, TxKind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice-node");
pub const CHAIN: u64 = 7;

pub fn key(n: u32) -> Keypair {
    let mut s = [0u8; 32];
    s[..4].copy_from_slice(&n.to_be_bytes());
    s[31] = 1;
    Keypair::from_secret(&s).expect("valid test key")
}

pub struct Opts {
    pub funded: Vec<(Address, u64)>,
    pub block_time_ms: u64,
    pub env: Vec<(&'static str, String)>,
    pub init_args: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            funded: (1..=4).map(|n| (key(n).address(), 1_000_000)).collect(),
            block_time_ms: 50,
            env: vec![],
            init_args: vec![],
        }
    }
}

pub struct Node {
    pub home: tempfile::TempDir,
    child: Option<Child>,
    pub addr: String,
    pub http: reqwest::Client,
    env: Vec<(&'static str, String)>,
}

impl Node {
    pub fn start(opts: Opts) -> Node {
        let home = tempfile::tempdir().expect("tempdir");
        let mut init = Command::new(BIN);
        init.args(["init", "--home"])
            .arg(home.path())
            .args(["--chain-id", &CHAIN.to_string()])
            .args(["--rpc-addr", "127.0.0.1:0"])
            .args(["--block-time-ms", &opts.block_time_ms.to_string()])
            .args(&opts.init_args);
        for (a, v) in &opts.funded {
            init.arg("--fund").arg(format!("{a}={v}"));
        }
        let out = init.output().expect("run init");
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut node = Node {
            home,
            child: None,
            addr: String::new(),
            http: sluice_home::tls::http_client(),
            env: opts.env,
        };
        node.launch();
        node
    }

    pub fn path(&self) -> &Path {
        self.home.path()
    }

    fn launch(&mut self) {
        let addr_file = self.path().join("rpc.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.path().join("node.log"))
            .expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--dev", "--home"])
            .arg(self.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn node"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = std::fs::read_to_string(&addr_file) {
                if s.ends_with('\n') {
                    self.addr = format!("http://{}", s.trim());
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("node exited early ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "node did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("node.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn relaunch(&mut self) {
        self.launch();
    }

    /// Runs `sluice-node verify` on the (stopped) node's home.
    pub fn verify(&self) -> Value {
        let out = Command::new(BIN)
            .args(["verify", "--home"])
            .arg(self.path())
            .output()
            .expect("verify");
        assert!(
            out.status.success(),
            "verify failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("verify prints JSON")
    }

    pub fn validator(&self) -> Address {
        let g: Value = serde_json::from_str(
            &std::fs::read_to_string(self.path().join("genesis.json")).expect("genesis"),
        )
        .expect("genesis json");
        g["validators"][0]["address"]
            .as_str()
            .expect("validator")
            .parse()
            .expect("address")
    }

    /// POSTs a raw body; returns the parsed JSON response.
    pub async fn raw(&self, body: impl Into<reqwest::Body>) -> Value {
        let resp = self
            .http
            .post(&self.addr)
            .body(body)
            .header("content-type", "application/json")
            .send()
            .await
            .expect("post");
        resp.json().await.expect("json response")
    }

    /// One call; the whole response object.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.raw(json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}).to_string())
            .await
    }

    /// One call that must succeed.
    pub async fn ok<T: DeserializeOwned>(&self, method: &str, params: Value) -> T {
        let r = self.call(method, params).await;
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        serde_json::from_value(r["result"].clone()).expect("result type")
    }

    /// A call that must fail; returns `(code, message)`.
    pub async fn err(&self, method: &str, params: Value) -> (i64, String) {
        let r = self.call(method, params).await;
        error_of(&r)
    }

    pub async fn account(&self, a: &Address) -> Account {
        self.ok("account", json!({"address": a})).await
    }

    /// The node's `GET /health` answer.
    pub async fn health(&self) -> Value {
        let url = format!("{}/health", self.addr);
        let r = self.http.get(url).send().await.expect("health");
        r.json().await.expect("health json")
    }

    /// Waits until the account of [`key`]`(n)` has used every nonce below `nonce`.
    pub async fn wait_nonce(&self, n: u32, nonce: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.account(&key(n).address()).await.nonce < nonce {
            assert!(Instant::now() < deadline, "nonce {nonce} not reached");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn height(&self) -> u64 {
        self.ok::<Value>("chain_info", json!({})).await["height"]
            .as_u64()
            .expect("height")
    }

    pub async fn submit(&self, tx: &sluice_protocol::SignedTx) -> Result<Hash32, (i64, String)> {
        let r = self
            .call("submit_tx", json!({"tx": hex::encode(&tx.to_bytes())}))
            .await;
        match r.get("error") {
            Some(_) => Err(error_of(&r)),
            None => Ok(serde_json::from_value(r["result"]["id"].clone()).expect("id")),
        }
    }

    pub async fn wait_tx(&self, id: &Hash32) -> TxInfo {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let info: Option<TxInfo> = self.ok("tx", json!({"id": id})).await;
            if let Some(i) = info {
                return i;
            }
            assert!(Instant::now() < deadline, "tx {id} not included");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Submits and waits for inclusion.
    pub async fn exec(&self, tx: &sluice_protocol::SignedTx) -> TxInfo {
        let id = self
            .submit(tx)
            .await
            .unwrap_or_else(|e| panic!("submit {}: {e:?}", tx.tx.kind.name()));
        self.wait_tx(&id).await
    }

    pub async fn wait_height(&self, h: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.height().await < h {
            assert!(Instant::now() < deadline, "height {h} not reached");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.addr.replacen("http", "ws", 1))
    }

    pub async fn ws(&self) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(self.ws_url())
            .await
            .expect("ws connect");
        Ws { ws }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn error_of(r: &Value) -> (i64, String) {
    let e = r
        .get("error")
        .unwrap_or_else(|| panic!("expected an error, got {r}"));
    (
        e["code"].as_i64().expect("code"),
        e["message"].as_str().expect("message").to_string(),
    )
}

pub struct Ws {
    pub ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("ws send");
    }

    /// The next JSON message, or `None` when closed or after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        loop {
            let m = tokio::time::timeout(timeout, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match m {
                Message::Text(t) => return serde_json::from_str(&t).ok(),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Sends a call and returns its answer (skipping notifications).
    pub async fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}))
            .await;
        loop {
            let m = self.next(Duration::from_secs(10)).await.expect("answer");
            if m.get("id") == Some(&json!(id)) {
                return m;
            }
        }
    }
}

pub fn transfer(
    from: &Keypair,
    nonce: u64,
    to: Address,
    amount: u64,
    fee: u64,
) -> sluice_protocol::SignedTx {
    Transaction {
        chain_id: CHAIN,
        from: from.address(),
        nonce,
        fee,
        kind: TxKind::Transfer { to, amount },
    }
    .sign(from)
}

pub fn signed(from: &Keypair, nonce: u64, kind: TxKind) -> sluice_protocol::SignedTx {
    Transaction {
        chain_id: CHAIN,
        from: from.address(),
        nonce,
        fee: 1,
        kind,
    }
    .sign(from)
}

pub fn home_path(n: &Node) -> PathBuf {
    n.path().to_path_buf()
}
