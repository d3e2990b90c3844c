//! The payment model: one payment through the hub (DESIGN.md §4, "Payments" and "Why nobody
//! can be robbed"): payer — hub — payee over two channels, the payer's ([`MAIN`]: payer A, hub
//! B) and the payee's ([`PAYEE`]: payee A, hub B). Every channel side is the real
//! [`ChannelSession`](sluice_protocol::session::ChannelSession) driven as in [`crate::honest`],
//! the chain is the real record of each channel with one shared secret registry, and the hub
//! decides each payment step with the real `sluice_hub::payments::lifecycle::next_step`.
//!
//! One of payer and payee is Byzantine, as in the channel model: it holds every signature the
//! hub gave on its channel, co-signs and answers `Accept`, co-signs and answers `Reject`, stays
//! silent, proposes what it likes at the versions the hub may take, closes and challenges with
//! any co-signed state it can make, and (the payee) registers the secret on chain at any height.
//! The network neither loses nor duplicates (a silent peer is the loss that matters here), and
//! nobody crashes.
//!
//! The hub's router is modelled minimally: the payer's lock co-signed records the payment
//! pending; the hub forwards the lock once, and otherwise does what `next_step` says (a
//! `ReadRegistry` reads the modelled chain's registry and asks again). Store writes that ride
//! with a channel update (forwarded, secret known, completed, failed on the payer's removal)
//! happen with the commit. The hub guards its channels: it challenges a stale close before the
//! window ends and registers a known secret before the payer's lock expires.
//!
//! The planted old rule, [`PaymentModel::planted`]: the hub releases the payer's lock as soon as
//! the payee rejects the forward (the driver fails the payment on that `Reject` instead of
//! asking `next_step`), though the payee may have co-signed it.

use crate::chain::{Chain, Verdicts};
use crate::fixture::{channel_id_of, channel_key, ctx_at, Ch, DEPOSIT_A, DEPOSIT_B, MAIN, PAYEE};
use crate::honest::{Boots, Honest, Input, Steps};
use crate::memo::Cache;
use crate::network::Bag;
use crate::properties::{in_doubt, owned};
use crate::trace::{self, snapshot_text};
use sluice_hub::payments::lifecycle::{self, Facts, Outgoing, Registry, Step};
use sluice_hub::store::{PaymentRecord, PaymentState};
use sluice_protocol::wire::hub::{ErrorCode, Proposal, SessionMsg};
use sluice_protocol::{
    apply_at, sha256, Amount, Canonical, Change, ChannelState, CoSigned, Direction, Hash32, Height,
    Lock, Party, Signature, Snapshot,
};
use stateright::{Model, Path, Property};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The payee's secret and its hashlock.
pub const SECRET: Hash32 = Hash32([0x77; 32]);
/// What the payee receives.
pub const AMOUNT: Amount = 3;
/// The hub's fee: the payer locks `AMOUNT + FEE`.
pub const FEE: Amount = 1;
/// The abstract heights, in order: the payment starts at `START`; the hub's lock toward the
/// payee expires at `E_OUT`, the payer's lock at `E_IN`; at `END` every channel may settle.
pub const START: Height = 100;
pub const E_OUT: Height = 112;
pub const E_IN: Height = 124;
pub const END: Height = 130;
const HEIGHTS: [Height; 4] = [START, E_OUT, E_IN, END];
/// Messages in flight per channel.
const IN_FLIGHT: usize = 2;

pub fn hashlock() -> Hash32 {
    sha256(&SECRET.0)
}

/// The payer's lock toward the hub.
pub fn lock_in() -> Lock {
    Lock {
        direction: Direction::AtoB,
        amount: AMOUNT + FEE,
        hashlock: hashlock(),
        expiry: E_IN,
    }
}

/// The hub's lock toward the payee.
pub fn lock_out() -> Lock {
    Lock {
        direction: Direction::BtoA,
        amount: AMOUNT,
        hashlock: hashlock(),
        expiry: E_OUT,
    }
}

/// Which end is Byzantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Villain {
    Payer,
    Payee,
}

/// The budgets of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayBounds {
    /// Proposals by the hub, on both channels together.
    pub hub: u8,
    /// Proposals by payer and payee together (the payer's lock is one).
    pub peers: u8,
}

/// One side (party A) of a channel other than the hub.
#[derive(Debug, Clone, PartialEq, Hash)]
pub enum Side {
    Honest(Arc<Honest>),
    Byzantine,
}

/// The hub's record of the payment: what `PaymentRecord` says that changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pay {
    pub state: PaymentState,
    pub secret: Option<Hash32>,
}

