//! An honest party: the real [`ChannelSession`] driven exactly as the module's driving contract
//! says (outputs executed in order, `PersistSigned` and `Commit` in the store before the next
//! output), with the choices a real driver makes: its policy co-signs or refuses a valid
//! proposal, and a refusal of any kind is answered with a `Reject`.
//!
//! A step runs one machine call and all of its outputs at once. A crash in the middle of them
//! needs no step of its own: the outputs always persist first and send last, so a crash
//! between them leaves the store as after the whole step with the message never sent, which the
//! model reaches as "the step, the network loses the message, the crash".

use crate::encode;
use crate::fixture::{channel_key, ctx_at, Ch, MAIN, NOW};
use crate::memo::Cache;
use sluice_protocol::session::{ChannelSession, LockRefusal, Output, Refusal, Signed};
use sluice_protocol::wire::hub::SessionMsg;
use sluice_protocol::{Canonical, Change, Height, Party, Position, Signature, Snapshot};
use std::hash::{Hash, Hasher};

/// What an honest party keeps durably: exactly what the machine told it to persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub latest: Snapshot,
    pub signed: Signed,
}

/// What a driver feeds its machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The party's own command.
    Propose(Change),
    /// A message from the peer; `take` is the policy's verdict should it be a valid proposal.
    Receive { msg: Box<SessionMsg>, take: bool },
    /// The connection dropped and came back: drop the proposal in flight, send our `Sync`.
    Reconnect,
}

impl Input {
    fn key(&self) -> Vec<u8> {
        match self {
            Input::Propose(c) => [vec![0], c.to_bytes()].concat(),
            Input::Receive { msg, take } => {
                [vec![1, u8::from(*take)], encode::message(msg)].concat()
            }
            Input::Reconnect => vec![2],
        }
    }
}

/// The machine after one call, its key, and the outputs the driver must execute.
pub type Stepped = (ChannelSession, u128, Vec<Output>);

/// The cache of machine calls: (machine key, input key) to what the call did.
pub type Steps = Cache<(u128, Vec<u8>), Stepped>;

/// The cache of restarts: (party, planted, store) to the machine rebuilt from it, with its key.
pub type Boots = Cache<Vec<u8>, (ChannelSession, u128)>;

#[derive(Debug, Clone)]
pub struct Honest {
    pub me: Party,
    /// The channel this party is on (see [`crate::fixture::Ch`]).
    pub ch: Ch,
    pub session: ChannelSession,
    /// [`encode::machine`] of `session`.
    pub key: u128,
    pub store: Store,
    /// Ghost, not the party's: every state this party ever signed, with its signature, sorted
    /// by the signature (which names the state: signing is deterministic). Kept across
    /// crashes, for the properties; it is also what the Byzantine B, who sees every message A
    /// sends, holds of A's.
    pub ever_signed: Vec<(Position, Signature)>,
    /// Whether this party's machine runs the planted old rule (re-planted on every restart).
    pub planted: bool,
    /// A digest of all the above, for the model state's hash; see [`Honest::refresh`].
    digest: u64,
}

impl Honest {
    pub fn new(me: Party, planted: bool) -> Self {
        Honest::on(MAIN, me, planted)
    }

    /// Party `me` of channel `ch`, at the channel's opening.
    pub fn on(ch: Ch, me: Party, planted: bool) -> Self {
        let store = Store {
            latest: crate::fixture::opening_of(ch),
            signed: Signed::default(),
        };
        let session = boot(ch, me, &store, planted);
        Honest {
            me,
            ch,
            key: encode::machine(&session),
            session,
            store,
            ever_signed: Vec::new(),
            planted,
            digest: 0,
        }
        .refreshed()
    }

    fn refreshed(mut self) -> Self {
        self.refresh();
        self
    }

    /// Recomputes the digest after a change. States are named by signatures: a signature
    /// covers the state's hash, and signing is deterministic.
    fn refresh(&mut self) {
        let mut bytes = self.store_id();
        bytes.extend_from_slice(&self.key.to_be_bytes());
        for (_, sig) in &self.ever_signed {
            bytes.extend_from_slice(&sig.0);
        }
        self.digest = encode::digest(&bytes);
    }

    /// Names what a restart depends on: who, the planted rule, and the store (its latest
    /// named by A's signature on it, the one version-0 state by its version).
    fn store_id(&self) -> Vec<u8> {
        let mut bytes = vec![
            self.ch,
            u8::from(self.me == Party::B),
            u8::from(self.planted),
            u8::from(self.store.signed.is_final),
        ];
        bytes.extend_from_slice(&self.store.signed.version.to_be_bytes());
        bytes.extend_from_slice(&self.store.latest.state().version.to_be_bytes());
        bytes.extend_from_slice(&self.store.latest.cosigned.sig_a.0);
        bytes
    }

    /// The party crashed: everything not in its store is gone; it restarts from the store.
    pub fn restart(&mut self, boots: &Boots) {
        (self.session, self.key) = self.booted(boots);
        self.refresh();
    }

    /// Whether a crash now would lose anything: a proposal in flight, or what the machine
    /// learnt beyond its store.
    pub fn crash_loses_something(&self, boots: &Boots) -> bool {
        self.booted(boots).1 != self.key
    }

    /// The machine a restart from the store builds, with its key.
    fn booted(&self, boots: &Boots) -> (ChannelSession, u128) {
        boots.get(self.store_id(), || {
            let session = boot(self.ch, self.me, &self.store, self.planted);
            let key = encode::machine(&session);
            (session, key)
        })
    }

