//! A lean hub client for the benchmark: the session protocol of `sluice_protocol::wire::hub`
//! over a real WebSocket, with the channel kept in memory instead of a wallet's SQLite store.
//!
//! Why: the benchmark measures the hub. A real wallet also fsyncs its own store on every update
//! and asks the chain for deposits and height per update; on a shared two-core machine those
//! costs of 2K wallets would be what the figure measures. This client still does everything a
//! wallet must do to be safe: the channel is driven by the protocol's session machine, the same
//! one the wallet drives (every hub proposal recomputed and its signature checked before we
//! sign, every `Accept` checked, a `Sync` adopted only after full verification, no version ever
//! signed twice); invoices are verified before paying.

use super::follower::ChainView;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use sluice_protocol::invoice::{Invoice, SignedInvoice};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::session::{
    incoming_lock, payer_lock, ChannelSession, InvoiceFacts, Output, Refusal,
};
use sluice_protocol::wire::hub::{ErrorCode, Proposal, SessionMsg, AUTH_ACTION, MAX_SESSION_FRAME};
use sluice_protocol::wire::{self, auth_bytes};
use sluice_protocol::{
    sha256, Address, ChainId, Change, Context, Hash32, Keypair, Party, Signature, Snapshot, Tag,
    UpdateError,
};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Pause before re-proposing after the hub said `Busy`.
const BUSY_PAUSE: Duration = Duration::from_millis(2);
/// Blocks a payee wants left on a lock toward it to claim it.
const UNLOCK_MARGIN: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("hub closed the session")]
    Closed,
    #[error("hub misbehaved: {0}")]
    Misbehaved(String),
    #[error("payment failed: {0}")]
    Payment(String),
    #[error("invoice: {0}")]
    Invoice(#[from] sluice_protocol::invoice::InvoiceError),
    #[error("handshake timed out")]
    Timeout,
}

/// Payments of one client whose outcome somebody waits for, by hashlock.
type Waiters = HashMap<Hash32, oneshot::Sender<Result<Hash32, ClientError>>>;

/// Invoices a payee issued: hashlock → (secret, amount).
type Issued = Arc<Mutex<HashMap<Hash32, (Hash32, u64)>>>;

/// A connected client: pay invoices, issue invoices. Its session runs on its own task.
pub struct LeanClient {
    key: Keypair,
    hub: Address,
    chain_id: ChainId,
    issued: Issued,
    seed: Hash32,
    next_invoice: AtomicU64,
    cmds: mpsc::Sender<(String, oneshot::Sender<Result<Hash32, ClientError>>)>,
    /// `Busy` answers the hub gave this client's proposals.
    pub busy: Arc<AtomicU64>,
}

impl LeanClient {
    /// Logs in at `ws_url` as `key`, expects `channel` among the hub's, and starts the session.
    pub async fn connect(
        ws_url: &str,
        key: Keypair,
        hub: Address,
        channel: Hash32,
        view: ChainView,
    ) -> Result<LeanClient, ClientError> {
        let (ws, chain_id, terms, channels) = login(ws_url, &key, hub).await?;
        if !channels.contains(&channel) {
            return Err(ClientError::Misbehaved(format!(
                "the hub's Welcome lacks our channel {channel}"
            )));
        }
        let me = key.address();
        let (sink, stream) = ws.split();
        let issued: Issued = Arc::default();
        let busy = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel(64);
        let session = Session {
            me,
            channel,
            terms,
            machine: ChannelSession::new(
                Party::A,
                key.clone(),
                hub,
                Snapshot::opening(chain_id, channel),
                Default::default(),
            ),
            view,
            sink,
            mine: None,
            queue: VecDeque::new(),
            waiting: HashMap::new(),
            issued: issued.clone(),
            paused_until: None,
            busy: busy.clone(),
        };
        tokio::spawn(session.run(stream, rx));
        Ok(LeanClient {
            seed: sha256(&Keypair::generate().secret_bytes()),
            key,
            hub,
            chain_id,
            issued,
            next_invoice: AtomicU64::new(0),
            cmds: tx,
            busy,
        })
    }

