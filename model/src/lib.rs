//! An exhaustive model check of the channel session machine,
//! `sluice_protocol::session::ChannelSession`, against the rule of DESIGN.md §4 ("Versions"):
//! a party never signs two states at one version, a rejected or unanswered proposal burns its
//! version, and a party that signed a `Finalize` signs nothing else. The rule exists so that
//! nobody can be robbed: whatever co-signed state the peer enforces on chain, the honest party
//! gets at least what its latest co-signed state gives it, less its own locks still in doubt.
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
//!
//! [`run`] checks both peers within one of two bounds and also plants the old rule ("a reject
//! frees the version") to show that the check catches it.

pub mod byzantine;
pub mod chain;
pub mod channel;
pub mod encode;
pub mod fixture;
pub mod honest;
pub mod memo;
pub mod network;
pub mod properties;
pub mod trace;
pub mod world;

pub use channel::{Bounds, ChannelModel, Peer};

use serde::Serialize;
use stateright::{Checker, CheckerBuilder, HasDiscoveries, Model};
use std::collections::BTreeSet;
use std::time::Instant;

/// How far [`run`] explores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The bound `cargo test` checks: about 350 000 states, tens of seconds in a debug build.
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

fn run_checker(model: ChannelModel, finish: HasDiscoveries, depth_first: bool) -> Outcome {
    let started = Instant::now();
    let properties = model.properties();
    let builder: CheckerBuilder<ChannelModel> = model.checker().finish_when(finish);
    let checker: Box<dyn Checker<ChannelModel>> = match depth_first {
        true => Box::new(builder.spawn_dfs().join()),
        false => Box::new(builder.spawn_bfs().join()),
    };
    let discoveries = checker.discoveries();
    let mut failures = Vec::new();
    let mut unreached = Vec::new();
    for p in &properties {
        let found = discoveries.get(p.name);
        match (p.expectation.discovery_is_failure(), found) {
            (true, Some(path)) => failures.push((p.name, trace::explain(checker.model(), path))),
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
    /// Distinct states of the two checks of the real machine.
    pub states: usize,
    pub max_depth: usize,
    /// Wall time of all the checks, the planted ones included.
    pub secs: f64,
    /// Every property held against both peers, and every reachability property was reached.
    pub properties_held: bool,
    /// The planted old rule was caught: the checker showed a fork or a robbery.
    pub old_rule_counterexample: bool,
}

/// Checks the real machine against both peers and the planted old rule, within `depth`.
pub fn run(depth: Depth) -> Report {
    let started = Instant::now();
    let real = check_real(depth);
    let planted = check_planted(depth);
    Report {
        bench: "model",
        states: real.iter().map(|o| o.states).sum(),
        max_depth: real.iter().map(|o| o.max_depth).max().unwrap_or(0),
        secs: started.elapsed().as_secs_f64(),
        properties_held: real.iter().all(Outcome::held),
        old_rule_counterexample: planted.failure(properties::NO_FORK).is_some()
            || planted.failure(properties::PAYOUT).is_some(),
    }
}
