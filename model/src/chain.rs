//! The settlement chain as far as one channel sees it: the real [`ChannelRecord`] transitions
//! of `sluice_protocol::onchain` (withdraw, close, challenge, cooperative close, settle with
//! the real payout rule), the secret registry, and a clock with two heights: [`NOW`], while the channel
//! is used and closed, and [`LATER`], past the challenge window and every lock's expiry.

use crate::encode;
use crate::fixture::{channel_key, record_of, Ch, CHAIN, LATER, MAIN, NOW};
use crate::memo::Cache;
use sluice_protocol::onchain::{ChannelError, ChannelRecord, ChannelStatus, Withdrawn};
use sluice_protocol::{sha256, Amount, CoSigned, Hash32, Height, Party, Snapshot};
use std::hash::{Hash, Hasher};

/// The cache of the chain's signature-checking transitions: (call, status, withdrawals, height)
/// to the new status and withdrawals, or the chain's refusal.
pub type Verdicts = Cache<Vec<u8>, Result<(ChannelStatus, Withdrawn), String>>;

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// Which channel this record is (see [`crate::fixture::Ch`]).
    pub ch: Ch,
    pub record: ChannelRecord,
    pub height: Height,
    /// Registered secrets' hashlocks with the height they were registered at.
    pub registry: Vec<(Hash32, Height)>,
    /// Ghost, for reachability: whether a challenge replaced the state a close stored.
    pub challenged: bool,
    /// Ghost: the version of the state the channel was paid out on.
    pub settled_version: Option<u64>,
}

impl Default for Chain {
    fn default() -> Self {
        Chain::of(MAIN)
    }
}

impl Chain {
    /// Channel `ch` as the chain opened it, at [`NOW`].
    pub fn of(ch: Ch) -> Self {
        Chain {
            ch,
            record: record_of(ch),
            height: NOW,
            registry: Vec::new(),
            challenged: false,
            settled_version: None,
        }
    }
}

impl Hash for Chain {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.ch.hash(h);
        encode::status(&self.record.status).hash(h);
        paid(&self.record).hash(h);
        self.height.hash(h);
        self.registry.hash(h);
        self.challenged.hash(h);
        self.settled_version.hash(h);
    }
}

impl Chain {
    pub fn is_open(&self) -> bool {
        self.record.status == ChannelStatus::Open
    }

    /// The state a close stored, while the channel is closing.
    pub fn stored(&self) -> Option<&Snapshot> {
        match &self.record.status {
            ChannelStatus::Closing { stored, .. } => Some(stored),
            _ => None,
        }
    }

    pub fn payouts(&self) -> Option<(Amount, Amount)> {
        match self.record.status {
            ChannelStatus::Settled { payout_a, payout_b } => Some((payout_a, payout_b)),
            _ => None,
        }
    }

    /// Whether a challenge could still land now.
    pub fn window_open(&self) -> bool {
        matches!(&self.record.status,
            ChannelStatus::Closing { settle_after, .. } if self.height < *settle_after)
    }

    /// `by` closes with `snapshot`; `None` if the chain refuses it.
    pub fn close(&self, by: Party, snapshot: &Snapshot, cache: &Verdicts) -> Option<Chain> {
        let who = channel_key(self.ch, by).address();
        let call = [0, u8::from(by == Party::B)];
        self.transition(&call, snapshot, cache, |rec, h| {
            rec.close(CHAIN, &who, snapshot.clone(), h).map(|_| ())
        })
    }

    /// `by` has the chain pay what `snapshot` withdraws beyond what it paid (open channel only).
    pub fn withdraw(&self, by: Party, snapshot: &Snapshot, cache: &Verdicts) -> Option<Chain> {
        let who = channel_key(self.ch, by).address();
        let call = [3, u8::from(by == Party::B)];
        self.transition(&call, snapshot, cache, |rec, _| {
            rec.withdraw(CHAIN, &who, &snapshot.cosigned).map(|_| ())
        })
    }

    /// What withdrawals paid each side so far.
    pub fn withdrawn(&self, p: Party) -> Amount {
        match p {
            Party::A => self.record.withdrawn.a,
            Party::B => self.record.withdrawn.b,
        }
    }

    /// Anyone replaces the stored state with a strictly newer one inside the window.
    pub fn challenge(&self, snapshot: &Snapshot, cache: &Verdicts) -> Option<Chain> {
        let mut next = self.transition(&[1], snapshot, cache, |rec, h| {
            rec.challenge(CHAIN, snapshot.clone(), h)
        })?;
        next.challenged = true;
        Some(next)
    }

    /// Anyone pays out a final co-signed state at once.
    pub fn cooperative_close(&self, snapshot: &Snapshot, cache: &Verdicts) -> Option<Chain> {
        let cosigned: CoSigned = snapshot.cosigned;
        let mut next = self.transition(&[2], snapshot, cache, |rec, _| {
            rec.cooperative_close(CHAIN, &cosigned).map(|_| ())
        })?;
        next.settled_version = Some(snapshot.state().version);
        Some(next)
    }

    /// `f` applied to the record at the current height, or `None` if the chain refuses;
    /// cached by `call` (which names `f` and its arguments), status, height and `snapshot`.
    fn transition(
        &self,
        call: &[u8],
        snapshot: &Snapshot,
        cache: &Verdicts,
        f: impl FnOnce(&mut ChannelRecord, Height) -> Result<(), ChannelError>,
    ) -> Option<Chain> {
        let key = [
            vec![self.ch],
            call.to_vec(),
            encode::status(&self.record.status),
            paid(&self.record)
                .iter()
                .flat_map(|x| x.to_be_bytes())
                .collect(),
            self.height.to_be_bytes().to_vec(),
            encode::snapshot(snapshot),
        ]
        .concat();
        let after = cache.get(key, || {
            let mut rec = self.record.clone();
            f(&mut rec, self.height)
                .map(|()| (rec.status, rec.withdrawn))
                .map_err(|e| e.to_string())
        });
        let mut next = self.clone();
        (next.record.status, next.record.withdrawn) = after.ok()?;
        Some(next)
    }

    /// Records `sha256(secret)` at the current height; a second registration changes nothing.
    pub fn register(&self, secret: &Hash32) -> Option<Chain> {
        let hashlock = sha256(&secret.0);
        if self.registry.iter().any(|(h, _)| *h == hashlock) {
            return None;
        }
        let mut next = self.clone();
        next.registry.push((hashlock, self.height));
        next.registry.sort();
        Some(next)
    }

    /// Time passes: the window closes and every lock expires.
    pub fn tick(&self) -> Option<Chain> {
        (self.height < LATER && !self.is_open()).then(|| Chain {
            height: LATER,
            ..self.clone()
        })
    }

    /// Pays out the stored state, with its locks resolved by the registry.
    pub fn settle(&self) -> Option<Chain> {
        let mut next = self.clone();
        let registry = &self.registry;
        next.record
            .settle(self.height, |h| {
                registry.iter().find(|(r, _)| r == h).map(|(_, at)| *at)
            })
            .ok()?;
        next.settled_version = self.stored().map(|s| s.state().version);
        Some(next)
    }
}

/// The chain's record of paid withdrawals, as plain numbers.
fn paid(rec: &ChannelRecord) -> [u64; 3] {
    let w = rec.withdrawn;
    [w.a, w.b, w.version]
}
