//! A small wallet over a real WebSocket for driving the hub in tests: logs in, drives each channel
//! with the protocol's session machine ([`ChannelSession`], party `a`), the same one the real
//! wallet drives, accepts the hub's proposals the machine checks, unlocks locks for its own
//! invoices, and pays invoices. Its state lives in memory: the machine's outputs are executed by
//! sending what they say to send (`PersistSigned` and `Commit` are the machine's own record).
//!
//! Two modes deviate on purpose, on top of what the machine decides (see [`Wallet::decline_locks`]
//! and [`Wallet::keep_and_reject_locks`]), and tests that probe the hub with bad input may send
//! hand-built proposals through [`Wallet::propose`]: those go out as they are.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use sluice_hub::store::{ChannelPhase, ChannelRow};
use sluice_hub::{Hub, HubConfig};
use sluice_protocol::invoice::Invoice;
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::session::{ChannelSession, Output, Signed};
use sluice_protocol::update::{Change, Context};
use sluice_protocol::wire::hub::{
    ErrorCode, PaymentStatus, Proposal, SessionMsg, AUTH_ACTION, MAX_SESSION_FRAME,
};
use sluice_protocol::wire::{self, auth_bytes};
use sluice_protocol::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

pub const CHAIN: ChainId = 1;

pub async fn start_hub(dir: &std::path::Path, cfg: HubConfig) -> Hub {
    if !dir.join("hub.key").exists() {
        sluice_hub::keyfile::create(&dir.join("hub.key")).unwrap();
    }
    Hub::start(dir, cfg).await.unwrap()
}

pub fn quick_config() -> HubConfig {
    let mut cfg = HubConfig {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        ..HubConfig::default()
    };
    cfg.limits.reply_timeout_ms = 1_500;
    cfg
}

/// Registers a channel (client = a, hub = b) as if learned from the chain.
pub async fn open_channel(hub: &Hub, client: &Keypair, deposit_a: u64, deposit_b: u64) -> Hash32 {
    let id = channel_id(
        CHAIN,
        &client.address(),
        &hub.shared.address(),
        &Hash32(secp256k1::rand::random()),
    );
    let row = ChannelRow {
        id,
        client: client.address(),
        deposit_a,
        deposit_b,
        challenge_period: 10,
        phase: ChannelPhase::Open,
        snapshot: Snapshot::opening(hub.shared.chain_id, id),
        pending: None,
        floor: 0,
        updated_at: 0,
    };
    hub.shared.store.insert_channel(&row).await.unwrap();
    id
}

#[derive(Default)]
struct State {
    /// The session machine of each channel, built from the hub's `Sync` at login. Its latest
    /// co-signed snapshot and signed record are all this wallet keeps of a channel.
    machines: HashMap<Hash32, ChannelSession>,
    deposits: HashMap<Hash32, (u64, u64)>,
    invoices: HashMap<Hash32, Hash32>,
    terms: Option<RoutingTerms>,
    /// Reject the hub's locks instead of accepting them.
    decline: bool,
    /// Co-sign the hub's locks for ourselves, keep them, answer Reject, and refuse any Bump that
    /// would bury them: a payee out to keep a lock the hub thinks it withdrew.
    keep_and_reject: bool,
    kept: Vec<Snapshot>,
    /// Per channel, the last proposal [`Wallet::proposal`] built and did not send yet.
    prepared: HashMap<Hash32, Prepared>,
}

/// A proposal built by the channel's machine, kept until [`Wallet::propose`] sends it.
struct Prepared {
    proposal: Proposal,
    /// What the machine stood on when it built the proposal (see [`idle_base`]): the proposal
    /// goes through the machine only if the machine still stands there when it is sent.
    base: Base,
    /// The channel's machine after proposing it (its proposal in flight).
    machine: ChannelSession,
}

/// An idle machine's latest snapshot, signed record and floor: what its next proposal is built on.
type Base = (Snapshot, Signed, u64);

fn idle_base(m: &ChannelSession) -> Option<Base> {
    m.in_flight()
        .is_none()
        .then(|| (m.latest().clone(), m.signed(), m.floor()))
}

impl State {
    fn ctx(&self, id: &Hash32, height: Height) -> Context {
        let (deposit_a, deposit_b) = self.deposits[id];
        Context {
            deposit_a,
            deposit_b,
            height,
            policy: self.terms.expect("welcomed").policy,
        }
    }
}

