//! Collateral jobs: at most one live on-chain deposit or reclaim per channel, persisted until
//! included.

use super::codec::{self, int, uint};
use super::{now_secs, on_pool, CollateralJob, JobKind, JobStatus, Store, StoreError};
use sluice_protocol::{Amount, Hash32};

#[derive(sqlx::FromRow)]
struct JobDb {
    channel_id: Vec<u8>,
    kind: String,
    amount: i64,
    status: String,
    tx_id: Option<Vec<u8>>,
    attempts: i64,
    last_error: Option<String>,
    updated_at: i64,
}

impl JobDb {
    fn into_job(self) -> Result<CollateralJob, StoreError> {
        Ok(CollateralJob {
            channel_id: codec::hash(&self.channel_id)?,
            kind: JobKind::parse(&self.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("job kind {:?}", self.kind)))?,
            amount: uint(self.amount)?,
            status: JobStatus::parse(&self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("job status {:?}", self.status)))?,
            tx_id: self.tx_id.as_deref().map(codec::hash).transpose()?,
            attempts: uint(self.attempts)?,
            last_error: self.last_error,
            updated_at: uint(self.updated_at)?,
        })
    }
}

const COLUMNS: &str = "channel_id, kind, amount, status, tx_id, attempts, last_error, updated_at";

impl Store {
    /// Queues a deposit for the channel unless a live (queued or submitted) job exists; returns
    /// whether a job was queued.
    pub async fn queue_collateral(
        &self,
        channel_id: &Hash32,
        amount: Amount,
    ) -> Result<bool, StoreError> {
        self.queue_job(channel_id, JobKind::Deposit, amount).await
    }

    /// Queues a reclaim bringing the hub's withdrawn total on the channel to `goal`, unless a
    /// live job (of either kind) exists; returns whether a job was queued.
    pub async fn queue_reclaim(
        &self,
        channel_id: &Hash32,
        goal: Amount,
    ) -> Result<bool, StoreError> {
        self.queue_job(channel_id, JobKind::Reclaim, goal).await
    }

    async fn queue_job(
        &self,
        channel_id: &Hash32,
        kind: JobKind,
        amount: Amount,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT INTO collateral_jobs (channel_id, kind, amount, status, tx_id, attempts, last_error, updated_at) \
                   VALUES ($1, $2, $3, 'queued', NULL, 0, NULL, $4) \
                   ON CONFLICT (channel_id) DO UPDATE SET kind = excluded.kind, amount = excluded.amount, \
                   status = 'queued', tx_id = NULL, attempts = 0, last_error = NULL, \
                   updated_at = excluded.updated_at WHERE collateral_jobs.status = 'done'";
        let (a, now) = (int(amount)?, int(now_secs())?);
        let done = on_pool!(self, p => sqlx::query(sql).bind(&channel_id.0[..]).bind(kind.as_str())
            .bind(a).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Jobs that are queued or submitted.
    pub async fn live_jobs(&self) -> Result<Vec<CollateralJob>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM collateral_jobs WHERE status <> 'done' ORDER BY updated_at"
        );
        let rows = on_pool!(self, p => sqlx::query_as::<_, JobDb>(&sql).fetch_all(p).await)?;
        rows.into_iter().map(JobDb::into_job).collect()
    }

    pub async fn job(&self, channel_id: &Hash32) -> Result<Option<CollateralJob>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM collateral_jobs WHERE channel_id = $1");
        let row = on_pool!(self, p => sqlx::query_as::<_, JobDb>(&sql)
            .bind(&channel_id.0[..]).fetch_optional(p).await)?;
        row.map(JobDb::into_job).transpose()
    }

    /// Moves a job to `status`, recording the transaction id or the last error of an attempt.
    pub async fn update_job(
        &self,
        channel_id: &Hash32,
        status: JobStatus,
        tx_id: Option<Hash32>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE collateral_jobs SET status = $1, tx_id = COALESCE($2, tx_id), \
                   attempts = attempts + $3, last_error = $4, updated_at = $5 WHERE channel_id = $6";
        let bump = i64::from(status == JobStatus::Submitted);
        let now = int(now_secs())?;
        on_pool!(self, p => sqlx::query(sql).bind(status.as_str()).bind(tx_id.map(|t| t.0.to_vec()))
            .bind(bump).bind(error).bind(now).bind(&channel_id.0[..]).execute(p).await.map(|_| ()))?;
        Ok(())
    }
}