impl Hash for Pay {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.state.as_str().hash(h);
        self.secret.hash(h);
    }
}

impl Pay {
    /// The full record `next_step` reads.
    pub fn record(&self) -> PaymentRecord {
        PaymentRecord {
            hashlock: hashlock(),
            payer: channel_key(MAIN, Party::A).address(),
            payee: channel_key(PAYEE, Party::A).address(),
            channel_in: channel_id_of(MAIN),
            channel_out: Some(channel_id_of(PAYEE)),
            amount: AMOUNT,
            amount_in: AMOUNT + FEE,
            expiry_in: E_IN,
            expiry_out: Some(E_OUT),
            state: self.state,
            reason: None,
            secret: self.secret,
            created_at: 0,
            updated_at: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Hash)]
pub struct PayWorld {
    pub height: Height,
    /// Party A of each channel: the payer, the payee.
    pub peers: [Side; 2],
    /// The hub (party B) on each channel.
    pub hub: [Arc<Honest>; 2],
    pub net: [Bag; 2],
    pub chains: [Chain; 2],
    pub pay: Option<Pay>,
    /// Whether the router sent the forward.
    pub forwarded: bool,
    pub left: [u8; 2],
}

impl PayWorld {
    fn honest_peer(&self, ch: Ch) -> Option<&Honest> {
        match &self.peers[usize::from(ch)] {
            Side::Honest(h) => Some(h),
            Side::Byzantine => None,
        }
    }

    /// Every honest party with its channel.
    pub fn honest(&self) -> Vec<(Ch, &Honest)> {
        let mut out = vec![(MAIN, &*self.hub[0]), (PAYEE, &*self.hub[1])];
        for ch in [MAIN, PAYEE] {
            if let Some(h) = self.honest_peer(ch) {
                out.push((ch, h));
            }
        }
        out
    }

    fn settled(&self, ch: Ch) -> Option<(Amount, Amount)> {
        self.chains[usize::from(ch)].payouts()
    }