pub struct Wallet {
    pub key: Keypair,
    pub hub: Address,
    out: mpsc::UnboundedSender<String>,
    inbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<SessionMsg>>,
    state: Arc<Mutex<State>>,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn raw(hub: &Hub) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", hub.addr))
        .await
        .unwrap();
    ws
}

pub async fn next_msg(ws: &mut Ws) -> Option<SessionMsg> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .ok()??
            .ok()?;
        match m {
            Message::Text(t) => {
                return Some(wire::decode(t.as_bytes(), MAX_SESSION_FRAME).unwrap())
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

pub fn auth_msg(key: &Keypair, chain_id: ChainId, hub: &Address, nonce: &Hash32) -> String {
    let bytes = auth_bytes(
        chain_id,
        hub,
        AUTH_ACTION,
        nonce,
        &key.address(),
        &Hash32::default(),
    );
    wire::encode(&SessionMsg::Auth {
        address: key.address(),
        sig: key.sign(Tag::Auth, &bytes),
        challenge: Hash32::default(),
    })
}

impl Wallet {
    /// Connects and logs in; returns once the hub's `Welcome` and its `Sync` of every channel
    /// arrived.
    pub async fn connect(hub: &Hub, key: Keypair) -> Wallet {
        let mut ws = raw(hub).await;
        let Some(SessionMsg::Challenge {
            chain_id,
            hub: hub_addr,
            nonce,
        }) = next_msg(&mut ws).await
        else {
            panic!("no challenge")
        };
        ws.send(Message::text(auth_msg(&key, chain_id, &hub_addr, &nonce)))
            .await
            .unwrap();
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (in_tx, inbox) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(t) = out_rx.recv().await {
                if sink.send(Message::text(t)).await.is_err() {
                    return;
                }
            }
            // The wallet was dropped: say goodbye so the hub ends the session.
            let _ = sink.close().await;
        });
        let state = Arc::new(Mutex::new(State::default()));
        for row in hub.shared.store.channels_of(&key.address()).await.unwrap() {
            state
                .lock()
                .unwrap()
                .deposits
                .insert(row.id, (row.deposit_a, row.deposit_b));
        }
        let peer = Peer {
            key: key.clone(),
            hub: hub_addr,
            chain_id,
            out: out.clone(),
        };
        let st = state.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let Message::Text(t) = m else { continue };
                let Ok(msg) = wire::decode::<SessionMsg>(t.as_bytes(), MAX_SESSION_FRAME) else {
                    continue;
                };
                if let Some(msg) = peer.auto(&st, msg) {
                    let _ = in_tx.send(msg);
                }
            }
        });
        let w = Wallet {
            key,
            hub: hub_addr,
            out,
            inbox: tokio::sync::Mutex::new(inbox),
            state,
        };
        match w.recv().await {
            SessionMsg::Welcome { terms, .. } => w.state.lock().unwrap().terms = Some(terms),
            other => panic!("expected welcome, got {other:?}"),
        }
        // Resync: the hub's Sync for each channel follows the Welcome.
        for _ in 0..500 {
            let synced = {
                let st = w.state.lock().unwrap();
                st.machines.len() >= st.deposits.len()
            };
            if synced {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        w
    }

    pub fn send(&self, msg: &SessionMsg) {
        self.out.send(wire::encode(msg)).unwrap();
    }

    pub fn send_text(&self, text: String) {
        self.out.send(text).unwrap();
    }

    /// The next message the wallet did not handle by itself (the hub's answers to our proposals
    /// are handled by the machine and passed on here too).
    pub async fn recv(&self) -> SessionMsg {
        tokio::time::timeout(Duration::from_secs(10), self.inbox.lock().await.recv())
            .await
            .expect("timed out waiting for a message")
            .expect("session closed")
    }

    pub async fn recv_until(&self, pred: impl Fn(&SessionMsg) -> bool) -> SessionMsg {
        loop {
            let m = self.recv().await;
            if pred(&m) {
                return m;
            }
        }
    }

    /// Co-signs every hub lock for itself, keeps it and answers Reject; refuses every Bump.
    ///
    /// The deviation, on top of the machine: the hub's `AddLock` is checked and co-signed by the
    /// machine (`on_proposal`, `accept`), the co-signed state is kept (see [`Wallet::kept`]), and a
    /// `Reject` goes out instead of the machine's `Accept`. The hub never learns of that
    /// co-signature, so the machine is then rebuilt on the state before the lock (the hub's view,
    /// which the hub's next proposals build on) with its signed record and floor kept: the
    /// wallet never signs another state at the kept version. Every `Bump` the machine checks is
    /// refused, so the hub cannot bury the kept state.
    pub fn keep_and_reject_locks(&self) {
        self.state.lock().unwrap().keep_and_reject = true;
    }

    /// The hub-signed states this wallet co-signed for itself and kept after rejecting them.
    pub fn kept(&self) -> Vec<Snapshot> {
        self.state.lock().unwrap().kept.clone()
    }

    /// Refuses every hub lock the machine checks (a payee that takes no payments), with a
    /// `Reject` carrying what the machine knows was signed.
    pub fn decline_locks(&self) {
        self.state.lock().unwrap().decline = true;
    }

    /// The channel's latest co-signed snapshot, as its machine holds it.
    pub fn latest(&self, id: &Hash32) -> Snapshot {
        self.state
            .lock()
            .unwrap()
            .machines
            .get(id)
            .expect("channel synced")
            .latest()
            .clone()
    }

    /// Makes an invoice payable through this hub and remembers its secret.
    pub fn invoice(&self, amount: u64, expires_at: u64) -> (String, Hash32) {
        let secret = Hash32(secp256k1::rand::random());
        let inv = Invoice {
            chain_id: CHAIN,
            hub: self.hub,
            payee: self.key.address(),
            amount,
            hashlock: sha256(&secret.0),
            expires_at,
            memo: String::new(),
        }
        .sign(&self.key)
        .unwrap();
        self.state
            .lock()
            .unwrap()
            .invoices
            .insert(inv.invoice.hashlock, secret);
        (inv.encode_string().unwrap(), inv.invoice.hashlock)
    }

    /// The proposal paying `invoice` on `channel` (not sent; see [`Wallet::proposal`]).
    pub fn pay_proposal(
        &self,
        channel: &Hash32,
        invoice: &str,
        amount: u64,
        height: Height,
    ) -> Proposal {
        let mut st = self.state.lock().unwrap();
        let terms = st.terms.unwrap();
        let hashlock = invoice::SignedInvoice::parse(invoice)
            .unwrap()
            .invoice
            .hashlock;
        let lock = Lock {
            direction: Direction::AtoB,
            amount: terms.incoming_amount(amount).unwrap(),
            hashlock,
            expiry: terms.incoming_expiry(height),
        };
        let change = Change::AddLock { lock };
        prepare(&mut st, channel, change, height, Some(invoice.to_string()))
    }

    /// The proposal of `change` on `channel` at chain height `height`, as the channel's machine
    /// builds it (at its next free version); not sent. [`Wallet::propose`] sends it through the
    /// machine as long as the machine has not moved meanwhile.
    pub fn proposal(&self, channel: &Hash32, change: Change, height: Height) -> Proposal {
        let mut st = self.state.lock().unwrap();
        prepare(&mut st, channel, change, height, None)
    }

    /// Sends `p` and waits for the hub's answer to it.
    ///
    /// A proposal built by [`Wallet::proposal`] or [`Wallet::pay_proposal`] goes through the
    /// channel's machine, which commits the co-signed state on `Accept` (checking the hub's
    /// signature) and keeps the version burnt on `Reject`. Anything else is a hand-built
    /// proposal (a test's bad input): it goes out as it is, and the machine only learns that
    /// this wallet signed its state, so that nothing is signed at that version again; an
    /// `Accept` of it is returned but not stored.
    pub async fn propose(&self, p: Proposal) -> SessionMsg {
        let through_machine = {
            let mut st = self.state.lock().unwrap();
            start(&mut st, &self.key, &self.hub, &p)
        };
        self.send(&SessionMsg::Propose(p.clone()));
        let (id, version) = (p.channel_id, p.state.version);
        let reply = self
            .recv_until(|m| match m {
                SessionMsg::Accept {
                    channel_id,
                    version: v,
                    ..
                }
                | SessionMsg::Reject {
                    channel_id,
                    version: v,
                    ..
                } => *channel_id == id && *v == version,
                _ => false,
            })
            .await;
        if through_machine && matches!(reply, SessionMsg::Accept { .. }) {
            assert_eq!(
                self.latest(&id).state(),
                &p.state,
                "the hub's Accept of version {version} did not verify"
            );
        }
        reply
    }

    /// Pays `invoice` over `channel`; returns the final payment status message.
    pub async fn pay(&self, channel: &Hash32, invoice: &str, amount: u64) -> SessionMsg {
        let p = self.pay_proposal(channel, invoice, amount, 0);
        match self.propose(p).await {
            SessionMsg::Accept { .. } => {}
            reject => return reject,
        }
        self.recv_until(|m| {
            matches!(m, SessionMsg::Payment { status, .. } if *status != PaymentStatus::Pending)
        })
        .await
    }
}

