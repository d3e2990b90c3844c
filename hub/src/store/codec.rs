//! Conversions between protocol types and database columns (u64 ↔ BIGINT, bytes ↔ BYTEA/BLOB).

use super::StoreError;
use sluice_protocol::encoding::Canonical;
use sluice_protocol::{Address, Hash32, Snapshot};

pub fn int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Range(v))
}

pub fn uint(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative value {v}")))
}

pub fn hash(bytes: &[u8]) -> Result<Hash32, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(Hash32)
        .map_err(|_| StoreError::Corrupt(format!("{} bytes where 32 expected", bytes.len())))
}

pub fn address(bytes: &[u8]) -> Result<Address, StoreError> {
    hash(bytes).map(|h| Address(h.0))
}

pub fn snapshot(bytes: &[u8]) -> Result<Snapshot, StoreError> {
    Snapshot::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("snapshot: {e}")))
}

pub fn snapshot_bytes(s: &Snapshot) -> Vec<u8> {
    s.to_bytes()
}