    fn registered_at(&self) -> Option<Height> {
        self.chains[0]
            .registry
            .iter()
            .find(|(h, _)| *h == hashlock())
            .map(|(_, at)| *at)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PayAction {
    /// An honest payer or payee proposes.
    Propose {
        ch: Ch,
        change: Change,
    },
    /// The receiver of message `at` on channel `ch` takes it; `take` is its policy's verdict.
    Deliver {
        ch: Ch,
        at: usize,
        take: bool,
    },
    /// The hub drives the payment one step.
    Hub,
    /// The Byzantine side of `ch` sends a proposal.
    Forge {
        ch: Ch,
        msg: SessionMsg,
    },
    /// The Byzantine side co-signs the hub's proposal in flight and answers `Accept` or `Reject`.
    Answer {
        ch: Ch,
        accept: bool,
    },
    Close {
        ch: Ch,
        by: Party,
        snapshot: Snapshot,
    },
    Challenge {
        ch: Ch,
        by: Party,
        snapshot: Snapshot,
    },
    /// The payee registers the secret on chain.
    Register,
    /// The chain reaches the next height.
    Tick,
    Settle {
        ch: Ch,
    },
}

#[derive(Debug, Default)]
pub struct PayCaches {
    pub steps: Steps,
    pub boots: Boots,
    pub chain: Verdicts,
    pub signatures: Cache<(Ch, Vec<u8>), Signature>,
}

#[derive(Debug)]
pub struct PaymentModel {
    pub villain: Villain,
    pub bounds: PayBounds,
    /// The planted old rule: a `Reject` of the forward releases the payer's lock.
    pub planted: bool,
    pub caches: PayCaches,
}

fn idx(ch: Ch) -> usize {
    usize::from(ch)
}

impl PaymentModel {
    pub fn new(villain: Villain, bounds: PayBounds, planted: bool) -> Self {
        PaymentModel {
            villain,
            bounds,
            planted,
            caches: PayCaches::default(),
        }
    }

    fn sign(&self, ch: Ch, state: &ChannelState) -> Signature {
        self.caches.signatures.get((ch, state.to_bytes()), || {
            state.sign(channel_key(ch, Party::A))
        })
    }

    /// Every co-signed snapshot the Byzantine side of `ch` can make.
    fn forgeable(&self, w: &PayWorld, ch: Ch) -> Vec<Snapshot> {
        let mut out = vec![crate::fixture::opening_of(ch)];
        for (p, sig_b) in &w.hub[idx(ch)].ever_signed {
            out.push(Snapshot {
                cosigned: CoSigned {
                    state: p.state,
                    sig_a: self.sign(ch, &p.state),
                    sig_b: *sig_b,
                },
                locks: p.locks.clone(),
            });
        }
        out
    }

    fn snapshots_of(&self, w: &PayWorld, ch: Ch, by: Party) -> Vec<Snapshot> {
        match (by, w.honest_peer(ch)) {
            (Party::B, _) => vec![w.hub[idx(ch)].store.latest.clone()],
            (Party::A, Some(h)) => vec![h.store.latest.clone()],
            (Party::A, None) => self.forgeable(w, ch),
        }
    }

    fn peer_menu(ch: Ch) -> Vec<Change> {
        match ch {
            MAIN => vec![
                Change::AddLock { lock: lock_in() },
                Change::RemoveLock {
                    hashlock: hashlock(),
                },
            ],
            _ => vec![
                Change::Unlock { secret: SECRET },
                Change::RemoveLock {
                    hashlock: hashlock(),
                },
            ],
        }
    }

    /// What the hub's policy says of a valid proposal from the peer of `ch`.
    fn hub_takes(&self, w: &PayWorld, ch: Ch, change: &Change) -> bool {
        match (ch, change) {
            (MAIN, Change::AddLock { .. }) => w.pay.is_none(),
            (MAIN, Change::RemoveLock { .. }) => match w.pay {
                None => true,
                Some(p) => lifecycle::payer_removes_expired(&p.record(), read_registry(w)).is_ok(),
            },
            (PAYEE, _) => true,
            _ => false,
        }
    }

    fn off_chain(&self, w: &PayWorld, ch: Ch, out: &mut Vec<PayAction>) {
        let i = idx(ch);
        if !w.chains[i].is_open() {
            return;
        }
        match &w.peers[i] {
            Side::Honest(_) if w.left[1] > 0 => {
                for change in Self::peer_menu(ch) {
                    out.push(PayAction::Propose { ch, change });
                }
            }
            Side::Honest(_) => {}
            Side::Byzantine => self.byzantine(w, ch, out),
        }
        for (at, env) in w.net[i].items().iter().enumerate() {
            out.push(PayAction::Deliver { ch, at, take: true });
            // The honest payee may refuse the forward (no invoice for it).
            let refusable = env.to == Party::A
                && ch == PAYEE
                && matches!(&env.msg, SessionMsg::Propose(p) if matches!(p.change, Change::AddLock { .. }));
            if refusable {
                out.push(PayAction::Deliver {
                    ch,
                    at,
                    take: false,
                });
            }
        }
    }

    fn byzantine(&self, w: &PayWorld, ch: Ch, out: &mut Vec<PayAction>) {
        let hub = &w.hub[idx(ch)];
        if w.left[1] > 0 {
            let floor = hub.session.floor();
            let mut versions = vec![floor.saturating_add(1)];
            if hub.session.in_flight().is_some() {
                versions.push(floor);
            }
            for at in versions {
                for change in Self::peer_menu(ch) {
                    let Ok(next) = apply_at(
                        &hub.session.position(),
                        &change,
                        Party::A,
                        &ctx_at(w.height),
                        at,
                    ) else {
                        continue;
                    };
                    let msg = SessionMsg::Propose(Proposal {
                        channel_id: channel_id_of(ch),
                        change: change.clone(),
                        state: next.state,
                        sig: self.sign(ch, &next.state),
                        invoice: None,
                    });
                    out.push(PayAction::Forge { ch, msg });
                }
            }
        }
        if let Some(f) = hub.session.in_flight() {
            let v = f.next.state.version;
            let answered = w.net[idx(ch)].items().iter().any(|e| {
                matches!(e.msg, SessionMsg::Accept { version, .. } | SessionMsg::Reject { version, .. } if version == v)
            });
            if !answered {
                out.push(PayAction::Answer { ch, accept: true });
                out.push(PayAction::Answer { ch, accept: false });
            }
        }
    }

    fn chain_actions(&self, w: &PayWorld, ch: Ch, out: &mut Vec<PayAction>) {
        let chain = &w.chains[idx(ch)];
        let closers: Vec<(Party, Snapshot)> = [Party::A, Party::B]
            .into_iter()
            .flat_map(|by| {
                self.snapshots_of(w, ch, by)
                    .into_iter()
                    .map(move |s| (by, s))
            })
            .collect();
        if chain.is_open() {
            // What a Byzantine peer has in flight it could as well not have sent: its channel
            // closes with nothing in flight.
            let quiet = w.honest_peer(ch).is_some() || w.net[idx(ch)].items().is_empty();
            if w.height < END && quiet {
                for (by, snapshot) in closers {
                    out.push(PayAction::Close { ch, by, snapshot });
                }
            }
            return;
        }
        let Some(stored) = chain.stored() else {
            return;
        };
        let v = stored.state().version;
        if chain.window_open() {
            for (by, snapshot) in closers {
                if snapshot.state().version > v {
                    out.push(PayAction::Challenge { ch, by, snapshot });
                }
            }
        }
        if chain.settle().is_some() {
            out.push(PayAction::Settle { ch });
        }
    }

    /// Whether an honest party still holds a newer state than a close stored in an open window:
    /// it is online and challenges before time passes.
    fn challenge_pending(&self, w: &PayWorld) -> bool {
        w.honest().iter().any(|(ch, h)| {
            let c = &w.chains[idx(*ch)];
            c.window_open()
                && c.stored()
                    .is_some_and(|s| h.store.latest.state().version > s.state().version)
        })
    }

    /// Puts `from`'s messages on `ch`'s network; the Byzantine side sees the hub's at once.
    fn send(&self, w: &mut PayWorld, ch: Ch, from: Party, msgs: Vec<SessionMsg>) {
        if from == Party::B && w.honest_peer(ch).is_none() {
            return;
        }
        for msg in msgs {
            w.net[idx(ch)].send(from.other(), msg, IN_FLIGHT);
        }
    }

    fn party_mut<'w>(&self, w: &'w mut PayWorld, ch: Ch, p: Party) -> Option<&'w mut Honest> {
        match (p, &mut w.peers[idx(ch)]) {
            (Party::B, _) => Some(Arc::make_mut(&mut w.hub[idx(ch)])),
            (Party::A, Side::Honest(h)) => Some(Arc::make_mut(h)),
            (Party::A, Side::Byzantine) => None,
        }
    }

