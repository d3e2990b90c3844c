//! Collateral policy: when the hub's side of a channel is below `threshold`, a persisted job
//! deposits up to `target`; one live job per channel, resubmitted until included. Channels
//! whose client put in less than `min_client_deposit`, or whose latest state is final, get
//! nothing (F12: such channels would freeze the hub's capital for free). Every round pages
//! through all open channels.

use crate::config::CollateralPolicy;
use crate::shared::Shared;
use crate::store::{ChannelPhase, ChannelRow, JobStatus};
use sluice_protocol::Amount;
use sluice_protocol::TxKind;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(sh: Arc<Shared>) {
    let policy = sh.cfg.collateral.clone();
    if policy.target == 0 {
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
    let served = row.phase == ChannelPhase::Open
        && row.deposit_a >= p.min_client_deposit.max(1)
        && !row.snapshot.state().is_final;
    let (_, hub_side) = row
        .snapshot
        .state()
        .balances(row.deposit_a, row.deposit_b)
        .ok()?;
    (served && hub_side < p.threshold).then(|| p.target.saturating_sub(hub_side))
}

async fn tick(sh: &Arc<Shared>) -> Result<(), crate::store::StoreError> {
    let p = &sh.cfg.collateral;
    let mut pages = sh.store.pages(ChannelPhase::Open);
    while let Some(page) = pages.next().await? {
        for row in &page {
            let Some(amount) = owed(row, p) else { continue };
            if sh.store.queue_collateral(&row.id, amount).await? {
                tracing::info!(channel = %row.id, amount, "collateral job queued");
            }
        }
    }
    for job in sh.store.live_jobs().await? {
        advance(sh, &job).await?;
    }
    Ok(())
}

async fn advance(
    sh: &Arc<Shared>,
    job: &crate::store::CollateralJob,
) -> Result<(), crate::store::StoreError> {
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
                // deposit reached the chain some other way, submit it again.
                if funded_on_chain(sh, &chain, &job.channel_id).await {
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
    let kind = TxKind::Deposit {
        channel_id: job.channel_id,
        amount: job.amount,
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
fn vanished(sh: &Shared, job: &crate::store::CollateralJob) -> bool {
    let wait = sh.cfg.collateral.retry_secs.max(1).saturating_mul(3);
    crate::store::now_secs().saturating_sub(job.updated_at) >= wait
}

/// Whether the hub's side on chain already meets the threshold (so no deposit is owed).
async fn funded_on_chain(
    sh: &Shared,
    chain: &sluice_chain_client::TxSender,
    id: &sluice_protocol::Hash32,
) -> bool {
    let Ok(Some(rec)) = chain.client().channel(id).await else {
        return false;
    };
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
    use sluice_protocol::{Hash32, Snapshot};

    fn policy() -> CollateralPolicy {
        CollateralPolicy {
            threshold: 500,
            target: 1_000,
            min_client_deposit: 100,
            retry_secs: 1,
        }
    }

    fn row(deposit_a: Amount, deposit_b: Amount) -> ChannelRow {
        let id = Hash32([1; 32]);
        ChannelRow {
            id,
            client: sluice_protocol::Address([2; 32]),
            deposit_a,
            deposit_b,
            challenge_period: 40,
            phase: ChannelPhase::Open,
            snapshot: Snapshot::opening(1, id),
            pending: None,
            floor: 0,
        }
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
    fn final_and_closing_channels_get_nothing() {
        let mut r = row(100, 0);
        r.snapshot.cosigned.state.is_final = true;
        assert_eq!(owed(&r, &policy()), None);
        let mut r = row(100, 0);
        r.phase = ChannelPhase::Closing;
        assert_eq!(owed(&r, &policy()), None);
    }
}
