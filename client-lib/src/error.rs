//! Every way a wallet call can fail, typed so that apps can react (retry, ask the user, give up).

use sluice_protocol::invoice::InvoiceError;
use sluice_protocol::wire::hub::ErrorCode;
use sluice_protocol::{Address, Amount, ChainId, Hash32, StateError, UpdateError};

/// An error from the wallet library.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Reading or writing a wallet file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file exists but does not hold a valid key.
    #[error("key file {0} is corrupt; restore it from your backup")]
    BadKeyFile(String),
    /// The wallet config is missing or invalid.
    #[error("wallet config: {0}")]
    Config(String),
    /// The CA file named by the wallet config cannot be used.
    #[error("wallet config: {0}")]
    Tls(#[from] sluice_home::tls::TlsError),
    /// The local database failed.
    #[error("wallet database: {0}")]
    Store(#[from] sqlx::Error),
    /// The database schema could not be brought up to date.
    #[error("wallet database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be read back (the file was edited or damaged).
    #[error("wallet database holds an unreadable {0}")]
    Corrupt(String),
    /// The invoice is malformed, for another chain or hub, or expired.
    #[error("invoice rejected: {0}")]
    Invoice(#[from] InvoiceError),
    /// Not enough spendable balance in any open channel.
    #[error("insufficient balance: need {needed}, best channel has {available}; deposit more or open a channel")]
    InsufficientBalance {
        /// Amount needed including the hub fee.
        needed: Amount,
        /// Largest spendable channel balance.
        available: Amount,
    },
    /// An amount was zero or beyond the maximum.
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    /// No channel with this id (or no open channel at all).
    #[error("no such channel {0}; run `open` first")]
    UnknownChannel(String),
    /// The channel is not in a state that allows this.
    #[error("channel {id} is {status}; {what} is not possible")]
    ChannelState {
        /// Channel id.
        id: Hash32,
        /// Its current status.
        status: String,
        /// The refused operation.
        what: &'static str,
    },
    /// The hub cannot be reached.
    #[error("cannot reach the hub at {url}: {reason}; check the URL and that the hub is running")]
    HubUnreachable {
        /// Hub URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The hub answered with another key than the one configured.
    #[error("hub identifies as {got}, expected {expected}; check --hub-key")]
    HubKeyMismatch {
        /// The configured key.
        expected: Address,
        /// The key the hub claimed.
        got: Address,
    },
    /// Something runs on another chain than this wallet.
    #[error("chain id mismatch: wallet is on chain {expected}, peer is on {got}")]
    WrongChain {
        /// The wallet's chain.
        expected: ChainId,
        /// The peer's chain.
        got: ChainId,
    },
    /// The hub broke the protocol (bad state, bad signature, wrong version).
    #[error("hub misbehaved: {0}")]
    HubMisbehaved(String),
    /// The hub refused an update.
    #[error("hub rejected the update ({code:?}): {reason}")]
    Rejected {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable reason.
        reason: String,
    },
    /// The hub's terms are beyond this wallet's caps (`caps` in the config).
    #[error("hub terms refused: {0}")]
    HubTerms(#[from] sluice_protocol::routing::TermsRefusal),
    /// The fee for this payment is above what the caller allows.
    #[error("the hub's fee for this payment is {fee}, above the maximum {max}")]
    FeeTooHigh {
        /// The fee the hub's terms ask.
        fee: Amount,
        /// The most the caller allows.
        max: Amount,
    },
    /// The payment did not go through; the locked funds are back.
    #[error("payment failed: {0}")]
    PaymentFailed(String),
    /// The session is not connected right now.
    #[error("not connected to the hub; it will be retried, or check the hub is running")]
    NotConnected,
    /// Waited too long.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// An update the protocol rules refuse.
    #[error("invalid update: {0}")]
    Update(#[from] UpdateError),
    /// An update the channel session refuses (a final state was signed, one is in flight, ...).
    #[error("update refused: {0}")]
    Refused(#[from] sluice_protocol::session::Refusal),
    /// A state the protocol rules refuse.
    #[error("invalid state: {0}")]
    State(#[from] StateError),
    /// The chain node failed or refused.
    #[error("chain node: {0}")]
    Chain(#[from] sluice_chain_client::ClientError),
    /// An on-chain send was refused before anything was signed (or failed on chain).
    #[error("send refused: {0}")]
    Send(#[from] sluice_chain_client::SendError),
    /// A watchtower failed or answered badly.
    #[error("watchtower {url}: {reason}")]
    Tower {
        /// Tower URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The wallet is shutting down.
    #[error("wallet is shutting down")]
    Shutdown,
}

impl WalletError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> WalletError {
        let what = what.into();
        move |source| WalletError::Io { what, source }
    }
}

/// Shorthand for wallet results.
pub type Result<T, E = WalletError> = std::result::Result<T, E>;
