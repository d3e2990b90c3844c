//! A small wallet over a real WebSocket for driving the hub in tests: logs in, keeps its own
//! co-signed positions, accepts the hub's proposals by recomputing them with `apply`, unlocks
//! locks for its own invoices, and pays invoices.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use sluice_hub::store::{ChannelPhase, ChannelRow};
use sluice_hub::{Hub, HubConfig};
use sluice_protocol::invoice::Invoice;
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::update::{apply_at, check_proposal, next_version, Change, Context, Position};
use sluice_protocol::wire::hub::{
    PaymentStatus, Proposal, SessionMsg, AUTH_ACTION, MAX_SESSION_FRAME,
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
    let mut cfg = HubConfig::default();
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
    };
    hub.shared.store.insert_channel(&row).await.unwrap();
    id
}

#[derive(Default)]
struct State {
    channels: HashMap<Hash32, Snapshot>,
    deposits: HashMap<Hash32, (u64, u64)>,
    invoices: HashMap<Hash32, Hash32>,
    terms: Option<RoutingTerms>,
    /// Reject the hub's locks instead of accepting them.
    decline: bool,
    /// Co-sign the hub's locks for ourselves, keep them, answer Reject, and refuse any Bump that
    /// would bury them: a payee out to keep a lock the hub thinks it withdrew.
    keep_and_reject: bool,
    kept: Vec<Snapshot>,
    /// Per channel, the highest version either side signed: new states go above it.
    floors: HashMap<Hash32, u64>,
}

impl State {
    fn floor(&self, id: &Hash32) -> u64 {
        let latest = self.channels.get(id).map_or(0, |s| s.state().version);
        self.floors.get(id).copied().unwrap_or(0).max(latest)
    }

    fn raise(&mut self, id: &Hash32, version: u64) {
        let f = self.floors.entry(*id).or_default();
        *f = (*f).max(version);
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
    })
}

