//! A test wallet with one session to each of several hub processes (one hub key, one store):
//! a single local state per channel shared by all its sessions, so the hub processes race on the
//! same channels. It accepts the hub's proposals only if `check_proposal` passes against its
//! latest state, pays invoices, unlocks locks for its own invoices on the session they came on,
//! and records every co-signed state it adopted, flagging any two different states of one
//! version (a fork) or an `Accept` that does not fit its latest state.

#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use sluice_protocol::invoice::{Invoice, SignedInvoice};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::update::{
    apply_at, check_proposal, next_version, Change, Context, Position, UpdateError,
};
use sluice_protocol::wire::hub::{
    ErrorCode, PaymentStatus, Proposal, SessionMsg, AUTH_ACTION, MAX_SESSION_FRAME,
};
use sluice_protocol::wire::{self, auth_bytes};
use sluice_protocol::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

type Answer = Result<(), (ErrorCode, String)>;

struct Inner {
    latest: Snapshot,
    deposits: (u64, u64),
    terms: RoutingTerms,
    height: Height,
    history: BTreeMap<u64, Snapshot>,
    forks: Vec<String>,
    invoices: HashMap<Hash32, Hash32>,
    own: Option<(u64, Proposal, oneshot::Sender<Answer>)>,
    payments: HashMap<Hash32, oneshot::Sender<(PaymentStatus, Option<String>)>>,
    /// Lock lifetime for payments (blocks); `None`: the terms' maximum.
    lock_delta: Option<Height>,
    /// Reject the hub's `Unlock` proposals (a payer withholding the secret's claim).
    withhold: bool,
    /// The highest version either side signed: new states go above it.
    floor: u64,
}

pub struct Twin {
    pub key: Keypair,
    pub channel: Hash32,
    pub hub: Address,
    pub chain_id: ChainId,
    conns: Vec<mpsc::UnboundedSender<String>>,
    inner: Mutex<Inner>,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    fn ctx(&self) -> Context {
        Context {
            deposit_a: self.deposits.0,
            deposit_b: self.deposits.1,
            height: self.height,
            policy: self.terms.policy,
        }
    }
    fn position(&self) -> Position {
        Position {
            state: *self.latest.state(),
            locks: self.latest.locks.clone(),
        }
    }
    fn adopt(&mut self, snap: Snapshot) {
        let v = snap.state().version;
        if let Some(prev) = self.history.get(&v) {
            if *prev != snap {
                self.forks
                    .push(format!("two different states at version {v}"));
            }
        }
        self.history.insert(v, snap.clone());
        self.latest = snap;
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Ws) -> SessionMsg {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("hub answered")
            .expect("session open")
            .expect("frame");
        if let Message::Text(t) = m {
            return wire::decode(t.as_bytes(), MAX_SESSION_FRAME).expect("decodes");
        }
    }
}

/// Logs in; returns the socket, chain id, hub key, terms and the hub's snapshot of `channel`.
async fn login(addr: &str, key: &Keypair) -> (Ws, ChainId, Address, RoutingTerms, Snapshot) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("connect");
    let SessionMsg::Challenge {
        chain_id,
        hub,
        nonce,
    } = next(&mut ws).await
    else {
        panic!("no challenge")
    };
    let bytes = auth_bytes(
        chain_id,
        &hub,
        AUTH_ACTION,
        &nonce,
        &key.address(),
        &Hash32::default(),
    );
    let auth = SessionMsg::Auth {
        address: key.address(),
        sig: key.sign(Tag::Auth, &bytes),
    };
    ws.send(Message::text(wire::encode(&auth))).await.unwrap();
    let SessionMsg::Welcome { terms, .. } = next(&mut ws).await else {
        panic!("no welcome")
    };
    let SessionMsg::Sync { snapshot, .. } = next(&mut ws).await else {
        panic!("no sync")
    };
    (ws, chain_id, hub, terms, snapshot)
}

