//! Version reservations for the hub's own proposals (see [`super::Reservation`]) and the
//! channel's floor. Each write is one conditional statement, a compare-and-swap on the channel
//! row: the reservation is taken only if the channel is still open at the version the proposal
//! was built on, above the floor, and nobody holds one; it is cleared or expired only if it is
//! still the one the caller means.

use super::codec::{self, int};
use super::{on_pool, Store, StoreError};
use sluice_protocol::{Hash32, Snapshot};

/// Takes a reservation and raises the floor to its version: binds version, snapshot, until, id,
/// built-on version. Only above the floor, so no version is signed twice.
pub(super) const RESERVE: &str = "UPDATE channels SET pending_version = $1, \
    pending_snapshot = $2, pending_until = $3, floor_version = $1 WHERE id = $4 AND version = $5 \
    AND status = 'open' AND pending_version IS NULL AND floor_version < $1";

/// A hub proposal on another channel to reserve in the same commit as a client's update
/// (`Store::update_channel_reserving`): `proposed` is hub-signed at `built_on + 1`.
#[derive(Debug, Clone, Copy)]
pub struct ReserveWith<'a> {
    pub id: &'a Hash32,
    pub built_on: u64,
    pub proposed: &'a Snapshot,
    pub until_ms: u64,
}

impl Store {
    /// Records `proposed` (hub-signed, at `built_on + 1`) as the channel's reservation, waited on
    /// until `until_ms`. False: the channel moved on, closed, or another proposal holds it.
    pub async fn reserve(
        &self,
        id: &Hash32,
        built_on: u64,
        proposed: &Snapshot,
        until_ms: u64,
    ) -> Result<bool, StoreError> {
        let sql = RESERVE;
        let (v, bytes, until, old) = (
            int(proposed.state().version)?,
            codec::snapshot_bytes(proposed),
            int(until_ms)?,
            int(built_on)?,
        );
        let n = on_pool!(self, p => sqlx::query(sql)
            .bind(v).bind(&bytes).bind(until).bind(&id.0[..]).bind(old)
            .execute(p).await.map(|r| r.rows_affected()))?;
        let r = ReserveWith {
            id,
            built_on,
            proposed,
            until_ms,
        };
        self.hot.after_reserve(Some(r), n == 1);
        Ok(n == 1)
    }

    /// Drops the reservation of `version`: only for a proposal that never left this process, or
    /// one that is dead (expired with no secret registered in time). False if that reservation
    /// is no longer there.
    pub async fn clear_reservation(&self, id: &Hash32, version: u64) -> Result<bool, StoreError> {
        let sql = "UPDATE channels SET pending_version = NULL, pending_snapshot = NULL, \
                   pending_until = NULL WHERE id = $1 AND pending_version = $2";
        let v = int(version)?;
        let n = on_pool!(self, p => sqlx::query(sql).bind(&id.0[..]).bind(v)
            .execute(p).await.map(|r| r.rows_affected()))?;
        self.hot.forget(id);
        Ok(n == 1)
    }

    /// Marks the reservation of `version` as given up by its proposer (rejected, or no answer in
    /// time). It stays, in doubt, until it is dead (see [`super::Reservation`]).
    pub async fn expire_reservation(&self, id: &Hash32, version: u64) -> Result<(), StoreError> {
        let sql = "UPDATE channels SET pending_until = 0 WHERE id = $1 AND pending_version = $2";
        let v = int(version)?;
        on_pool!(self, p => sqlx::query(sql).bind(&id.0[..]).bind(v)
            .execute(p).await.map(|_| ()))?;
        self.hot.forget(id);
        Ok(())
    }

    /// Raises the floor to `version`: the client signed a proposal there that the hub refused.
    pub async fn raise_floor(&self, id: &Hash32, version: u64) -> Result<(), StoreError> {
        let sql = "UPDATE channels SET floor_version = $1 WHERE id = $2 AND floor_version < $1";
        let v = int(version)?;
        on_pool!(self, p => sqlx::query(sql).bind(v).bind(&id.0[..])
            .execute(p).await.map(|_| ()))?;
        self.hot.forget(id);
        Ok(())
    }

    /// Claims `version` for a `Bump` built on `built_on` over the given-up proposal `in_doubt`,
    /// which stays recorded until the bump is co-signed. False: the channel moved on, or another
    /// proposal (of any hub process) claimed a version meanwhile.
    pub async fn claim_bump(
        &self,
        id: &Hash32,
        built_on: u64,
        in_doubt: u64,
        version: u64,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE channels SET floor_version = $1 WHERE id = $2 AND version = $3 \
                   AND status = 'open' AND floor_version < $1 AND pending_version = $4 \
                   AND pending_until <= $5";
        let (v, old, doubt, now) = (int(version)?, int(built_on)?, int(in_doubt)?, int(now_ms)?);
        let n = on_pool!(self, p => sqlx::query(sql).bind(v).bind(&id.0[..]).bind(old)
            .bind(doubt).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        self.hot.forget(id);
        Ok(n == 1)
    }
}
