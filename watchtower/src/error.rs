//! What the API answers when it refuses a request: a stable `code`, a message, an HTTP status.

use crate::store::{Refusal, StoreError};
use sluice_protocol::onchain::ChannelError;
use sluice_protocol::wire::tower::TowerError;
use sluice_protocol::{Hash32, StateError};
use warp::http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body exceeds {0} bytes")]
    TooLarge(u64),
    #[error("request body needs a Content-Length header")]
    LengthRequired,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("missing X-Sluice-Auth header")]
    MissingAuth,
    #[error("user signature does not verify for this tower, chain, action and body")]
    BadAuth,
    #[error("user is not registered")]
    Unregistered,
    #[error("user is neither party of the channel")]
    NotParticipant,
    #[error("state is for chain {got}, this tower serves chain {expected}")]
    WrongChain { expected: u64, got: u64 },
    #[error("invalid appointment: {0}")]
    InvalidAppointment(StateError),
    #[error("the state does not fit channel {channel} on chain: {why}")]
    DoesNotFit { channel: Hash32, why: ChannelError },
    #[error("version {got} is not above the stored version {stored}")]
    StaleVersion { stored: u64, got: u64 },
    #[error("quota of {quota} channels reached")]
    QuotaExceeded { quota: u64 },
    #[error("nonce already used")]
    ReplayedNonce,
    #[error("stale request: {0} (check the client's clock)")]
    StaleNonce(#[from] crate::nonces::NonceTimeError),
    #[error("no such appointment")]
    NotFound,
    #[error("tower is busy; retry shortly")]
    Busy,
    #[error("too many {what} requests from this address: at most {per_sec} a second (burst {burst}); retry in {retry_ms} ms")]
    RateLimited {
        /// Which limit: `registration` or `appointment`.
        what: &'static str,
        per_sec: u32,
        burst: u32,
        retry_ms: u64,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::TooLarge(_) => "too_large",
            ApiError::LengthRequired => "length_required",
            ApiError::Malformed(_) => "malformed",
            ApiError::MissingAuth => "missing_auth",
            ApiError::BadAuth => "bad_signature",
            ApiError::Unregistered => "unregistered",
            ApiError::NotParticipant => "not_participant",
            ApiError::WrongChain { .. } => "wrong_chain",
            ApiError::InvalidAppointment(_) => "invalid_appointment",
            ApiError::DoesNotFit { .. } => "does_not_fit",
            ApiError::StaleVersion { .. } => "stale_version",
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::ReplayedNonce => "replayed_nonce",
            ApiError::StaleNonce(_) => "stale_nonce",
            ApiError::NotFound => "not_found",
            ApiError::Busy => "busy",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::LengthRequired => StatusCode::LENGTH_REQUIRED,
            ApiError::Malformed(_)
            | ApiError::WrongChain { .. }
            | ApiError::InvalidAppointment(_) => StatusCode::BAD_REQUEST,
            ApiError::DoesNotFit { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MissingAuth | ApiError::BadAuth | ApiError::StaleNonce(_) => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Unregistered | ApiError::NotParticipant | ApiError::QuotaExceeded { .. } => {
                StatusCode::FORBIDDEN
            }
            ApiError::StaleVersion { .. } | ApiError::ReplayedNonce => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whole seconds after which a refused request may be retried, for a `Retry-After` header.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_ms, .. } => Some(retry_ms.div_ceil(1_000).max(1)),
            _ => None,
        }
    }

    pub fn body(&self) -> TowerError {
        TowerError {
            code: self.code().to_string(),
            message: self.to_string(),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Unregistered => ApiError::Unregistered,
            Refusal::ReplayedNonce => ApiError::ReplayedNonce,
            Refusal::StaleVersion { stored, got } => ApiError::StaleVersion { stored, got },
            Refusal::QuotaExceeded { quota } => ApiError::QuotaExceeded { quota },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::Internal("store unavailable".into())
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::WrongChain { expected, got } => ApiError::WrongChain { expected, got },
            e => ApiError::InvalidAppointment(e),
        }
    }
}
