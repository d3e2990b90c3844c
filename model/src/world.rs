//! The state the model explores: the two parties, the network, the chain and what is left of
//! each budget.

use crate::byzantine::Byzantine;
use crate::chain::Chain;
use crate::honest::Honest;
use crate::network::Bag;
use sluice_protocol::{ChannelState, Party};
use std::sync::Arc;

/// Who B is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// B runs the same honest driver and machine as A.
    Honest,
    /// B does whatever its key and A's signatures allow (see [`crate::byzantine`]).
    Byzantine,
}

/// How far the exploration goes: each budget is spent by the actions it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Proposals made by either side, together.
    pub proposals: u8,
    /// Crashes of honest parties, together.
    pub crashes: u8,
    /// Connection drops (honest sides drop what is in flight and send their `Sync`).
    pub reconnects: u8,
    /// Messages the Byzantine B makes up beyond answers and proposals: `Sync`s and replays.
    pub forgeries: u8,
    /// Copies the network makes of a message in flight.
    pub duplicates: u8,
    /// Messages in flight at once.
    pub in_flight: usize,
}

/// What is left of each budget.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Budget {
    pub proposals: u8,
    pub crashes: u8,
    pub reconnects: u8,
    pub forgeries: u8,
    pub duplicates: u8,
}

impl Budget {
    pub const SPENT: Budget = Budget {
        proposals: 0,
        crashes: 0,
        reconnects: 0,
        forgeries: 0,
        duplicates: 0,
    };
}

/// Who B is, with what it keeps.
#[derive(Debug, Clone, PartialEq, Hash)]
pub enum B {
    Honest(Arc<Honest>),
    Byzantine(Byzantine),
}

/// The whole system at one moment.
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct World {
    /// Shared between states until changed: most steps leave a party as it was.
    pub a: Arc<Honest>,
    pub b: B,
    pub net: Bag,
    pub chain: Chain,
    pub left: Budget,
}

impl World {
    /// The honest party `p`, if it is one.
    pub fn honest(&self, p: Party) -> Option<&Honest> {
        match (p, &self.b) {
            (Party::A, _) => Some(&self.a),
            (Party::B, B::Honest(b)) => Some(b),
            (Party::B, B::Byzantine(_)) => None,
        }
    }

    pub(crate) fn honest_mut(&mut self, p: Party) -> Option<&mut Honest> {
        match (p, &mut self.b) {
            (Party::A, _) => Some(Arc::make_mut(&mut self.a)),
            (Party::B, B::Honest(b)) => Some(Arc::make_mut(b)),
            (Party::B, B::Byzantine(_)) => None,
        }
    }

    /// Every honest party.
    pub fn honest_parties(&self) -> Vec<&Honest> {
        [Party::A, Party::B]
            .into_iter()
            .filter_map(|p| self.honest(p))
            .collect()
    }

    /// A's proposal in flight, if any: what the Byzantine B may answer.
    pub(crate) fn a_in_flight(&self) -> Option<ChannelState> {
        self.a.session.in_flight().map(|f| f.next.state)
    }
}