impl Wallet {
    /// Connects and logs in; returns once the hub's `Welcome` arrived.
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
        for (id, row) in hub
            .shared
            .store
            .channels_of(&key.address())
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r))
        {
            state
                .lock()
                .unwrap()
                .deposits
                .insert(id, (row.deposit_a, row.deposit_b));
        }
        let (st, k, o) = (state.clone(), key.clone(), out.clone());
        let hub_addr2 = hub_addr;
        tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let Message::Text(t) = m else { continue };
                let Ok(msg) = wire::decode::<SessionMsg>(t.as_bytes(), MAX_SESSION_FRAME) else {
                    continue;
                };
                if let Some(msg) = auto(&st, &k, &hub_addr2, chain_id, &o, msg) {
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
                st.channels.len() >= st.deposits.len()
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

    /// The next message the wallet did not handle by itself.
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
    pub fn keep_and_reject_locks(&self) {
        self.state.lock().unwrap().keep_and_reject = true;
    }

    /// The hub-signed states this wallet co-signed for itself and kept after rejecting them.
    pub fn kept(&self) -> Vec<Snapshot> {
        self.state.lock().unwrap().kept.clone()
    }

    pub fn decline_locks(&self) {
        self.state.lock().unwrap().decline = true;
    }

    pub fn latest(&self, id: &Hash32) -> Snapshot {
        self.state
            .lock()
            .unwrap()
            .channels
            .get(id)
            .cloned()
            .expect("channel synced")
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
        (inv.encode_string(), inv.invoice.hashlock)
    }

    /// The proposal paying `invoice` on `channel` (not sent).
    pub fn pay_proposal(
        &self,
        channel: &Hash32,
        invoice: &str,
        amount: u64,
        height: Height,
    ) -> Proposal {
        let st = self.state.lock().unwrap();
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
        let mut p = self.proposal_locked(&st, channel, change, height);
        p.invoice = Some(invoice.to_string());
        p
    }

    pub fn proposal(&self, channel: &Hash32, change: Change, height: Height) -> Proposal {
        let st = self.state.lock().unwrap();
        self.proposal_locked(&st, channel, change, height)
    }

    fn proposal_locked(
        &self,
        st: &State,
        channel: &Hash32,
        change: Change,
        height: Height,
    ) -> Proposal {
        let snap = &st.channels[channel];
        let (da, db) = st.deposits[channel];
        let ctx = Context {
            deposit_a: da,
            deposit_b: db,
            height,
            policy: st.terms.unwrap().policy,
        };
        let pos = Position {
            state: *snap.state(),
            locks: snap.locks.clone(),
        };
        let version = next_version(pos.state.version, st.floor(channel)).unwrap();
        let next = apply_at(&pos, &change, Party::A, &ctx, version).unwrap();
        Proposal {
            channel_id: *channel,
            change,
            state: next.state,
            sig: next.state.sign(&self.key),
            invoice: None,
        }
    }

    /// Sends `p` and waits for the hub's answer; on `Accept` stores the co-signed state.
    pub async fn propose(&self, p: Proposal) -> SessionMsg {
        self.state
            .lock()
            .unwrap()
            .raise(&p.channel_id, p.state.version);
        self.send(&SessionMsg::Propose(p.clone()));
        let reply = self
            .recv_until(|m| matches!(m, SessionMsg::Accept { channel_id, .. } | SessionMsg::Reject { channel_id, .. } if *channel_id == p.channel_id))
            .await;
        if let SessionMsg::Accept { sig, .. } = &reply {
            self.hub.verify_hash(&p.state.signing_hash(), sig).unwrap();
            let st = &mut self.state.lock().unwrap();
            let snap = &st.channels[&p.channel_id];
            let (da, db) = st.deposits[&p.channel_id];
            let ctx = Context {
                deposit_a: da,
                deposit_b: db,
                height: 0,
                policy: st.terms.unwrap().policy,
            };
            let pos = Position {
                state: *snap.state(),
                locks: snap.locks.clone(),
            };
            let next = apply_at(&pos, &p.change, Party::A, &ctx, p.state.version).unwrap();
            st.channels.insert(
                p.channel_id,
                Snapshot {
                    cosigned: CoSigned {
                        state: next.state,
                        sig_a: p.sig,
                        sig_b: *sig,
                    },
                    locks: next.locks,
                },
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

/// Handles what a wallet answers by itself: syncs, the hub's proposals. Returns anything else.
fn auto(
    st: &Mutex<State>,
    key: &Keypair,
    hub: &Address,
    chain_id: ChainId,
    out: &mpsc::UnboundedSender<String>,
    msg: SessionMsg,
) -> Option<SessionMsg> {
    match msg {
        SessionMsg::Sync {
            channel_id,
            snapshot,
            signed,
        } => {
            snapshot
                .verify(chain_id, &channel_id, &key.address(), hub)
                .unwrap();
            let mut st = st.lock().unwrap();
            st.raise(&channel_id, signed);
            st.channels.insert(channel_id, snapshot);
            None
        }
        SessionMsg::Propose(p) => {
            on_hub_proposal(st, key, hub, out, p);
            None
        }
        other => Some(other),
    }
}

fn on_hub_proposal(
    st: &Mutex<State>,
    key: &Keypair,
    hub: &Address,
    out: &mpsc::UnboundedSender<String>,
    p: Proposal,
) {
    let mut st = st.lock().unwrap();
    let snap = st.channels[&p.channel_id].clone();
    let (da, db) = st.deposits[&p.channel_id];
    let ctx = Context {
        deposit_a: da,
        deposit_b: db,
        height: 0,
        policy: st.terms.unwrap().policy,
    };
    let pos = Position {
        state: *snap.state(),
        locks: snap.locks.clone(),
    };
    let floor = st.floor(&p.channel_id);
    let next = check_proposal(&pos, &p.change, &p.state, Party::B, &ctx, floor).unwrap();
    hub.verify_hash(&p.state.signing_hash(), &p.sig).unwrap();
    let version = p.state.version;
    st.raise(&p.channel_id, version);
    let hostile = st.keep_and_reject && matches!(p.change, Change::AddLock { .. } | Change::Bump);
    if hostile {
        if let Change::AddLock { .. } = p.change {
            let sig = p.state.sign(key);
            let cosigned = CoSigned {
                state: next.state,
                sig_a: sig,
                sig_b: p.sig,
            };
            st.kept.push(Snapshot {
                cosigned,
                locks: next.locks.clone(),
            });
        }
    }
    let declined = st.decline && matches!(p.change, Change::AddLock { .. });
    if declined || hostile {
        let msg = SessionMsg::Reject {
            channel_id: p.channel_id,
            version,
            code: wire::hub::ErrorCode::PaymentFailed,
            reason: "no thanks".into(),
            signed: version,
        };
        let _ = out.send(wire::encode(&msg));
        return;
    }
    let sig = p.state.sign(key);
    st.channels.insert(
        p.channel_id,
        Snapshot {
            cosigned: CoSigned {
                state: next.state,
                sig_a: sig,
                sig_b: p.sig,
            },
            locks: next.locks.clone(),
        },
    );
    let _ = out.send(wire::encode(&SessionMsg::Accept {
        channel_id: p.channel_id,
        version,
        sig,
    }));
    // A lock for one of our invoices: claim it with the secret.
    if let Change::AddLock { lock } = p.change {
        if let Some(secret) = st.invoices.get(&lock.hashlock).copied() {
            let change = Change::Unlock { secret };
            let after = Position {
                state: next.state,
                locks: next.locks,
            };
            let un = apply_at(&after, &change, Party::A, &ctx, version + 1).unwrap();
            st.raise(&p.channel_id, version + 1);
            let prop = Proposal {
                channel_id: p.channel_id,
                change,
                state: un.state,
                sig: un.state.sign(key),
                invoice: None,
            };
            // Stored once the hub accepts; for these tests the hub's Accept is trusted.
            st.channels.insert(
                p.channel_id,
                Snapshot {
                    cosigned: CoSigned {
                        state: un.state,
                        sig_a: prop.sig,
                        sig_b: Signature::default(),
                    },
                    locks: un.locks,
                },
            );
            let _ = out.send(wire::encode(&SessionMsg::Propose(prop)));
        }
    }
}