    /// The hub proposes `change` on `ch`; `None` if it has no budget, the channel is closed or
    /// the machine refuses.
    fn hub_propose(&self, w: &mut PayWorld, ch: Ch, change: Change) -> Option<()> {
        if !w.chains[idx(ch)].is_open() {
            return None;
        }
        w.left[0] = w.left[0].checked_sub(1)?;
        let height = w.height;
        let sent = Arc::make_mut(&mut w.hub[idx(ch)]).step_at(
            &Input::Propose(change),
            height,
            &self.caches.steps,
        )?;
        self.send(w, ch, Party::B, sent);
        Some(())
    }

    /// The store writes that ride with the hub's channel updates.
    fn observe(&self, w: &mut PayWorld) {
        let held_in = w.hub[0].store.latest.locks.contains(&lock_in());
        let claimed_in = w.hub[0].store.latest.state().sent_a >= AMOUNT + FEE;
        let held_out = w.hub[1].store.latest.locks.contains(&lock_out());
        let paid_out = w.hub[1].store.latest.state().sent_b >= AMOUNT;
        let Some(pay) = &mut w.pay else {
            if held_in {
                w.pay = Some(Pay {
                    state: PaymentState::Pending,
                    secret: None,
                });
            }
            return;
        };
        match pay.state {
            PaymentState::Pending | PaymentState::Forwarded if paid_out => {
                pay.state = PaymentState::SecretKnown;
                pay.secret = Some(SECRET);
            }
            PaymentState::Pending | PaymentState::Forwarded if !held_in && !claimed_in => {
                // The payer's removal of its expired lock, which the hub's policy let through.
                pay.state = PaymentState::Failed;
            }
            PaymentState::Pending if held_out => pay.state = PaymentState::Forwarded,
            PaymentState::SecretKnown if claimed_in => pay.state = PaymentState::Completed,
            _ => {}
        }
    }

    fn outgoing(w: &PayWorld) -> Outgoing {
        let h = &w.hub[1];
        let latest = &h.store.latest;
        if let Some(l) = latest.locks.iter().find(|l| l.hashlock == hashlock()) {
            return Outgoing::Held(l.expiry);
        }
        let doubt = h
            .signed_positions()
            .any(|p| p.state.version > latest.state().version && p.locks.contains(&lock_out()));
        if !doubt {
            return Outgoing::Absent;
        }
        let live = w.chains[1].is_open()
            && h.session
                .in_flight()
                .is_some_and(|f| f.next.locks.contains(&lock_out()));
        Outgoing::InDoubt { live }
    }

    /// The payment fails: recorded, and the payer's lock released (if it can be proposed now;
    /// otherwise later, see [`PaymentModel::hub_act`]).
    fn fail(&self, w: &mut PayWorld) {
        if let Some(p) = &mut w.pay {
            p.state = PaymentState::Failed;
        }
        let _ = self.hub_propose(
            w,
            MAIN,
            Change::RemoveLock {
                hashlock: hashlock(),
            },
        );
    }

