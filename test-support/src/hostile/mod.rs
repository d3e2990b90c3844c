//! A test wallet over real WebSockets to real hub processes, built on the protocol's session
//! machine ([`ChannelSession`], party `a`, the one the real wallet drives), that is honest
//! unless told to deviate: it can co-sign a hub proposal and answer `Reject` or nothing, keep
//! what it co-signed, resync below a proposal on a new session, push a kept state with `Sync`,
//! withhold its `Unlock`, and (with [`chain`]) register secrets, close with any state it holds,
//! open channels with any challenge period, deposit or salt.
//!
//! One machine per wallet and channel; the wallet may hold sessions to several hub processes
//! (one hub key, one store) that then race on the channel. It records every co-signed state the
//! machine commits and flags two different states of one version (a fork) or an `Accept` the
//! machine cannot take.

pub mod chain;

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

/// How a proposal we made ended: `Err` carries the hub's code and reason.
pub type Answer = Result<(), (ErrorCode, String)>;

/// The kinds of hub proposal a deviation applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `AddLock` toward us (the hub forwarding a payment).
    Forward,
    /// `RemoveLock` of our lock toward the hub (the hub releasing a failed payment).
    Release,
    /// `Unlock` of our lock toward the hub (the hub claiming a payment we made).
    Claim,
    /// `RemoveLock` of the hub's lock toward us.
    Reclaim,
    /// `Bump` (the hub burying a proposal in doubt).
    Bump,
}

impl Kind {
    fn of(change: &Change) -> Option<Kind> {
        Some(match change {
            Change::AddLock { lock } if lock.direction == Direction::BtoA => Kind::Forward,
            Change::Unlock { .. } => Kind::Claim,
            Change::Bump => Kind::Bump,
            // A removal is told apart by the lock's direction (see `Inner::reply_to`).
            _ => return None,
        })
    }
}

/// How the wallet answers a hub proposal of one [`Kind`] that its machine found valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reply {
    /// Co-sign and send the signature (honest).
    #[default]
    Accept,
    /// Refuse without signing.
    Reject,
    /// Co-sign, keep the co-signed state, and answer `Reject`.
    CosignThenReject,
    /// Co-sign, keep the co-signed state, and answer nothing.
    CosignThenSilent,
}

struct Inner {
    machine: ChannelSession,
    deposits: (u64, u64),
    terms: RoutingTerms,
    height: Height,
    history: BTreeMap<u64, Snapshot>,
    forks: Vec<String>,
    invoices: HashMap<Hash32, Hash32>,
    /// The version of our proposal waiting for its answer, and who waits for it.
    own: Option<(u64, oneshot::Sender<Answer>)>,
    payments: HashMap<Hash32, oneshot::Sender<(PaymentStatus, Option<String>)>>,
    /// Lock lifetime for payments (blocks); `None`: the terms' maximum.
    lock_delta: Option<Height>,
    replies: HashMap<Kind, Reply>,
    /// Take no lock toward us with an `Unlock` (a payee going to the chain instead).
    never_unlock: bool,
    /// States co-signed under a deviation and kept (the hub thinks they were refused).
    kept: Vec<Snapshot>,
}

/// A wallet with one channel toward the hub, honest unless told otherwise.
pub struct Wallet {
    pub key: Keypair,
    pub channel: Hash32,
    pub hub: Address,
    pub chain_id: ChainId,
    addrs: Vec<String>,
    conns: Mutex<Vec<mpsc::UnboundedSender<String>>>,
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

    fn reply_to(&self, p: &Proposal) -> Reply {
        let kind = match &p.change {
            Change::RemoveLock { hashlock } => {
                let ours = self
                    .machine
                    .latest()
                    .locks
                    .iter()
                    .any(|l| l.hashlock == *hashlock && l.direction == Direction::AtoB);
                Some(if ours { Kind::Release } else { Kind::Reclaim })
            }
            other => Kind::of(other),
        };
        kind.and_then(|k| self.replies.get(&k).copied())
            .unwrap_or_default()
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
        challenge: Hash32::default(),
    };
    ws.send(Message::text(wire::encode(&auth)))
        .await
        .expect("send auth");
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

impl Wallet {
    /// Opens one session per hub address for the client `key` of `channel`; the machine starts
    /// from the opening state and takes each hub's `Sync`.
    pub async fn connect(
        addrs: &[String],
        key: Keypair,
        channel: Hash32,
        deposits: (u64, u64),
    ) -> Arc<Wallet> {
        let mut logins = Vec::new();
        for a in addrs {
            logins.push(login(a, &key).await);
        }
        let first = logins.first().expect("at least one hub");
        let (chain_id, hub, terms) = (first.chain_id, first.hub, first.terms);
        let opening = Snapshot::opening(chain_id, channel);
        let inner = Inner {
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
            replies: HashMap::new(),
            never_unlock: false,
            kept: Vec::new(),
        };
        let w = Arc::new(Wallet {
            key,
            channel,
            hub,
            chain_id,
            addrs: addrs.to_vec(),
            conns: Mutex::new(Vec::new()),
            inner: Mutex::new(inner),
        });
        for (i, l) in logins.into_iter().enumerate() {
            w.attach(i, l);
        }
        w
    }

