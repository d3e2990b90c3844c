//! A handle on one outgoing payment, for an app that does not want to block on it: start it with
//! [`crate::Wallet::pay_handle`], find it again after a restart with
//! [`crate::Wallet::payment_handle`], ask where it stands or wait for its outcome.
//!
//! The store is the payment's record, so the handle reads it there: it holds a clone of the
//! wallet's store (a cheap pool handle) and, weakly, the wallet's event channel to wake up as
//! soon as an outcome is announced. It needs no `&Wallet` and outlives the wallet that made it:
//! once that wallet is dropped it polls the store instead, so a wallet opened again on the same
//! directory (which finishes the payment after it connects) is seen by an old handle too.

use crate::error::{Result, WalletError};
use crate::events::StoredEvent;
use crate::store::{PaymentDirection, PaymentRow, PaymentStatus, Store};
use serde::{Deserialize, Serialize};
use sluice_protocol::Hash32;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// How often [`PayHandle::wait`] re-reads the store when no event wakes it (the outcome may be
/// recorded by another wallet instance on the same directory, whose events it does not hear).
const POLL: Duration = Duration::from_millis(500);

/// Where an outgoing payment stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PayStatus {
    /// The lock is out (or about to be); the outcome is not known yet.
    Pending,
    /// Paid; `secret` is the proof of payment.
    Completed {
        /// The preimage of the invoice's hashlock.
        secret: Hash32,
    },
    /// Did not go through; the locked funds are back.
    Failed {
        /// Why.
        reason: String,
    },
}

impl PayStatus {
    fn of(row: &PaymentRow) -> Result<PayStatus> {
        Ok(match row.status {
            PaymentStatus::Pending => PayStatus::Pending,
            PaymentStatus::Completed => PayStatus::Completed {
                secret: row.secret.ok_or_else(|| {
                    WalletError::Corrupt(format!(
                        "completed payment {} without secret",
                        row.hashlock
                    ))
                })?,
            },
            PaymentStatus::Failed => PayStatus::Failed {
                reason: row.reason.clone().unwrap_or_else(|| "failed".into()),
            },
        })
    }
}

/// One outgoing payment, named by its invoice's hashlock. Cheap to clone; see the module
/// documentation for why it holds the store rather than the wallet.
#[derive(Debug, Clone)]
pub struct PayHandle {
    hashlock: Hash32,
    store: Store,
    wake: broadcast::WeakSender<StoredEvent>,
}

impl PayHandle {
    pub(crate) fn new(
        hashlock: Hash32,
        store: Store,
        wake: &broadcast::Sender<StoredEvent>,
    ) -> Self {
        PayHandle {
            hashlock,
            store,
            wake: wake.downgrade(),
        }
    }

    /// The payment's hashlock (the invoice's), to keep and pass to
    /// [`crate::Wallet::payment_handle`] after a restart.
    pub fn hashlock(&self) -> Hash32 {
        self.hashlock
    }

    /// Where the payment stands now, as stored.
    pub async fn status(&self) -> Result<PayStatus> {
        let out = PaymentDirection::Out;
        let row = self.store.payment(&self.hashlock, out).await?;
        let row = row.ok_or_else(|| {
            WalletError::Corrupt(format!("payment {} is not stored", self.hashlock))
        })?;
        PayStatus::of(&row)
    }

    /// Waits up to `timeout` for the outcome: the secret (proof of payment), or
    /// [`WalletError::PaymentFailed`] with the reason, or [`WalletError::Timeout`] while it is
    /// still pending (it goes on in the background; wait again or ask [`PayHandle::status`]).
    pub async fn wait(&self, timeout: Duration) -> Result<Hash32> {
        // Listen before reading, so an outcome announced in between is not slept through.
        let mut wake = self.wake.upgrade().map(|s| s.subscribe());
        let deadline = Instant::now() + timeout;
        loop {
            match self.status().await? {
                PayStatus::Completed { secret } => return Ok(secret),
                PayStatus::Failed { reason } => return Err(WalletError::PaymentFailed(reason)),
                PayStatus::Pending => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WalletError::Timeout("the payment to complete".into()));
            }
            let until = deadline.min(now + POLL);
            if let Some(rx) = wake.as_mut() {
                // Any event, a lag or the poll interval: read the store again. The wallet gone:
                // poll only.
                let woke = tokio::time::timeout_at(until, rx.recv()).await;
                if let Ok(Err(broadcast::error::RecvError::Closed)) = woke {
                    wake = None;
                }
            } else {
                tokio::time::sleep_until(until).await;
            }
        }
    }
}