    /// The hub's router and `next_step`.
    fn hub_act(&self, w: &mut PayWorld) -> Option<()> {
        let pay = w.pay?;
        if pay.state == PaymentState::Pending && !w.forwarded {
            w.forwarded = true;
            return self.hub_propose(w, PAYEE, Change::AddLock { lock: lock_out() });
        }
        let record = pay.record();
        let mut registry = Registry::Unknown;
        let step = loop {
            let facts = Facts {
                pay: &record,
                outgoing: Self::outgoing(w),
                registry,
                height: w.height,
            };
            match lifecycle::next_step(&facts) {
                Step::ReadRegistry if registry == Registry::Unknown => registry = read_registry(w),
                step => break step,
            }
        };
        let remove = Change::RemoveLock {
            hashlock: hashlock(),
        };
        match step {
            Step::Claim(secret) => self.hub_propose(w, MAIN, Change::Unlock { secret }),
            Step::RecordSecret(secret) => {
                let p = w.pay.as_mut()?;
                p.state = PaymentState::SecretKnown;
                p.secret = Some(secret);
                let _ = self.hub_propose(w, MAIN, Change::Unlock { secret });
                Some(())
            }
            Step::MarkForwarded => {
                w.pay.as_mut()?.state = PaymentState::Forwarded;
                Some(())
            }
            Step::Bury => self.hub_propose(w, PAYEE, Change::Bump),
            Step::RemoveExpiredForward => self.hub_propose(w, PAYEE, remove),
            Step::DropDeadForward | Step::Fail(_) => {
                self.fail(w);
                Some(())
            }
            Step::ReadRegistry => None,
            Step::Wait => {
                // A failure recorded while the payer's lock could not be released: release it.
                let held = w.hub[0].store.latest.locks.contains(&lock_in());
                (pay.state == PaymentState::Failed && held)
                    .then_some(())
                    .and_then(|()| self.hub_propose(w, MAIN, remove))
            }
        }
    }

    fn deliver(&self, w: &mut PayWorld, ch: Ch, at: usize, take: bool) -> Option<()> {
        let env = w.net[idx(ch)].take(at)?;
        let to = env.to;
        let take = match (&env.msg, to) {
            (SessionMsg::Propose(p), Party::B) => self.hub_takes(w, ch, &p.change),
            _ => take,
        };
        let forward_rejected = to == Party::B
            && ch == PAYEE
            && matches!(env.msg, SessionMsg::Reject { .. })
            && w.hub[1]
                .session
                .in_flight()
                .is_some_and(|f| matches!(f.change, Change::AddLock { .. }));
        let height = w.height;
        let input = Input::Receive {
            msg: Box::new(env.msg),
            take,
        };
        let sent = self
            .party_mut(w, ch, to)?
            .step_at(&input, height, &self.caches.steps)?;
        self.send(w, ch, to, sent);
        self.observe(w);
        if self.planted && forward_rejected {
            // The planted old rule: the forward was rejected, so release the payer's lock.
            self.fail(w);
        }
        Some(())
    }

