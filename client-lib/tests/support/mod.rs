//! Real peers for the wallet's tests: a real `sluice-node --dev` process as the chain, and a
//! hub on a real WebSocket, honest or hostile, with real signatures. The hub's key is funded at
//! genesis so that it can put real deposits into the wallet's channels and make its own chain
//! moves.
//!
//! Each channel of the hub is driven by the protocol's session machine ([`ChannelSession`],
//! party `b`), the one every party drives: [`Conn::take_proposal`], [`Conn::accept`],
//! [`Conn::propose`], [`Conn::take_accept`], [`Conn::take_reject`], [`Conn::sync`]. A test makes
//! it deviate on top of the machine's output: [`Conn::answer`] and [`Conn::prepare`] hand back
//! the machine's message unsent (to withhold or tamper with), [`Conn::keep`] co-signs a
//! proposal for the hub alone (to answer `Reject`, or nothing, after learning what it carries),
//! [`Hub::accept_with`] announces any terms, [`Conn::send`] sends anything at all (a replayed
//! `Sync` of a kept state), and [`Chain::hub_close`] and [`Chain::hub_sender`] close or settle
//! on chain with any state the hub holds (a kept `Finalize` with `CooperativeClose`).

#![allow(dead_code)]

pub mod net;

use futures::{SinkExt, StreamExt};
use sluice_chain_client::{ChainClient, TxSender};
use sluice_client::{keyfile, Wallet, WalletConfig};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::session::{ChannelSession, Checked, Output, Signed};
use sluice_protocol::wire::hub::{
    welcome_bytes, ErrorCode, Proposal, SessionMsg, MAX_SESSION_FRAME,
};
use sluice_protocol::{
    wire, Address, ChainId, Change, Context, Hash32, Height, Keypair, Party, Snapshot, Tag, TxKind,
};
use sluice_test_support::{binaries, start_node, NetworkOptions, Process};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
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

    /// A sender for the scripted hub's key: the hub's own chain moves.
    pub fn hub_sender(&self) -> TxSender {
        TxSender::new(self.client.clone(), hub_key(), self.chain_id, 1)
    }

    /// The hub closes `snap`'s channel on chain with it, whatever its version.
    pub async fn hub_close(&self, snap: &Snapshot) {
        let kind = TxKind::Close {
            cosigned: snap.cosigned,
            locks: snap.locks.clone(),
        };
        self.hub_sender().send(kind, TX_WAIT).await.unwrap();
    }

    /// The hub registers `secret` on chain (as a payee claiming, or the hub's own claim).
    pub async fn hub_register(&self, secret: Hash32) {
        let reg = TxKind::RegisterSecret { secret };
        self.hub_sender().send(reg, TX_WAIT).await.unwrap();
    }

    /// Moves the dev chain to `height` with the hub's transfers (blocks need traffic).
    pub async fn advance_to(&self, height: Height) {
        sluice_test_support::advance_to(&self.hub_sender(), height)
            .await
            .unwrap();
    }

    /// The channel's payouts once settled on chain (`None` while it is not).
    pub async fn payouts(&self, id: &Hash32) -> Option<(u64, u64)> {
        match self.client.channel(id).await.unwrap()?.status {
            sluice_protocol::onchain::ChannelStatus::Settled { payout_a, payout_b } => {
                Some((payout_a, payout_b))
            }
            _ => None,
        }
    }

    /// Advances past the close's window and every stored lock, then settles `id` with the
    /// hub's key (anyone may); returns `(payout_a, payout_b)`.
    pub async fn settle(&self, id: &Hash32) -> (u64, u64) {
        use sluice_protocol::onchain::ChannelStatus;
        let rec = self.client.channel(id).await.unwrap().expect("on chain");
        if let ChannelStatus::Closing {
            stored,
            settle_after,
        } = &rec.status
        {
            let end = stored.locks.iter().map(|l| l.expiry).max().unwrap_or(0);
            self.advance_to(settle_after.max(&end) + 2).await;
            let settle = TxKind::Settle { channel_id: *id };
            let _ = self.hub_sender().send(settle, TX_WAIT).await;
        }
        self.payouts(id).await.expect("settled")
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

/// The scripted hub's session machine of each channel, by id. It is the hub's memory: it
/// outlives a connection, so a wallet that reconnects finds the hub where it left it.
pub type Machines = Arc<Mutex<HashMap<Hash32, ChannelSession>>>;

/// A hub endpoint; each accepted connection is driven by the test.
pub struct Hub {
    pub key: Keypair,
    /// The key that signs `Welcome`: the hub's own, unless a test plays an impostor.
    pub welcome_key: Keypair,
    pub addr: String,
    pub chain_id: ChainId,
    pub listener: TcpListener,
    pub machines: Machines,
}

pub struct Conn {
    ws: WebSocketStream<TcpStream>,
    machines: Machines,
}

impl Hub {
    pub async fn start(chain_id: ChainId) -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Hub {
            key: hub_key(),
            welcome_key: hub_key(),
            addr: listener.local_addr().unwrap().to_string(),
            chain_id,
            listener,
            machines: Machines::default(),
        }
    }

    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Accepts one client and logs it in, announcing `channels`; a channel the hub has no
    /// machine for yet starts at its opening state.
    pub async fn accept(&self, channels: Vec<Hash32>) -> Conn {
        self.accept_with(channels, RoutingTerms::default()).await
    }

    /// [`Hub::accept`] announcing `terms` (any terms at all).
    pub async fn accept_with(&self, channels: Vec<Hash32>, terms: RoutingTerms) -> Conn {
        let (tcp, _) = self.listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut c = Conn {
            ws,
            machines: self.machines.clone(),
        };
        c.send(&SessionMsg::Challenge {
            chain_id: self.chain_id,
            hub: self.key.address(),
            nonce: Hash32([9; 32]),
        })
        .await;
        let SessionMsg::Auth {
            address, challenge, ..
        } = c.recv().await
        else {
            panic!("expected the wallet's Auth");
        };
        for id in &channels {
            let mut machines = lock(&self.machines);
            machines.entry(*id).or_insert_with(|| {
                let opening = Snapshot::opening(self.chain_id, *id);
                ChannelSession::new(
                    Party::B,
                    self.key.clone(),
                    address,
                    opening,
                    Signed::default(),
                )
            });
        }
        let proof = welcome_bytes(self.chain_id, &self.address(), &challenge, &address);
        let sig = self.welcome_key.sign(Tag::Auth, &proof);
        c.send(&SessionMsg::Welcome {
            channels,
            terms,
            sig,
        })
        .await;
        c
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The message of the machine's `Send` among `outputs`.
fn sent(outputs: Vec<Output>) -> SessionMsg {
    outputs
        .into_iter()
        .find_map(|o| match o {
            Output::Send(msg) => Some(*msg),
            _ => None,
        })
        .expect("the machine sends a message")
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

    /// Whatever arrives within `d`, or `None` (also if the wallet hung up).
    pub async fn recv_within(&mut self, d: Duration) -> Option<SessionMsg> {
        let next = async {
            loop {
                match self.ws.next().await? {
                    Ok(Message::Text(t)) => {
                        let m = wire::decode::<SessionMsg>(t.as_bytes(), MAX_SESSION_FRAME).ok()?;
                        if !matches!(m, SessionMsg::Ping { .. }) {
                            return Some(m);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        };
        tokio::time::timeout(d, next).await.ok().flatten()
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

    /// Runs `f` on the hub's machine of channel `id`.
    pub fn with<R>(&self, id: &Hash32, f: impl FnOnce(&mut ChannelSession) -> R) -> R {
        let mut machines = lock(&self.machines);
        f(machines.get_mut(id).expect("a channel the hub announced"))
    }

    /// The hub's latest co-signed snapshot of channel `id`.
    pub fn latest(&self, id: &Hash32) -> Snapshot {
        self.with(id, |m| m.latest().clone())
    }

    /// Reads the wallet's `Sync` of `id`; the machine adopts it if it is newer and verifies.
    /// Returns the wallet's snapshot.
    pub async fn take_sync(&mut self, id: &Hash32) -> Snapshot {
        let SessionMsg::Sync {
            channel_id,
            snapshot,
            signed,
        } = self.recv().await
        else {
            panic!("expected the wallet's Sync");
        };
        assert_eq!(channel_id, *id);
        self.with(id, |m| m.on_sync(&snapshot, signed))
            .expect("the wallet's Sync verifies");
        snapshot
    }

    /// Sends the hub's `Sync` of `id`: its machine's latest snapshot and signed record.
    pub async fn sync(&mut self, id: &Hash32) {
        let msg = self.with(id, |m| m.sync_msg());
        self.send(&msg).await;
    }

    /// Reads the wallet's proposal and has the machine check it (signature, version, `apply`
    /// giving exactly its state), at `ctx`; panics if it fails them.
    pub async fn take_proposal(&mut self, ctx: &Context) -> Checked {
        let SessionMsg::Propose(p) = self.recv().await else {
            panic!("expected a proposal");
        };
        self.with(&p.channel_id, |m| m.on_proposal(&p, ctx))
            .expect("the wallet's proposal passes the protocol's checks")
    }

    /// Co-signs a checked proposal through the machine: returns the co-signed state the hub
    /// now holds and the `Accept` to send, unsent (a hub may withhold or tamper with it).
    pub fn answer(&mut self, checked: Checked) -> (Snapshot, SessionMsg) {
        let id = checked.proposal.channel_id;
        let outputs = self
            .with(&id, |m| m.accept(checked))
            .expect("the machine co-signs");
        let commit = outputs.iter().find_map(|o| match o {
            Output::Commit(c) => Some(c.snapshot.clone()),
            _ => None,
        });
        (commit.expect("a state to commit"), sent(outputs))
    }

    /// Co-signs a checked proposal for itself and sends nothing: the hub keeps the co-signed
    /// state while its machine goes back to the state before (still recording what it signed),
    /// as a hub that will answer `Reject` does. Returns the kept state.
    pub fn keep(&mut self, checked: Checked, wallet: Address) -> Snapshot {
        let id = checked.proposal.channel_id;
        let before = self.latest(&id);
        let (kept, _accept) = self.answer(checked);
        let key = hub_key();
        self.with(&id, |m| {
            let (signed, floor) = (m.signed(), m.floor());
            *m = ChannelSession::new(Party::B, key, wallet, before, signed);
            m.note_peer_signed(floor);
        });
        kept
    }

    /// Co-signs a checked proposal and sends the `Accept`; returns the co-signed state.
    pub async fn accept(&mut self, checked: Checked) -> Snapshot {
        let (snap, accept) = self.answer(checked);
        self.send(&accept).await;
        snap
    }

    /// The machine's proposal of `change` on `id` at `ctx` (its next free version), in flight
    /// from now on but unsent (a hub may tamper with it before sending).
    pub fn prepare(&mut self, id: &Hash32, change: Change, ctx: &Context) -> Proposal {
        let outputs = self
            .with(id, |m| m.propose(change, ctx, None))
            .expect("the machine proposes the change");
        match sent(outputs) {
            SessionMsg::Propose(p) => p,
            other => panic!("expected a proposal, got {other:?}"),
        }
    }

    /// Proposes `change` on `id` through the machine and sends it; returns the proposal.
    pub async fn propose(&mut self, id: &Hash32, change: Change, ctx: &Context) -> Proposal {
        let p = self.prepare(id, change, ctx);
        self.send(&SessionMsg::Propose(p.clone())).await;
        p
    }

    /// Reads the wallet's `Accept` of the hub's proposal on `id`; the machine checks the
    /// signature and commits the co-signed state, which is returned.
    pub async fn take_accept(&mut self, id: &Hash32) -> Snapshot {
        let SessionMsg::Accept {
            channel_id,
            version,
            sig,
        } = self.recv().await
        else {
            panic!("expected the wallet's Accept");
        };
        assert_eq!(channel_id, *id);
        self.with(id, |m| m.on_accept(version, sig))
            .expect("the wallet's Accept verifies")
            .snapshot
    }

    /// The hub's `Reject` of the wallet's proposal at `version` (claiming to have signed
    /// nothing, whatever it did).
    pub fn reject(id: Hash32, version: u64, code: ErrorCode) -> SessionMsg {
        SessionMsg::Reject {
            channel_id: id,
            version,
            code,
            reason: "refused".into(),
            signed: 0,
        }
    }

    /// Reads the wallet's `Reject` of the hub's proposal on `id` (its version stays burnt in the
    /// machine); returns its code.
    pub async fn take_reject(&mut self, id: &Hash32) -> ErrorCode {
        let msg = self.recv().await;
        let SessionMsg::Reject {
            channel_id,
            version,
            code,
            signed,
            ..
        } = msg
        else {
            panic!("expected the wallet's Reject, got {msg:?}");
        };
        assert_eq!(channel_id, *id);
        self.with(id, |m| m.on_reject(version, signed))
            .expect("a Reject of the hub's proposal in flight");
        code
    }
}

/// A wallet in `dir` against `chain` and `hub`.
pub async fn wallet(dir: &Path, chain: &Chain, hub: &Hub) -> Wallet {
    wallet_with(dir, chain, hub, |_| {}).await
}

/// [`wallet`] with its config changed by `f` first.
pub async fn wallet_with(
    dir: &Path,
    chain: &Chain,
    hub: &Hub,
    f: impl FnOnce(&mut WalletConfig),
) -> Wallet {
    let mut cfg = WalletConfig::new(chain.addr.clone(), hub.addr.clone(), hub.address());
    cfg.pay_timeout_secs = 5;
    f(&mut cfg);
    Wallet::open(dir, cfg).await.unwrap()
}

/// Connects `w` to `hub` announcing channel `id` and `terms`; returns the connection after the
/// wallet's `Sync` and the hub's answering one.
pub async fn login(w: &Wallet, hub: &Hub, id: Hash32, terms: RoutingTerms) -> Conn {
    let (conn, connected) = tokio::join!(hub.accept_with(vec![id], terms), w.connect());
    connected.unwrap();
    let mut conn = conn;
    conn.take_sync(&id).await;
    conn.sync(&id).await;
    conn
}

/// A wallet with one open channel of `deposit`, connected to the hub; returns the connection
/// after the wallet's `Sync` and the hub's answering `Sync` (the opening state).
pub async fn connected(
    dir: &Path,
    chain: &Chain,
    hub: &Hub,
    deposit: u64,
) -> (Wallet, Hash32, Conn) {
    let w = wallet(dir, chain, hub).await;
    let id = w.open_channel(deposit).await.unwrap();
    let conn = login(&w, hub, id, RoutingTerms::default()).await;
    (w, id, conn)
}

/// A wallet directory, a real chain and a scripted hub, in that order of need.
pub async fn setup() -> (tempfile::TempDir, Chain, Hub) {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path()).await;
    let hub = Hub::start(chain.chain_id).await;
    (dir, chain, hub)
}

/// An invoice of `amount` for `sha256(secret)` from a payee elsewhere (paid through the hub).
pub fn payee_invoice(hub: &Hub, secret: Hash32, amount: u64) -> String {
    let payee = Keypair::from_secret(&[5; 32]).unwrap();
    sluice_protocol::invoice::Invoice {
        chain_id: hub.chain_id,
        hub: hub.key.address(),
        payee: payee.address(),
        amount,
        hashlock: sluice_protocol::sha256(&secret.0),
        expires_at: 4_000_000_000,
        memo: String::new(),
    }
    .sign(&payee)
    .unwrap()
    .encode_string()
    .unwrap()
}
