//! The chain cursor and the channel facts learned from chain events. Effects and the cursor
//! advance commit together, so a restart replays exactly what was not yet applied.

use super::codec::{self, int, uint};
use super::{on_pool, ChainWrite, Store, StoreError};
use sluice_protocol::Height;

macro_rules! chain_write {
    ($conn:expr, $w:expr) => {{
        match $w {
            ChainWrite::Opened(row) => {
                sqlx::query(
                    "INSERT INTO channels (id, client, deposit_a, deposit_b, challenge_period, \
                     status, version, snapshot, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&row.id.0[..])
                .bind(&row.client.0[..])
                .bind(int(row.deposit_a)?)
                .bind(int(row.deposit_b)?)
                .bind(int(row.challenge_period)?)
                .bind(row.phase.as_str())
                .bind(int(row.version())?)
                .bind(codec::snapshot_bytes(&row.snapshot))
                .bind(int(row.updated_at)?)
                .execute($conn)
                .await?;
            }
            ChainWrite::Deposit { id, party, total } => {
                sqlx::query(
                    "UPDATE channels SET \
                     deposit_a = CASE WHEN client = $1 THEN $2 ELSE deposit_a END, \
                     deposit_b = CASE WHEN client = $1 THEN deposit_b ELSE $2 END WHERE id = $3",
                )
                .bind(&party.0[..])
                .bind(int(*total)?)
                .bind(&id.0[..])
                .execute($conn)
                .await?;
            }
            ChainWrite::Phase { id, phase } => {
                sqlx::query("UPDATE channels SET status = $1 WHERE id = $2")
                    .bind(phase.as_str())
                    .bind(&id.0[..])
                    .execute($conn)
                    .await?;
            }
        }
    }};
}

impl Store {
    /// The last height whose events are fully applied.
    pub async fn cursor(&self) -> Result<Height, StoreError> {
        let (h,): (i64,) = on_pool!(self, p => sqlx::query_as("SELECT height FROM chain_cursor WHERE id = 1")
            .fetch_one(p).await)?;
        uint(h)
    }

    /// Applies `writes` and moves the cursor to `height` (never backwards) in one transaction.
    pub async fn apply_chain(
        &self,
        height: Height,
        writes: &[ChainWrite],
    ) -> Result<(), StoreError> {
        let h = int(height)?;
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for w in writes {
                chain_write!(&mut *tx, w);
            }
            sqlx::query("UPDATE chain_cursor SET height = $1 WHERE id = 1 AND height < $1")
                .bind(h)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        for w in writes {
            self.hot.forget(w.channel());
        }
        Ok(())
    }
}