    fn step(&self, w: &mut PayWorld, action: PayAction) -> Option<()> {
        let height = w.height;
        match action {
            PayAction::Propose { ch, change } => {
                w.left[1] = w.left[1].checked_sub(1)?;
                let sent = self.party_mut(w, ch, Party::A)?.step_at(
                    &Input::Propose(change),
                    height,
                    &self.caches.steps,
                )?;
                self.send(w, ch, Party::A, sent);
            }
            PayAction::Deliver { ch, at, take } => self.deliver(w, ch, at, take)?,
            PayAction::Hub => self.hub_act(w)?,
            PayAction::Forge { ch, msg } => {
                w.left[1] = w.left[1].checked_sub(1)?;
                w.net[idx(ch)].send(Party::B, msg, IN_FLIGHT);
            }
            PayAction::Answer { ch, accept } => {
                let f = w.hub[idx(ch)].session.in_flight()?;
                let version = f.next.state.version;
                let msg = match accept {
                    true => SessionMsg::Accept {
                        channel_id: channel_id_of(ch),
                        version,
                        sig: self.sign(ch, &f.next.state),
                    },
                    false => SessionMsg::Reject {
                        channel_id: channel_id_of(ch),
                        version,
                        code: ErrorCode::InvalidUpdate,
                        reason: "refused".into(),
                        signed: 0,
                    },
                };
                w.net[idx(ch)].send(Party::B, msg, IN_FLIGHT);
            }
            PayAction::Close { ch, by, snapshot } => {
                let i = idx(ch);
                w.chains[i] = w.chains[i].close(by, &snapshot, &self.caches.chain)?;
                w.net[i].drain();
            }
            PayAction::Challenge { ch, snapshot, .. } => {
                let i = idx(ch);
                w.chains[i] = w.chains[i].challenge(&snapshot, &self.caches.chain)?;
            }
            PayAction::Register => register(w)?,
            PayAction::Tick => {
                if self.challenge_pending(w) {
                    return None;
                }
                let at = HEIGHTS.iter().position(|h| *h == height)?;
                let next = *HEIGHTS.get(at + 1)?;
                // The honest payee claims a lock it holds on a closing channel before it expires;
                // the hub registers a secret it knows before the payer's lock expires.
                let payee_claims = next >= E_OUT
                    && height < E_OUT
                    && !w.chains[1].is_open()
                    && w.honest_peer(PAYEE)
                        .is_some_and(|h| h.store.latest.locks.contains(&lock_out()));
                let hub_claims =
                    next >= E_IN && height < E_IN && w.pay.is_some_and(|p| p.secret.is_some());
                if payee_claims || hub_claims {
                    let _ = register(w);
                }
                w.height = next;
                for c in &mut w.chains {
                    c.height = next;
                }
            }
            PayAction::Settle { ch } => {
                let i = idx(ch);
                w.chains[i] = w.chains[i].settle()?;
            }
        }
        Some(())
    }
}

/// What the chain's registry says of the payment's hashlock.
fn read_registry(w: &PayWorld) -> Registry {
    match w.registered_at() {
        Some(height) => Registry::Registered {
            secret: SECRET,
            height,
        },
        None => Registry::Absent,
    }
}

/// The secret registered at the current height, on the one registry both records read.
fn register(w: &mut PayWorld) -> Option<()> {
    for c in &mut w.chains {
        *c = c.register(&SECRET)?;
    }
    Some(())
}

pub const HUB_WHOLE: &str =
    "the honest hub ends with what it started with, plus its fee whenever the payee was paid";
pub const PAY_PAYOUT: &str =
    "an honest party's payout covers its latest co-signed balance less its own locks in doubt";
pub const PAY_CONSERVED: &str = "each channel's payouts sum to its deposits";
pub const COMPLETES: &str = "the payment completes";
pub const BURIED: &str =
    "a forward in doubt is buried under a co-signed higher state and the payment fails";
pub const PAYEE_CLAIMS: &str = "the payee claims the hub's lock on chain";
pub const HUB_RECOVERS: &str = "after the payee's claim on chain the hub is paid the payer's lock";

impl Model for PaymentModel {
    type State = PayWorld;
    type Action = PayAction;

    fn init_states(&self) -> Vec<PayWorld> {
        let side = |ch: Ch, byzantine: bool| match byzantine {
            true => Side::Byzantine,
            false => Side::Honest(Arc::new(Honest::on(ch, Party::A, false))),
        };
        vec![PayWorld {
            height: START,
            peers: [
                side(MAIN, self.villain == Villain::Payer),
                side(PAYEE, self.villain == Villain::Payee),
            ],
            hub: [MAIN, PAYEE].map(|ch| Arc::new(Honest::on(ch, Party::B, false))),
            net: Default::default(),
            chains: [Chain::of(MAIN), Chain::of(PAYEE)],
            pay: None,
            forwarded: false,
            left: [self.bounds.hub, self.bounds.peers],
        }]
    }

    fn actions(&self, w: &PayWorld, out: &mut Vec<PayAction>) {
        for ch in [MAIN, PAYEE] {
            self.off_chain(w, ch, out);
        }
        if w.pay.is_some() {
            out.push(PayAction::Hub);
        }
        for ch in [MAIN, PAYEE] {
            self.chain_actions(w, ch, out);
        }
        let byzantine_payee = w.honest_peer(PAYEE).is_none();
        let payee_holds = w
            .honest_peer(PAYEE)
            .is_some_and(|h| h.store.latest.locks.contains(&lock_out()));
        // A registration at `E_IN` or later is in time for no lock: the same as none.
        if w.registered_at().is_none() && w.height < E_IN && (byzantine_payee || payee_holds) {
            out.push(PayAction::Register);
        }
        if w.height < END {
            out.push(PayAction::Tick);
        }
    }

    fn next_state(&self, w: &PayWorld, action: PayAction) -> Option<PayWorld> {
        let mut next = w.clone();
        self.step(&mut next, action)?;
        (next != *w).then_some(next)
    }

