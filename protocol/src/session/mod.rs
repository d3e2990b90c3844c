//! One channel's update session as a sans-IO machine (DESIGN.md §4): the one copy of the rules a
//! party follows for each session message, driven by the wallet, the hub, the benches and every
//! test peer alike. No clock, no I/O: the chain height and the deposits come in as a
//! [`Context`], and what to persist and what to send comes out as [`Output`] values.
//!
//! # The machine
//! A [`ChannelSession`] holds, for one channel and one party, the latest co-signed snapshot, the
//! party's own proposal in flight (at most one), the highest version this party has signed
//! ([`Signed`]) and the highest version it has seen the peer sign. Its methods come in classes:
//! - getters ([`ChannelSession::latest`], [`ChannelSession::signed`], [`ChannelSession::floor`], ...);
//! - a command: [`ChannelSession::propose`];
//! - peer input: [`ChannelSession::on_proposal`] (then [`ChannelSession::accept`] or
//!   [`ChannelSession::refuse`]), [`ChannelSession::on_accept`], [`ChannelSession::on_reject`],
//!   [`ChannelSession::on_sync`];
//! - the connection's end: [`ChannelSession::abandon`].
//!
//! # The version rule
//! A signature that left a party is never taken back: whoever received it may co-sign the state
//! itself and enforce it on chain, whatever it answered. So this machine never signs two states
//! at one version: every new state goes above [`ChannelSession::floor`], the highest version
//! either side is known to have signed, and a rejected, unanswered or abandoned proposal keeps
//! its version burnt. Once it has signed a `Finalize`, a party signs nothing else on the channel.
//!
//! # Driving contract
//! Execute the outputs of one call in order, each completed before the next starts:
//! - [`Output::PersistSigned`] and [`Output::Commit`] must be durable in the party's store
//!   before any later output is executed: a [`Output::Send`] that follows carries a signature
//!   the store must already know of, or a restarted party could sign at that version again;
//! - [`Output::Send`] goes to the peer on the session.
//!
//! A restarted party rebuilds its machine with [`ChannelSession::new`] from what it persisted;
//! a proposal that was in flight is then simply forgotten, its version staying burnt.

mod policy;

pub use policy::{
    incoming_lock, must_force_close, must_register, payer_lock, removal_gives_away, InvoiceFacts,
    LockRefusal, PAYER_EXPIRY_SLACK,
};

use crate::channel::{CoSigned, Party, Snapshot, StateError};
use crate::hash::Hash32;
use crate::keys::{Address, Keypair, Signature};
use crate::update::{
    apply_at, check_proposal, next_version, Change, Context, Position, UpdateError,
    MAX_VERSION_SKIP,
};
use crate::wire::hub::{ErrorCode, Proposal, SessionMsg};
use crate::ChainId;
use serde::{Deserialize, Serialize};

/// The highest version a party has signed on a channel, and whether that state was final.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub version: u64,
    pub is_final: bool,
}

impl Signed {
    fn of(state: &crate::ChannelState) -> Self {
        Signed {
            version: state.version,
            is_final: state.is_final,
        }
    }

    /// The later of two records: a party's signed record only ever grows.
    pub fn max(self, other: Signed) -> Signed {
        match other.version > self.version {
            true => other,
            false => Signed {
                is_final: self.is_final || (other.version == self.version && other.is_final),
                ..self
            },
        }
    }
}

/// Why the machine refuses a command or a peer message; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("message is for channel {got}, this session is {expected}")]
    WrongChannel { expected: Hash32, got: Hash32 },
    #[error("an update is already in flight on this channel")]
    Busy,
    #[error("a final state was signed on this channel; nothing else will be")]
    FinalSigned,
    #[error("the peer's signature does not verify")]
    BadSignature,
    #[error("answer for version {got}, but {expected:?} is in flight")]
    UnexpectedAnswer { expected: Option<u64>, got: u64 },
    #[error("snapshot refused: {0}")]
    Snapshot(StateError),
    #[error("update refused: {0}")]
    Update(#[from] UpdateError),
    #[error("lock refused: {0}")]
    Lock(#[from] LockRefusal),
}

impl Refusal {
    /// The code a peer sees in the `Reject` or `Error` it gets for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::WrongChannel { .. } => ErrorCode::UnknownChannel,
            Refusal::Busy => ErrorCode::Busy,
            Refusal::BadSignature | Refusal::Snapshot(StateError::BadSignature(..)) => {
                ErrorCode::BadSignature
            }
            Refusal::Lock(_) => ErrorCode::PaymentFailed,
            Refusal::FinalSigned
            | Refusal::UnexpectedAnswer { .. }
            | Refusal::Snapshot(_)
            | Refusal::Update(_) => ErrorCode::InvalidUpdate,
        }
    }
}

