//! Why the hub refuses a client's proposal: one typed reason per case, each with the code the
//! client sees in its `Reject`.

use crate::payments::lifecycle::RemovalRefusal;
use crate::payments::router::PlanRefusal;
use sluice_protocol::session;
use sluice_protocol::wire::hub::ErrorCode;
use sluice_protocol::{Hash32, UpdateError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the hub's own proposal on this channel wins")]
    HubProposalWins,
    #[error("channel busy")]
    ChannelBusy,
    #[error("no channel {0} with this client")]
    UnknownChannel(Hash32),
    #[error("channel is not open")]
    NotOpen,
    #[error("version {floor} is signed already; propose above it")]
    VersionBurnt { floor: u64 },
    #[error("{0}")]
    Session(session::Refusal),
    #[error("{0}")]
    Update(UpdateError),
    #[error("a lock toward the hub needs an invoice")]
    NoInvoice,
    #[error("{0}")]
    Plan(#[from] PlanRefusal),
    #[error("payment already failed; lock will expire")]
    PaymentFailed,
    #[error("{0}")]
    Removal(#[from] RemovalRefusal),
    #[error(
        "this invoice was already paid or tried through this hub; ask the payee for a new one"
    )]
    InvoiceUsed,
    #[error("{0}")]
    StaleHeight(#[from] crate::shared::StaleHeight),
    #[error("the hub is shutting down and takes no new payment; retry once it is back")]
    Draining,
    #[error("a withdrawal may leave no less than {min} at stake while the hub's collateral is in the channel; close it to take everything")]
    StakeBelowMinimum { min: sluice_protocol::Amount },
    #[error("hub store: {0}")]
    Store(String),
}

impl Refusal {
    /// The code the client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::HubProposalWins
            | Refusal::ChannelBusy
            | Refusal::VersionBurnt { .. }
            | Refusal::StaleHeight(_)
            | Refusal::Draining => ErrorCode::Busy,
            Refusal::UnknownChannel(_) => ErrorCode::UnknownChannel,
            Refusal::NotOpen
            | Refusal::Update(_)
            | Refusal::NoInvoice
            | Refusal::StakeBelowMinimum { .. } => ErrorCode::InvalidUpdate,
            Refusal::Session(r) => r.code(),
            Refusal::Plan(_)
            | Refusal::PaymentFailed
            | Refusal::Removal(_)
            | Refusal::InvoiceUsed => ErrorCode::PaymentFailed,
            Refusal::Store(_) => ErrorCode::Internal,
        }
    }

    /// From the machine's refusal: a burnt version means the channel moved on (retry above).
    pub fn of_session(r: session::Refusal) -> Self {
        match r {
            session::Refusal::Update(e) => Refusal::of_update(e),
            other => Refusal::Session(other),
        }
    }

    pub fn of_update(e: UpdateError) -> Self {
        match e {
            UpdateError::VersionBurnt { floor, .. } => Refusal::VersionBurnt { floor },
            other => Refusal::Update(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burnt_version_tells_the_client_to_retry_above() {
        let r = Refusal::of_update(UpdateError::VersionBurnt { floor: 4, got: 3 });
        assert_eq!(
            (r.code(), r.to_string().contains("above")),
            (ErrorCode::Busy, true)
        );
    }

    #[test]
    fn session_refusals_keep_their_code() {
        let r = Refusal::of_session(session::Refusal::BadSignature);
        assert_eq!(r.code(), ErrorCode::BadSignature);
    }

    #[test]
    fn payment_refusals_are_payment_failed() {
        assert_eq!(Refusal::InvoiceUsed.code(), ErrorCode::PaymentFailed);
        assert_eq!(
            Refusal::Removal(RemovalRefusal::SecretKnown).code(),
            ErrorCode::PaymentFailed
        );
    }
}
