//! Real network peers for the wallet's tests: a small JSON-RPC chain endpoint that executes
//! transactions with the protocol crate's own channel rules, and a scripted hub on a real
//! WebSocket that plays honest or malicious with real signatures.

#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use sluice_client::{Wallet, WalletConfig};
use sluice_protocol::encoding::Canonical;
use sluice_protocol::onchain::{ChannelLimits, ChannelRecord};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::rpc::{Account, ChainInfo, TxInfo, TxReceipt};
use sluice_protocol::wire::hub::{SessionMsg, MAX_SESSION_FRAME};
use sluice_protocol::{hex, wire, Hash32, Keypair, SignedTx, TxKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const CHAIN: u64 = 7;
pub const HEIGHT: u64 = 100;

#[derive(Default)]
struct Ledger {
    channels: HashMap<Hash32, ChannelRecord>,
    nonces: HashMap<String, u64>,
    txs: Vec<Hash32>,
}

/// A chain endpoint at a fixed height that executes opens and deposits.
pub struct Chain {
    pub addr: String,
    ledger: Arc<Mutex<Ledger>>,
}

impl Chain {
    pub async fn start() -> Chain {
        use warp::Filter;
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let l = ledger.clone();
        let route = warp::post()
            .and(warp::body::json())
            .map(move |req: serde_json::Value| warp::reply::json(&answer(&l, req)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Chain {
            addr: addr.to_string(),
            ledger,
        }
    }

    /// The hub's own deposit into a channel.
    pub fn deposit(&self, id: &Hash32, who: &sluice_protocol::Address, amount: u64) {
        let mut l = self.ledger.lock().unwrap();
        l.channels
            .get_mut(id)
            .unwrap()
            .deposit(who, amount)
            .unwrap();
    }

    pub fn record(&self, id: &Hash32) -> Option<ChannelRecord> {
        self.ledger.lock().unwrap().channels.get(id).cloned()
    }
}

fn answer(ledger: &Mutex<Ledger>, req: serde_json::Value) -> serde_json::Value {
    let id = req["id"].clone();
    let p = &req["params"];
    let mut l = ledger.lock().unwrap();
    let result = match req["method"].as_str().unwrap_or("") {
        "chain_info" => serde_json::to_value(ChainInfo {
            chain_id: CHAIN,
            height: HEIGHT,
            tip_hash: Hash32::default(),
            state_root: Hash32::default(),
            block_time_ms: 100,
            min_fee: 1,
            default_challenge_period: 20,
            channel_limits: ChannelLimits::default(),
        })
        .unwrap(),
        "account" => {
            let nonce = *l.nonces.get(p["address"].as_str().unwrap()).unwrap_or(&0);
            serde_json::to_value(Account {
                balance: 1_000_000,
                nonce,
            })
            .unwrap()
        }
        "submit_tx" => {
            let bytes = hex::decode(p["tx"].as_str().unwrap()).unwrap();
            let tx = SignedTx::from_bytes(&bytes).unwrap();
            execute(&mut l, &tx);
            serde_json::json!({ "id": tx.id() })
        }
        "tx" => {
            let id: Hash32 = serde_json::from_value(p["id"].clone()).unwrap();
            serde_json::to_value(TxInfo {
                id,
                height: HEIGHT,
                index: 0,
                from: Default::default(),
                kind: "tx".into(),
                receipt: TxReceipt {
                    success: true,
                    error: None,
                },
            })
            .unwrap()
        }
        "channel" => {
            let id: Hash32 = serde_json::from_value(p["channel_id"].clone()).unwrap();
            serde_json::to_value(l.channels.get(&id)).unwrap()
        }
        "secret" => serde_json::Value::Null,
        _ => {
            return serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no"}})
        }
    };
    serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

fn execute(l: &mut Ledger, stx: &SignedTx) {
    let tx = &stx.tx;
    *l.nonces.entry(tx.from.to_string()).or_default() += 1;
    l.txs.push(stx.id());
    match &tx.kind {
        TxKind::OpenChannel {
            counterparty,
            deposit,
            challenge_period,
            salt,
        } => {
            let rec = ChannelRecord::open(
                CHAIN,
                tx.from,
                *counterparty,
                *deposit,
                *challenge_period,
                salt,
                HEIGHT,
                &ChannelLimits::default(),
            )
            .unwrap();
            l.channels.insert(rec.id, rec);
        }
        TxKind::Deposit { channel_id, amount } => {
            let rec = l.channels.get_mut(channel_id).unwrap();
            rec.deposit(&tx.from, *amount).unwrap();
        }
        _ => {}
    }
}

/// A hub endpoint; each accepted connection is driven by the test.
pub struct Hub {
    pub key: Keypair,
    pub addr: String,
    pub listener: TcpListener,
}

pub struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl Hub {
    pub async fn start() -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Hub {
            key: Keypair::from_secret(&[42; 32]).unwrap(),
            addr: listener.local_addr().unwrap().to_string(),
            listener,
        }
    }

    /// Accepts one client and logs it in, announcing `channels`.
    pub async fn accept(&self, channels: Vec<Hash32>) -> Conn {
        let (tcp, _) = self.listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut c = Conn { ws };
        c.send(&SessionMsg::Challenge {
            chain_id: CHAIN,
            hub: self.key.address(),
            nonce: Hash32([9; 32]),
        })
        .await;
        assert!(matches!(c.recv().await, SessionMsg::Auth { .. }));
        c.send(&SessionMsg::Welcome {
            channels,
            terms: RoutingTerms::default(),
        })
        .await;
        c
    }
}

impl Conn {
    pub async fn send(&mut self, m: &SessionMsg) {
        self.ws.send(Message::text(wire::encode(m))).await.unwrap();
    }

    /// The next session message (keepalive pings skipped).
    pub async fn recv(&mut self) -> SessionMsg {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("hub waited 10 s for the wallet")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = msg {
                let m = wire::decode::<SessionMsg>(t.as_bytes(), MAX_SESSION_FRAME).unwrap();
                if !matches!(m, SessionMsg::Ping { .. }) {
                    return m;
                }
            }
        }
    }

    /// Whatever arrives within `d`, or `None`.
    pub async fn recv_within(&mut self, d: Duration) -> Option<SessionMsg> {
        tokio::time::timeout(d, self.recv()).await.ok()
    }
}

/// A wallet in `dir` against `chain` and `hub`.
pub async fn wallet(dir: &std::path::Path, chain: &Chain, hub: &Hub) -> Wallet {
    let mut cfg = WalletConfig::new(chain.addr.clone(), hub.addr.clone(), hub.key.address());
    cfg.pay_timeout_secs = 5;
    Wallet::open(dir, cfg).await.unwrap()
}

/// A wallet with one open channel of `deposit`, connected to the hub; returns the connection
/// after the wallet's `Sync` and the hub's answering opening `Sync`.
pub async fn connected(
    dir: &std::path::Path,
    chain: &Chain,
    hub: &Hub,
    deposit: u64,
) -> (Wallet, Hash32, Conn) {
    let w = wallet(dir, chain, hub).await;
    let id = w.open_channel(deposit).await.unwrap();
    let (conn, connected) = tokio::join!(hub.accept(vec![id]), w.connect());
    connected.unwrap();
    let mut conn = conn;
    assert!(matches!(conn.recv().await, SessionMsg::Sync { .. }));
    conn.send(&SessionMsg::Sync {
        channel_id: id,
        snapshot: sluice_protocol::Snapshot::opening(CHAIN, id),
    })
    .await;
    (w, id, conn)
}
