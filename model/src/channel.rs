//! The model: one channel between an honest A and a B that is honest or Byzantine, a lossy,
//! duplicating, reordering network, crashes of honest parties, and the chain. Its state is
//! [`World`], its steps are [`Action`]s; `stateright` explores every interleaving within the
//! [`Bounds`].

use crate::byzantine::{self, Byzantine, Signatures};
use crate::chain::{Chain, Verdicts};
use crate::fixture::{menu, secret_of};
use crate::honest::{Boots, Honest, Input, Steps};
use crate::memo::Cache;
use crate::network::{Bag, Envelope};
use crate::properties;
pub use crate::world::{Bounds, Budget, Peer, World, B};
use sluice_protocol::wire::hub::{Proposal, SessionMsg};
use sluice_protocol::{Change, Party, Snapshot};
use stateright::{Model, Property};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// An honest party proposes.
    Propose {
        by: Party,
        change: Change,
    },
    /// The receiver takes message `at` and handles it honestly; `take` is its policy's verdict
    /// on a valid proposal.
    Deliver {
        at: usize,
        env: Envelope,
        take: bool,
    },
    Lose {
        at: usize,
        env: Envelope,
    },
    Duplicate {
        at: usize,
        env: Envelope,
    },
    Crash(Party),
    Reconnect,
    /// The Byzantine B sends A a message of its choice.
    Forge {
        msg: SessionMsg,
        kind: Forgery,
    },
    Close {
        by: Party,
        snapshot: Snapshot,
    },
    Challenge {
        by: Party,
        snapshot: Snapshot,
    },
    CooperativeClose {
        by: Party,
        snapshot: Snapshot,
    },
    /// `by` has the chain pay the withdrawals in `snapshot` (the channel stays open).
    Withdraw {
        by: Party,
        snapshot: Snapshot,
    },
    /// The challenge window ends with the secrets of `registered` on chain (registered at
    /// [`NOW`](crate::fixture::NOW), in time; one registered later pays nothing, as if never),
    /// the chain reaches [`LATER`](crate::fixture::LATER) and the channel settles. One step:
    /// registrations and challenges commute, and nothing else happens in between. An honest
    /// party always registers its secret (it claims what is locked toward it); the Byzantine
    /// B may or may not.
    Settle {
        registered: Vec<Party>,
    },
}

/// What a message of the Byzantine B is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    /// A proposal on A's latest state (what an honest B would send too).
    Propose,
    /// Co-signs A's proposal in flight and says so.
    Accept,
    /// Co-signs A's proposal in flight (it holds A's signature) and answers `Reject`.
    Reject,
    /// A `Sync` with any co-signed snapshot it can make.
    Sync,
    /// One of its old proposals again.
    Replay,
}

/// The caches of the model's slow pure calls (see [`crate::memo`]).
#[derive(Debug, Default)]
pub struct Caches {
    pub steps: Steps,
    pub signatures: Signatures,
    pub chain: Verdicts,
    pub boots: Boots,
    /// The Byzantine B's proposals, by A's machine key, the version and the change.
    pub proposals: Cache<(u128, u64, Vec<u8>), Option<SessionMsg>>,
}

#[derive(Debug)]
pub struct ChannelModel {
    pub peer: Peer,
    pub bounds: Bounds,
    /// Whether the honest machines run the planted old rule ("a reject frees the version").
    pub planted: bool,
    pub caches: Caches,
}

impl ChannelModel {
    pub fn new(peer: Peer, bounds: Bounds, planted: bool) -> Self {
        ChannelModel {
            peer,
            bounds,
            planted,
            caches: Caches::default(),
        }
    }

    /// The co-signed snapshots `p` may close or challenge with: an honest party's latest
    /// (from its store), or any the Byzantine B can make.
    fn snapshots_of(&self, w: &World, p: Party) -> Vec<Snapshot> {
        match w.honest(p) {
            Some(h) => vec![h.store.latest.clone()],
            None => byzantine::snapshots(&w.a, &self.caches.signatures),
        }
    }