/// A co-signed snapshot to store as the channel's latest, with how it came about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The position it replaces.
    pub before: Position,
    /// The change that led to it, and who proposed it; `None` when adopted from the peer's
    /// `Sync` (a state this party signed but had not stored).
    pub change: Option<(Change, Party)>,
    pub snapshot: Snapshot,
    /// This party's signed record, to store with it.
    pub signed: Signed,
}

/// What the driver must do, in order (see the module's driving contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Record durably that this party signed up to here.
    PersistSigned(Signed),
    /// Store this co-signed snapshot as the latest, durably.
    Commit(Box<Commit>),
    /// Send this message to the peer.
    Send(Box<SessionMsg>),
}

/// This party's proposal waiting for the peer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub change: Change,
    pub before: Position,
    pub next: Position,
    pub sig: Signature,
}

impl InFlight {
    pub fn version(&self) -> u64 {
        self.next.state.version
    }
}

/// A peer proposal that passed the protocol's checks; the driver applies its own policy, then
/// calls [`ChannelSession::accept`] or [`ChannelSession::refuse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub proposal: Proposal,
    pub before: Position,
    pub next: Position,
}

/// What a `Sync` from the peer did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Synced {
    /// The newer state adopted, to store first.
    pub commit: Option<Commit>,
    /// Our proposal that the snapshot resolved (completed, or overtaken by a newer state).
    pub resolved: Option<InFlight>,
}

/// One party's session on one channel. See the module docs.
#[derive(Debug, Clone)]
pub struct ChannelSession {
    chain_id: ChainId,
    channel_id: Hash32,
    me: Party,
    key: Keypair,
    peer: Address,
    latest: Snapshot,
    signed: Signed,
    peer_signed: u64,
    inflight: Option<InFlight>,
    /// The old rule, planted for the model checker only; see [`Self::plant_reject_frees_version`].
    reject_frees_version: bool,
}

impl ChannelSession {
    /// A session from what the party persisted: its latest co-signed snapshot and its signed
    /// record (at least the latest's version, which it co-signed).
    pub fn new(me: Party, key: Keypair, peer: Address, latest: Snapshot, signed: Signed) -> Self {
        let state = *latest.state();
        ChannelSession {
            chain_id: state.chain_id,
            channel_id: state.channel_id,
            me,
            key,
            peer,
            signed: signed.max(Signed::of(&state)),
            peer_signed: state.version,
            latest,
            inflight: None,
            reject_frees_version: false,
        }
    }

    /// Plants the rule this machine replaced, "a reject frees the version": from now on
    /// [`Self::on_reject`] and [`Self::abandon`] roll the signed record back to the latest
    /// co-signed state, so the next proposal reuses the version the peer may still hold signed.
    /// Off unless called; no driver calls it. It exists so that the model checker
    /// (`sluice-model`) can show that it finds the fork this rule allows.
    #[doc(hidden)]
    pub fn plant_reject_frees_version(&mut self) {
        self.reject_frees_version = true;
    }

    /// Under the planted old rule, forgets that the dropped proposal was signed: the next
    /// proposal goes at the latest co-signed version + 1, as before the rule of burnt versions.
    fn free_version(&mut self) {
        if self.reject_frees_version {
            self.signed = Signed::of(self.latest.state());
            self.peer_signed = self.latest.state().version;
        }
    }

    pub fn channel_id(&self) -> Hash32 {
        self.channel_id
    }

    pub fn me(&self) -> Party {
        self.me
    }

    pub fn latest(&self) -> &Snapshot {
        &self.latest
    }

    pub fn position(&self) -> Position {
        Position {
            state: *self.latest.state(),
            locks: self.latest.locks.clone(),
        }
    }

    pub fn signed(&self) -> Signed {
        self.signed
    }

    pub fn in_flight(&self) -> Option<&InFlight> {
        self.inflight.as_ref()
    }

    /// Versions the hub (party `b`) leaves free below its proposals: a client proposal built on
    /// the same state and floor, crossing the hub's on the wire, is then always below it, so the
    /// hub's wins the tie and the client co-signs it above its own, never at the same version.
    fn tie_gap(&self) -> u64 {
        match self.me {
            Party::A => 0,
            Party::B => 1,
        }
    }