impl Twin {
    /// Opens one session per hub address for the client `key` of `channel`.
    pub async fn connect(
        addrs: &[String],
        key: Keypair,
        channel: Hash32,
        deposits: (u64, u64),
    ) -> Arc<Twin> {
        let mut sockets = Vec::new();
        let mut first = None;
        for a in addrs {
            let (ws, chain_id, hub, terms, snap) = login(a, &key).await;
            first.get_or_insert((chain_id, hub, terms, snap));
            sockets.push(ws);
        }
        let (chain_id, hub, terms, snap) = first.expect("at least one hub");
        let mut conns = Vec::new();
        let mut streams = Vec::new();
        for ws in sockets {
            let (mut sink, stream) = ws.split();
            let (tx, mut rx) = mpsc::unbounded_channel::<String>();
            tokio::spawn(async move {
                while let Some(t) = rx.recv().await {
                    if sink.send(Message::text(t)).await.is_err() {
                        return;
                    }
                }
            });
            conns.push(tx);
            streams.push(stream);
        }
        let mut history = BTreeMap::new();
        history.insert(snap.state().version, snap.clone());
        let twin = Arc::new(Twin {
            key,
            channel,
            hub,
            chain_id,
            conns,
            inner: Mutex::new(Inner {
                latest: snap,
                deposits,
                terms,
                height: 0,
                history,
                forks: Vec::new(),
                invoices: HashMap::new(),
                own: None,
                payments: HashMap::new(),
                lock_delta: None,
                withhold: false,
                floor: 0,
            }),
        });
        for (i, mut stream) in streams.into_iter().enumerate() {
            let t = twin.clone();
            tokio::spawn(async move {
                while let Some(Ok(m)) = stream.next().await {
                    let Message::Text(text) = m else { continue };
                    if let Ok(msg) = wire::decode::<SessionMsg>(text.as_bytes(), MAX_SESSION_FRAME)
                    {
                        t.on_msg(i, msg);
                    }
                }
            });
        }
        twin
    }

    pub fn set_height(&self, h: Height) {
        lock(&self.inner).height = h;
    }

    pub fn set_lock_delta(&self, blocks: Height) {
        lock(&self.inner).lock_delta = Some(blocks);
    }

    pub fn withhold_unlocks(&self) {
        lock(&self.inner).withhold = true;
    }

    pub fn latest(&self) -> Snapshot {
        lock(&self.inner).latest.clone()
    }

    pub fn history(&self) -> BTreeMap<u64, Snapshot> {
        lock(&self.inner).history.clone()
    }

    pub fn forks(&self) -> Vec<String> {
        lock(&self.inner).forks.clone()
    }

    fn send(&self, conn: usize, msg: &SessionMsg) {
        let _ = self.conns[conn].send(wire::encode(msg));
    }

    /// A fresh invoice of `amount` payable through the hub.
    pub fn invoice(&self, amount: u64) -> String {
        let secret = Hash32(secp256k1::rand::random());
        let inv = Invoice {
            chain_id: self.chain_id,
            hub: self.hub,
            payee: self.key.address(),
            amount,
            hashlock: sha256(&secret.0),
            expires_at: u64::MAX,
            memo: String::new(),
        }
        .sign(&self.key)
        .expect("sign invoice");
        lock(&self.inner)
            .invoices
            .insert(inv.invoice.hashlock, secret);
        inv.encode_string()
    }

