//! One connected hub session: resync, then the update protocol, each channel driven by the
//! protocol's [`ChannelSession`] machine. This file is its I/O shell: it feeds the machine what
//! arrives and executes what comes out in order (the signed record and co-signed states are
//! committed to the store before the message that carries the signature is sent). The events
//! of a change are committed in the same transaction as the change and announced after it.

use super::command::UpdateCmd;
use super::connect::{next, send, Ws};
use super::effects;
use super::vet;
use crate::core::Core;
use crate::error::{Result, WalletError};
use crate::events::WalletEvent;
use crate::store::{ChannelRow, ChannelStatus, Effect, PaymentDirection};
use futures::stream::{SplitSink, StreamExt};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::session::{ChannelSession, Commit, Output, Refusal};
use sluice_protocol::wire::hub::{ErrorCode, PaymentStatus, Proposal, SessionMsg};
use sluice_protocol::{Change, Direction, Hash32, Party, Signature, Snapshot};
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

/// A command whose proposal is in flight (the machine holds the proposal itself).
struct Pending {
    cmd: UpdateCmd,
    sent: Instant,
}

pub(crate) struct Engine<'a> {
    core: &'a Core,
    sink: Sink,
    terms: RoutingTerms,
    /// Channels the hub announced and whose `Sync` has not arrived yet: no updates until then.
    unsynced: HashSet<Hash32>,
    pending: HashMap<Hash32, Pending>,
    /// The session machine of each channel touched on this connection.
    machines: HashMap<Hash32, ChannelSession>,
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
            machines: HashMap::new(),
            queue: VecDeque::new(),
            paused: HashMap::new(),
            ping: 0,
        };
        let err = match engine.start().await {
            Ok(()) => engine.event_loop(&mut stream, cmds).await,
            Err(e) => e,
        };
        engine.abandon();
        super::connect::naming(err, &core.config.hub_ws_url())
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
            let msg = self.machine(&ch).sync_msg();
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

    /// The channel's machine, rebuilt from the store row if the row moved on without it (what
    /// it learnt of the hub's signed versions is kept).
    fn machine(&mut self, ch: &ChannelRow) -> &mut ChannelSession {
        let core = self.core;
        let fresh = || {
            ChannelSession::new(
                Party::A,
                core.key.clone(),
                ch.hub,
                ch.snapshot.clone(),
                ch.signed,
            )
        };
        let m = self.machines.entry(ch.id).or_insert_with(fresh);
        if m.latest() != &ch.snapshot && m.in_flight().is_none() {
            let floor = m.floor();
            *m = fresh();
            m.note_peer_signed(floor);
        }
        m
    }

    /// Executes a machine's outputs in order: each store write completes before the next send.
    async fn execute(
        &mut self,
        ch: &ChannelRow,
        outputs: Vec<Output>,
        reason: Option<String>,
    ) -> Result<()> {
        for out in outputs {
            match out {
                Output::PersistSigned(signed) => {
                    self.core.store.record_signed(&ch.id, signed).await?
                }
                Output::Commit(c) => self.commit(ch, &c, reason.clone()).await?,
                Output::Send(msg) => send(&mut self.sink, &msg).await?,
            }
        }
        Ok(())
    }

    /// Answers every waiting command: the session is gone.
    fn abandon(&mut self) {
        self.machines.values_mut().for_each(|m| {
            m.abandon();
        });
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
        let ctx = match crate::chain::context(&core.chain, &ch.id, self.terms.policy).await {
            Ok(ctx) => ctx,
            Err(e) => {
                cmd.answer(Err(e));
                return Ok(());
            }
        };
        let invoice = cmd.invoice.clone();
        let outputs = match self.machine(&ch).propose(cmd.change.clone(), &ctx, invoice) {
            Ok(outputs) => outputs,
            Err(e) => {
                cmd.answer(Err(e.into()));
                return Ok(());
            }
        };
        if let Some(row) = &cmd.payment {
            core.store.insert_payment(row).await?;
        }
        tracing::debug!(channel = %ch.id, signed = self.machine(&ch).signed().version, "proposing");
        let pending = Pending {
            cmd,
            sent: Instant::now(),
        };
        self.pending.insert(ch.id, pending);
        self.execute(&ch, outputs, None).await
    }

    async fn on_msg(&mut self, msg: SessionMsg) -> Result<()> {
        match msg {
            SessionMsg::Sync {
                channel_id,
                snapshot,
                signed,
            } => self.on_sync(channel_id, snapshot, signed).await,
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
                signed,
            } => {
                self.on_reject(channel_id, version, (code, reason), signed)
                    .await
            }
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

    /// The hub's latest co-signed snapshot and the highest version it signed: the machine adopts
    /// the snapshot (stored first) only if it verifies and is newer than ours.
    async fn on_sync(&mut self, id: Hash32, snapshot: Snapshot, signed: u64) -> Result<()> {
        self.unsynced.remove(&id);
        let core = self.core;
        let Some(ch) = core.store.channel(&id).await? else {
            tracing::warn!(channel = %id, "hub synced a channel this wallet does not know");
            return Ok(());
        };
        let synced = match self.machine(&ch).on_sync(&snapshot, signed) {
            Ok(synced) => synced,
            Err(e) => {
                tracing::warn!(channel = %id, error = %e, "hub sent an invalid Sync; not adopted");
                return Ok(());
            }
        };
        if let Some(c) = &synced.commit {
            let (effects, events) = vet::adoption_effects(core, &ch, &c.snapshot).await?;
            self.store_commit(&ch, &c.snapshot, &effects, &events)
                .await?;
            tracing::info!(channel = %id, version = snapshot.state().version, "adopted the hub's newer state");
        }
        if let Some(done) = synced.resolved {
            if let Some(p) = self.pending.remove(&id) {
                match done.next.state == *snapshot.state() {
                    true => p.cmd.answer(Ok(snapshot.clone())),
                    false => p.cmd.answer(Err(WalletError::NotConnected)),
                }
            }
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
            let store = &self.core.store;
            let failed = store
                .fail_payment(&p.hashlock, p.direction, &reason)
                .await?;
            self.core.announce(failed.into_iter().collect());
        }
        Ok(())
    }

    async fn on_propose(&mut self, p: Proposal) -> Result<()> {
        let id = p.channel_id;
        let version = p.state.version;
        let core = self.core;
        let ch = match core.store.channel(&id).await? {
            Some(ch) if ch.status == ChannelStatus::Open => ch,
            _ => {
                let code = ErrorCode::UnknownChannel;
                return self.reject(id, version, code, "no open channel").await;
            }
        };
        let ctx = match crate::chain::context(&core.chain, &ch.id, self.terms.policy).await {
            Ok(ctx) => ctx,
            Err(e) => {
                return self
                    .reject(id, version, ErrorCode::Internal, &e.to_string())
                    .await
            }
        };
        let checked = match self.machine(&ch).on_proposal(&p, &ctx) {
            Ok(c) => c,
            Err(why) => return self.refuse(&ch, version, why).await,
        };
        // The hub's proposal won a crossing with ours: ours goes again afterwards.
        if let Some(mine) = self.pending.remove(&id) {
            self.queue.push_front(mine.cmd);
        }
        if let Some(why) = vet::policy(core, &ch, &p.change, ctx.height).await? {
            return self.refuse(&ch, version, why).await;
        }
        let reason = vet::removal_reason(core, &p.change).await?;
        let outputs = match self.machine(&ch).accept(checked) {
            Ok(outputs) => outputs,
            Err(why) => return self.refuse(&ch, version, why).await,
        };
        self.execute(&ch, outputs, reason).await?;
        tracing::debug!(channel = %id, version, "accepted the hub's proposal");
        self.follow_up(&ch, &p.change).await
    }

    async fn refuse(&mut self, ch: &ChannelRow, version: u64, why: Refusal) -> Result<()> {
        tracing::warn!(channel = %ch.id, version, reason = %why, "refused the hub's proposal");
        let out = self.machine(ch).refuse(version, &why);
        self.execute(ch, vec![out], None).await
    }

    /// After accepting the hub's lock toward us, take the payment at once with our secret.
    async fn follow_up(&mut self, ch: &ChannelRow, change: &Change) -> Result<()> {
        if let Change::AddLock { lock } = change {
            if lock.direction == Direction::BtoA {
                if let Some(inv) = self.core.store.invoice(&lock.hashlock).await? {
                    let unlock = Change::Unlock { secret: inv.secret };
                    self.queue.push_back(UpdateCmd::background(ch.id, unlock));
                }
            }
        }
        Ok(())
    }

    /// Commits a co-signed state the machine produced, with what it means for our payments.
    async fn commit(&self, ch: &ChannelRow, c: &Commit, reason: Option<String>) -> Result<()> {
        let (effects, events) = match &c.change {
            Some((change, _)) => effects::of_change(&c.before, change, reason),
            None => vet::adoption_effects(self.core, ch, &c.snapshot).await?,
        };
        self.store_commit(ch, &c.snapshot, &effects, &events).await
    }

    /// Commits a co-signed state with its effects and events in one transaction, then announces
    /// the events: durable before announced, and never a change without its events.
    async fn store_commit(
        &self,
        ch: &ChannelRow,
        snap: &Snapshot,
        effects: &[Effect],
        events: &[WalletEvent],
    ) -> Result<()> {
        let core = self.core;
        let stored = core
            .store
            .commit_update(&core.me(), &ch.hub, &ch.salt, snap, effects, events)
            .await?;
        match stored {
            Some(stored) => {
                core.announce(stored);
                Ok(())
            }
            None => Err(WalletError::Corrupt(format!(
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
            signed: 0,
        };
        send(&mut self.sink, &msg).await
    }

    async fn on_accept(&mut self, id: Hash32, version: u64, sig: Signature) -> Result<()> {
        let Some(m) = self.machines.get_mut(&id) else {
            tracing::warn!(channel = %id, version, "Accept for nothing in flight; ignored");
            return Ok(());
        };
        let commit = match m.on_accept(version, sig) {
            Ok(c) => c,
            Err(Refusal::UnexpectedAnswer { .. }) if !self.pending.contains_key(&id) => {
                tracing::warn!(channel = %id, version, "Accept for nothing in flight; ignored");
                return Ok(());
            }
            Err(e) => {
                // Our proposal stays in doubt (its version burnt); the command fails.
                m.abandon();
                let reason = format!("its Accept of version {version}: {e}");
                tracing::warn!(channel = %id, %reason, "hub misbehaved; state not stored");
                if let Some(p) = self.pending.remove(&id) {
                    p.cmd.answer(Err(WalletError::HubMisbehaved(reason)));
                }
                return Ok(());
            }
        };
        let ch = self.core.store.require_channel(&id).await?;
        self.commit(&ch, &commit, None).await?;
        if let Some(p) = self.pending.remove(&id) {
            p.cmd.answer(Ok(commit.snapshot));
        }
        Ok(())
    }

    /// The hub refused our proposal. Its version stays burnt (the hub holds our signature);
    /// the machine's next proposal goes above it.
    async fn on_reject(
        &mut self,
        id: Hash32,
        version: u64,
        (code, reason): (ErrorCode, String),
        signed: u64,
    ) -> Result<()> {
        let Some(m) = self.machines.get_mut(&id) else {
            return Ok(());
        };
        if m.on_reject(version, signed).is_err() {
            return Ok(());
        }
        let Some(p) = self.pending.remove(&id) else {
            return Ok(());
        };
        if code == ErrorCode::Busy {
            self.paused.insert(id, Instant::now() + BUSY_PAUSE);
            self.queue.push_front(p.cmd);
            return Ok(());
        }
        if let Some(row) = &p.cmd.payment {
            let store = &self.core.store;
            let failed = store
                .fail_payment(&row.hashlock, PaymentDirection::Out, &reason)
                .await?;
            self.core.announce(failed.into_iter().collect());
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