    /// Issues a signed invoice for `amount` and remembers its secret; returns the invoice
    /// string and its hashlock.
    pub fn invoice(&self, amount: u64) -> Result<(String, Hash32), ClientError> {
        let n = self.next_invoice.fetch_add(1, Ordering::Relaxed);
        let mut pre = self.seed.0.to_vec();
        pre.extend_from_slice(&n.to_be_bytes());
        let secret = sha256(&pre);
        let hashlock = sha256(&secret.0);
        let expires_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + 600;
        let inv = Invoice {
            chain_id: self.chain_id,
            hub: self.hub,
            payee: self.key.address(),
            amount,
            hashlock,
            expires_at,
            memo: String::new(),
        }
        .sign(&self.key)?;
        lock(&self.issued).insert(hashlock, (secret, amount));
        Ok((inv.encode_string()?, hashlock))
    }

    /// Pays `invoice`; returns the secret (the proof of payment) once the hub unlocked our lock.
    pub async fn pay(&self, invoice: String) -> Result<Hash32, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send((invoice, tx))
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens a session and logs in as `key`: the hub's challenge signed, its welcome read. Returns
/// the socket, the chain, the hub's terms and the channels the hub knows of ours.
pub async fn login(
    ws_url: &str,
    key: &Keypair,
    hub: Address,
) -> Result<(Ws, ChainId, RoutingTerms, Vec<Hash32>), ClientError> {
    // Nagle off, as in the wallet: a session is small frames that each wait for an answer.
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(ws_url, None, true).await?;
    let (chain_id, nonce) = match recv(&mut ws).await? {
        SessionMsg::Challenge {
            chain_id,
            hub: h,
            nonce,
        } if h == hub => (chain_id, nonce),
        other => return Err(misbehaved("expected the hub's Challenge", &other)),
    };
    let me = key.address();
    let bytes = auth_bytes(chain_id, &hub, AUTH_ACTION, &nonce, &me, &Hash32::default());
    let auth = SessionMsg::Auth {
        address: me,
        sig: key.sign(Tag::Auth, &bytes),
        challenge: Hash32::default(),
    };
    send(&mut ws, &auth).await?;
    match recv(&mut ws).await? {
        SessionMsg::Welcome {
            channels, terms, ..
        } => Ok((ws, chain_id, terms, channels)),
        other => Err(misbehaved("expected Welcome", &other)),
    }
}

fn misbehaved(what: &str, got: &SessionMsg) -> ClientError {
    ClientError::Misbehaved(format!("{what}, got {got:?}"))
}

async fn send<S>(ws: &mut S, msg: &SessionMsg) -> Result<(), ClientError>
where
    S: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    Ok(ws.send(Message::text(wire::encode(msg))).await?)
}

async fn recv(ws: &mut Ws) -> Result<SessionMsg, ClientError> {
    tokio::time::timeout(Duration::from_secs(10), next(ws))
        .await
        .map_err(|_| ClientError::Timeout)?
}

/// The next session message; transport pings are skipped.
async fn next<S>(ws: &mut S) -> Result<SessionMsg, ClientError>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = ws.next().await.ok_or(ClientError::Closed)??;
        let bytes = match &msg {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => &b[..],
            Message::Close(_) => return Err(ClientError::Closed),
            _ => continue,
        };
        return wire::decode::<SessionMsg>(bytes, MAX_SESSION_FRAME)
            .map_err(|e| ClientError::Misbehaved(format!("bad frame: {e}")));
    }
}

/// An update this client wants to propose.
enum Work {
    Pay { invoice: SignedInvoice, raw: String },
    Unlock { secret: Hash32 },
}

struct Session {
    me: Address,
    channel: Hash32,
    terms: RoutingTerms,
    /// The channel's session machine; its latest co-signed snapshot is this client's one
    /// source of truth (kept in memory: the benchmark measures the hub).
    machine: ChannelSession,
    view: ChainView,
    sink: SplitSink<Ws, Message>,
    /// What our proposal in flight is for.
    mine: Option<Work>,
    queue: VecDeque<Work>,
    waiting: Waiters,
    issued: Issued,
    paused_until: Option<Instant>,
    busy: Arc<AtomicU64>,
}

type Cmd = (String, oneshot::Sender<Result<Hash32, ClientError>>);

