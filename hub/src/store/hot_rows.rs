//! The channel rows this process last committed, reserved or read for an update, so the next
//! update of a busy channel starts without a read: two round trips fewer per routed payment.
//!
//! A hint, never the truth. Every decision taken on a kept row ends in a compare-and-swap that
//! checks what the decision rested on (version, phase, deposits, reservation, floor: `cas.rs`,
//! `reservations.rs`), so a row another hub process changed meanwhile costs one failed statement
//! and a fresh read, never a wrong commit. Rows are kept only from what the database itself
//! confirmed (a fresh read, a statement that matched); any other write to a channel here drops
//! its row. One field a hub proposal's reservation does not compare is the deposits: they only
//! grow on chain, so a proposal built on an older, smaller deposit is stricter, never unbacked.
//! Only a row that is open with nothing reserved is handed out ([`Store::channel_for_update`]):
//! any refusal is decided on a fresh read.

use super::{now_secs, ChannelPhase, ChannelRow, Reservation, ReserveWith, Store, StoreError};
use sluice_protocol::{Hash32, Snapshot};
use std::collections::HashMap;
use std::sync::Mutex;

/// Rows kept, at most; the map starts over when full.
const MAX_ROWS: usize = 65_536;

/// Whether a row came from memory (and may be stale) or from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Yes,
    No,
}

#[derive(Default)]
pub(super) struct HotRows {
    rows: Mutex<HashMap<Hash32, ChannelRow>>,
}

impl std::fmt::Debug for HotRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HotRows({})", self.map().len())
    }
}

impl HotRows {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Hash32, ChannelRow>> {
        // A panic elsewhere mid-insert leaves a whole map; at worst a row is missing.
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &Hash32) -> Option<ChannelRow> {
        self.map().get(id).cloned()
    }

    pub(super) fn put(&self, row: ChannelRow) {
        let mut map = self.map();
        if map.len() >= MAX_ROWS {
            map.clear();
        }
        map.insert(row.id, row);
    }

    pub(super) fn forget(&self, id: &Hash32) {
        self.map().remove(id);
    }

    /// `base` after `snap` committed over it: what every channel commit writes (the snapshot,
    /// no reservation, the floor raised to the new version, the time).
    pub(super) fn committed(&self, base: &ChannelRow, snap: &Snapshot) {
        let version = snap.state().version;
        self.put(ChannelRow {
            snapshot: snap.clone(),
            pending: None,
            floor: base.floor.max(version),
            updated_at: now_secs(),
            ..base.clone()
        });
    }

    /// `r` was taken: the kept row, if it is the one it was built on, now carries it.
    pub(super) fn reserved(&self, r: &ReserveWith<'_>) {
        let mut map = self.map();
        match map.get_mut(r.id) {
            Some(row) if row.version() == r.built_on && row.pending.is_none() => {
                row.pending = Some(Reservation {
                    snapshot: r.proposed.clone(),
                    until_ms: r.until_ms,
                });
                row.floor = r.proposed.state().version;
            }
            _ => {
                map.remove(r.id);
            }
        }
    }

    /// Keeps or drops `r`'s channel's row after the statement that tried to reserve it.
    pub(super) fn after_reserve(&self, r: Option<ReserveWith<'_>>, taken: bool) {
        match (r, taken) {
            (Some(r), true) => self.reserved(&r),
            (Some(r), false) => self.forget(r.id),
            (None, _) => {}
        }
    }
}

impl Store {
    /// The channel's row to decide an update on: the kept row if it is open with nothing
    /// reserved (`Kept::Yes`), else a fresh read (kept for next time). See the module doc for
    /// why this is safe; a caller that refuses on a kept row decides again on a fresh one.
    pub async fn channel_for_update(
        &self,
        id: &Hash32,
    ) -> Result<(Option<ChannelRow>, Kept), StoreError> {
        if let Some(row) = self.hot.get(id) {
            if row.phase == ChannelPhase::Open && row.pending.is_none() {
                return Ok((Some(row), Kept::Yes));
            }
        }
        Ok((self.fresh_channel(id).await?, Kept::No))
    }

    /// The channel's row read from the database, kept for the next update.
    pub async fn fresh_channel(&self, id: &Hash32) -> Result<Option<ChannelRow>, StoreError> {
        let row = self.channel(id).await?;
        match &row {
            Some(r) => self.hot.put(r.clone()),
            None => self.hot.forget(id),
        }
        Ok(row)
    }
}
