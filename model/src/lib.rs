//! An exhaustive model check of the channel session machine,
//! `sluice_protocol::session::ChannelSession`, against the rule of DESIGN.md §4 ("Versions"):
//! a party never signs two states at one version, a rejected or unanswered proposal burns its
//! version, and a party that signed a `Finalize` signs nothing else; withdrawals the chain paid
//! early (even from a state a party holds only in doubt) are netted out at settlement. The rule
//! exists so that nobody can be robbed: whatever co-signed state the peer enforces on chain, the
//! honest party gets at least what its latest co-signed state gives it (withdrawals included),
//! less its own locks still in doubt.
//!
//! The check drives the real machine, not a copy: an honest A (driven as the driving contract
//! says, crashing and restarting from its store), a B that is either the same honest machine
//! or Byzantine (its own key and every signature A ever gave, which it co-signs, withholds,
//! replays, syncs and enforces at will), a network that loses, duplicates and reorders, and
//! the chain's real close, challenge, secret registry and settlement. Signatures and hashes
//! are the real ones.
//!
//! - [`fixture`]: the channel, its keys, locks and the changes each side may propose.
//! - [`honest`]: the honest driver; [`byzantine`]: what the Byzantine B can do.
//! - [`network`], [`chain`]: the world around the two parties.
//! - [`world`]: the state explored; [`channel`]: its steps, the model itself.
//! - [`properties`]: what must hold; [`trace`]: readable paths.
//! - [`memo`], [`encode`]: caching of slow pure calls and the bytes states are hashed by.
//! - [`payment`]: a second model, one payment through the hub (payer, hub, payee, two
//!   channels of the same real machines) with the hub deciding each step by the real
//!   `sluice_hub::payments::lifecycle::next_step`, against a Byzantine payer or payee.
//!
//! [`run`] checks both peers within one of two bounds and also plants the old rule ("a reject
//! frees the version") to show that the check catches it; it checks the payment with either
//! end Byzantine too, and plants the hub's old rule ("release the payer's lock when the
//! forward is rejected") to show that the hub's loss is caught.

pub mod byzantine;
pub mod chain;
pub mod channel;
pub mod encode;
pub mod fixture;
pub mod honest;
pub mod memo;
pub mod network;
pub mod payment;
pub mod properties;
pub mod trace;
pub mod world;

pub use channel::{Bounds, ChannelModel, Peer, World};
pub use payment::{PayAction, PayBounds, PayWorld, PaymentModel, Villain};

use serde::Serialize;
use stateright::{Checker, CheckerBuilder, HasDiscoveries, Model};
use std::collections::BTreeSet;
use std::time::Instant;

/// How far [`run`] explores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The bound `cargo test` checks: about 350 000 states of the channel and 350 000 of the
    /// payment, tens of seconds each in a debug build.
    Short,
    /// A fourth proposal, a second crash, a third message in flight: about 23 million states,
    /// minutes in a release build (depth first, so memory stays small).
    Deep,
}

impl Depth {
    /// The bounds against `peer`. Two honest machines interleave far more than one machine
    /// against a B that needs none, so they get fewer duplicates and messages in flight; the
    /// Byzantine run covers those (and an honest B is one of the things a Byzantine B can be).
    pub fn bounds(self, peer: Peer) -> Bounds {
        let byzantine = peer == Peer::Byzantine;
        match self {
            Depth::Short => Bounds {
                proposals: 3,
                crashes: 1,
                reconnects: 1,
                forgeries: 1,
                duplicates: u8::from(byzantine),
                in_flight: 2,
            },
            Depth::Deep => Bounds {
                proposals: 4,
                crashes: 2,
                reconnects: 1,
                forgeries: 1,
                duplicates: 1,
                in_flight: if byzantine { 3 } else { 2 },
            },
        }
    }

    /// Breadth first finds shortest counterexamples; depth first keeps only the fingerprints
    /// of visited states, which the deep bound needs.
    fn depth_first(self) -> bool {
        self == Depth::Deep
    }
}

/// What one check found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Distinct states explored.
    pub states: usize,
    /// The longest path explored, in steps.
    pub max_depth: usize,
    pub secs: f64,
    /// Each `always` property that failed, with the readable path to its counterexample.
    pub failures: Vec<(&'static str, Vec<String>)>,
    /// Each `sometimes` property no explored state showed.
    pub unreached: Vec<&'static str>,
}

impl Outcome {
    pub fn held(&self) -> bool {
        self.failures.is_empty() && self.unreached.is_empty()
    }

    pub fn failure(&self, property: &str) -> Option<&[String]> {
        self.failures
            .iter()
            .find(|(name, _)| *name == property)
            .map(|(_, lines)| lines.as_slice())
    }
}

/// Explores every state of `model` reachable within its bounds, breadth first, and stops at
/// the first counterexample (a shortest one: the checker keeps the last violation it met, so
/// going on would replace it by longer ones).
pub fn check(model: ChannelModel) -> Outcome {
    run_checker(model, HasDiscoveries::AnyFailures, false)
}

/// A model [`run_checker`] can explain counterexamples of.
trait Explained: Model + Send + Sync + Sized + 'static
where
    Self::State: Clone + PartialEq + std::hash::Hash + Send + Sync + 'static,
    Self::Action: Clone + PartialEq + Send + Sync + 'static,
{
    fn explain(&self, path: &stateright::Path<Self::State, Self::Action>) -> Vec<String>;
}

impl Explained for ChannelModel {
    fn explain(&self, path: &stateright::Path<World, channel::Action>) -> Vec<String> {
        trace::explain(self, path)
    }
}