    fn format_action(&self, action: &PayAction) -> String {
        action_line(action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(HUB_WHOLE, |_, w: &PayWorld| hub_whole(w)),
            Property::always(PAY_PAYOUT, |_, w: &PayWorld| {
                w.honest().iter().all(|(ch, h)| {
                    let Some((a, b)) = w.settled(*ch) else {
                        return true;
                    };
                    let paid = i128::from(if h.me == Party::A { a } else { b });
                    paid >= owned(h.me, &h.store.latest) - in_doubt(h.me, h)
                })
            }),
            Property::always(PAY_CONSERVED, |_, w: &PayWorld| {
                [MAIN, PAYEE].iter().all(|ch| {
                    w.settled(*ch)
                        .is_none_or(|(a, b)| a + b == DEPOSIT_A + DEPOSIT_B)
                })
            }),
            Property::sometimes(COMPLETES, |_, w: &PayWorld| {
                w.pay.is_some_and(|p| p.state == PaymentState::Completed)
            }),
            Property::sometimes(BURIED, |_, w: &PayWorld| {
                let h = &w.hub[1];
                let latest = h.store.latest.state();
                w.pay.is_some_and(|p| p.state == PaymentState::Failed)
                    && latest.sent_b == 0
                    && !h.store.latest.locks.contains(&lock_out())
                    && h.signed_positions()
                        .any(|p| p.locks.contains(&lock_out()) && p.state.version < latest.version)
            }),
            Property::sometimes(PAYEE_CLAIMS, |_, w: &PayWorld| payee_claimed(w)),
            Property::sometimes(HUB_RECOVERS, |_, w: &PayWorld| {
                payee_claimed(w)
                    && w.settled(MAIN)
                        .is_some_and(|(_, b)| b == DEPOSIT_B + AMOUNT + FEE)
            }),
        ]
    }
}

/// The payee's channel settled paying it the hub's lock, which the hub never saw unlocked: the
/// payee claimed it on chain with the secret registered in time.
pub fn payee_claimed(w: &PayWorld) -> bool {
    w.settled(PAYEE)
        .is_some_and(|(a, _)| a == DEPOSIT_A + AMOUNT)
        && w.hub[1].store.latest.state().sent_b < AMOUNT
        && w.registered_at().is_some_and(|h| h < E_OUT)
}

/// Once both channels settled: the hub's payouts are at least its deposits, plus its fee if the
/// payee ends with more than it put in.
pub fn hub_whole(w: &PayWorld) -> bool {
    let (Some((_, in_b)), Some((out_a, out_b))) = (w.settled(MAIN), w.settled(PAYEE)) else {
        return true;
    };
    let start = 2 * DEPOSIT_B;
    let owed = if out_a > DEPOSIT_A {
        start + FEE
    } else {
        start
    };
    in_b + out_b >= owed
}

fn change_text(c: &Change) -> String {
    let name = |l: &Lock| match l.direction {
        Direction::AtoB => format!("the payer's lock ({})", l.amount),
        Direction::BtoA => format!("the hub's lock ({})", l.amount),
    };
    match c {
        Change::AddLock { lock } => format!("AddLock {}", name(lock)),
        Change::Unlock { .. } => "Unlock with the secret".into(),
        Change::RemoveLock { .. } => "RemoveLock of the payment's lock".into(),
        other => trace::change_text(other),
    }
}

fn message_text(m: &SessionMsg) -> String {
    match m {
        SessionMsg::Propose(p) => {
            format!("Propose v{} [{}]", p.state.version, change_text(&p.change))
        }
        other => trace::message_text(other),
    }
}

fn who(ch: Ch, p: Party) -> &'static str {
    match (ch, p) {
        (_, Party::B) => "the hub",
        (MAIN, Party::A) => "the payer",
        (_, Party::A) => "the payee",
    }
}

fn channel_name(ch: Ch) -> &'static str {
    match ch {
        MAIN => "payer's channel",
        _ => "payee's channel",
    }
}

