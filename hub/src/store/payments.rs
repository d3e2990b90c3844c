//! Payments and their status history. Writes run inside a channel update's transaction, so a
//! payment's state never disagrees with the channel states that carry it.

use super::codec::{self, int, uint};
use super::{
    now_secs, on_pool, PaymentCursor, PaymentEvent, PaymentKey, PaymentRecord, PaymentState,
    PaymentWrite, Store, StoreError,
};
use sluice_protocol::Hash32;

/// Executes one [`PaymentWrite`] on a connection or transaction (`$conn` is `&mut *tx`).
macro_rules! write {
    ($conn:expr, $w:expr) => {{
        let now = int(now_secs())?;
        match $w {
            PaymentWrite::Insert(p) => {
                sqlx::query(
                    "INSERT INTO payments (hashlock, payer, payee, channel_in, channel_out, amount, \
                     amount_in, expiry_in, expiry_out, status, reason, secret, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
                )
                .bind(&p.hashlock.0[..])
                .bind(&p.payer.0[..])
                .bind(&p.payee.0[..])
                .bind(&p.channel_in.0[..])
                .bind(p.channel_out.map(|c| c.0.to_vec()))
                .bind(int(p.amount)?)
                .bind(int(p.amount_in)?)
                .bind(int(p.expiry_in)?)
                .bind(p.expiry_out.map(int).transpose()?)
                .bind(p.state.as_str())
                .bind(p.reason.clone())
                .bind(p.secret.map(|s| s.0.to_vec()))
                .bind(now)
                .execute($conn)
                .await?;
                sqlx::query("INSERT INTO payment_events (hashlock, payee, status, reason, at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&p.hashlock.0[..])
                    .bind(&p.payee.0[..])
                    .bind(p.state.as_str())
                    .bind(p.reason.clone())
                    .bind(now)
                    .execute($conn)
                    .await?;
            }
            PaymentWrite::Transition { key, state, reason, channel_out, secret } => {
                sqlx::query(
                    "UPDATE payments SET status = $1, reason = COALESCE($2, reason), \
                     channel_out = COALESCE($3, channel_out), expiry_out = COALESCE($4, expiry_out), \
                     secret = COALESCE($5, secret), updated_at = $6 WHERE hashlock = $7 AND payee = $8",
                )
                .bind(state.as_str())
                .bind(reason.clone())
                .bind(channel_out.map(|c| c.0 .0.to_vec()))
                .bind(channel_out.map(|c| int(c.1)).transpose()?)
                .bind(secret.map(|s| s.0.to_vec()))
                .bind(now)
                .bind(&key.hashlock.0[..])
                .bind(&key.payee.0[..])
                .execute($conn)
                .await?;
                sqlx::query("INSERT INTO payment_events (hashlock, payee, status, reason, at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&key.hashlock.0[..])
                    .bind(&key.payee.0[..])
                    .bind(state.as_str())
                    .bind(reason.clone())
                    .bind(now)
                    .execute($conn)
                    .await?;
            }
        }
    }};
}
pub(super) use write;

#[derive(sqlx::FromRow)]
struct PaymentDb {
    hashlock: Vec<u8>,
    payer: Vec<u8>,
    payee: Vec<u8>,
    channel_in: Vec<u8>,
    channel_out: Option<Vec<u8>>,
    amount: i64,
    amount_in: i64,
    expiry_in: i64,
    expiry_out: Option<i64>,
    status: String,
    reason: Option<String>,
    secret: Option<Vec<u8>>,
    created_at: i64,
    updated_at: i64,
}

fn state(s: &str) -> Result<PaymentState, StoreError> {
    PaymentState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("payment status {s:?}")))
}

impl PaymentDb {
    fn into_record(self) -> Result<PaymentRecord, StoreError> {
        Ok(PaymentRecord {
            hashlock: codec::hash(&self.hashlock)?,
            payer: codec::address(&self.payer)?,
            payee: codec::address(&self.payee)?,
            channel_in: codec::hash(&self.channel_in)?,
            channel_out: self.channel_out.as_deref().map(codec::hash).transpose()?,
            amount: uint(self.amount)?,
            amount_in: uint(self.amount_in)?,
            expiry_in: uint(self.expiry_in)?,
            expiry_out: self.expiry_out.map(uint).transpose()?,
            state: state(&self.status)?,
            reason: self.reason,
            secret: self.secret.as_deref().map(codec::hash).transpose()?,
            created_at: uint(self.created_at)?,
            updated_at: uint(self.updated_at)?,
        })
    }
}

const COLUMNS: &str = "hashlock, payer, payee, channel_in, channel_out, amount, amount_in, \
                       expiry_in, expiry_out, status, reason, secret, created_at, updated_at";

