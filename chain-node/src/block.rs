//! Block headers and the commitments in them.
//!
//! - `tx_root = tagged_hash("sluice/block", 0x01 || u32 count || id_1 || … || id_n)`
//! - `hash    = tagged_hash("sluice/block", 0x00 || height || parent || state_root || tx_root
//!              || time_ms || proposer || tx_count)` (integers big-endian)
//!
//! The leading byte keeps the two preimages apart under the one tag.

use crate::state::StateWrites;
use sluice_protocol::encoding::Writer;
use sluice_protocol::hash::{tagged_hash, Hash32, Tag};
use sluice_protocol::rpc::{BlockHeader, Event, TxReceipt};
use sluice_protocol::{Address, Height};

/// Commitment to the ordered list of a block's transaction ids.
pub fn tx_root(ids: &[Hash32]) -> Hash32 {
    let mut w = Writer::new();
    w.u8(1).u32(ids.len() as u32);
    for id in ids {
        w.hash(id);
    }
    tagged_hash(Tag::Block, &w.into_bytes())
}

/// The header's own hash over every other header field.
pub fn header_hash(h: &BlockHeader) -> Hash32 {
    let mut w = Writer::new();
    w.u8(0)
        .u64(h.height)
        .hash(&h.parent)
        .hash(&h.state_root)
        .hash(&h.tx_root)
        .u64(h.time_ms)
        .address(&h.proposer)
        .u32(h.tx_count);
    tagged_hash(Tag::Block, &w.into_bytes())
}

/// Builds a header and fills in its hash.
pub fn make_header(
    height: Height,
    parent: Hash32,
    state_root: Hash32,
    ids: &[Hash32],
    time_ms: u64,
    proposer: Address,
) -> BlockHeader {
    let mut h = BlockHeader {
        height,
        parent,
        hash: Hash32::default(),
        state_root,
        tx_root: tx_root(ids),
        time_ms,
        proposer,
        tx_count: ids.len() as u32,
    };
    h.hash = header_hash(&h);
    h
}

/// A transaction as included in a block: its canonical bytes and how it ended.
#[derive(Debug, Clone)]
pub struct IncludedTx {
    pub id: Hash32,
    pub from: Address,
    pub kind: &'static str,
    /// Canonical `SignedTx` bytes, stored so the block can be replayed.
    pub bytes: Vec<u8>,
    pub receipt: TxReceipt,
}

/// A block ready to commit: header, included transactions, events and state writes.
#[derive(Debug, Clone)]
pub struct SealedBlock {
    pub header: BlockHeader,
    pub txs: Vec<IncludedTx>,
    pub events: Vec<Event>,
    pub writes: StateWrites,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_hash_covers_fields() {
        let h = make_header(
            1,
            Hash32([1; 32]),
            Hash32([2; 32]),
            &[],
            5,
            Address([3; 32]),
        );
        let mut h2 = h.clone();
        h2.time_ms = 6;
        assert_ne!(header_hash(&h), header_hash(&h2));
        assert_eq!(h.hash, header_hash(&h));
        assert_ne!(tx_root(&[]), tx_root(&[Hash32([0; 32])]));
    }
}
