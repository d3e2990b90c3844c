//! Requests from the wallet API to the session task.

use crate::error::Result;
use crate::store::PaymentRow;
use sluice_protocol::{Change, Hash32, Snapshot};
use tokio::sync::oneshot;

/// Propose `change` on a channel; the reply carries the co-signed snapshot once the hub
/// accepted and the wallet stored it.
#[derive(Debug)]
pub(crate) struct UpdateCmd {
    pub channel_id: Hash32,
    pub change: Change,
    /// For a payment: the invoice string the hub routes to.
    pub invoice: Option<String>,
    /// For a payment: its row, stored before the proposal is signed.
    pub payment: Option<PaymentRow>,
    pub reply: Option<oneshot::Sender<Result<Snapshot>>>,
}

impl UpdateCmd {
    /// A background update nobody waits for (unlocks, expired-lock removals).
    pub fn background(channel_id: Hash32, change: Change) -> Self {
        UpdateCmd {
            channel_id,
            change,
            invoice: None,
            payment: None,
            reply: None,
        }
    }

    pub fn answer(self, result: Result<Snapshot>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        } else if let Err(e) = result {
            tracing::warn!(channel = %self.channel_id, error = %e, "background update failed");
        }
    }
}
