//! The one-statement channel commit on Postgres: a compare-and-swap `UPDATE` on everything the
//! caller's decision rested on, with the update's payment writes in data-modifying CTEs of the
//! same statement, so they commit together or not at all.
//!
//! Why: the locked transaction (`BEGIN`, `SELECT … FOR UPDATE`, `UPDATE`, payment writes,
//! `COMMIT`) is six round trips per update and holds a pooled connection across all of them.
//! The caller has usually just read the row; if nothing it saw has changed, one statement does
//! the same job. The guarantees stay: Postgres re-checks the `WHERE` under the row lock the
//! `UPDATE` takes, so of two writers that saw the same row only one matches, and a statement in
//! autocommit is durable (with `synchronous_commit` on) before its result comes back. When the
//! row did change, the caller falls back to the locked transaction, which decides again.

use super::codec::{self, int};
use super::{now_secs, ChannelRow, PaymentWrite, ReserveWith, StoreError};
use sluice_protocol::Snapshot;
use sqlx::PgPool;

/// The floor is compared too (bound last, see [`sql`]): a version burnt by another process's
/// rejected proposal must not be signed again.
const UPDATE: &str = "WITH upd AS (UPDATE channels SET version = $1, snapshot = $2, \
    updated_at = $3, pending_version = NULL, pending_snapshot = NULL, pending_until = NULL, \
    floor_version = CASE WHEN floor_version > $1 THEN floor_version ELSE $1 END \
    WHERE id = $4 AND version = $5 AND status = $6 AND deposit_a = $7 AND deposit_b = $8 \
    AND pending_snapshot IS NOT DISTINCT FROM $9 AND pending_until IS NOT DISTINCT FROM $10 \
    AND floor_version = $FLOOR RETURNING id)";

const INSERT: &str = ", pay AS (INSERT INTO payments (hashlock, payer, payee, channel_in, \
    channel_out, amount, amount_in, expiry_in, expiry_out, status, reason, secret, created_at, \
    updated_at) SELECT $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $23 \
    FROM upd), ev AS (INSERT INTO payment_events (hashlock, payee, status, reason, at) \
    SELECT $11, $13, $20, $21, $23 FROM upd)";

const TRANSITION: &str = ", pay AS (UPDATE payments SET status = $11, \
    reason = COALESCE($12, reason), channel_out = COALESCE($13, channel_out), \
    expiry_out = COALESCE($14, expiry_out), secret = COALESCE($15, secret), updated_at = $16 \
    WHERE hashlock = $17 AND payee = $18 AND EXISTS (SELECT 1 FROM upd)), ev AS (INSERT INTO \
    payment_events (hashlock, payee, status, reason, at) SELECT $17, $18, $11, $12, $16 FROM upd)";

/// The statement for this payment write, with or without a reservation on another channel
/// (taken only if the update itself matched). Selects (updated, reserved) row counts.
fn sql(w: Option<&PaymentWrite>, reserve: bool) -> String {
    let (pay, next) = match w {
        None => ("", 11),
        Some(PaymentWrite::Insert(_)) => (INSERT, 24),
        Some(PaymentWrite::Transition { .. }) => (TRANSITION, 19),
    };
    let (tail, floor) = match reserve {
        false => (
            " SELECT (SELECT COUNT(*) FROM upd), 0::BIGINT".to_string(),
            next,
        ),
        true => (
            format!(
                ", res AS (UPDATE channels SET pending_version = ${0}, pending_snapshot = ${1}, \
                 pending_until = ${2}, floor_version = ${0} WHERE id = ${3} AND version = ${4} \
                 AND status = 'open' AND pending_version IS NULL AND floor_version < ${0} \
                 AND EXISTS (SELECT 1 FROM upd) RETURNING id) \
                 SELECT (SELECT COUNT(*) FROM upd), (SELECT COUNT(*) FROM res)",
                next,
                next + 1,
                next + 2,
                next + 3,
                next + 4
            ),
            next + 5,
        ),
    };
    let update = UPDATE.replace("$FLOOR", &format!("${floor}"));
    format!("{update}{pay}{tail}")
}

/// Writes `snap` (and `w`) over `seen` if the row is still exactly as seen, and then takes
/// `reserve`. `None`: the row had moved, nothing written; `Some(reserved)` otherwise.
pub(super) async fn commit(
    pool: &PgPool,
    seen: &ChannelRow,
    snap: &Snapshot,
    w: Option<&PaymentWrite>,
    reserve: Option<ReserveWith<'_>>,
) -> Result<Option<bool>, StoreError> {
    let now = int(now_secs())?;
    let pending = seen.pending.as_ref();
    let sql = sql(w, reserve.is_some());
    let q = sqlx::query_as::<_, (i64, i64)>(&sql)
        .bind(int(snap.state().version)?)
        .bind(codec::snapshot_bytes(snap))
        .bind(now)
        .bind(&seen.id.0[..])
        .bind(int(seen.version())?)
        .bind(seen.phase.as_str())
        .bind(int(seen.deposit_a)?)
        .bind(int(seen.deposit_b)?)
        .bind(pending.map(|p| codec::snapshot_bytes(&p.snapshot)))
        .bind(pending.map(|p| int(p.until_ms)).transpose()?);
    let q = match w {
        None => q,
        Some(PaymentWrite::Insert(p)) => q
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
            .bind(now),
        Some(PaymentWrite::Transition {
            key,
            state,
            reason,
            channel_out,
            secret,
        }) => q
            .bind(state.as_str())
            .bind(reason.clone())
            .bind(channel_out.map(|c| c.0 .0.to_vec()))
            .bind(channel_out.map(|c| int(c.1)).transpose()?)
            .bind(secret.map(|s| s.0.to_vec()))
            .bind(now)
            .bind(&key.hashlock.0[..])
            .bind(&key.payee.0[..]),
    };
    let q = match reserve {
        None => q,
        Some(r) => q
            .bind(int(r.proposed.state().version)?)
            .bind(codec::snapshot_bytes(r.proposed))
            .bind(int(r.until_ms)?)
            .bind(&r.id.0[..])
            .bind(int(r.built_on)?),
    };
    let q = q.bind(int(seen.floor)?);
    let (updated, reserved) = q.fetch_one(pool).await?;
    Ok((updated == 1).then_some(reserved == 1))
}
