//! A test wallet with one session to each of several hub processes (one hub key, one store):
//! one session machine per channel ([`ChannelSession`], party `a`, the one the real wallet
//! drives) fed by all its sessions, so the hub processes race on the same channels. The machine
//! checks every hub proposal against its latest state and every `Accept`; the twin pays
//! invoices, unlocks locks for its own invoices on the session they came on, and records every
//! co-signed state the machine commits, flagging any two different states of one version (a
//! fork) or an `Accept` the machine cannot take (a hub that co-signed our proposal although a
//! state of its own above it was co-signed meanwhile, or a bad signature).
//!
//! One deviation, on purpose: [`Twin::withhold_unlocks`] rejects the hub's `Unlock` proposals
//! the machine found valid (a payer withholding the secret's claim).

#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use sluice_protocol::invoice::{Invoice, SignedInvoice};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::session::{ChannelSession, Output, Refusal, Signed};
use sluice_protocol::update::{Change, Context};
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
    /// The channel's session machine; its latest co-signed snapshot is the twin's.
    machine: ChannelSession,
    deposits: (u64, u64),
    terms: RoutingTerms,
    height: Height,
    history: BTreeMap<u64, Snapshot>,
    forks: Vec<String>,
    invoices: HashMap<Hash32, Hash32>,
    /// The version of our proposal waiting for its answer, and who waits for it. It outlives
    /// the machine's in-flight proposal when a hub proposal above it won the crossing.
    own: Option<(u64, oneshot::Sender<Answer>)>,
    payments: HashMap<Hash32, oneshot::Sender<(PaymentStatus, Option<String>)>>,
    /// Lock lifetime for payments (blocks); `None`: the terms' maximum.
    lock_delta: Option<Height>,
    /// Reject the hub's `Unlock` proposals (a payer withholding the secret's claim).
    withhold: bool,
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

    /// Records a co-signed state the machine committed; a second, different state at one
    /// version is a fork.
    fn record(&mut self, snap: Snapshot) {
        let v = snap.state().version;
        if let Some(prev) = self.history.get(&v) {
            if *prev != snap {
                self.forks
                    .push(format!("two different states at version {v}"));
            }
        }
        self.history.insert(v, snap);
    }

    /// Answers our proposal's waiter, if `version` is its version.
    fn answer(&mut self, version: u64, answer: Answer) {
        if self.own.as_ref().map(|o| o.0) != Some(version) {
            return;
        }
        if let Some((_, tx)) = self.own.take() {
            let _ = tx.send(answer);
        }
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

/// What a hub says at login.
struct Login {
    ws: Ws,
    chain_id: ChainId,
    hub: Address,
    terms: RoutingTerms,
    /// The hub's `Sync` of the channel: its snapshot and the highest version it signed.
    snapshot: Snapshot,
    signed: u64,
}

/// Logs in at `addr` as `key`.
async fn login(addr: &str, key: &Keypair) -> Login {
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
    let SessionMsg::Sync {
        snapshot, signed, ..
    } = next(&mut ws).await
    else {
        panic!("no sync")
    };
    Login {
        ws,
        chain_id,
        hub,
        terms,
        snapshot,
        signed,
    }
}

impl Twin {
    /// Opens one session per hub address for the client `key` of `channel`; the machine starts
    /// from the opening state and takes each hub's `Sync`.
    pub async fn connect(
        addrs: &[String],
        key: Keypair,
        channel: Hash32,
        deposits: (u64, u64),
    ) -> Arc<Twin> {
        let mut logins = Vec::new();
        for a in addrs {
            logins.push(login(a, &key).await);
        }
        let first = logins.first().expect("at least one hub");
        let (chain_id, hub, terms) = (first.chain_id, first.hub, first.terms);
        let opening = Snapshot::opening(chain_id, channel);
        let mut inner = Inner {
            machine: ChannelSession::new(
                Party::A,
                key.clone(),
                hub,
                opening.clone(),
                Signed::default(),
            ),
            deposits,
            terms,
            height: 0,
            history: BTreeMap::from([(0, opening)]),
            forks: Vec::new(),
            invoices: HashMap::new(),
            own: None,
            payments: HashMap::new(),
            lock_delta: None,
            withhold: false,
        };
        let mut conns = Vec::new();
        let mut streams = Vec::new();
        for l in logins {
            let synced = inner
                .machine
                .on_sync(&l.snapshot, l.signed)
                .expect("the hub's Sync verifies");
            if let Some(c) = synced.commit {
                inner.record(c.snapshot);
            }
            let (mut sink, stream) = l.ws.split();
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
        let twin = Arc::new(Twin {
            key,
            channel,
            hub,
            chain_id,
            conns,
            inner: Mutex::new(inner),
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
        lock(&self.inner).machine.latest().clone()
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

    /// Executes the machine's outputs in order on session `conn`: the machine holds the signed
    /// record itself, a committed state is recorded (fork check), messages are sent.
    fn execute(&self, conn: usize, st: &mut Inner, outputs: Vec<Output>) {
        for out in outputs {
            match out {
                Output::PersistSigned(_) => {}
                Output::Commit(c) => st.record(c.snapshot),
                Output::Send(msg) => self.send(conn, &msg),
            }
        }
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

    /// Proposes `change` through the machine on session `conn`, retrying while the channel is
    /// busy (our earlier proposal unanswered) or the hub answers `Busy`.
    pub async fn propose(
        self: &Arc<Self>,
        conn: usize,
        change: Change,
        invoice: Option<String>,
    ) -> Answer {
        for _ in 0..400 {
            let waiting = {
                let mut st = lock(&self.inner);
                let ctx = st.ctx();
                let proposed = match st.own {
                    Some(_) => Err(Refusal::Busy),
                    None => st.machine.propose(change.clone(), &ctx, invoice.clone()),
                };
                match proposed {
                    Ok(outputs) => {
                        let version = st.machine.in_flight().map_or(0, |f| f.version());
                        let (tx, rx) = oneshot::channel();
                        st.own = Some((version, tx));
                        self.execute(conn, &mut st, outputs);
                        Some((version, rx))
                    }
                    Err(Refusal::Busy) => None,
                    Err(e) => return Err((e.code(), e.to_string())),
                }
            };
            let Some((version, rx)) = waiting else {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(10), rx).await {
                Ok(Ok(Err((ErrorCode::Busy, _)))) => {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                Ok(Ok(answer)) => return answer,
                _ => {
                    // Unanswered: in doubt, its version stays burnt.
                    let mut st = lock(&self.inner);
                    st.own = None;
                    if st
                        .machine
                        .in_flight()
                        .is_some_and(|f| f.version() == version)
                    {
                        st.machine.abandon();
                    }
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
            SessionMsg::Accept { version, sig, .. } => self.on_accept(version, sig),
            SessionMsg::Reject {
                version,
                code,
                reason,
                signed,
                ..
            } => {
                let mut st = lock(&self.inner);
                // Refused: in doubt, its version burnt (an error if it is no longer in flight).
                let _ = st.machine.on_reject(version, signed);
                st.answer(version, Err((code, reason)));
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
                let Ok(synced) = st.machine.on_sync(&snapshot, signed) else {
                    return;
                };
                if let Some(c) = synced.commit {
                    st.record(c.snapshot);
                }
                if let Some(done) = synced.resolved {
                    let answer = match done.next.state == *snapshot.state() {
                        true => Ok(()),
                        false => Err((ErrorCode::Internal, "overtaken by a resync".into())),
                    };
                    st.answer(done.version(), answer);
                }
            }
            _ => {}
        }
    }

    /// The hub's signature on our proposal: the machine commits it, or the hub co-signed what
    /// the machine cannot take, which is flagged.
    fn on_accept(&self, version: u64, sig: Signature) {
        let mut st = lock(&self.inner);
        if st.own.as_ref().map(|o| o.0) != Some(version) {
            return;
        }
        let answer = match st.machine.on_accept(version, sig) {
            Ok(c) => {
                st.record(c.snapshot);
                Ok(())
            }
            Err(e) => {
                let latest = st.machine.latest().state().version;
                st.forks.push(format!(
                    "hub accepted version {version} on top of {latest}: {e}"
                ));
                if st
                    .machine
                    .in_flight()
                    .is_some_and(|f| f.version() == version)
                {
                    st.machine.abandon();
                }
                Err((ErrorCode::Internal, "accept does not fit".into()))
            }
        };
        st.answer(version, answer);
    }

    fn on_hub_proposal(self: &Arc<Self>, conn: usize, p: Proposal) {
        let mut st = lock(&self.inner);
        let version = p.state.version;
        let ctx = st.ctx();
        let checked = match st.machine.on_proposal(&p, &ctx) {
            Ok(checked) => checked,
            Err(why) => {
                let out = st.machine.refuse(version, &why);
                return self.execute(conn, &mut st, vec![out]);
            }
        };
        if st.withhold && matches!(p.change, Change::Unlock { .. }) {
            let reject = SessionMsg::Reject {
                channel_id: self.channel,
                version,
                code: ErrorCode::InvalidUpdate,
                reason: "withheld".into(),
                signed: st.machine.floor().max(version),
            };
            return self.send(conn, &reject);
        }
        let outputs = match st.machine.accept(checked) {
            Ok(outputs) => outputs,
            Err(why) => {
                let out = st.machine.refuse(version, &why);
                return self.execute(conn, &mut st, vec![out]);
            }
        };
        self.execute(conn, &mut st, outputs);
        if let Change::AddLock { lock: l } = p.change {
            if let Some(secret) = st.invoices.get(&l.hashlock).copied() {
                let me = self.clone();
                tokio::spawn(async move {
                    let _ = me.propose(conn, Change::Unlock { secret }, None).await;
                });
            }
        }
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
        challenge_period: 40,
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
