//! Collateral policy: when the hub's side of a channel is below `threshold`, a persisted job
//! deposits up to `target`; idle above `reclaim_threshold`, a job withdraws it back (see
//! `reclaim`). One live job per channel, resubmitted until included. Channels whose client has
//! less than `min_client_deposit` at stake, or whose latest state is final, get nothing (F12:
//! such channels would freeze the hub's capital for free). Every round pages through all open
//! channels.

use super::reclaim;
use crate::config::CollateralPolicy;
use crate::shared::Shared;
use crate::store::{ChannelPhase, ChannelRow, CollateralJob, JobKind, JobStatus, StoreError};
use sluice_protocol::Amount;
use sluice_protocol::TxKind;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(sh: Arc<Shared>) {
    let policy = sh.cfg.collateral.clone();
    if policy.target == 0 && policy.reclaim_threshold == 0 {
        return;
    }
    loop {
        if let Err(e) = tick(&sh).await {
            tracing::warn!(error = %e, "collateral round failed");
        }
        tokio::time::sleep(Duration::from_secs(policy.retry_secs.max(1))).await;
    }
}

/// What the hub should deposit into `row` now under `p`, if anything.
pub fn owed(row: &ChannelRow, p: &CollateralPolicy) -> Option<Amount> {
    let state = row.snapshot.state();
    // What the client still has at stake: a deposit withdrawn again does not count (F12).
    let stake = row.deposit_a.saturating_sub(state.withdrawn_a);
    let served =
        row.phase == ChannelPhase::Open && stake >= p.min_client_deposit.max(1) && !state.is_final;
    let (_, hub_side) = state.balances(row.deposit_a, row.deposit_b).ok()?;
    (served && hub_side < p.threshold).then(|| p.target.saturating_sub(hub_side))
}

/// Whether the client may withdraw `amount` from `row`: not below the minimum stake while the
/// hub has collateral in the channel, or a client could open with the minimum, get the hub's
/// `target` deposited, and withdraw its own stake, freezing the hub's capital for free (F12).
pub fn keeps_stake(row: &ChannelRow, amount: Amount, p: &CollateralPolicy) -> bool {
    let withdrawn = row.snapshot.state().withdrawn_a.saturating_add(amount);
    let stake = row.deposit_a.saturating_sub(withdrawn);
    row.deposit_b == 0 || stake >= p.min_client_deposit
}

async fn tick(sh: &Arc<Shared>) -> Result<(), StoreError> {
    let p = &sh.cfg.collateral;
    let now = crate::store::now_secs();
    let mut pages = sh.store.pages(ChannelPhase::Open);
    while let Some(page) = pages.next().await? {
        for row in &page {
            if let Some(amount) = owed(row, p) {
                if sh.store.queue_collateral(&row.id, amount).await? {
                    tracing::info!(channel = %row.id, amount, "collateral job queued");
                }
            } else if let Some(goal) = reclaim::goal(row, p, now) {
                if recently_refused(sh, &row.id, now).await? {
                    continue;
                }
                if sh.store.queue_reclaim(&row.id, goal).await? {
                    tracing::info!(channel = %row.id, goal, "collateral reclaim queued");
                }
            }
        }
    }
    for job in sh.store.live_jobs().await? {
        advance(sh, &job).await?;
    }
    Ok(())
}

/// A reclaim of this channel ended without reaching its goal less than an idle period ago (the
/// client refused, or payments spent the collateral): not asked again before then.
async fn recently_refused(
    sh: &Shared,
    id: &sluice_protocol::Hash32,
    now: u64,
) -> Result<bool, StoreError> {
    let Some(job) = sh.store.job(id).await? else {
        return Ok(false);
    };
    let recent = now.saturating_sub(job.updated_at) < sh.cfg.collateral.reclaim_idle_secs;
    Ok(job.kind == JobKind::Reclaim && job.last_error.is_some() && recent)
}