    /// Takes the hub's `Sync` of a login and serves the session as connection `i`.
    fn attach(self: &Arc<Self>, i: usize, l: Login) {
        {
            let mut st = lock(&self.inner);
            st.terms = l.terms;
            if let Ok(synced) = st.machine.on_sync(&l.snapshot, l.signed) {
                if let Some(c) = synced.commit {
                    st.record(c.snapshot);
                }
            }
        }
        let (mut sink, mut stream) = l.ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(t) = rx.recv().await {
                if sink.send(Message::text(t)).await.is_err() {
                    return;
                }
            }
        });
        {
            let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
            match conns.get_mut(i) {
                Some(c) => *c = tx,
                None => conns.push(tx),
            }
        }
        let w = self.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let Message::Text(text) = m else { continue };
                if let Ok(msg) = wire::decode::<SessionMsg>(text.as_bytes(), MAX_SESSION_FRAME) {
                    w.on_msg(i, msg);
                }
            }
        });
    }

    /// Logs in again on connection `conn` (the hub drops the old session: one per key) and,
    /// instead of the machine's own position, tells the hub `snapshot` and `signed` in its
    /// `Sync`: a resync below a proposal it co-signed, or a push of a kept state.
    pub async fn resync_with(self: &Arc<Self>, conn: usize, snapshot: &Snapshot, signed: u64) {
        let l = login(&self.addrs[conn], &self.key).await;
        self.attach(conn, l);
        self.push_sync(conn, snapshot, signed);
    }

    /// Sends `Sync(snapshot)` on the current session (a kept state pushed to the hub).
    pub fn push_sync(&self, conn: usize, snapshot: &Snapshot, signed: u64) {
        self.send(
            conn,
            &SessionMsg::Sync {
                channel_id: self.channel,
                snapshot: snapshot.clone(),
                signed,
            },
        );
    }

    pub fn set_height(&self, h: Height) {
        lock(&self.inner).height = h;
    }

    pub fn set_lock_delta(&self, blocks: Height) {
        lock(&self.inner).lock_delta = Some(blocks);
    }

    /// Answers hub proposals of `kind` with `reply` from now on.
    pub fn answer(&self, kind: Kind, reply: Reply) {
        lock(&self.inner).replies.insert(kind, reply);
    }

    /// Rejects the hub's `Unlock` proposals (a payer withholding the secret's claim).
    pub fn withhold_unlocks(&self) {
        self.answer(Kind::Claim, Reply::Reject);
    }

    /// Never unlocks the locks for its own invoices (it can still register the secret).
    pub fn never_unlock(&self) {
        lock(&self.inner).never_unlock = true;
    }

    /// The secret of one of this wallet's invoices.
    pub fn secret(&self, hashlock: &Hash32) -> Option<Hash32> {
        lock(&self.inner).invoices.get(hashlock).copied()
    }

    pub fn latest(&self) -> Snapshot {
        lock(&self.inner).machine.latest().clone()
    }

    /// The highest version this wallet signed (its own record, whatever it tells the hub).
    pub fn signed(&self) -> u64 {
        lock(&self.inner).machine.signed().version
    }

    /// States co-signed under a deviation and kept.
    pub fn kept(&self) -> Vec<Snapshot> {
        lock(&self.inner).kept.clone()
    }

    pub fn history(&self) -> BTreeMap<u64, Snapshot> {
        lock(&self.inner).history.clone()
    }

    pub fn forks(&self) -> Vec<String> {
        lock(&self.inner).forks.clone()
    }

    fn send(&self, conn: usize, msg: &SessionMsg) {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = conns.get(conn) {
            let _ = c.send(wire::encode(msg));
        }
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
        self.invoice_with(amount, secret)
    }

    /// An invoice of `amount` for `sha256(secret)`: with another payee's hashlock, a squat.
    pub fn invoice_with(&self, amount: u64, secret: Hash32) -> String {
        self.invoice_for(amount, sha256(&secret.0), Some(secret))
    }

    /// An invoice for `hashlock`, whose secret this wallet may not know (a squatter's).
    pub fn invoice_for(&self, amount: u64, hashlock: Hash32, secret: Option<Hash32>) -> String {
        let inv = Invoice {
            chain_id: self.chain_id,
            hub: self.hub,
            payee: self.key.address(),
            amount,
            hashlock,
            expires_at: u64::MAX,
            memo: String::new(),
        }
        .sign(&self.key)
        .expect("sign invoice");
        if let Some(s) = secret {
            lock(&self.inner).invoices.insert(hashlock, s);
        }
        inv.encode_string().expect("encode invoice")
    }

    /// Proposes `change` through the machine on session `conn`, retrying while the channel is
    /// busy (our earlier proposal unanswered) or the hub answers `Busy`.
    pub async fn propose(
        self: &Arc<Self>,
        conn: usize,
        change: Change,
        invoice: Option<String>,
    ) -> Answer {
        let mut last_busy = String::new();
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
                Ok(Ok(Err((ErrorCode::Busy, why)))) => {
                    last_busy = why;
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
        Err((
            ErrorCode::Busy,
            format!("gave up, the hub busy: {last_busy}"),
        ))
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
            let amount = st.terms.incoming_amount(inv.amount).expect("amount");
            Change::AddLock {
                lock: Lock {
                    direction: Direction::AtoB,
                    amount,
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
        let before = st.machine.latest().clone();
        let checked = match st.machine.on_proposal(&p, &ctx) {
            Ok(checked) => checked,
            Err(why) => {
                let out = st.machine.refuse(version, &why);
                return self.execute(conn, &mut st, vec![out]);
            }
        };
        let reply = st.reply_to(&p);
        if reply == Reply::Reject {
            return self.send(conn, &no_thanks(self.channel, version, st.machine.floor()));
        }
        let outputs = match st.machine.accept(checked) {
            Ok(outputs) => outputs,
            Err(why) => {
                let out = st.machine.refuse(version, &why);
                return self.execute(conn, &mut st, vec![out]);
            }
        };
        if matches!(reply, Reply::CosignThenReject | Reply::CosignThenSilent) {
            return self.keep(conn, &mut st, before, outputs, reply, version);
        }
        self.execute(conn, &mut st, outputs);
        if let Change::AddLock { lock: l } = p.change {
            let secret = st.invoices.get(&l.hashlock).copied();
            if let (Some(secret), false) = (secret, st.never_unlock) {
                let me = self.clone();
                tokio::spawn(async move {
                    let _ = me.propose(conn, Change::Unlock { secret }, None).await;
                });
            }
        }
    }

    /// The co-signed state goes into `kept` instead of out; the machine goes back to the hub's
    /// view (`before`), still recording that it signed the kept version, and the hub gets a
    /// `Reject` or nothing.
    fn keep(
        &self,
        conn: usize,
        st: &mut Inner,
        before: Snapshot,
        outputs: Vec<Output>,
        reply: Reply,
        version: u64,
    ) {
        for out in outputs {
            if let Output::Commit(c) = out {
                st.kept.push(c.snapshot);
            }
        }
        let (signed, floor) = (st.machine.signed(), st.machine.floor());
        // The lie: "I signed nothing above the state before it".
        let claimed = before.state().version;
        st.machine = ChannelSession::new(Party::A, self.key.clone(), self.hub, before, signed);
        st.machine.note_peer_signed(floor);
        if reply == Reply::CosignThenReject {
            self.send(conn, &no_thanks(self.channel, version, claimed));
        }
    }
}

/// The `Reject` of a hub proposal the machine found nothing wrong with, claiming `signed`.
fn no_thanks(channel_id: Hash32, version: u64, signed: u64) -> SessionMsg {
    SessionMsg::Reject {
        channel_id,
        version,
        code: ErrorCode::PaymentFailed,
        reason: "no thanks".into(),
        signed,
    }
}
