//! A lean hub client for the benchmark: the session protocol of `sluice_protocol::wire::hub`
//! over a real WebSocket, with the channel kept in memory instead of a wallet's SQLite store.
//!
//! Why: the benchmark measures the hub. A real wallet also fsyncs its own store on every update
//! and asks the chain for deposits and height per update; on a shared two-core machine those
//! costs of 2K wallets would be what the figure measures. This client still does everything a
//! wallet must do to be safe: every hub proposal is recomputed with `check_proposal` and the
//! hub's signature checked before we sign; every `Accept` is checked against the hub's key;
//! invoices are verified before paying; a `Sync` is adopted only after full verification.

use super::follower::ChainView;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use sluice_protocol::invoice::{Invoice, SignedInvoice};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::wire::hub::{ErrorCode, Proposal, SessionMsg, AUTH_ACTION, MAX_SESSION_FRAME};
use sluice_protocol::wire::{self, auth_bytes};
use sluice_protocol::{
    apply, check_proposal, sha256, Address, ChainId, Change, CoSigned, Context, Direction, Hash32,
    Keypair, Lock, Party, Position, Signature, Snapshot, Tag, UpdateError,
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

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Blocks below the policy's longest expiry that a payer leaves, so that a hub one block
/// behind our view of the chain still accepts the lock (the wallet does the same).
const EXPIRY_SLACK: u64 = 5;
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
        let sig = key.sign(Tag::Auth, &bytes);
        send(&mut ws, &SessionMsg::Auth { address: me, sig }).await?;
        let terms = match recv(&mut ws).await? {
            SessionMsg::Welcome { channels, terms } if channels.contains(&channel) => terms,
            other => return Err(misbehaved("expected Welcome with our channel", &other)),
        };
        let (sink, stream) = ws.split();
        let issued: Issued = Arc::default();
        let busy = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel(64);
        let session = Session {
            key: key.clone(),
            me,
            hub,
            chain_id,
            channel,
            terms,
            snap: Snapshot::opening(chain_id, channel),
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
        Ok((inv.encode_string(), hashlock))
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

/// Our proposal in flight.
struct Mine {
    work: Work,
    next: Position,
    sig: Signature,
}

struct Session {
    key: Keypair,
    me: Address,
    hub: Address,
    chain_id: ChainId,
    channel: Hash32,
    terms: RoutingTerms,
    /// The latest co-signed snapshot: the one source of truth of this client.
    snap: Snapshot,
    view: ChainView,
    sink: SplitSink<Ws, Message>,
    mine: Option<Mine>,
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

    fn position(&self) -> Position {
        Position {
            state: *self.snap.state(),
            locks: self.snap.locks.clone(),
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
                let floor =
                    ctx.height + self.terms.policy.min_expiry_delta + self.terms.reveal_margin + 1;
                let lock = Lock {
                    direction: Direction::AtoB,
                    amount: self
                        .terms
                        .incoming_amount(inv.amount)
                        .map_err(|e| ClientError::Payment(e.to_string()))?,
                    hashlock: inv.hashlock,
                    expiry: (self.terms.incoming_expiry(ctx.height) - EXPIRY_SLACK).max(floor),
                };
                (Change::AddLock { lock }, Some(raw.clone()))
            }
            Work::Unlock { secret } => (Change::Unlock { secret: *secret }, None),
        };
        let next = match apply(&self.position(), &change, Party::A, &ctx) {
            Ok(next) => next,
            Err(e) => {
                self.give_up(&work, &format!("cannot apply our own update: {e}"));
                return Ok(());
            }
        };
        let sig = next.state.sign(&self.key);
        let p = Proposal {
            channel_id: self.channel,
            change,
            state: next.state,
            sig,
            invoice,
        };
        send(&mut self.sink, &SessionMsg::Propose(p)).await?;
        self.mine = Some(Mine { work, next, sig });
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
            } if channel_id == self.channel => {
                self.on_reject(version, code, reason);
                Ok(())
            }
            SessionMsg::Sync {
                channel_id,
                snapshot,
            } if channel_id == self.channel => self.on_sync(snapshot),
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

    /// The hub's signature on our proposal: verified, then the co-signed state is ours.
    fn on_accept(&mut self, version: u64, sig: Signature) -> Result<(), ClientError> {
        let Some(mine) = self.mine.take() else {
            return Err(ClientError::Misbehaved(format!(
                "Accept of {version} for nothing"
            )));
        };
        if mine.next.state.version != version {
            return Err(ClientError::Misbehaved(format!(
                "Accept of {version}, proposed {}",
                mine.next.state.version
            )));
        }
        self.hub
            .verify_hash(&mine.next.state.signing_hash(), &sig)
            .map_err(|e| ClientError::Misbehaved(format!("hub's Accept signature: {e}")))?;
        self.snap = Snapshot {
            cosigned: CoSigned {
                state: mine.next.state,
                sig_a: mine.sig,
                sig_b: sig,
            },
            locks: mine.next.locks,
        };
        if let Work::Unlock { secret } = mine.work {
            lock(&self.issued).remove(&sha256(&secret.0));
        }
        Ok(())
    }

    fn on_reject(&mut self, version: u64, code: ErrorCode, reason: String) {
        let Some(mine) = self.mine.take_if(|m| m.next.state.version == version) else {
            return;
        };
        if code == ErrorCode::Busy {
            self.busy.fetch_add(1, Ordering::Relaxed);
            self.paused_until = Some(Instant::now() + BUSY_PAUSE);
            self.queue.push_front(mine.work);
        } else {
            self.give_up(&mine.work, &format!("{code:?}: {reason}"));
        }
    }

    /// The hub's latest co-signed state: adopted only if newer and signed by both of us.
    fn on_sync(&mut self, snap: Snapshot) -> Result<(), ClientError> {
        if snap.state().version <= self.snap.state().version {
            return Ok(());
        }
        snap.verify(self.chain_id, &self.channel, &self.me, &self.hub)
            .map_err(|e| ClientError::Misbehaved(format!("sync snapshot: {e}")))?;
        self.snap = snap;
        Ok(())
    }

    async fn on_propose(&mut self, p: Proposal) -> Result<(), ClientError> {
        let version = p.state.version;
        if let Some(mine) = self.mine.take() {
            if mine.next.state.version == version && p.channel_id == self.channel {
                // Same version at once: the hub's proposal wins; ours goes again afterwards.
                self.queue.push_front(mine.work);
            } else {
                self.mine = Some(mine);
                return self
                    .reject(p.channel_id, version, ErrorCode::Busy, "update in flight")
                    .await;
            }
        }
        if p.channel_id != self.channel {
            return self
                .reject(
                    p.channel_id,
                    version,
                    ErrorCode::UnknownChannel,
                    "not our channel",
                )
                .await;
        }
        let next = match self.vet(&p).await {
            Ok(next) => next,
            Err((code, why)) => return self.reject(p.channel_id, version, code, &why).await,
        };
        let sig = next.state.sign(&self.key);
        self.snap = Snapshot {
            cosigned: CoSigned {
                state: next.state,
                sig_a: sig,
                sig_b: p.sig,
            },
            locks: next.locks,
        };
        let accept = SessionMsg::Accept {
            channel_id: self.channel,
            version,
            sig,
        };
        send(&mut self.sink, &accept).await?;
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
            Change::Finalize => {}
        }
        Ok(())
    }

    /// `check_proposal` on our latest state, the hub's signature, then our policy.
    async fn vet(&mut self, p: &Proposal) -> Result<Position, (ErrorCode, String)> {
        let mut ctx = self.context();
        let mut checked = check_proposal(&self.position(), &p.change, &p.state, Party::B, &ctx);
        if let Err(UpdateError::State(_)) = checked {
            // Deposits only grow while a channel is open: a balance that looks short may be a
            // top-up we have not seen yet.
            self.view.refresh(&self.channel).await;
            ctx = self.context();
            checked = check_proposal(&self.position(), &p.change, &p.state, Party::B, &ctx);
        }
        let next = checked.map_err(|e| (ErrorCode::InvalidUpdate, e.to_string()))?;
        self.hub
            .verify_hash(&p.state.signing_hash(), &p.sig)
            .map_err(|e| (ErrorCode::BadSignature, format!("hub signature: {e}")))?;
        if let Change::AddLock { lock } = &p.change {
            let Some((_, amount)) = lock_get(&self.issued, &lock.hashlock) else {
                return Err((
                    ErrorCode::PaymentFailed,
                    "no invoice of ours has this hashlock".into(),
                ));
            };
            if lock.amount < amount {
                return Err((
                    ErrorCode::PaymentFailed,
                    "lock below the invoice amount".into(),
                ));
            }
            if lock.expiry <= ctx.height.saturating_add(UNLOCK_MARGIN) {
                return Err((
                    ErrorCode::PaymentFailed,
                    "lock expires too soon to claim".into(),
                ));
            }
        }
        Ok(next)
    }

    async fn reject(
        &mut self,
        channel_id: Hash32,
        version: u64,
        code: ErrorCode,
        reason: &str,
    ) -> Result<(), ClientError> {
        let msg = SessionMsg::Reject {
            channel_id,
            version,
            code,
            reason: reason.to_string(),
        };
        send(&mut self.sink, &msg).await
    }
}

fn lock_get(issued: &Issued, hashlock: &Hash32) -> Option<(Hash32, u64)> {
    lock(issued).get(hashlock).copied()
}