/// Builds the proposal of `change` with a copy of the channel's machine and keeps that copy, with
/// the base it stood on, until [`Wallet::propose`] sends the proposal.
fn prepare(
    st: &mut State,
    channel: &Hash32,
    change: Change,
    height: Height,
    invoice: Option<String>,
) -> Proposal {
    let ctx = st.ctx(channel, height);
    let m = st.machines.get(channel).expect("channel synced");
    let base = idle_base(m).expect("no proposal of this wallet is in flight on the channel");
    let mut machine = m.clone();
    let outputs = machine
        .propose(change, &ctx, invoice)
        .expect("the machine proposes the change");
    let proposal = outputs
        .into_iter()
        .find_map(|o| match o {
            Output::Send(msg) => match *msg {
                SessionMsg::Propose(p) => Some(p),
                _ => None,
            },
            _ => None,
        })
        .expect("a proposal to send");
    st.prepared.insert(
        *channel,
        Prepared {
            proposal: proposal.clone(),
            base,
            machine,
        },
    );
    proposal
}

/// Before `p` is sent: puts the machine that built it in place if it is the prepared proposal
/// and the channel's machine has not moved since (returns `true`); otherwise records in the
/// machine of the state's channel that this wallet signed it, if it did.
fn start(st: &mut State, key: &Keypair, hub: &Address, p: &Proposal) -> bool {
    let prepared = st.prepared.remove(&p.channel_id);
    if let (Some(prep), Some(m)) = (prepared, st.machines.get_mut(&p.channel_id)) {
        if prep.proposal == *p && idle_base(m).as_ref() == Some(&prep.base) {
            *m = prep.machine;
            return true;
        }
    }
    let state = &p.state;
    let Some(m) = st.machines.get_mut(&state.channel_id) else {
        return false;
    };
    let ours = key
        .address()
        .verify_hash(&state.signing_hash(), &p.sig)
        .is_ok();
    if !ours || state.chain_id != m.latest().state().chain_id {
        return false;
    }
    assert!(
        m.in_flight().is_none(),
        "hand-built proposals go on a channel with nothing in flight"
    );
    let signed = m.signed().max(Signed {
        version: state.version,
        is_final: state.is_final,
    });
    let floor = m.floor();
    *m = ChannelSession::new(Party::A, key.clone(), *hub, m.latest().clone(), signed);
    m.note_peer_signed(floor);
    false
}