    fn off_chain_actions(&self, w: &World, out: &mut Vec<Action>) {
        for by in [Party::A, Party::B] {
            let Some(h) = w.honest(by) else { continue };
            // Offered even while busy or after a final state: the machine must refuse.
            if w.left.proposals > 0 {
                for change in menu(by) {
                    out.push(Action::Propose { by, change });
                }
            }
            if w.left.crashes > 0 && h.crash_loses_something(&self.caches.boots) {
                out.push(Action::Crash(by));
            }
        }
        let items = w.net.items();
        for (at, env) in items.iter().enumerate() {
            if at > 0 && items[at - 1] == *env {
                continue; // a copy of the previous one: the same steps
            }
            let e = || env.clone();
            out.push(Action::Deliver {
                at,
                env: e(),
                take: true,
            });
            // A policy refuses locks (no invoice for it, no collateral to forward it); every
            // other change a valid proposal makes is co-signed.
            if let SessionMsg::Propose(Proposal {
                change: Change::AddLock { .. },
                ..
            }) = &env.msg
            {
                out.push(Action::Deliver {
                    at,
                    env: e(),
                    take: false,
                });
            }
            out.push(Action::Lose { at, env: e() });
            if items.len() < self.bounds.in_flight && w.left.duplicates > 0 {
                out.push(Action::Duplicate { at, env: e() });
            }
        }
        if let B::Byzantine(b) = &w.b {
            byzantine::moves(w, b, &self.caches, out);
        }
        if w.left.reconnects > 0 {
            out.push(Action::Reconnect);
        }
    }

    fn chain_actions(&self, w: &World, out: &mut Vec<Action>) {
        let closers: Vec<(Party, Snapshot)> = [Party::A, Party::B]
            .into_iter()
            .flat_map(|p| self.snapshots_of(w, p).into_iter().map(move |s| (p, s)))
            .collect();
        if w.chain.is_open() {
            for (by, snapshot) in &closers {
                let s = snapshot.state();
                let owed = s.withdrawn_a > w.chain.withdrawn(Party::A)
                    || s.withdrawn_b > w.chain.withdrawn(Party::B);
                if owed && s.version > w.chain.record.withdrawn.version {
                    out.push(Action::Withdraw {
                        by: *by,
                        snapshot: snapshot.clone(),
                    });
                }
            }
            // A close ends the off-chain updates and drops the messages in flight, so closing with
            // messages in flight reaches what closing after losing them all does.
            if !w.net.items().is_empty() {
                return;
            }
            for (by, snapshot) in closers {
                if snapshot.state().is_final {
                    out.push(Action::CooperativeClose {
                        by,
                        snapshot: snapshot.clone(),
                    });
                }
                out.push(Action::Close { by, snapshot });
            }
            return;
        }
        let Some(stored) = w.chain.stored() else {
            return; // settled
        };
        let stored_version = stored.state().version;
        if w.chain.window_open() {
            for (by, snapshot) in closers {
                if snapshot.state().version > stored_version {
                    out.push(Action::Challenge { by, snapshot });
                }
            }
        }
        // An honest party is online during the challenge period (itself or its watchtower):
        // the window closes only once no honest party holds a newer state than the stored one.
        let pending = w
            .honest_parties()
            .iter()
            .any(|h| h.store.latest.state().version > stored_version);
        if !pending {
            let honest: Vec<Party> = [Party::A, Party::B]
                .into_iter()
                .filter(|p| w.honest(*p).is_some())
                .collect();
            out.push(Action::Settle {
                registered: honest.clone(),
            });
            if matches!(w.b, B::Byzantine(_)) {
                let mut with_b = honest;
                with_b.push(Party::B);
                out.push(Action::Settle { registered: with_b });
            }
        }
    }

    /// Puts `from`'s messages on the network. The Byzantine B sees A's as they leave, so those
    /// need no delivery.
    fn send_all(&self, w: &mut World, from: Party, msgs: Vec<SessionMsg>) {
        if from == Party::A && matches!(w.b, B::Byzantine(_)) {
            return;
        }
        for msg in msgs {
            w.net.send(from.other(), msg, self.bounds.in_flight);
        }
    }

    /// Once the channel is closing, off-chain updates are over: honest parties stop (they
    /// see the close at once). What only the updates needed is dropped (machines back to
    /// their stores, messages in flight, budgets), so that closes reached along different
    /// paths meet.
    fn stop_updates(&self, w: &mut World) {
        w.net.drain();
        w.left = Budget::SPENT;
        Arc::make_mut(&mut w.a).restart(&self.caches.boots);
        match &mut w.b {
            B::Honest(b) => Arc::make_mut(b).restart(&self.caches.boots),
            B::Byzantine(b) => *b = Byzantine::default(),
        }
    }

    fn deliver(&self, w: &mut World, at: usize, take: bool) -> Option<()> {
        let env = w.net.take(at)?;
        let to = env.to;
        let input = Input::Receive {
            msg: Box::new(env.msg),
            take,
        };
        let sent = w.honest_mut(to)?.step(&input, &self.caches.steps)?;
        self.send_all(w, to, sent);
        Some(())
    }

