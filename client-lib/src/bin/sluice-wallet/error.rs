//! What a command can fail with: the library's errors, and what only the command line does.

use sluice_client::WalletError;
use sluice_protocol::invoice::InvoiceError;

/// A command's result.
pub type Result<T> = std::result::Result<T, CliError>;

/// Why a command failed; printed on stderr (or as `{"error": …}` with `--json`), exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The payment URI does not fit in a QR code (a memo near its longest can do this).
    #[error("cannot draw the invoice as a QR code: {0}")]
    Qr(qrcode::types::QrError),
}

/// A bad invoice string reads as the wallet reports it elsewhere (`invoice rejected: …`).
impl From<InvoiceError> for CliError {
    fn from(e: InvoiceError) -> Self {
        CliError::Wallet(e.into())
    }
}