impl Session {
    async fn run(mut self, mut stream: SplitStream<Ws>, mut cmds: mpsc::Receiver<Cmd>) {
        let err = loop {
            let pause = self.paused_until;
            let step = tokio::select! {
                m = next(&mut stream) => match m {
                    Ok(m) => self.on_msg(m).await,
                    Err(e) => Err(e),
                },
                c = cmds.recv() => match c {
                    Some((raw, reply)) => { self.on_pay(raw, reply); Ok(()) }
                    None => break ClientError::Closed,
                },
                _ = tokio::time::sleep_until(pause.unwrap_or_else(Instant::now)), if pause.is_some() => {
                    self.paused_until = None;
                    Ok(())
                }
            };
            if let Err(e) = step {
                break e;
            }
            if let Err(e) = self.drain().await {
                break e;
            }
        };
        for (_, w) in self.waiting.drain() {
            let _ = w.send(Err(ClientError::Misbehaved(err.to_string())));
        }
    }

    fn on_pay(&mut self, raw: String, reply: oneshot::Sender<Result<Hash32, ClientError>>) {
        match SignedInvoice::parse(&raw) {
            Ok(invoice) => {
                self.waiting.insert(invoice.invoice.hashlock, reply);
                self.queue.push_back(Work::Pay { invoice, raw });
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    fn context(&self) -> Context {
        let (deposit_a, deposit_b) = self.view.deposits(&self.channel);
        Context {
            deposit_a,
            deposit_b,
            height: self.view.height(),
            policy: self.terms.policy,
        }
    }

    /// Proposes the next queued update if the channel is free.
    async fn drain(&mut self) -> Result<(), ClientError> {
        if self.mine.is_some() || self.paused_until.is_some() {
            return Ok(());
        }
        let Some(work) = self.queue.pop_front() else {
            return Ok(());
        };
        let ctx = self.context();
        let (change, invoice) = match &work {
            Work::Pay { invoice, raw } => {
                let inv = &invoice.invoice;
                let lock = payer_lock(&self.terms, inv.amount, inv.hashlock, ctx.height)
                    .map_err(|e| ClientError::Payment(e.to_string()))?;
                (Change::AddLock { lock }, Some(raw.clone()))
            }
            Work::Unlock { secret } => (Change::Unlock { secret: *secret }, None),
        };
        let outputs = match self.machine.propose(change, &ctx, invoice) {
            Ok(outputs) => outputs,
            Err(e) => {
                self.give_up(&work, &format!("cannot apply our own update: {e}"));
                return Ok(());
            }
        };
        self.mine = Some(work);
        self.execute(outputs).await
    }

    /// The machine's outputs in order; persisting is a no-op (the state lives in memory).
    async fn execute(&mut self, outputs: Vec<Output>) -> Result<(), ClientError> {
        for out in outputs {
            if let Output::Send(msg) = out {
                send(&mut self.sink, &msg).await?;
            }
        }
        Ok(())
    }

    fn give_up(&mut self, work: &Work, reason: &str) {
        if let Work::Pay { invoice, .. } = work {
            self.finish(&invoice.invoice.hashlock, Err(reason.to_string()));
        }
    }

    fn finish(&mut self, hashlock: &Hash32, outcome: Result<Hash32, String>) {
        if let Some(w) = self.waiting.remove(hashlock) {
            let _ = w.send(outcome.map_err(ClientError::Payment));
        }
    }

    async fn on_msg(&mut self, msg: SessionMsg) -> Result<(), ClientError> {
        match msg {
            SessionMsg::Propose(p) => self.on_propose(p).await,
            SessionMsg::Accept {
                channel_id,
                version,
                sig,
            } if channel_id == self.channel => self.on_accept(version, sig),
            SessionMsg::Reject {
                channel_id,
                version,
                code,
                reason,
                signed,
            } if channel_id == self.channel => {
                self.on_reject(version, (code, reason), signed);
                Ok(())
            }
            SessionMsg::Sync {
                channel_id,
                snapshot,
                signed,
            } if channel_id == self.channel => self.on_sync(snapshot, signed),
            SessionMsg::Payment {
                hashlock,
                status: sluice_protocol::wire::hub::PaymentStatus::Failed,
                reason,
            } => {
                let reason = reason.unwrap_or_else(|| "failed at the hub".into());
                self.finish(&hashlock, Err(reason));
                Ok(())
            }
            SessionMsg::Ping { nonce } => send(&mut self.sink, &SessionMsg::Pong { nonce }).await,
            SessionMsg::Error { code, message } => {
                eprintln!("hub reported an error to {}: {code:?} {message}", self.me);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The hub's signature on our proposal: verified by the machine, then the co-signed state
    /// is ours.
    fn on_accept(&mut self, version: u64, sig: Signature) -> Result<(), ClientError> {
        self.machine
            .on_accept(version, sig)
            .map_err(|e| ClientError::Misbehaved(format!("hub's Accept of {version}: {e}")))?;
        if let Some(Work::Unlock { secret }) = self.mine.take() {
            lock(&self.issued).remove(&sha256(&secret.0));
        }
        Ok(())
    }

    fn on_reject(&mut self, version: u64, (code, reason): (ErrorCode, String), signed: u64) {
        if self.machine.on_reject(version, signed).is_err() {
            return;
        }
        let Some(work) = self.mine.take() else {
            return;
        };
        if code == ErrorCode::Busy {
            self.busy.fetch_add(1, Ordering::Relaxed);
            self.paused_until = Some(Instant::now() + BUSY_PAUSE);
            self.queue.push_front(work);
        } else {
            self.give_up(&work, &format!("{code:?}: {reason}"));
        }
    }

    /// The hub's latest co-signed state: the machine adopts it only if newer and signed by both.
    fn on_sync(&mut self, snap: Snapshot, signed: u64) -> Result<(), ClientError> {
        let synced = self
            .machine
            .on_sync(&snap, signed)
            .map_err(|e| ClientError::Misbehaved(format!("sync snapshot: {e}")))?;
        if let Some(work) = synced.resolved.and(self.mine.take()) {
            self.queue.push_front(work);
        }
        Ok(())
    }

    async fn on_propose(&mut self, p: Proposal) -> Result<(), ClientError> {
        let version = p.state.version;
        let checked = match self.vet(&p).await {
            Ok(checked) => checked,
            Err(why) => {
                let out = self.machine.refuse(version, &why);
                return self.execute(vec![out]).await;
            }
        };
        // The hub's proposal won a crossing with ours: ours goes again afterwards.
        if self.machine.in_flight().is_none() {
            if let Some(work) = self.mine.take() {
                self.queue.push_front(work);
            }
        }
        let outputs = self
            .machine
            .accept(checked)
            .map_err(|e| ClientError::Misbehaved(format!("accept: {e}")))?;
        self.execute(outputs).await?;
        match p.change {
            Change::AddLock { lock } => {
                if let Some((secret, _)) = lock_get(&self.issued, &lock.hashlock) {
                    self.queue.push_front(Work::Unlock { secret });
                }
            }
            Change::Unlock { secret } => self.finish(&sha256(&secret.0), Ok(secret)),
            Change::RemoveLock { hashlock } => {
                self.finish(&hashlock, Err("the hub removed our lock".into()))
            }
            Change::Finalize | Change::Bump | Change::Withdraw { .. } => {}
        }
        Ok(())
    }

    /// The machine's checks on our latest state, then our policy on incoming locks.
    async fn vet(&mut self, p: &Proposal) -> Result<sluice_protocol::session::Checked, Refusal> {
        let mut ctx = self.context();
        let mut checked = self.machine.on_proposal(p, &ctx);
        if let Err(Refusal::Update(UpdateError::State(_))) = checked {
            // Deposits only grow while a channel is open: a balance that looks short may be a
            // top-up we have not seen yet.
            self.view.refresh(&self.channel).await;
            ctx = self.context();
            checked = self.machine.on_proposal(p, &ctx);
        }
        let checked = checked?;
        if let Change::AddLock { lock } = &p.change {
            let facts = lock_get(&self.issued, &lock.hashlock).map(|(_, amount)| InvoiceFacts {
                amount,
                paid: false,
            });
            incoming_lock(lock, facts, ctx.height, UNLOCK_MARGIN)?;
        }
        Ok(checked)
    }
}

fn lock_get(issued: &Issued, hashlock: &Hash32) -> Option<(Hash32, u64)> {
    lock(issued).get(hashlock).copied()
}