/// What the wallet's reader task needs to answer the hub by itself.
struct Peer {
    key: Keypair,
    hub: Address,
    chain_id: ChainId,
    out: mpsc::UnboundedSender<String>,
}

impl Peer {
    fn send(&self, msg: &SessionMsg) {
        let _ = self.out.send(wire::encode(msg));
    }

    /// Executes a machine's outputs in order: the machine holds the signed record and the
    /// co-signed state itself, so only the messages are left to do.
    fn execute(&self, outputs: Vec<Output>) {
        for out in outputs {
            if let Output::Send(msg) = out {
                self.send(&msg);
            }
        }
    }

    /// Handles what a wallet answers by itself: syncs, the hub's proposals, and the hub's
    /// answers to our proposals (fed to the machine, then passed on). Returns anything else.
    fn auto(&self, st: &Mutex<State>, msg: SessionMsg) -> Option<SessionMsg> {
        let mut st = st.lock().unwrap();
        match &msg {
            SessionMsg::Sync {
                channel_id,
                snapshot,
                signed,
            } => {
                let m = st.machines.entry(*channel_id).or_insert_with(|| {
                    let opening = Snapshot::opening(self.chain_id, *channel_id);
                    ChannelSession::new(
                        Party::A,
                        self.key.clone(),
                        self.hub,
                        opening,
                        Signed::default(),
                    )
                });
                m.on_sync(snapshot, *signed)
                    .expect("the hub's Sync verifies");
                None
            }
            SessionMsg::Propose(p) => {
                self.on_hub_proposal(&mut st, p);
                None
            }
            SessionMsg::Accept {
                channel_id,
                version,
                sig,
            } => {
                if let Some(m) = st.machines.get_mut(channel_id) {
                    let ours = m.in_flight().is_some_and(|f| f.version() == *version);
                    if ours && m.on_accept(*version, *sig).is_err() {
                        // Not stored: our proposal stays in doubt, its version burnt.
                        m.abandon();
                    }
                }
                Some(msg)
            }
            SessionMsg::Reject {
                channel_id,
                version,
                signed,
                ..
            } => {
                if let Some(m) = st.machines.get_mut(channel_id) {
                    let _ = m.on_reject(*version, *signed);
                }
                Some(msg)
            }
            _ => Some(msg),
        }
    }