pub fn action_line(a: &PayAction) -> String {
    match a {
        PayAction::Propose { ch, change } => {
            format!("{} proposes {}", who(*ch, Party::A), change_text(change))
        }
        PayAction::Deliver { ch, take, .. } => format!(
            "a message on the {} is delivered{}",
            channel_name(*ch),
            if *take {
                ""
            } else {
                " and its policy refuses it"
            }
        ),
        PayAction::Hub => "the hub drives the payment".into(),
        PayAction::Forge { ch, msg } => {
            format!("{} sends {}", who(*ch, Party::A), message_text(msg))
        }
        PayAction::Answer { ch, accept } => format!(
            "{} co-signs the hub's proposal and answers {}",
            who(*ch, Party::A),
            if *accept { "Accept" } else { "Reject" }
        ),
        PayAction::Close { ch, by, snapshot } => format!(
            "{} closes the {} on chain with co-signed {}",
            who(*ch, *by),
            channel_name(*ch),
            snapshot_text(snapshot)
        ),
        PayAction::Challenge { ch, by, snapshot } => format!(
            "{} challenges on the {} with co-signed {}",
            who(*ch, *by),
            channel_name(*ch),
            snapshot_text(snapshot)
        ),
        PayAction::Register => "the payee registers the secret on chain".into(),
        PayAction::Tick => "the chain reaches the next height".into(),
        PayAction::Settle { ch } => format!("the {} settles", channel_name(*ch)),
    }
}

fn effects(before: &PayWorld, after: &PayWorld) -> Vec<String> {
    let mut out = Vec::new();
    for ch in [MAIN, PAYEE] {
        let i = idx(ch);
        let parties = [
            (Party::B, Some(&*before.hub[i]), Some(&*after.hub[i])),
            (Party::A, before.honest_peer(ch), after.honest_peer(ch)),
        ];
        for (p, x, y) in parties {
            if let (Some(x), Some(y)) = (x, y) {
                if x.store.latest != y.store.latest {
                    out.push(format!(
                        "{} stores {} on the {}",
                        who(ch, p),
                        snapshot_text(&y.store.latest),
                        channel_name(ch)
                    ));
                }
            }
        }
        let proposal = |w: &PayWorld| {
            w.hub[i]
                .session
                .in_flight()
                .map(|f| (f.next.state.version, f.change.clone()))
        };
        // What the hub sends a Byzantine peer is never in flight: say it here.
        let unseen = after.honest_peer(ch).is_none() && proposal(before) != proposal(after);
        if let (Some((v, change)), true) = (proposal(after), unseen) {
            out.push(format!(
                "the hub proposes v{v} [{}] on the {}",
                change_text(&change),
                channel_name(ch)
            ));
        }
        let mut old: Vec<_> = before.net[i].items().iter().collect();
        for e in after.net[i].items() {
            match old.iter().position(|o| *o == e) {
                Some(k) => {
                    old.remove(k);
                }
                None => out.push(format!(
                    "{} sends {}",
                    who(ch, e.to.other()),
                    message_text(&e.msg)
                )),
            }
        }
        for e in old {
            if after.chains[i] == before.chains[i] {
                out.push(format!(
                    "{} takes {}'s {}",
                    who(ch, e.to),
                    who(ch, e.to.other()),
                    message_text(&e.msg)
                ));
            }
        }
        if before.chains[i].record.status != after.chains[i].record.status {
            if let Some(s) = after.chains[i].stored() {
                out.push(format!(
                    "the chain stores {} for the {}",
                    snapshot_text(s),
                    channel_name(ch)
                ));
            }
            if let Some((a, b)) = after.chains[i].payouts() {
                out.push(format!(
                    "the {} pays out: {} {a}, the hub {b}",
                    channel_name(ch),
                    who(ch, Party::A)
                ));
            }
        }
    }
    if before.pay != after.pay {
        if let Some(p) = after.pay {
            out.push(format!("the hub records the payment {}", p.state.as_str()));
        }
    }
    if before.height != after.height {
        out.push(format!("height {}", after.height));
    }
    if before.registered_at() != after.registered_at() {
        out.push(format!(
            "the secret is registered at height {}",
            after.height
        ));
    }
    out
}

/// The numbered lines of a path.
pub fn explain(model: &PaymentModel, path: &Path<PayWorld, PayAction>) -> Vec<String> {
    let steps = path.clone().into_vec();
    let mut lines = vec![format!(
        "    heights {START}, {E_OUT} (the forward expires), {E_IN} (the payer's lock \
         expires), {END}; deposits {DEPOSIT_A} each side; the payer locks {} for the payee's {AMOUNT}",
        AMOUNT + FEE
    )];
    for (n, (state, action)) in steps.iter().enumerate() {
        let Some(action) = action else { continue };
        let mut line = format!("{:>2}. {}", n + 1, action_line(action));
        if let Some(next) = model.next_state(state, action.clone()) {
            let fx = effects(state, &next);
            if !fx.is_empty() {
                line.push_str(&format!(" → {}", fx.join("; ")));
            }
        }
        lines.push(line);
    }
    lines
}