    /// The highest version either side is known to have signed: every new state goes above it.
    pub fn floor(&self) -> u64 {
        self.signed.version.max(self.peer_signed)
    }

    /// Raises what this party knows the peer signed (from the peer's `Sync`, or a proposal
    /// the driver saw before this machine existed).
    pub fn note_peer_signed(&mut self, version: u64) {
        self.peer_signed = self.peer_signed.max(version);
    }

    fn parties(&self) -> (Address, Address) {
        match self.me {
            Party::A => (self.key.address(), self.peer),
            Party::B => (self.peer, self.key.address()),
        }
    }

    fn cosigned(&self, state: crate::ChannelState, mine: Signature, theirs: Signature) -> CoSigned {
        let (sig_a, sig_b) = match self.me {
            Party::A => (mine, theirs),
            Party::B => (theirs, mine),
        };
        CoSigned {
            state,
            sig_a,
            sig_b,
        }
    }

    /// This party's `Sync`: its latest co-signed snapshot and the highest version it signed.
    pub fn sync_msg(&self) -> SessionMsg {
        SessionMsg::Sync {
            channel_id: self.channel_id,
            snapshot: self.latest.clone(),
            signed: self.signed.version,
        }
    }

    fn may_sign(&self) -> Result<(), Refusal> {
        match self.signed.is_final {
            true => Err(Refusal::FinalSigned),
            false => Ok(()),
        }
    }

    /// Proposes `change` at the next free version: persist the signed record, then send.
    pub fn propose(
        &mut self,
        change: Change,
        ctx: &Context,
        invoice: Option<String>,
    ) -> Result<Vec<Output>, Refusal> {
        if self.inflight.is_some() {
            return Err(Refusal::Busy);
        }
        self.may_sign()?;
        let before = self.position();
        let version = next_version(before.state.version, self.floor() + self.tie_gap())?;
        let next = apply_at(&before, &change, self.me, ctx, version)?;
        let sig = next.state.sign(&self.key);
        self.signed = self.signed.max(Signed::of(&next.state));
        let msg = SessionMsg::Propose(Proposal {
            channel_id: self.channel_id,
            change: change.clone(),
            state: next.state,
            sig,
            invoice,
        });
        self.inflight = Some(InFlight {
            change,
            before,
            next,
            sig,
        });
        Ok(vec![
            Output::PersistSigned(self.signed),
            Output::Send(Box::new(msg)),
        ])
    }

    /// Checks the peer's proposal: channel, signature, version above the floor, and `apply`
    /// giving exactly its state. A proposal crossing ours on the wire wins if it is above ours
    /// (the hub's always are, see `tie_gap`): ours is then given up (dead once this one is
    /// co-signed above it); otherwise it is refused (`Busy`) and both versions stay burnt. The
    /// peer's signed version is noted even when the proposal is refused.
    pub fn on_proposal(&mut self, p: &Proposal, ctx: &Context) -> Result<Checked, Refusal> {
        if p.channel_id != self.channel_id {
            return Err(Refusal::WrongChannel {
                expected: self.channel_id,
                got: p.channel_id,
            });
        }
        self.peer
            .verify_hash(&p.state.signing_hash(), &p.sig)
            .map_err(|_| Refusal::BadSignature)?;
        if self
            .inflight
            .as_ref()
            .is_some_and(|f| f.version() >= p.state.version)
        {
            self.note_peer_signed(p.state.version);
            return Err(Refusal::Busy);
        }
        let floor = self.floor();
        self.note_peer_signed(p.state.version);
        self.may_sign()?;
        let before = self.position();
        let next = check_proposal(&before, &p.change, &p.state, self.me.other(), ctx, floor)?;
        // Ours, below it, is given up: dead once this one is co-signed.
        self.inflight = None;
        Ok(Checked {
            proposal: p.clone(),
            before,
            next,
        })
    }

