//! Real peers for the wallet's session tests: a real `sluice-node --dev` process as the chain, and
//! a scripted hub on a real WebSocket that plays honest or malicious with real signatures. The
//! hub's key is funded at genesis so that it can put real deposits into the wallet's channels.

#![allow(dead_code)]

pub mod net;

use futures::{SinkExt, StreamExt};
use sluice_chain_client::{ChainClient, TxSender};
use sluice_client::{keyfile, Wallet, WalletConfig};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::wire::hub::{SessionMsg, MAX_SESSION_FRAME};
use sluice_protocol::{wire, Address, ChainId, Hash32, Height, Keypair, TxKind};
use sluice_test_support::{binaries, start_node, NetworkOptions, Process};
use std::path::Path;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Genesis balance of the wallet and of the scripted hub's key.
pub const FUNDS: u64 = 100_000_000;
const TX_WAIT: Duration = Duration::from_secs(30);

/// The scripted hub's key (fixed so tests can sign as the hub).
pub fn hub_key() -> Keypair {
    Keypair::from_secret(&[42; 32]).unwrap()
}

/// A real dev chain node whose genesis funds the wallet in `wallet_dir` and the scripted hub.
pub struct Chain {
    pub addr: String,
    pub chain_id: ChainId,
    pub client: ChainClient,
    _node: Process,
    _home: tempfile::TempDir,
}

impl Chain {
    /// Creates the wallet's key in `wallet_dir` (so genesis can fund it) and starts the node.
    /// Fails loudly if the daemon binaries cannot be found or built.
    pub async fn start(wallet_dir: &Path) -> Chain {
        std::fs::create_dir_all(wallet_dir).unwrap();
        let wallet = keyfile::load_or_create(&wallet_dir.join(sluice_client::config::KEY_FILE))
            .unwrap()
            .address();
        let fund = vec![(wallet, FUNDS), (hub_key().address(), FUNDS)];
        let home = tempfile::tempdir().unwrap();
        let node_home = home.path().join("node");
        let node = tokio::task::spawn_blocking(move || {
            let bins = binaries().expect("daemon binaries (cargo build --bins)");
            start_node(&bins, &node_home, &fund, &NetworkOptions::default())
                .expect("start sluice-node")
        })
        .await
        .unwrap();
        let client = ChainClient::new(node.addr());
        let chain_id = client.chain_info().await.unwrap().chain_id;
        Chain {
            addr: node.addr().to_string(),
            chain_id,
            client,
            _node: node,
            _home: home,
        }
    }

    /// The current height (the dev chain seals blocks only when transactions wait, so it stays
    /// put between the test's own transactions).
    pub async fn height(&self) -> Height {
        self.client.chain_info().await.unwrap().height
    }

    /// The hub's own deposit into a channel, as a real transaction.
    pub async fn hub_deposit(&self, id: &Hash32, amount: u64) {
        let sender = TxSender::new(self.client.clone(), hub_key(), self.chain_id, 1);
        let kind = TxKind::Deposit {
            channel_id: *id,
            amount,
        };
        sender.send(kind, TX_WAIT).await.unwrap();
    }
}

/// A hub endpoint; each accepted connection is driven by the test.
pub struct Hub {
    pub key: Keypair,
    pub addr: String,
    pub chain_id: ChainId,
    pub listener: TcpListener,
}

pub struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl Hub {
    pub async fn start(chain_id: ChainId) -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Hub {
            key: hub_key(),
            addr: listener.local_addr().unwrap().to_string(),
            chain_id,
            listener,
        }
    }

    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Accepts one client and logs it in, announcing `channels`.
    pub async fn accept(&self, channels: Vec<Hash32>) -> Conn {
        let (tcp, _) = self.listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut c = Conn { ws };
        c.send(&SessionMsg::Challenge {
            chain_id: self.chain_id,
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

    /// Sends raw text, for frames no honest hub would send.
    pub async fn send_raw(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
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

    /// Whether the wallet closed the connection within `d`.
    pub async fn closed_within(&mut self, d: Duration) -> bool {
        let wait = async {
            loop {
                match self.ws.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::time::timeout(d, wait).await.is_ok()
    }
}

/// A wallet in `dir` against `chain` and `hub`.
pub async fn wallet(dir: &Path, chain: &Chain, hub: &Hub) -> Wallet {
    let mut cfg = WalletConfig::new(chain.addr.clone(), hub.addr.clone(), hub.address());
    cfg.pay_timeout_secs = 5;
    Wallet::open(dir, cfg).await.unwrap()
}

/// A wallet with one open channel of `deposit`, connected to the hub; returns the connection
/// after the wallet's `Sync` and the hub's answering opening `Sync`.
pub async fn connected(
    dir: &Path,
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
        snapshot: sluice_protocol::Snapshot::opening(chain.chain_id, id),
        signed: 0,
    })
    .await;
    (w, id, conn)
}

/// A wallet directory, a real chain and a scripted hub, in that order of need.
pub async fn setup() -> (tempfile::TempDir, Chain, Hub) {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path()).await;
    let hub = Hub::start(chain.chain_id).await;
    (dir, chain, hub)
}