    fn on_hub_proposal(&self, st: &mut State, p: &Proposal) {
        let version = p.state.version;
        let Some(ctx) = st
            .deposits
            .contains_key(&p.channel_id)
            .then(|| st.ctx(&p.channel_id, 0))
        else {
            return self.send(&SessionMsg::Reject {
                channel_id: p.channel_id,
                version,
                code: ErrorCode::UnknownChannel,
                reason: "no such channel".into(),
                signed: 0,
            });
        };
        let m = st.machines.get_mut(&p.channel_id).expect("channel synced");
        let before = m.latest().clone();
        let checked = match m.on_proposal(p, &ctx) {
            Ok(checked) => checked,
            Err(why) => return self.execute(vec![m.refuse(version, &why)]),
        };
        let is_lock = matches!(p.change, Change::AddLock { .. });
        if st.keep_and_reject && (is_lock || p.change == Change::Bump) {
            if is_lock {
                // Co-signed for ourselves through the machine; its Accept is not sent.
                let outputs = m.accept(checked).expect("the machine co-signs the lock");
                for out in outputs {
                    if let Output::Commit(c) = out {
                        st.kept.push(c.snapshot);
                    }
                }
                // Back to the hub's view, keeping the record that the kept state was signed.
                let (signed, floor) = (m.signed(), m.floor());
                *m = ChannelSession::new(Party::A, self.key.clone(), self.hub, before, signed);
                m.note_peer_signed(floor);
            }
            return self.send(&no_thanks(m, version));
        }
        if st.decline && is_lock {
            return self.send(&no_thanks(m, version));
        }
        match m.accept(checked) {
            Ok(outputs) => self.execute(outputs),
            Err(why) => return self.execute(vec![m.refuse(version, &why)]),
        }
        // A lock for one of our invoices: claim it with the secret.
        if let Change::AddLock { lock } = &p.change {
            if let Some(secret) = st.invoices.get(&lock.hashlock).copied() {
                let outputs = m
                    .propose(Change::Unlock { secret }, &ctx, None)
                    .expect("the machine proposes the unlock");
                self.execute(outputs);
            }
        }
    }
}

/// The `Reject` of a hub proposal this wallet's mode refuses although the machine found nothing
/// wrong with it: what the machine's own refusal would send, with this wallet's reason.
fn no_thanks(m: &ChannelSession, version: u64) -> SessionMsg {
    SessionMsg::Reject {
        channel_id: m.channel_id(),
        version,
        code: ErrorCode::PaymentFailed,
        reason: "no thanks".into(),
        signed: m.floor().max(version),
    }
}

/// A hub proposal of a `Bump` on channel `id` as a reservation holds it (the hub's signature,
/// the client's left zero), reserved until `until_ms`: what a proposal the client never
/// answered leaves in the store.
pub async fn reserve_hub_bump(hub: &Hub, id: &Hash32, until_ms: u64) -> Snapshot {
    let row = hub.shared.store.channel(id).await.unwrap().unwrap();
    let pos = sluice_protocol::update::Position {
        state: *row.snapshot.state(),
        locks: row.snapshot.locks.clone(),
    };
    let ctx = hub.shared.context(row.deposit_a, row.deposit_b);
    let next = sluice_protocol::update::apply(&pos, &Change::Bump, Party::B, &ctx).unwrap();
    let held = Snapshot {
        cosigned: CoSigned {
            state: next.state,
            sig_a: Signature::default(),
            sig_b: next.state.sign(&hub.shared.key),
        },
        locks: next.locks,
    };
    let reserved = hub
        .shared
        .store
        .reserve(id, row.version(), &held, until_ms)
        .await;
    assert!(reserved.unwrap(), "the channel had no reservation");
    held
}
