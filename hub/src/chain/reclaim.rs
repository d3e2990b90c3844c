//! Collateral reclaim: the hub's side of a channel that sits above `reclaim_threshold`, with no
//! state change for `reclaim_idle_secs`, is withdrawn back to the hub's account down to
//! `target`, without closing the channel.
//!
//! A reclaim is a collateral job (one live job per channel, of either kind, so a reclaim never
//! races a deposit) whose amount is the hub's withdrawn total it aims at. That goal makes every
//! step safe to repeat after a crash: the withdrawal is co-signed with the client only while the
//! latest state withdraws less than the goal (a proposal in doubt is settled by the updater's
//! reservation, never signed twice at one version), and the `Withdraw` transaction carries the
//! latest co-signed state, which the chain pays once: any older or repeated submission pays
//! nothing. A payment arriving meanwhile waits for the channel's lock like any other update.

use crate::config::CollateralPolicy;
use crate::shared::Shared;
use crate::store::{ChannelPhase, ChannelRow, CollateralJob, JobStatus, StoreError};
use crate::updater::{self, ProposeError};
use sluice_chain_client::TxSender;
use sluice_protocol::{Amount, Change, Party, TxKind};

/// The hub's withdrawn total a reclaim of `row` should reach now under `p`, if its collateral
/// is idle above the threshold. `now` is Unix seconds.
pub fn goal(row: &ChannelRow, p: &CollateralPolicy, now: u64) -> Option<Amount> {
    let state = row.snapshot.state();
    let idle = now.saturating_sub(row.updated_at) >= p.reclaim_idle_secs;
    let open = row.phase == ChannelPhase::Open && !state.is_final && row.pending.is_none();
    if p.reclaim_threshold == 0 || !idle || !open {
        return None;
    }
    let (_, hub_side) = state.balances(row.deposit_a, row.deposit_b).ok()?;
    (hub_side > p.reclaim_threshold).then(|| {
        state
            .withdrawn_b
            .saturating_add(hub_side.saturating_sub(p.target))
    })
}

/// The transaction that moves a queued reclaim on, once the withdrawal is co-signed; `None`
/// while that waits (client offline or busy) or when the job ended here.
pub async fn next_tx(
    sh: &Shared,
    chain: &TxSender,
    job: &CollateralJob,
) -> Result<Option<TxKind>, StoreError> {
    let id = job.channel_id;
    match chain.client().channel(&id).await {
        Ok(Some(rec)) if paid(job, &rec) => {
            // Paid by another submission (ours before a restart, or the client's withdrawal,
            // which pays both sides).
            sh.store
                .update_job(&id, JobStatus::Done, None, None)
                .await?;
            return Ok(None);
        }
        Ok(_) => {}
        Err(e) => {
            let note = Some(e.to_string());
            sh.store
                .update_job(&id, JobStatus::Queued, None, note)
                .await?;
            return Ok(None);
        }
    }
    let Some(mut row) = sh.store.channel(&id).await? else {
        return end(sh, job, "channel unknown").await;
    };
    if row.phase != ChannelPhase::Open {
        // Settlement pays the hub whatever it withdrew off chain and was not paid.
        return end(sh, job, "channel no longer open").await;
    }
    let withdrawn = row.snapshot.state().withdrawn_b;
    if withdrawn < job.amount {
        match cosign(sh, &row, job.amount - withdrawn).await {
            Ok(Some(newer)) => row = newer,
            Ok(None) => return end(sh, job, "nothing left to reclaim").await,
            Err(e) if waits(&e) => {
                let note = Some(e.to_string());
                sh.store
                    .update_job(&id, JobStatus::Queued, None, note)
                    .await?;
                return Ok(None);
            }
            Err(e) => return end(sh, job, &e.to_string()).await,
        }
    }
    Ok(Some(TxKind::Withdraw {
        cosigned: row.snapshot.cosigned,
    }))
}

/// Whether the chain has paid the hub the reclaim's goal.
pub fn paid(job: &CollateralJob, rec: &sluice_protocol::onchain::ChannelRecord) -> bool {
    rec.withdrawn.b >= job.amount
}

/// Co-signs a withdrawal of up to `want` from the hub's side with the client; the channel
/// after it, or `None` if the hub's side has nothing left (payments spent it meanwhile).
async fn cosign(
    sh: &Shared,
    row: &ChannelRow,
    want: Amount,
) -> Result<Option<ChannelRow>, ProposeError> {
    let state = row.snapshot.state();
    let (_, hub_side) = state
        .balances(row.deposit_a, row.deposit_b)
        .map_err(|e| ProposeError::Invalid(e.into()))?;
    let amount = want.min(hub_side);
    if amount == 0 {
        return Ok(None);
    }
    let change = Change::Withdraw {
        party: Party::B,
        amount,
    };
    updater::propose(sh, &row.id, change, vec![]).await?;
    tracing::info!(channel = %row.id, amount, "idle collateral withdrawal co-signed");
    Ok(sh.store.channel(&row.id).await?)
}

/// Errors after which the same reclaim is tried again next round.
fn waits(e: &ProposeError) -> bool {
    e.is_transient() || matches!(e, ProposeError::Offline | ProposeError::Timeout)
}

async fn end(sh: &Shared, job: &CollateralJob, why: &str) -> Result<Option<TxKind>, StoreError> {
    tracing::info!(channel = %job.channel_id, why, "reclaim ended");
    let note = Some(why.to_string());
    sh.store
        .update_job(&job.channel_id, JobStatus::Done, None, note)
        .await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::fixtures::{policy, row as row_at};

    fn row(deposit_b: Amount, updated_at: u64) -> ChannelRow {
        row_at(100, deposit_b, updated_at)
    }

    #[test]
    fn idle_collateral_above_the_threshold_goes_back_down_to_the_target() {
        assert_eq!(goal(&row(5_000, 0), &policy(), 60), Some(4_000));
        let mut r = row(5_000, 0);
        r.snapshot.cosigned.state.withdrawn_b = 500;
        assert_eq!(
            goal(&r, &policy(), 60),
            Some(500 + 3_500),
            "a total, not a step"
        );
    }

    #[test]
    fn busy_small_or_closing_channels_keep_their_collateral() {
        assert_eq!(
            goal(&row(5_000, 1), &policy(), 60),
            None,
            "not idle long enough"
        );
        assert_eq!(
            goal(&row(3_000, 0), &policy(), 60),
            None,
            "at the threshold"
        );
        let mut r = row(5_000, 0);
        r.phase = ChannelPhase::Closing;
        assert_eq!(goal(&r, &policy(), 60), None);
        let off = CollateralPolicy {
            reclaim_threshold: 0,
            ..policy()
        };
        assert_eq!(goal(&row(5_000, 0), &off, 60), None, "0 turns reclaim off");
    }
}