    /// Proposes `change` on session `conn`, retrying while the hub answers `Busy`.
    pub async fn propose(
        self: &Arc<Self>,
        conn: usize,
        change: Change,
        invoice: Option<String>,
    ) -> Answer {
        for _ in 0..400 {
            let rx = {
                let mut st = lock(&self.inner);
                if st.own.is_some() {
                    None
                } else {
                    let invalid = |e: UpdateError| (ErrorCode::InvalidUpdate, e.to_string());
                    let version =
                        next_version(st.latest.state().version, st.floor).map_err(invalid)?;
                    let next = apply_at(&st.position(), &change, Party::A, &st.ctx(), version)
                        .map_err(invalid)?;
                    st.floor = version;
                    let p = Proposal {
                        channel_id: self.channel,
                        change: change.clone(),
                        state: next.state,
                        sig: next.state.sign(&self.key),
                        invoice: invoice.clone(),
                    };
                    let (tx, rx) = oneshot::channel();
                    st.own = Some((next.state.version, p.clone(), tx));
                    self.send(conn, &SessionMsg::Propose(p));
                    Some(rx)
                }
            };
            let Some(rx) = rx else {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(10), rx).await {
                Ok(Ok(Err((ErrorCode::Busy, _)))) => {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                Ok(Ok(answer)) => return answer,
                _ => {
                    lock(&self.inner).own = None;
                    return Err((ErrorCode::Internal, "no answer".into()));
                }
            }
        }
        Err((ErrorCode::Busy, "gave up".into()))
    }

    /// Pays `invoice` through the hub on session `conn`; returns how the payment ended.
    pub async fn pay(
        self: &Arc<Self>,
        conn: usize,
        invoice: &str,
    ) -> (PaymentStatus, Option<String>) {
        let inv = SignedInvoice::parse(invoice).expect("invoice").invoice;
        let (tx, rx) = oneshot::channel();
        let change = {
            let mut st = lock(&self.inner);
            st.payments.insert(inv.hashlock, tx);
            Change::AddLock {
                lock: Lock {
                    direction: Direction::AtoB,
                    amount: st.terms.incoming_amount(inv.amount).expect("amount"),
                    hashlock: inv.hashlock,
                    expiry: match st.lock_delta {
                        Some(d) => st.height + d,
                        None => st.terms.incoming_expiry(st.height),
                    },
                },
            }
        };
        if let Err((_, reason)) = self.propose(conn, change, Some(invoice.to_string())).await {
            lock(&self.inner).payments.remove(&inv.hashlock);
            return (PaymentStatus::Failed, Some(reason));
        }
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(r)) => r,
            _ => (PaymentStatus::Failed, Some("no final status".into())),
        }
    }

    fn on_msg(self: &Arc<Self>, conn: usize, msg: SessionMsg) {
        match msg {
            SessionMsg::Propose(p) => self.on_hub_proposal(conn, p),
            SessionMsg::Accept { version, sig, .. } => self.on_answer(version, Ok(sig)),
            SessionMsg::Reject {
                version,
                code,
                reason,
                signed,
                ..
            } => {
                let mut st = lock(&self.inner);
                st.floor = st.floor.max(signed);
                drop(st);
                self.on_answer(version, Err((code, reason)))
            }
            SessionMsg::Payment {
                hashlock,
                status,
                reason,
            } if status != PaymentStatus::Pending => {
                if let Some(tx) = lock(&self.inner).payments.remove(&hashlock) {
                    let _ = tx.send((status, reason));
                }
            }
            SessionMsg::Sync {
                snapshot, signed, ..
            } => {
                let mut st = lock(&self.inner);
                st.floor = st.floor.max(signed);
                let ok = snapshot
                    .verify(self.chain_id, &self.channel, &self.key.address(), &self.hub)
                    .is_ok();
                if ok && snapshot.state().version > st.latest.state().version {
                    st.adopt(snapshot);
                }
            }
            _ => {}
        }
    }

    fn on_answer(&self, version: u64, answer: Result<Signature, (ErrorCode, String)>) {
        let mut st = lock(&self.inner);
        if st.own.as_ref().map(|o| o.0) != Some(version) {
            return;
        }
        let Some((_, p, tx)) = st.own.take() else {
            return;
        };
        let result = match answer {
            Err(e) => Err(e),
            Ok(sig) => {
                let fits = st.latest.state().version < version;
                let valid = apply_at(&st.position(), &p.change, Party::A, &st.ctx(), version);
                match (
                    fits,
                    valid,
                    self.hub.verify_hash(&p.state.signing_hash(), &sig),
                ) {
                    (true, Ok(next), Ok(())) => {
                        st.adopt(Snapshot {
                            cosigned: CoSigned {
                                state: next.state,
                                sig_a: p.sig,
                                sig_b: sig,
                            },
                            locks: next.locks,
                        });
                        Ok(())
                    }
                    _ => {
                        let latest = st.latest.state().version;
                        st.forks
                            .push(format!("hub accepted version {version} on top of {latest}"));
                        Err((ErrorCode::Internal, "accept does not fit".into()))
                    }
                }
            }
        };
        let _ = tx.send(result);
    }

    fn on_hub_proposal(self: &Arc<Self>, conn: usize, p: Proposal) {
        let mut st = lock(&self.inner);
        let version = p.state.version;
        if st.withhold && matches!(p.change, Change::Unlock { .. }) {
            return self.reject(conn, version, "withheld".into(), st.floor);
        }
        let floor = st.floor;
        let checked = check_proposal(
            &st.position(),
            &p.change,
            &p.state,
            Party::B,
            &st.ctx(),
            floor,
        );
        if self
            .hub
            .verify_hash(&p.state.signing_hash(), &p.sig)
            .is_ok()
        {
            st.floor = st.floor.max(version);
        }
        let next = match (
            checked,
            self.hub.verify_hash(&p.state.signing_hash(), &p.sig),
        ) {
            (Ok(next), Ok(())) => next,
            (Err(e), _) => return self.reject(conn, version, e.to_string(), st.floor),
            (_, Err(_)) => return self.reject(conn, version, "bad signature".into(), st.floor),
        };
        let sig = p.state.sign(&self.key);
        st.adopt(Snapshot {
            cosigned: CoSigned {
                state: next.state,
                sig_a: sig,
                sig_b: p.sig,
            },
            locks: next.locks,
        });
        self.send(
            conn,
            &SessionMsg::Accept {
                channel_id: self.channel,
                version,
                sig,
            },
        );
        if let Change::AddLock { lock: l } = p.change {
            if let Some(secret) = st.invoices.get(&l.hashlock).copied() {
                let me = self.clone();
                tokio::spawn(async move {
                    let _ = me.propose(conn, Change::Unlock { secret }, None).await;
                });
            }
        }
    }

    fn reject(&self, conn: usize, version: u64, reason: String, signed: u64) {
        self.send(
            conn,
            &SessionMsg::Reject {
                channel_id: self.channel,
                version,
                code: ErrorCode::InvalidUpdate,
                reason,
                signed,
            },
        );
    }
}

