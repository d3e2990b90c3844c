//! Taking part of a channel balance out without closing it: a co-signed `Withdraw` state (the
//! hub's signature makes it final off chain), then a `Withdraw` transaction that pays it.
//!
//! Nothing extra is stored: the job is derived from what is already there. Whenever the latest
//! co-signed state says we withdrew more than the chain has paid us, that state is submitted
//! (after a crash between signing and submitting, on the next start or guard round). The chain
//! pays each withdrawal once and refuses any older state once it paid one, so submitting twice,
//! or racing the hub's own submission, pays nothing twice.

use crate::core::Core;
use crate::error::{Result, WalletError};
use crate::events::WalletEvent;
use crate::session::{SessionHandle, UpdateCmd};
use crate::store::{ChannelRow, ChannelStatus};
use serde::Serialize;
use sluice_protocol::onchain::{ChannelRecord, ChannelStatus as OnChain};
use sluice_protocol::{Amount, Change, Hash32, Height, Party, TxKind};

/// A withdrawal paid out to the wallet's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Withdrawal {
    /// The channel it came out of.
    pub channel_id: Hash32,
    /// What this withdrawal moved to the account.
    pub amount: Amount,
    /// The channel version that carries it.
    pub version: u64,
    /// The paying transaction, once included.
    pub tx: Hash32,
    /// The block it was included in.
    pub height: Height,
    /// What is left spendable in the channel.
    pub balance_left: Amount,
}

/// Co-signs a withdrawal of `amount` from our side of `id` with the hub, then has the chain
/// pay it. Refused before anything is signed if the channel is not open or holds less.
pub(crate) async fn withdraw(
    core: &Core,
    session: SessionHandle,
    id: &Hash32,
    amount: Amount,
) -> Result<Withdrawal> {
    let ch = core.store.require_channel(id).await?;
    if ch.status != ChannelStatus::Open {
        return Err(WalletError::ChannelState {
            id: *id,
            status: ch.status.to_string(),
            what: "a withdrawal",
        });
    }
    let rec = crate::chain::record(&core.chain, id).await?;
    let available = ours(&ch, &rec);
    if amount > available {
        return Err(WalletError::InsufficientBalance {
            needed: amount,
            available,
        });
    }
    let change = Change::Withdraw {
        party: Party::A,
        amount,
    };
    // Held from before the signing to the payment, so the guard does not race us to the chain.
    let _one_at_a_time = core.withdrawing.lock().await;
    let cmd = UpdateCmd::background(*id, change);
    let snap = session.update(cmd, core.config.pay_timeout()).await?;
    tracing::info!(channel = %id, amount, version = snap.state().version, "withdrawal co-signed");
    let ch = core.store.require_channel(id).await?;
    pay(core, &ch).await?.ok_or_else(|| {
        WalletError::Corrupt("the co-signed withdrawal is not in the stored state".into())
    })
}

/// Submits our latest co-signed state if it carries a withdrawal of ours the chain has not
/// paid; `None` if there is none (or the channel is no longer open on chain, where settlement
/// pays it instead).
pub(crate) async fn submit(core: &Core, ch: &ChannelRow) -> Result<Option<Withdrawal>> {
    let _one_at_a_time = core.withdrawing.lock().await;
    let ch = core.store.require_channel(&ch.id).await?;
    pay(core, &ch).await
}

async fn pay(core: &Core, ch: &ChannelRow) -> Result<Option<Withdrawal>> {
    let rec = crate::chain::record(&core.chain, &ch.id).await?;
    let state = ch.snapshot.state();
    let owed = state.withdrawn_a.saturating_sub(rec.withdrawn.a);
    if rec.status != OnChain::Open || owed == 0 || state.version <= rec.withdrawn.version {
        return Ok(None);
    }
    let kind = TxKind::Withdraw {
        cosigned: ch.snapshot.cosigned,
    };
    let info = core.sender.send(kind, crate::onchain::TX_TIMEOUT).await?;
    let rec = crate::chain::record(&core.chain, &ch.id).await?;
    let done = Withdrawal {
        channel_id: ch.id,
        amount: owed,
        version: state.version,
        tx: info.id,
        height: info.height,
        balance_left: ours(ch, &rec),
    };
    tracing::info!(channel = %ch.id, amount = owed, tx = %info.id, "withdrawal paid on chain");
    core.emit_durable(WalletEvent::WithdrawalPaid {
        channel_id: ch.id,
        amount: owed,
        tx: info.id,
    })
    .await?;
    Ok(Some(done))
}

/// Our spendable side of the channel under the chain's deposits.
fn ours(ch: &ChannelRow, rec: &ChannelRecord) -> Amount {
    let state = ch.snapshot.state();
    state
        .balances(rec.deposit_a, rec.deposit_b)
        .map_or(0, |(a, _)| a)
}