async fn advance(sh: &Arc<Shared>, job: &CollateralJob) -> Result<(), StoreError> {
    let Some(chain) = sh.chain.clone() else {
        return Ok(());
    };
    if let (JobStatus::Submitted, Some(tx)) = (job.status, job.tx_id) {
        match chain.client().tx(&tx).await {
            Ok(Some(info)) if info.receipt.success => {
                return sh
                    .store
                    .update_job(&job.channel_id, JobStatus::Done, None, None)
                    .await;
            }
            Ok(None) if !vanished(sh, job) => return Ok(()), // not yet included
            Ok(None) => {
                // The node never heard of it (dropped, or lost with a restart): unless the
                // move reached the chain some other way, submit it again.
                if done_on_chain(sh, &chain, job).await {
                    return sh
                        .store
                        .update_job(&job.channel_id, JobStatus::Done, None, None)
                        .await;
                }
                tracing::warn!(channel = %job.channel_id, tx = %tx, "collateral transaction never appeared; resubmitting");
            }
            Ok(Some(info)) => {
                let err = info.receipt.error.unwrap_or_default();
                sh.store
                    .update_job(&job.channel_id, JobStatus::Queued, None, Some(err))
                    .await?;
            }
            Err(e) => {
                return sh
                    .store
                    .update_job(
                        &job.channel_id,
                        JobStatus::Submitted,
                        None,
                        Some(e.to_string()),
                    )
                    .await
            }
        }
    }
    let kind = match job.kind {
        JobKind::Deposit => TxKind::Deposit {
            channel_id: job.channel_id,
            amount: job.amount,
        },
        JobKind::Reclaim => match reclaim::next_tx(sh, &chain, job).await? {
            Some(kind) => kind,
            None => return Ok(()),
        },
    };
    match chain.submit(kind).await {
        Ok(tx) => {
            sh.store
                .update_job(&job.channel_id, JobStatus::Submitted, Some(tx), None)
                .await
        }
        Err(e) => {
            sh.store
                .update_job(
                    &job.channel_id,
                    JobStatus::Queued,
                    None,
                    Some(e.to_string()),
                )
                .await
        }
    }
}

/// A submitted job whose transaction the node still does not know after three retry periods.
fn vanished(sh: &Shared, job: &CollateralJob) -> bool {
    let wait = sh.cfg.collateral.retry_secs.max(1).saturating_mul(3);
    crate::store::now_secs().saturating_sub(job.updated_at) >= wait
}

/// Whether the job's move is already on chain: for a deposit, the hub's side meets the
/// threshold; for a reclaim, the chain paid the hub its goal.
async fn done_on_chain(
    sh: &Shared,
    chain: &sluice_chain_client::TxSender,
    job: &CollateralJob,
) -> bool {
    let id = &job.channel_id;
    let Ok(Some(rec)) = chain.client().channel(id).await else {
        return false;
    };
    if job.kind == JobKind::Reclaim {
        return reclaim::paid(job, &rec);
    }
    let Ok(Some(row)) = sh.store.channel(id).await else {
        return false;
    };
    row.snapshot
        .state()
        .balances(rec.deposit_a, rec.deposit_b)
        .is_ok_and(|(_, hub_side)| hub_side >= sh.cfg.collateral.threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::fixtures::{policy, row as row_at};

    fn row(deposit_a: Amount, deposit_b: Amount) -> ChannelRow {
        row_at(deposit_a, deposit_b, 0)
    }

    #[test]
    fn an_honest_channel_is_topped_up_to_the_target() {
        assert_eq!(owed(&row(100, 0), &policy()), Some(1_000));
        assert_eq!(owed(&row(100, 499), &policy()), Some(501));
        assert_eq!(owed(&row(100, 500), &policy()), None);
    }

    #[test]
    fn zero_and_dust_deposits_get_nothing() {
        assert_eq!(owed(&row(0, 0), &policy()), None);
        assert_eq!(owed(&row(99, 0), &policy()), None);
        let zero_min = CollateralPolicy {
            min_client_deposit: 0,
            ..policy()
        };
        assert_eq!(owed(&row(0, 0), &zero_min), None, "never for nothing");
    }

    #[test]
    fn a_client_keeps_its_stake_while_the_hub_has_collateral_in() {
        assert!(
            keeps_stake(&row(1_000, 0), 1_000, &policy()),
            "no collateral yet"
        );
        assert!(keeps_stake(&row(1_000, 1_000), 900, &policy()));
        assert!(!keeps_stake(&row(1_000, 1_000), 901, &policy()));
    }

    #[test]
    fn a_withdrawn_deposit_is_no_stake() {
        let mut r = row(1_000, 0);
        r.snapshot.cosigned.state.withdrawn_a = 901;
        assert_eq!(owed(&r, &policy()), None, "99 left at stake");
        r.snapshot.cosigned.state.withdrawn_a = 900;
        assert_eq!(owed(&r, &policy()), Some(1_000));
    }

    #[test]
    fn final_and_closing_channels_get_nothing() {
        let mut r = row(100, 0);
        r.snapshot.cosigned.state.is_final = true;
        assert_eq!(owed(&r, &policy()), None);
        let mut r = row(100, 0);
        r.phase = ChannelPhase::Closing;
        assert_eq!(owed(&r, &policy()), None);
    }
}