    /// Co-signs a checked proposal: commit it, then send `Accept`.
    pub fn accept(&mut self, c: Checked) -> Result<Vec<Output>, Refusal> {
        if self.inflight.is_some() {
            return Err(Refusal::Busy);
        }
        self.may_sign()?;
        if c.before.state != *self.latest.state() || c.next.state.version <= self.signed.version {
            return Err(UpdateError::VersionBurnt {
                floor: self.floor(),
                got: c.next.state.version,
            }
            .into());
        }
        let sig = c.next.state.sign(&self.key);
        let snapshot = Snapshot {
            cosigned: self.cosigned(c.next.state, sig, c.proposal.sig),
            locks: c.next.locks,
        };
        let accept = SessionMsg::Accept {
            channel_id: self.channel_id,
            version: snapshot.state().version,
            sig,
        };
        let commit = self.adopt(
            c.before,
            Some((c.proposal.change, self.me.other())),
            snapshot,
        );
        Ok(vec![
            Output::Commit(Box::new(commit)),
            Output::Send(Box::new(accept)),
        ])
    }

    /// The `Reject` answering a peer proposal this party will not co-sign.
    pub fn refuse(&self, version: u64, why: &Refusal) -> Output {
        Output::Send(Box::new(SessionMsg::Reject {
            channel_id: self.channel_id,
            version,
            code: why.code(),
            reason: why.to_string(),
            signed: self.floor().max(version),
        }))
    }

    fn adopt(&mut self, before: Position, change: Option<(Change, Party)>, s: Snapshot) -> Commit {
        self.signed = self.signed.max(Signed::of(s.state()));
        self.note_peer_signed(s.state().version);
        self.latest = s.clone();
        Commit {
            before,
            change,
            snapshot: s,
            signed: self.signed,
        }
    }

    /// The peer co-signed our proposal: commit the co-signed state.
    pub fn on_accept(&mut self, version: u64, sig: Signature) -> Result<Commit, Refusal> {
        let expected = self.inflight.as_ref().map(InFlight::version);
        let Some(f) = self.inflight.as_ref().filter(|f| f.version() == version) else {
            return Err(Refusal::UnexpectedAnswer {
                expected,
                got: version,
            });
        };
        self.peer
            .verify_hash(&f.next.state.signing_hash(), &sig)
            .map_err(|_| Refusal::BadSignature)?;
        let Some(f) = self.inflight.take() else {
            return Err(Refusal::UnexpectedAnswer {
                expected,
                got: version,
            });
        };
        let snapshot = Snapshot {
            cosigned: self.cosigned(f.next.state, f.sig, sig),
            locks: f.next.locks,
        };
        Ok(self.adopt(f.before, Some((f.change, self.me)), snapshot))
    }

    /// The peer refused our proposal. It stays in doubt (the peer holds our signature and may
    /// have co-signed it anyway) and its version stays burnt; returned so the driver can treat
    /// it so. `peer_signed` is what the `Reject` says the peer signed (capped within the skip).
    pub fn on_reject(&mut self, version: u64, peer_signed: u64) -> Result<InFlight, Refusal> {
        match self.inflight.take() {
            Some(f) if f.version() == version => {
                let cap = self
                    .latest
                    .state()
                    .version
                    .saturating_add(MAX_VERSION_SKIP / 2);
                self.note_peer_signed(peer_signed.min(cap));
                self.free_version();
                Ok(f)
            }
            other => {
                let expected = other.as_ref().map(InFlight::version);
                self.inflight = other;
                Err(Refusal::UnexpectedAnswer {
                    expected,
                    got: version,
                })
            }
        }
    }

    /// The connection ended or the peer went silent: our proposal, if any, is in doubt and its
    /// version stays burnt.
    pub fn abandon(&mut self) -> Option<InFlight> {
        let dropped = self.inflight.take();
        if dropped.is_some() {
            self.free_version();
        }
        dropped
    }

    /// The peer's latest co-signed snapshot and the highest version it says it signed. A valid
    /// newer snapshot carries our signature too, so we signed it: it is adopted (stored first).
    pub fn on_sync(&mut self, snap: &Snapshot, peer_signed: u64) -> Result<Synced, Refusal> {
        let (a, b) = self.parties();
        if snap.state().channel_id != self.channel_id {
            return Err(Refusal::WrongChannel {
                expected: self.channel_id,
                got: snap.state().channel_id,
            });
        }
        snap.verify(self.chain_id, &self.channel_id, &a, &b)
            .map_err(Refusal::Snapshot)?;
        self.note_peer_signed(peer_signed.max(snap.state().version));
        let mut out = Synced::default();
        if snap.state().version <= self.latest.state().version {
            return Ok(out);
        }
        // Built on an older state, our proposal can no longer be completed: it is resolved
        // (by this very snapshot, or overtaken by it).
        out.resolved = self.inflight.take();
        let before = self.position();
        out.commit = Some(self.adopt(before, None, snap.clone()));
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
