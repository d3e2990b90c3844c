//! Canonical bytes for what the model hashes and compares: the protocol's types have no `Hash`
//! of their own, and their canonical encoding is the one that already means "same state".

use sluice_protocol::encoding::Writer;
use sluice_protocol::onchain::ChannelStatus;
use sluice_protocol::session::ChannelSession;
use sluice_protocol::wire::hub::SessionMsg;
use sluice_protocol::{Canonical, Snapshot};
use std::hash::{DefaultHasher, Hash, Hasher};

pub fn snapshot(s: &Snapshot) -> Vec<u8> {
    s.to_bytes()
}

/// A message's meaning: everything a receiver acts on (a `Reject`'s free-text reason is left
/// out; no receiver reads it).
pub fn message(m: &SessionMsg) -> Vec<u8> {
    let mut w = Writer::new();
    match m {
        SessionMsg::Propose(p) => {
            w.u8(0);
            p.change.encode(&mut w);
            p.state.encode(&mut w);
            w.signature(&p.sig);
        }
        SessionMsg::Accept { version, sig, .. } => {
            w.u8(1).u64(*version).signature(sig);
        }
        SessionMsg::Reject {
            version,
            code,
            signed,
            ..
        } => {
            w.u8(2)
                .u64(*version)
                .u64(*signed)
                .bytes(format!("{code:?}").as_bytes());
        }
        SessionMsg::Sync {
            snapshot, signed, ..
        } => {
            w.u8(3);
            snapshot.encode(&mut w);
            w.u64(*signed);
        }
        other => {
            w.u8(9).bytes(format!("{other:?}").as_bytes());
        }
    }
    w.into_bytes()
}

pub fn status(s: &ChannelStatus) -> Vec<u8> {
    let mut w = Writer::new();
    match s {
        ChannelStatus::Open => {
            w.u8(0);
        }
        ChannelStatus::Closing {
            stored,
            settle_after,
        } => {
            w.u8(1);
            stored.encode(&mut w);
            w.u64(*settle_after);
        }
        ChannelStatus::Settled { payout_a, payout_b } => {
            w.u8(2).u64(*payout_a).u64(*payout_b);
        }
    }
    w.into_bytes()
}

/// A 64-bit digest of `bytes`, for `Hash` impls that hash a precomputed digest.
pub fn digest(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// A key for a machine's whole state. The machine keeps private fields (what it knows the peer
/// signed, a planted rule), so the key is taken from its `Debug` text, which names every field
/// and so stays complete if the machine grows one. 128 bits of two keyed SipHashes: the text is
/// long, and a collision would need about 2^64 distinct machines.
pub fn machine(m: &ChannelSession) -> u128 {
    let text = format!("{m:?}");
    let half = |seed: u64| {
        let mut h = DefaultHasher::new();
        seed.hash(&mut h);
        text.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}