impl Store {
    /// Records a payment write in its own transaction (no channel change rides with it).
    pub async fn record_payment(&self, w: &PaymentWrite) -> Result<(), StoreError> {
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            write!(&mut *tx, w);
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn payment(&self, key: &PaymentKey) -> Result<Option<PaymentRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM payments WHERE payee = $1 AND hashlock = $2");
        let row = on_pool!(self, p => sqlx::query_as::<_, PaymentDb>(&sql)
            .bind(&key.payee.0[..]).bind(&key.hashlock.0[..]).fetch_optional(p).await)?;
        row.map(PaymentDb::into_record).transpose()
    }

    /// The latest payment whose lock toward the hub is `hashlock` on channel `channel_in`.
    pub async fn payment_in(
        &self,
        channel_in: &Hash32,
        hashlock: &Hash32,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        self.payment_on("channel_in", channel_in, hashlock).await
    }

    /// The latest payment whose lock from the hub is `hashlock` on channel `channel_out`.
    pub async fn payment_out(
        &self,
        channel_out: &Hash32,
        hashlock: &Hash32,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        self.payment_on("channel_out", channel_out, hashlock).await
    }

    async fn payment_on(
        &self,
        column: &'static str,
        channel: &Hash32,
        hashlock: &Hash32,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM payments WHERE {column} = $1 AND hashlock = $2 \
             ORDER BY created_at DESC LIMIT 1"
        );
        let row = on_pool!(self, p => sqlx::query_as::<_, PaymentDb>(&sql)
            .bind(&channel.0[..]).bind(&hashlock.0[..]).fetch_optional(p).await)?;
        row.map(PaymentDb::into_record).transpose()
    }

    /// Every payment with `hashlock` (one per payee whose invoice carries it).
    pub async fn payments_with(&self, hashlock: &Hash32) -> Result<Vec<PaymentRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM payments WHERE hashlock = $1 ORDER BY created_at");
        let rows = on_pool!(self, p => sqlx::query_as::<_, PaymentDb>(&sql)
            .bind(&hashlock.0[..]).fetch_all(p).await)?;
        rows.into_iter().map(PaymentDb::into_record).collect()
    }

    /// The most recent payments first, up to `limit`, after `after` in that order (from the
    /// newest if `None`): (created_at descending, then hashlock and payee ascending).
    pub async fn payments(
        &self,
        after: Option<&PaymentCursor>,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM payments WHERE created_at < $1 \
             OR (created_at = $1 AND (hashlock > $2 OR (hashlock = $2 AND payee > $3))) \
             ORDER BY created_at DESC, hashlock, payee LIMIT $4"
        );
        let (at, hashlock, payee) = match after {
            Some(c) => (
                int(c.created_at)?,
                c.key.hashlock.0.to_vec(),
                c.key.payee.0.to_vec(),
            ),
            None => (i64::MAX, Vec::new(), Vec::new()),
        };
        let rows = on_pool!(self, p => sqlx::query_as::<_, PaymentDb>(&sql)
            .bind(at).bind(&hashlock).bind(&payee).bind(i64::from(limit)).fetch_all(p).await)?;
        rows.into_iter().map(PaymentDb::into_record).collect()
    }

    /// Payments not yet completed or failed, for the guard and for restarts.
    pub async fn open_payments(&self) -> Result<Vec<PaymentRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM payments WHERE status NOT IN ('completed', 'failed') ORDER BY created_at"
        );
        let rows = on_pool!(self, p => sqlx::query_as::<_, PaymentDb>(&sql).fetch_all(p).await)?;
        rows.into_iter().map(PaymentDb::into_record).collect()
    }

    /// A payment's recorded transitions, oldest first.
    pub async fn payment_history(&self, key: &PaymentKey) -> Result<Vec<PaymentEvent>, StoreError> {
        let sql =
            "SELECT status, reason, at FROM payment_events WHERE payee = $1 AND hashlock = $2 \
                   ORDER BY id";
        let rows: Vec<(String, Option<String>, i64)> = on_pool!(self, p => sqlx::query_as(sql)
            .bind(&key.payee.0[..]).bind(&key.hashlock.0[..]).fetch_all(p).await)?;
        rows.into_iter()
            .map(|(s, reason, at)| {
                Ok(PaymentEvent {
                    state: state(&s)?,
                    reason,
                    at: uint(at)?,
                })
            })
            .collect()
    }

    /// How many payments are in each status.
    pub async fn payment_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let sql = "SELECT status, COUNT(*) FROM payments GROUP BY status ORDER BY status";
        let rows: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(sql).fetch_all(p).await)?;
        rows.into_iter().map(|(s, n)| Ok((s, uint(n)?))).collect()
    }
}