    /// Runs `input` through the machine and executes its outputs in order. Returns the messages
    /// sent, or `None` if the machine refused a command (nothing happened).
    pub fn step(&mut self, input: &Input, steps: &Steps) -> Option<Vec<SessionMsg>> {
        self.step_at(input, NOW, steps)
    }

    /// [`Honest::step`] with the chain at `height` (what `apply` checks expiries against).
    pub fn step_at(
        &mut self,
        input: &Input,
        height: Height,
        steps: &Steps,
    ) -> Option<Vec<SessionMsg>> {
        let input_key = [input.key(), height.to_be_bytes().to_vec()].concat();
        let (session, key, outputs) = steps.get((self.key, input_key), || {
            let mut session = self.session.clone();
            let outputs = call(&mut session, input, height);
            let key = encode::machine(&session);
            (session, key, outputs)
        });
        if matches!(input, Input::Propose(_)) && outputs.is_empty() {
            return None;
        }
        self.session = session;
        self.key = key;
        let mut sent = Vec::new();
        for out in outputs {
            // The crash model above relies on it.
            assert!(
                sent.is_empty() || matches!(out, Output::Send(_)),
                "the machine asked to persist after sending"
            );
            match out {
                Output::PersistSigned(s) => self.store.signed = self.store.signed.max(s),
                Output::Commit(c) => {
                    self.store.latest = c.snapshot.clone();
                    self.store.signed = self.store.signed.max(c.signed);
                    let co = &c.snapshot.cosigned;
                    let mine = match self.me {
                        Party::A => co.sig_a,
                        Party::B => co.sig_b,
                    };
                    let position = Position {
                        state: co.state,
                        locks: c.snapshot.locks.clone(),
                    };
                    self.note_signed(position, mine);
                }
                Output::Send(msg) => {
                    if let SessionMsg::Propose(p) = msg.as_ref() {
                        let next = self
                            .session
                            .in_flight()
                            .map(|f| f.next.clone())
                            .expect("a proposal just sent is in flight");
                        self.note_signed(next, p.sig);
                    }
                    sent.push(*msg);
                }
            }
        }
        self.refresh();
        Some(sent)
    }

    fn note_signed(&mut self, p: Position, sig: Signature) {
        if let Err(at) = self.ever_signed.binary_search_by(|(_, s)| s.0.cmp(&sig.0)) {
            self.ever_signed.insert(at, (p, sig));
        }
    }

    /// The states this party signed.
    pub fn signed_positions(&self) -> impl Iterator<Item = &Position> {
        self.ever_signed.iter().map(|(p, _)| p)
    }
}

/// Equal when the machines' keys and all else are: the machine itself has no `PartialEq`.
impl PartialEq for Honest {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
            && self.me == other.me
            && self.ch == other.ch
            && self.key == other.key
            && self.store == other.store
            && self.ever_signed == other.ever_signed
            && self.planted == other.planted
    }
}

impl Hash for Honest {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.digest.hash(h);
    }
}

fn boot(ch: Ch, me: Party, store: &Store, planted: bool) -> ChannelSession {
    let mut s = ChannelSession::new(
        me,
        channel_key(ch, me).clone(),
        channel_key(ch, me.other()).address(),
        store.latest.clone(),
        store.signed,
    );
    if planted {
        s.plant_reject_frees_version();
    }
    s
}

/// The policy's refusal of a valid proposal, as a wallet refuses a lock it has no invoice for.
fn policy_refusal() -> Refusal {
    Refusal::Lock(LockRefusal::NoInvoice)
}

/// One machine call and what the driver does with its answer, as the wallet does: refusals of
/// a proposal are answered with a `Reject`, an `Accept` that fails to verify drops our proposal
/// (in doubt), answers to nothing in flight and invalid `Sync`s are ignored.
fn call(m: &mut ChannelSession, input: &Input, height: Height) -> Vec<Output> {
    let ctx = ctx_at(height);
    match input {
        Input::Propose(change) => m.propose(change.clone(), &ctx, None).unwrap_or_default(),
        Input::Reconnect => {
            m.abandon();
            vec![Output::Send(Box::new(m.sync_msg()))]
        }
        Input::Receive { msg, take } => match msg.as_ref() {
            SessionMsg::Propose(p) => {
                let version = p.state.version;
                match m.on_proposal(p, &ctx) {
                    Ok(checked) if *take => match m.accept(checked) {
                        Ok(outputs) => outputs,
                        Err(why) => vec![m.refuse(version, &why)],
                    },
                    Ok(_) => vec![m.refuse(version, &policy_refusal())],
                    Err(why) => vec![m.refuse(version, &why)],
                }
            }
            SessionMsg::Accept { version, sig, .. } => match m.on_accept(*version, *sig) {
                Ok(commit) => vec![Output::Commit(Box::new(commit))],
                Err(Refusal::UnexpectedAnswer { .. }) => vec![],
                Err(_) => {
                    m.abandon();
                    vec![]
                }
            },
            SessionMsg::Reject {
                version, signed, ..
            } => {
                let _ = m.on_reject(*version, *signed);
                vec![]
            }
            SessionMsg::Sync {
                snapshot, signed, ..
            } => match m.on_sync(snapshot, *signed) {
                Ok(synced) => synced
                    .commit
                    .map(|c| vec![Output::Commit(Box::new(c))])
                    .unwrap_or_default(),
                Err(_) => vec![],
            },
            _ => vec![],
        },
    }
}
