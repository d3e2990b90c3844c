//! The network between the two parties: a bounded bag of messages in flight. Any message may
//! be delivered next (reordering), lost, or copied (duplication); a message sent while the bag
//! is full is lost.

use crate::encode;
use sluice_protocol::wire::hub::SessionMsg;
use sluice_protocol::Party;
use std::hash::{Hash, Hasher};

/// A message on its way to `to`.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub to: Party,
    pub msg: SessionMsg,
    key: Vec<u8>,
    digest: u64,
}

impl Envelope {
    pub fn new(to: Party, msg: SessionMsg) -> Self {
        let key = [vec![u8::from(to == Party::B)], encode::message(&msg)].concat();
        let digest = encode::digest(&key);
        Envelope {
            to,
            msg,
            key,
            digest,
        }
    }
}

impl PartialEq for Envelope {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Envelope {}

impl Hash for Envelope {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.digest.hash(h);
    }
}

/// The messages in flight, kept sorted so that one multiset has one representation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Bag {
    items: Vec<Envelope>,
}

impl Bag {
    pub fn items(&self) -> &[Envelope] {
        &self.items
    }

    /// Puts `msg` in flight toward `to`, unless `cap` messages already are (then it is lost).
    pub fn send(&mut self, to: Party, msg: SessionMsg, cap: usize) {
        if self.items.len() < cap {
            let e = Envelope::new(to, msg);
            let at = self.items.partition_point(|x| x.key <= e.key);
            self.items.insert(at, e);
        }
    }

    /// Takes message `at` out of the bag (delivered or lost).
    pub fn take(&mut self, at: usize) -> Option<Envelope> {
        (at < self.items.len()).then(|| self.items.remove(at))
    }

    /// Copies message `at`, if there is room.
    pub fn duplicate(&mut self, at: usize, cap: usize) -> bool {
        match self.items.get(at) {
            Some(e) if self.items.len() < cap => {
                let e = e.clone();
                self.send(e.to, e.msg, cap);
                true
            }
            _ => false,
        }
    }

    /// Empties the bag, returning what was in flight.
    pub fn drain(&mut self) -> Vec<Envelope> {
        std::mem::take(&mut self.items)
    }
}