impl Explained for PaymentModel {
    fn explain(&self, path: &stateright::Path<PayWorld, PayAction>) -> Vec<String> {
        payment::explain(self, path)
    }
}

fn run_checker<M: Explained>(model: M, finish: HasDiscoveries, depth_first: bool) -> Outcome
where
    M::State: Clone + PartialEq + std::hash::Hash + Send + Sync + 'static,
    M::Action: Clone + PartialEq + Send + Sync + 'static,
{
    let started = Instant::now();
    let properties = model.properties();
    let builder: CheckerBuilder<M> = model.checker().finish_when(finish);
    let checker: Box<dyn Checker<M>> = match depth_first {
        true => Box::new(builder.spawn_dfs().join()),
        false => Box::new(builder.spawn_bfs().join()),
    };
    let discoveries = checker.discoveries();
    let mut failures = Vec::new();
    let mut unreached = Vec::new();
    for p in &properties {
        let found = discoveries.get(p.name);
        match (p.expectation.discovery_is_failure(), found) {
            (true, Some(path)) => failures.push((p.name, checker.model().explain(path))),
            (false, None) => unreached.push(p.name),
            _ => {}
        }
    }
    Outcome {
        states: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        secs: started.elapsed().as_secs_f64(),
        failures,
        unreached,
    }
}

/// The real machine against a Byzantine and against an honest B, within `depth`.
pub fn check_real(depth: Depth) -> [Outcome; 2] {
    [Peer::Byzantine, Peer::Honest].map(|peer| {
        let model = ChannelModel::new(peer, depth.bounds(peer), false);
        run_checker(model, HasDiscoveries::AnyFailures, depth.depth_first())
    })
}

/// The machine with the old rule planted, against a Byzantine B within `depth` but with no
/// connection drops (a drop frees the version too under that rule, and makes shorter paths,
/// but the rule is named for the reject): one run that stops at the first fork, one at the
/// first robbery, both breadth first. The outcome adds up both runs and keeps the
/// counterexample each was looking for.
pub fn check_planted(depth: Depth) -> Outcome {
    let mut total = Outcome {
        states: 0,
        max_depth: 0,
        secs: 0.0,
        failures: Vec::new(),
        unreached: Vec::new(),
    };
    for target in [properties::NO_FORK, properties::PAYOUT] {
        let bounds = Bounds {
            reconnects: 0,
            ..depth.bounds(Peer::Byzantine)
        };
        let model = ChannelModel::new(Peer::Byzantine, bounds, true);
        let finish = HasDiscoveries::AnyOf(BTreeSet::from([target]));
        let o = run_checker(model, finish, false);
        total.states += o.states;
        total.max_depth = total.max_depth.max(o.max_depth);
        total.secs += o.secs;
        total
            .failures
            .extend(o.failures.into_iter().filter(|(name, _)| *name == target));
    }
    total
}

/// What `sluice-bench model` prints, as one JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bench: &'static str,
    /// Distinct states of the checks of the real machine and of the payment.
    pub states: usize,
    pub max_depth: usize,
    /// Wall time of all the checks, the planted ones included.
    pub secs: f64,
    /// Every property held against both peers and in both payment variants, and every
    /// reachability property was reached.
    pub properties_held: bool,
    /// The planted old rules were caught: the checker showed a fork or a robbery, and the
    /// hub's loss under the old payment rule.
    pub old_rule_counterexample: bool,
}

/// Checks the real machine against both peers and the planted old rule, within `depth`.
pub fn run(depth: Depth) -> Report {
    let started = Instant::now();
    let mut real = check_real(depth).to_vec();
    real.extend(check_payment(depth));
    let planted = check_planted(depth);
    let planted_payment = check_payment_planted(depth);
    Report {
        bench: "model",
        states: real.iter().map(|o| o.states).sum(),
        max_depth: real.iter().map(|o| o.max_depth).max().unwrap_or(0),
        secs: started.elapsed().as_secs_f64(),
        properties_held: real.iter().all(Outcome::held),
        old_rule_counterexample: (planted.failure(properties::NO_FORK).is_some()
            || planted.failure(properties::PAYOUT).is_some())
            && planted_payment.failure(payment::HUB_WHOLE).is_some(),
    }
}

impl Depth {
    /// The bounds of the payment model.
    pub fn payment_bounds(self) -> PayBounds {
        match self {
            Depth::Short => PayBounds { hub: 3, peers: 2 },
            Depth::Deep => PayBounds { hub: 5, peers: 3 },
        }
    }
}

/// The payment through the hub with a Byzantine payer and with a Byzantine payee, within
/// `depth`.
pub fn check_payment(depth: Depth) -> [Outcome; 2] {
    [Villain::Payer, Villain::Payee].map(|villain| check_payment_of(villain, depth))
}

/// The payment with a Byzantine `villain`, within `depth`.
pub fn check_payment_of(villain: Villain, depth: Depth) -> Outcome {
    let model = PaymentModel::new(villain, depth.payment_bounds(), false);
    run_checker(model, HasDiscoveries::AnyFailures, depth.depth_first())
}

/// The payment with the hub's old rule planted ("release the payer's lock when the forward is
/// rejected") against a Byzantine payee, breadth first until the hub's loss shows.
pub fn check_payment_planted(depth: Depth) -> Outcome {
    let model = PaymentModel::new(Villain::Payee, depth.payment_bounds(), true);
    let finish = HasDiscoveries::AnyOf(BTreeSet::from([payment::HUB_WHOLE]));
    let mut o = run_checker(model, finish, false);
    o.failures.retain(|(name, _)| *name == payment::HUB_WHOLE);
    o
}
