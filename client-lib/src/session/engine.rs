//! One connected hub session: resync, then the update protocol. Every state the hub proposes is
//! recomputed with `check_proposal` and its signature checked; nothing is signed or accepted
//! before it is committed to the store.

use super::command::UpdateCmd;
use super::connect::{next, send, Ws};
use super::effects;
use super::vet;
use crate::core::Core;
use crate::error::{Result, WalletError};
use crate::store::{ChannelRow, ChannelStatus, Effect, PaymentDirection};
use futures::stream::{SplitSink, StreamExt};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::wire::hub::{ErrorCode, PaymentStatus, Proposal, SessionMsg};
use sluice_protocol::{apply, CoSigned, Direction, Hash32, Party, Position, Signature, Snapshot};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

type Sink = SplitSink<Ws, Message>;

/// How often background work (unlocks, expired locks, keepalive) runs.
const TICK: Duration = Duration::from_millis(300);
/// Keepalive ping interval and the silence after which the hub counts as gone.
const PING_EVERY: Duration = Duration::from_secs(10);
const SILENCE_LIMIT: Duration = Duration::from_secs(30);
/// How long one of our updates may wait for the hub's answer before the session starts over.
const ANSWER_LIMIT: Duration = Duration::from_secs(15);
/// Pause before re-proposing after the hub answered `Busy`.
const BUSY_PAUSE: Duration = Duration::from_millis(100);
/// Most commands waiting for their channel to be free.
const MAX_QUEUE: usize = 256;

struct Pending {
    cmd: UpdateCmd,
    before: Position,
    next: Position,
    sig: Signature,
    sent: Instant,
}

pub(crate) struct Engine<'a> {
    core: &'a Core,
    sink: Sink,
    terms: RoutingTerms,
    /// Channels the hub announced and whose `Sync` has not arrived yet: no updates until then.
    unsynced: HashSet<Hash32>,
    pending: HashMap<Hash32, Pending>,
    queue: VecDeque<UpdateCmd>,
    paused: HashMap<Hash32, Instant>,
    ping: u64,
}

impl<'a> Engine<'a> {
    /// Runs the session until it fails; returns why. Replies to every waiting command.
    pub async fn run(
        core: &'a Core,
        ws: Ws,
        announced: Vec<Hash32>,
        terms: RoutingTerms,
        cmds: &mut mpsc::Receiver<UpdateCmd>,
    ) -> WalletError {
        let (sink, mut stream) = ws.split();
        let mut engine = Engine {
            core,
            sink,
            terms,
            unsynced: announced.into_iter().collect(),
            pending: HashMap::new(),
            queue: VecDeque::new(),
            paused: HashMap::new(),
            ping: 0,
        };
        let err = match engine.start().await {
            Ok(()) => engine.event_loop(&mut stream, cmds).await,
            Err(e) => e,
        };
        engine.abandon();
        err
    }