/// Both sides' deposit in the chain tests: the client's opening deposit and the hub's target.
pub const DEPOSIT: u64 = 100_000;

/// A sender for `key` on the node at `node`.
pub async fn sender(node: &str, key: &Keypair) -> sluice_chain_client::TxSender {
    let client = sluice_chain_client::ChainClient::new(node);
    let chain_id = client.chain_info().await.unwrap().chain_id;
    sluice_chain_client::TxSender::new(client, key.clone(), chain_id, 1)
}

/// Opens a channel from `key` toward the hub on chain with `salt`; returns its id.
pub async fn open_with_salt(node: &str, key: &Keypair, hub: &Address, salt: Hash32) -> Hash32 {
    let sender = sender(node, key).await;
    let kind = TxKind::OpenChannel {
        counterparty: *hub,
        deposit: DEPOSIT,
        challenge_period: 20,
        salt,
    };
    sender.send(kind, Duration::from_secs(20)).await.unwrap();
    let chain_id = sender.client().chain_info().await.unwrap().chain_id;
    channel_id(chain_id, &key.address(), hub, &salt)
}

/// Opens a channel from `key` toward the hub on chain; returns its id.
pub async fn open_on_chain(node: &str, key: &Keypair, hub: &Address) -> Hash32 {
    open_with_salt(node, key, hub, Hash32(secp256k1::rand::random())).await
}

/// Waits until the hub learned the channel and its collateral deposit landed.
pub async fn wait_funded(store: &sluice_hub::store::Store, id: &Hash32) -> (u64, u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(r)) = store.channel(id).await {
            if r.deposit_b >= DEPOSIT {
                return (r.deposit_a, r.deposit_b);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "channel {id} never funded by the hub"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
