//! Moving funds between accounts: the one place a send is checked before anything is signed,
//! used by the wallet, the hub's and the tower's command lines alike.

use crate::error::ClientError;
use crate::sender::TxSender;
use sluice_protocol::amount::{self, AmountError};
use sluice_protocol::{Address, Amount, Hash32, Height, TxKind};
use std::time::Duration;

/// A send included on chain. What the command lines print, so the receiver is its `sl1…` text
/// here and in the JSON: a person copies it, and a script feeds it back to a command line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sent {
    pub tx: Hash32,
    #[serde(serialize_with = "sluice_protocol::text::address_serde::serialize")]
    pub to: Address,
    pub amount: Amount,
    pub fee: Amount,
    pub height: Height,
}

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {} to {} (fee {}) in {}, block {}",
            self.amount,
            self.to.to_text(),
            self.fee,
            self.tx,
            self.height
        )
    }
}

/// Why a send was refused; nothing was submitted unless the error is [`SendError::Chain`].
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("nothing to send: the amount must be above zero")]
    Zero,
    #[error("the account cannot send to itself")]
    ToSelf,
    #[error(transparent)]
    Amount(#[from] AmountError),
    #[error("cannot send {amount} plus the fee of {fee}: the account holds {balance}")]
    Insufficient {
        amount: Amount,
        fee: Amount,
        balance: Amount,
    },
    #[error(transparent)]
    Chain(#[from] ClientError),
}

impl SendError {
    /// A stable name for scripts (`--json` output).
    pub fn code(&self) -> &'static str {
        match self {
            SendError::Zero => "zero_amount",
            SendError::ToSelf => "to_self",
            SendError::Amount(_) => "bad_amount",
            SendError::Insufficient { .. } => "insufficient_funds",
            SendError::Chain(_) => "chain",
        }
    }
}

/// Whether `balance` covers `amount` plus `fee`: the refusals of [`TxSender::transfer`].
pub fn check_send(
    from: Address,
    to: Address,
    amount: Amount,
    fee: Amount,
    balance: Amount,
) -> Result<(), SendError> {
    if amount == 0 {
        return Err(SendError::Zero);
    }
    if from == to {
        return Err(SendError::ToSelf);
    }
    let total = amount::check(amount)?
        .checked_add(fee)
        .ok_or(AmountError::Overflow)?;
    match total <= balance {
        true => Ok(()),
        false => Err(SendError::Insufficient {
            amount,
            fee,
            balance,
        }),
    }
}

impl TxSender {
    /// Sends `amount` to `to` and waits (up to `timeout`) until it is included.
    pub async fn transfer(
        &self,
        to: Address,
        amount: Amount,
        timeout: Duration,
    ) -> Result<Sent, SendError> {
        let from = self.key().address();
        let balance = self.client().account(&from).await?.balance;
        check_send(from, to, amount, self.fee(), balance)?;
        let info = self.send(TxKind::Transfer { to, amount }, timeout).await?;
        Ok(Sent {
            tx: info.id,
            to,
            amount,
            fee: self.fee(),
            height: info.height,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_names_its_receiver_as_text() {
        let sent = Sent {
            tx: Hash32::default(),
            to: Address([2; 32]),
            amount: 5,
            fee: 1,
            height: 9,
        };
        let text = Address([2; 32]).to_text();
        assert!(sent.to_string().contains(&format!(" to {text} ")), "{sent}");
        let json = serde_json::to_value(&sent).unwrap();
        assert_eq!(json["to"], text);
    }

    #[test]
    fn every_bad_send_is_refused_by_name() {
        let (a, b) = (Address([1; 32]), Address([2; 32]));
        assert!(check_send(a, b, 99, 1, 100).is_ok());
        assert!(matches!(
            check_send(a, b, 100, 1, 100),
            Err(SendError::Insufficient { balance: 100, .. })
        ));
        assert!(matches!(check_send(a, b, 0, 1, 100), Err(SendError::Zero)));
        assert!(matches!(
            check_send(a, a, 5, 1, 100),
            Err(SendError::ToSelf)
        ));
        assert!(matches!(
            check_send(a, b, u64::MAX, 1, u64::MAX),
            Err(SendError::Amount(AmountError::TooLarge(_)))
        ));
        assert!(matches!(
            check_send(a, b, amount::MAX_AMOUNT, u64::MAX, u64::MAX),
            Err(SendError::Amount(AmountError::Overflow))
        ));
    }
}
