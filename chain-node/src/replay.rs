//! Replay verification: re-executes every committed block from genesis in memory and checks that
//! the ledger equals the replay: each header's state root, tx root and hash, each receipt, the
//! final accounts, channels and secrets, and conservation of the genesis supply.
//! Used by `sluice-node verify` (e.g. after a SIGKILL) and by tests.

use crate::block::{header_hash, tx_root};
use crate::chain::genesis_header;
use crate::execution::{execute_block, ExecParams};
use crate::genesis::Genesis;
use crate::ledger::Ledger;
use crate::sigverify::VerifiedTx;
use crate::state::{MemState, StoreError};
use serde::Serialize;
use sluice_protocol::onchain::ChannelStatus;
use std::sync::Arc;

#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub height: u64,
    pub txs: u64,
    pub state_root: String,
    pub supply: u64,
    pub accounts: usize,
    pub channels: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("block {height}: {what}")]
    Mismatch { height: u64, what: String },
}

fn mismatch(height: u64, what: impl Into<String>) -> ReplayError {
    ReplayError::Mismatch {
        height,
        what: what.into(),
    }
}

pub fn replay(ledger: &Ledger, genesis: &Genesis) -> Result<ReplayReport, ReplayError> {
    let tip = ledger.tip()?.ok_or_else(|| mismatch(0, "empty ledger"))?;
    let g = ledger.block(0)?.ok_or_else(|| mismatch(0, "missing"))?;
    if g.header != genesis_header(genesis) {
        return Err(mismatch(0, "genesis header differs from the genesis file"));
    }
    let mut state = MemState(genesis.writes());
    let mut prev = g.header;
    let mut txs = 0u64;
    for height in 1..=tip.height {
        let block = ledger
            .block(height)?
            .ok_or_else(|| mismatch(height, "missing"))?;
        let h = &block.header;
        if h.parent != prev.hash || h.hash != header_hash(h) || h.tx_root != tx_root(&block.txs) {
            return Err(mismatch(height, "header does not link or hash"));
        }
        let mut candidates = Vec::with_capacity(block.txs.len());
        let mut receipts = Vec::with_capacity(block.txs.len());
        for id in &block.txs {
            let st = ledger
                .stored_tx(id)?
                .ok_or_else(|| mismatch(height, format!("tx {id} missing")))?;
            let vtx = VerifiedTx::check(st.bytes, usize::MAX)
                .map_err(|e| mismatch(height, format!("tx {id}: {e}")))?;
            receipts.push(st.receipt);
            candidates.push(Arc::new(vtx));
        }
        let params = ExecParams {
            chain_id: genesis.chain_id,
            height,
            proposer: h.proposer,
            min_fee: genesis.min_fee,
            channel_limits: genesis.channel_limits,
        };
        let ex = execute_block(&state, &params, &candidates)?;
        if !ex.skipped.is_empty() {
            return Err(mismatch(
                height,
                "a stored transaction is not includable on replay",
            ));
        }
        let replayed: Vec<_> = ex.included.iter().map(|t| t.receipt.clone()).collect();
        if replayed != receipts {
            return Err(mismatch(height, "receipts differ"));
        }
        if ex.writes.next_root(&prev.state_root) != h.state_root {
            return Err(mismatch(height, "state root differs from the replay"));
        }
        state.apply(&ex.writes);
        txs += block.txs.len() as u64;
        prev = block.header;
    }
    if prev.hash != tip.hash {
        return Err(mismatch(tip.height, "tip is not the last block"));
    }
    if ledger.full_state()? != state.0 {
        return Err(mismatch(
            tip.height,
            "stored state differs from the replayed state",
        ));
    }
    let supply = supply(&state);
    if supply != genesis.total_supply() as u128 {
        return Err(mismatch(
            tip.height,
            format!("supply {supply} != genesis {}", genesis.total_supply()),
        ));
    }
    Ok(ReplayReport {
        height: tip.height,
        txs,
        state_root: tip.state_root.to_string(),
        supply: supply as u64,
        accounts: state.0.accounts.len(),
        channels: state.0.channels.len(),
    })
}

/// Balances plus every unsettled channel's deposits.
fn supply(state: &MemState) -> u128 {
    let balances: u128 = state.0.accounts.values().map(|a| a.balance as u128).sum();
    let locked: u128 = state
        .0
        .channels
        .values()
        .filter(|c| !matches!(c.status, ChannelStatus::Settled { .. }))
        .map(|c| c.deposit_a as u128 + c.deposit_b as u128)
        .sum();
    balances + locked
}