    async fn event_loop(
        &mut self,
        stream: &mut futures::stream::SplitStream<Ws>,
        cmds: &mut mpsc::Receiver<UpdateCmd>,
    ) -> WalletError {
        let mut tick = tokio::time::interval(TICK);
        let (mut last_seen, mut last_ping) = (Instant::now(), Instant::now());
        loop {
            let step = tokio::select! {
                msg = next(stream) => match msg {
                    Ok(msg) => { last_seen = Instant::now(); self.on_msg(msg).await }
                    Err(e) => Err(e),
                },
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => { self.enqueue(cmd); Ok(()) }
                    None => Err(WalletError::Shutdown),
                },
                _ = tick.tick() => self.on_tick(&mut last_ping, last_seen).await,
            };
            if let Err(e) = step {
                return e;
            }
            if let Err(e) = self.drain().await {
                return e;
            }
        }
    }

    /// Resync: send our latest snapshot of every live channel; reconcile channels the hub
    /// does not know (it will not send a `Sync` for them).
    async fn start(&mut self) -> Result<()> {
        for ch in self.core.store.channels().await? {
            if !matches!(ch.status, ChannelStatus::Open | ChannelStatus::Final) {
                continue;
            }
            let msg = SessionMsg::Sync {
                channel_id: ch.id,
                snapshot: ch.snapshot.clone(),
            };
            send(&mut self.sink, &msg).await?;
            if !self.unsynced.contains(&ch.id) {
                self.reconcile(&ch).await?;
            }
        }
        Ok(())
    }

    fn enqueue(&mut self, cmd: UpdateCmd) {
        if self.queue.len() >= MAX_QUEUE {
            cmd.answer(Err(WalletError::Timeout(
                "a free slot in the update queue".into(),
            )));
        } else {
            self.queue.push_back(cmd);
        }
    }

    /// Answers every waiting command: the session is gone.
    fn abandon(&mut self) {
        for (_, p) in self.pending.drain() {
            p.cmd.answer(Err(WalletError::NotConnected));
        }
        for cmd in self.queue.drain(..) {
            cmd.answer(Err(WalletError::NotConnected));
        }
    }

    fn busy(&self, id: &Hash32) -> bool {
        self.pending.contains_key(id)
            || self.unsynced.contains(id)
            || self.paused.get(id).is_some_and(|t| *t > Instant::now())
    }

    /// Proposes every queued command whose channel is free.
    async fn drain(&mut self) -> Result<()> {
        let mut deferred = VecDeque::new();
        while let Some(cmd) = self.queue.pop_front() {
            if self.busy(&cmd.channel_id) {
                deferred.push_back(cmd);
            } else {
                self.propose(cmd).await?;
            }
        }
        self.queue = deferred;
        Ok(())
    }

    async fn propose(&mut self, cmd: UpdateCmd) -> Result<()> {
        let core = self.core;
        let ch = match core.store.channel(&cmd.channel_id).await {
            Ok(Some(ch)) if ch.status == ChannelStatus::Open => ch,
            Ok(Some(ch)) => {
                let err = WalletError::ChannelState {
                    id: ch.id,
                    status: ch.status.to_string(),
                    what: "an update",
                };
                cmd.answer(Err(err));
                return Ok(());
            }
            Ok(None) => {
                let id = cmd.channel_id.to_string();
                cmd.answer(Err(WalletError::UnknownChannel(id)));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let before = ch.position();
        let next = match crate::chain::context(&core.chain, &ch.id, self.terms.policy).await {
            Ok(ctx) => apply(&before, &cmd.change, Party::A, &ctx).map_err(WalletError::from),
            Err(e) => Err(e),
        };
        let next = match next {
            Ok(next) => next,
            Err(e) => {
                cmd.answer(Err(e));
                return Ok(());
            }
        };
        if let Some(row) = &cmd.payment {
            core.store.insert_payment(row).await?;
        }
        let sig = next.state.sign(&core.key);
        let proposal = Proposal {
            channel_id: ch.id,
            change: cmd.change.clone(),
            state: next.state,
            sig,
            invoice: cmd.invoice.clone(),
        };
        tracing::debug!(channel = %ch.id, version = next.state.version, "proposing");
        send(&mut self.sink, &SessionMsg::Propose(proposal)).await?;
        let pending = Pending {
            cmd,
            before,
            next,
            sig,
            sent: Instant::now(),
        };
        self.pending.insert(ch.id, pending);
        Ok(())
    }

    async fn on_msg(&mut self, msg: SessionMsg) -> Result<()> {
        match msg {
            SessionMsg::Sync {
                channel_id,
                snapshot,
            } => self.on_sync(channel_id, snapshot).await,
            SessionMsg::Propose(p) => self.on_propose(p).await,
            SessionMsg::Accept {
                channel_id,
                version,
                sig,
            } => self.on_accept(channel_id, version, sig).await,
            SessionMsg::Reject {
                channel_id,
                version,
                code,
                reason,
            } => self.on_reject(channel_id, version, code, reason).await,
            SessionMsg::Payment {
                hashlock,
                status: PaymentStatus::Failed,
                reason,
            } => {
                let reason = reason.unwrap_or_else(|| "failed at the hub".into());
                self.core
                    .store
                    .note_payment_reason(&hashlock, &reason)
                    .await
            }
            SessionMsg::Ping { nonce } => send(&mut self.sink, &SessionMsg::Pong { nonce }).await,
            SessionMsg::Error { code, message } => {
                tracing::warn!(?code, %message, "hub reported an error");
                Ok(())
            }
            SessionMsg::Payment { .. } | SessionMsg::Pong { .. } => Ok(()),
            other => {
                tracing::warn!(?other, "unexpected message from the hub; ignored");
                Ok(())
            }
        }
    }

    /// The hub's latest co-signed snapshot: adopted (stored first) only if it verifies against
    /// the channel's parties and is newer than ours.
    async fn on_sync(&mut self, id: Hash32, snapshot: Snapshot) -> Result<()> {
        self.unsynced.remove(&id);
        let core = self.core;
        let Some(ch) = core.store.channel(&id).await? else {
            tracing::warn!(channel = %id, "hub synced a channel this wallet does not know");
            return Ok(());
        };
        if let Err(e) = snapshot.verify(core.chain_id, &id, &core.me(), &ch.hub) {
            tracing::warn!(channel = %id, error = %e, "hub sent an invalid Sync; not adopted");
            return Ok(());
        }
        if snapshot.state().version > ch.snapshot.state().version {
            let (effects, events) = vet::adoption_effects(core, &ch, &snapshot).await?;
            core.store
                .commit_update(&core.me(), &ch.hub, &ch.salt, &snapshot, &effects)
                .await?;
            tracing::info!(channel = %id, version = snapshot.state().version, "adopted the hub's newer state");
            events.into_iter().for_each(|e| core.emit(e));
        }
        let ch = core.store.require_channel(&id).await?;
        self.reconcile(&ch).await
    }

    /// Fails pending payments whose lock is not in the latest co-signed state: they were never
    /// delivered (or were removed) and their funds are not locked.
    async fn reconcile(&mut self, ch: &ChannelRow) -> Result<()> {
        for p in self.core.store.pending_payments(&ch.id).await? {
            if ch.snapshot.locks.iter().any(|l| l.hashlock == p.hashlock) {
                continue;
            }
            let reason = p.reason.clone().unwrap_or_else(|| "not delivered".into());
            self.core
                .store
                .fail_payment(&p.hashlock, p.direction, &reason)
                .await?;
            self.core.emit(crate::events::WalletEvent::PaymentFailed {
                hashlock: p.hashlock,
                reason,
            });
        }
        Ok(())
    }

    async fn on_propose(&mut self, p: Proposal) -> Result<()> {
        let id = p.channel_id;
        let version = p.state.version;
        if let Some(mine) = self.pending.get(&id) {
            if mine.next.state.version != version {
                return self
                    .reject(id, version, ErrorCode::Busy, "update in flight")
                    .await;
            }
            // Same version at once: the hub's proposal wins; ours is re-proposed afterwards.
            if let Some(mine) = self.pending.remove(&id) {
                self.queue.push_front(mine.cmd);
            }
        }
        let core = self.core;
        let ch = match core.store.channel(&id).await? {
            Some(ch) if ch.status == ChannelStatus::Open => ch,
            _ => {
                let code = ErrorCode::UnknownChannel;
                return self.reject(id, version, code, "no open channel").await;
            }
        };
        let before = ch.position();
        let next = match vet::hub_proposal(core, &ch, &p, &self.terms).await {
            Ok(next) => next,
            Err((code, reason)) => {
                tracing::warn!(channel = %id, %reason, "refused the hub's proposal");
                return self.reject(id, version, code, &reason).await;
            }
        };
        let sig = next.state.sign(&core.key);
        let snapshot = Snapshot {
            cosigned: CoSigned {
                state: next.state,
                sig_a: sig,
                sig_b: p.sig,
            },
            locks: next.locks.clone(),
        };
        let reason = vet::removal_reason(core, &p.change).await?;
        let (effects, events) = effects::of_change(&before, &p.change, reason);
        self.commit(&ch, &snapshot, &effects).await?;
        let accept = SessionMsg::Accept {
            channel_id: id,
            version,
            sig,
        };
        send(&mut self.sink, &accept).await?;
        tracing::debug!(channel = %id, version, "accepted the hub's proposal");
        events.into_iter().for_each(|e| core.emit(e));
        self.follow_up(&ch, &p.change).await
    }

    /// After accepting the hub's lock toward us, take the payment at once with our secret.
    async fn follow_up(&mut self, ch: &ChannelRow, change: &sluice_protocol::Change) -> Result<()> {
        if let sluice_protocol::Change::AddLock { lock } = change {
            if lock.direction == Direction::BtoA {
                if let Some(inv) = self.core.store.invoice(&lock.hashlock).await? {
                    let unlock = sluice_protocol::Change::Unlock { secret: inv.secret };
                    self.queue.push_back(UpdateCmd::background(ch.id, unlock));
                }
            }
        }
        Ok(())
    }

    async fn commit(&self, ch: &ChannelRow, snap: &Snapshot, effects: &[Effect]) -> Result<()> {
        let core = self.core;
        let stored = core
            .store
            .commit_update(&core.me(), &ch.hub, &ch.salt, snap, effects)
            .await?;
        match stored {
            true => Ok(()),
            false => Err(WalletError::Corrupt(format!(
                "channel {} moved while an update was in flight",
                ch.id
            ))),
        }
    }

    async fn reject(
        &mut self,
        id: Hash32,
        version: u64,
        code: ErrorCode,
        reason: &str,
    ) -> Result<()> {
        let msg = SessionMsg::Reject {
            channel_id: id,
            version,
            code,
            reason: reason.to_string(),
        };
        send(&mut self.sink, &msg).await
    }

    async fn on_accept(&mut self, id: Hash32, version: u64, sig: Signature) -> Result<()> {
        let Some(p) = self.pending.remove(&id) else {
            tracing::warn!(channel = %id, version, "Accept for nothing in flight; ignored");
            return Ok(());
        };
        let state = p.next.state;
        let bad = if version != state.version {
            Some(format!(
                "accepted version {version}, proposed {}",
                state.version
            ))
        } else if let Err(e) = self.core.hub().verify_hash(&state.signing_hash(), &sig) {
            Some(format!(
                "hub's signature on version {version} is invalid: {e}"
            ))
        } else {
            None
        };
        if let Some(reason) = bad {
            tracing::warn!(channel = %id, %reason, "hub misbehaved; state not stored");
            p.cmd.answer(Err(WalletError::HubMisbehaved(reason)));
            return Ok(());
        }
        let ch = self.core.store.require_channel(&id).await?;
        let snapshot = Snapshot {
            cosigned: CoSigned {
                state,
                sig_a: p.sig,
                sig_b: sig,
            },
            locks: p.next.locks.clone(),
        };
        let (effects, events) = effects::of_change(&p.before, &p.cmd.change, None);
        self.commit(&ch, &snapshot, &effects).await?;
        events.into_iter().for_each(|e| self.core.emit(e));
        p.cmd.answer(Ok(snapshot));
        Ok(())
    }

    async fn on_reject(
        &mut self,
        id: Hash32,
        version: u64,
        code: ErrorCode,
        reason: String,
    ) -> Result<()> {
        let Some(p) = self.pending.remove(&id) else {
            return Ok(());
        };
        if p.next.state.version != version {
            self.pending.insert(id, p);
            return Ok(());
        }
        if code == ErrorCode::Busy {
            self.paused.insert(id, Instant::now() + BUSY_PAUSE);
            self.queue.push_front(p.cmd);
            return Ok(());
        }
        if let Some(row) = &p.cmd.payment {
            let store = &self.core.store;
            store
                .fail_payment(&row.hashlock, PaymentDirection::Out, &reason)
                .await?;
            self.core.emit(crate::events::WalletEvent::PaymentFailed {
                hashlock: row.hashlock,
                reason: reason.clone(),
            });
        }
        p.cmd.answer(Err(WalletError::Rejected { code, reason }));
        Ok(())
    }

    async fn on_tick(&mut self, last_ping: &mut Instant, last_seen: Instant) -> Result<()> {
        if self
            .pending
            .values()
            .any(|p| p.sent.elapsed() > ANSWER_LIMIT)
        {
            // The hub answers pings but not our update: start over with a resync rather than
            // keep the channel blocked.
            return Err(WalletError::HubUnreachable {
                url: self.core.config.hub_ws_url(),
                reason: "hub did not answer an update".into(),
            });
        }
        if last_seen.elapsed() > SILENCE_LIMIT {
            return Err(WalletError::HubUnreachable {
                url: self.core.config.hub_ws_url(),
                reason: "hub went silent".into(),
            });
        }
        if last_ping.elapsed() >= PING_EVERY {
            *last_ping = Instant::now();
            self.ping += 1;
            send(&mut self.sink, &SessionMsg::Ping { nonce: self.ping }).await?;
        }
        self.housekeeping().await
    }

    /// Queues the updates nobody asked for but the wallet needs: take incoming payments we
    /// hold the secret for, and reclaim our own locks once expired.
    async fn housekeeping(&mut self) -> Result<()> {
        let Ok(info) = self.core.chain.chain_info().await else {
            return Ok(());
        };
        for ch in self.core.store.channels().await? {
            let queued = self.queue.iter().any(|c| c.channel_id == ch.id);
            if ch.status != ChannelStatus::Open || queued || self.busy(&ch.id) {
                continue;
            }
            if let Some(change) = vet::due_change(self.core, &ch, info.height).await? {
                self.queue.push_back(UpdateCmd::background(ch.id, change));
            }
        }
        Ok(())
    }
}