    fn propose(&self, w: &mut World, by: Party, change: Change) -> Option<()> {
        w.left.proposals = w.left.proposals.checked_sub(1)?;
        let sent = w
            .honest_mut(by)?
            .step(&Input::Propose(change), &self.caches.steps)?;
        self.send_all(w, by, sent);
        Some(())
    }

    fn reconnect(&self, w: &mut World) -> Option<()> {
        w.left.reconnects = w.left.reconnects.checked_sub(1)?;
        for p in [Party::A, Party::B] {
            if let Some(h) = w.honest_mut(p) {
                let sent = h.step(&Input::Reconnect, &self.caches.steps)?;
                self.send_all(w, p, sent);
            }
        }
        Some(())
    }

    fn forge(&self, w: &mut World, msg: SessionMsg, kind: Forgery) -> Option<()> {
        match kind {
            Forgery::Propose => w.left.proposals = w.left.proposals.checked_sub(1)?,
            Forgery::Sync | Forgery::Replay => {
                w.left.forgeries = w.left.forgeries.checked_sub(1)?
            }
            Forgery::Accept | Forgery::Reject => {}
        }
        let B::Byzantine(b) = &mut w.b else {
            return None;
        };
        if kind == Forgery::Propose && w.left.forgeries > 0 {
            byzantine::note_proposal(b, &msg);
        }
        if w.left.forgeries == 0 {
            b.proposals.clear(); // nothing left to replay them with
        }
        w.net.send(Party::A, msg, self.bounds.in_flight);
        Some(())
    }

    fn step(&self, w: &mut World, action: Action) -> Option<()> {
        let caches = &self.caches;
        match action {
            Action::Propose { by, change } => self.propose(w, by, change),
            Action::Deliver { at, take, .. } => self.deliver(w, at, take),
            Action::Lose { at, .. } => w.net.take(at).map(|_| ()),
            Action::Duplicate { at, .. } => {
                w.left.duplicates = w.left.duplicates.checked_sub(1)?;
                w.net.duplicate(at, self.bounds.in_flight).then_some(())
            }
            Action::Crash(p) => {
                w.left.crashes = w.left.crashes.checked_sub(1)?;
                w.honest_mut(p)?.restart(&self.caches.boots);
                Some(())
            }
            Action::Reconnect => self.reconnect(w),
            Action::Forge { msg, kind } => self.forge(w, msg, kind),
            Action::Close { by, snapshot } => {
                w.chain = w.chain.close(by, &snapshot, &caches.chain)?;
                self.stop_updates(w);
                Some(())
            }
            Action::CooperativeClose { snapshot, .. } => {
                w.chain = w.chain.cooperative_close(&snapshot, &caches.chain)?;
                self.stop_updates(w);
                Some(())
            }
            Action::Challenge { snapshot, .. } => {
                w.chain = w.chain.challenge(&snapshot, &caches.chain)?;
                Some(())
            }
            Action::Withdraw { by, snapshot } => {
                w.chain = w.chain.withdraw(by, &snapshot, &caches.chain)?;
                Some(())
            }
            Action::Settle { registered } => {
                for by in registered {
                    w.chain = w.chain.register(&secret_of(by))?;
                }
                w.chain = w.chain.tick()?.settle()?;
                Some(())
            }
        }
    }
}

impl Model for ChannelModel {
    type State = World;
    type Action = Action;

    fn init_states(&self) -> Vec<World> {
        let b = match self.peer {
            Peer::Honest => B::Honest(Arc::new(Honest::new(Party::B, self.planted))),
            Peer::Byzantine => B::Byzantine(Byzantine::default()),
        };
        vec![World {
            a: Arc::new(Honest::new(Party::A, self.planted)),
            b,
            net: Bag::default(),
            chain: Chain::default(),
            left: Budget {
                proposals: self.bounds.proposals,
                crashes: self.bounds.crashes,
                reconnects: self.bounds.reconnects,
                forgeries: match self.peer {
                    Peer::Byzantine => self.bounds.forgeries,
                    Peer::Honest => 0,
                },
                duplicates: self.bounds.duplicates,
            },
        }]
    }

    fn actions(&self, w: &World, out: &mut Vec<Action>) {
        if w.chain.is_open() {
            self.off_chain_actions(w, out);
        }
        self.chain_actions(w, out);
    }

    fn next_state(&self, w: &World, action: Action) -> Option<World> {
        let mut next = w.clone();
        self.step(&mut next, action)?;
        Some(next)
    }

    fn format_action(&self, action: &Action) -> String {
        crate::trace::action_line(action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::all()
    }
}
