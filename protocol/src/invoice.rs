//! Invoices: a payee's signed request to be paid, shared as a bech32m `slinv1…` string over
//! the canonical bytes and signature (see [`crate::text`] for why checksummed text), or as the
//! payment URI `sluice:slinv1…` (`SLUICE:SLINV1…` in a QR code). A typo or a truncation fails
//! the checksum before any signature work.

use crate::amount::Amount;
use crate::encoding::{Canonical, DecodeError, Reader, Writer};
use crate::hash::{Hash32, Tag};
use crate::keys::{Address, KeyError, Keypair, Signature};
use crate::text::{self, TextError, CHECKSUM_LEN, MAX_TEXT_LEN};
use crate::ChainId;
use serde::{Deserialize, Serialize};

/// Human-readable prefix of an invoice string.
pub const INVOICE_HRP: &str = "slinv";
/// Scheme of the payment URI `sluice:<invoice>`.
pub const URI_SCHEME: &str = "sluice";
/// Longest memo, in bytes.
pub const MAX_MEMO_LEN: usize = 256;
/// Largest canonical signed invoice, in bytes.
pub const MAX_INVOICE_BYTES: usize = 8 + 32 + 32 + 8 + 32 + 8 + 4 + MAX_MEMO_LEN + 64;
/// Longest invoice string any parser accepts: its length is checked before anything is decoded.
pub const MAX_INVOICE_STR_LEN: usize =
    INVOICE_HRP.len() + 1 + (MAX_INVOICE_BYTES * 8).div_ceil(5) + CHECKSUM_LEN;
/// Longest payment URI any parser accepts.
pub const MAX_URI_LEN: usize = URI_SCHEME.len() + 1 + MAX_INVOICE_STR_LEN;
const _: () = assert!(MAX_INVOICE_STR_LEN <= MAX_TEXT_LEN);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub chain_id: ChainId,
    /// The hub the payee is reachable through.
    pub hub: Address,
    pub payee: Address,
    pub amount: Amount,
    /// `sha256(secret)`; the secret, once revealed, is the payer's proof of payment.
    pub hashlock: Hash32,
    /// Unix time in seconds after which the invoice must not be paid.
    pub expires_at: u64,
    pub memo: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInvoice {
    pub invoice: Invoice,
    pub sig: Signature,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    #[error("invoice string is {0} characters, longer than allowed")]
    TooLong(usize),
    #[error(
        "an invoice starts with \"{INVOICE_HRP}1\" or \"{URI_SCHEME}:{INVOICE_HRP}1\", not \"{0}\""
    )]
    BadPrefix(String),
    #[error("invoice mixes upper and lower case; use one case throughout")]
    MixedCase,
    #[error("invoice has {c:?} at position {pos}, not a bech32 character")]
    BadChar { c: char, pos: usize },
    #[error("invoice checksum does not match (mistyped or truncated)")]
    BadChecksum,
    #[error("invoice is malformed: {0}")]
    Decode(#[from] DecodeError),
    #[error("invoice signature is not the payee's: {0}")]
    BadSignature(KeyError),
    #[error("invoice is for chain {got}, not {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("invoice is for another hub")]
    WrongHub,
    #[error("invoice expired at {0}")]
    Expired(u64),
    #[error("memo longer than {MAX_MEMO_LEN} bytes")]
    MemoTooLong,
    #[error("invoice amount must be positive")]
    ZeroAmount,
}

impl From<TextError> for InvoiceError {
    fn from(e: TextError) -> Self {
        match e {
            TextError::TooLong { len, .. } => InvoiceError::TooLong(len),
            TextError::WrongHrp { got, .. } => InvoiceError::BadPrefix(got),
            TextError::MixedCase => InvoiceError::MixedCase,
            TextError::BadChar { c, pos } => InvoiceError::BadChar { c, pos },
            TextError::BadChecksum | TextError::NonCanonical | TextError::WrongLength { .. } => {
                InvoiceError::BadChecksum
            }
        }
    }
}

impl Canonical for Invoice {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.chain_id)
            .address(&self.hub)
            .address(&self.payee)
            .u64(self.amount)
            .hash(&self.hashlock)
            .u64(self.expires_at)
            .bytes(self.memo.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Invoice {
            chain_id: r.u64()?,
            hub: r.address()?,
            payee: r.address()?,
            amount: r.amount()?,
            hashlock: r.hash()?,
            expires_at: r.u64()?,
            memo: std::str::from_utf8(r.bytes(MAX_MEMO_LEN)?)
                .map_err(|_| DecodeError::Invalid("memo is not UTF-8"))?
                .to_owned(),
        })
    }
}

impl Canonical for SignedInvoice {
    fn encode(&self, w: &mut Writer) {
        self.invoice.encode(w);
        w.signature(&self.sig);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedInvoice {
            invoice: Invoice::decode(r)?,
            sig: r.signature()?,
        })
    }
}

impl Invoice {
    /// Signs as the payee; `key` must be the payee's key.
    pub fn sign(self, key: &Keypair) -> Result<SignedInvoice, InvoiceError> {
        if self.memo.len() > MAX_MEMO_LEN {
            return Err(InvoiceError::MemoTooLong);
        }
        if self.amount == 0 {
            return Err(InvoiceError::ZeroAmount);
        }
        crate::amount::check(self.amount).map_err(DecodeError::from)?;
        let sig = key.sign(Tag::Invoice, &self.to_bytes());
        Ok(SignedInvoice { invoice: self, sig })
    }
}

impl SignedInvoice {
    /// The shareable `slinv1…` string (lower case).
    pub fn encode_string(&self) -> Result<String, InvoiceError> {
        if self.invoice.memo.len() > MAX_MEMO_LEN {
            return Err(InvoiceError::MemoTooLong);
        }
        Ok(text::encode(INVOICE_HRP, &self.to_bytes())?)
    }

    /// The payment URI `sluice:slinv1…`, for links.
    pub fn to_uri(&self) -> Result<String, InvoiceError> {
        Ok(format!("{URI_SCHEME}:{}", self.encode_string()?))
    }

    /// The payment URI in upper case, `SLUICE:SLINV1…`: a QR code holds upper case in its
    /// compact alphanumeric mode.
    pub fn to_qr_uri(&self) -> Result<String, InvoiceError> {
        Ok(self.to_uri()?.to_ascii_uppercase())
    }

    /// Parses an invoice string or payment URI (either case, not mixed) and checks the payee's
    /// signature. Any tampering or truncation fails the checksum or the signature.
    pub fn parse(s: &str) -> Result<Self, InvoiceError> {
        let signed = Self::parse_unverified(s)?;
        signed.verify()?;
        Ok(signed)
    }

    /// [`SignedInvoice::parse`] without the signature check, to show what a string says (a
    /// forged one included). Never pay what this returns without [`SignedInvoice::verify`].
    pub fn parse_unverified(s: &str) -> Result<Self, InvoiceError> {
        if s.len() > MAX_URI_LEN {
            return Err(InvoiceError::TooLong(s.len()));
        }
        let bytes = text::decode(INVOICE_HRP, strip_scheme(s), MAX_INVOICE_STR_LEN)?;
        Ok(SignedInvoice::from_bytes(&bytes)?)
    }

    pub fn verify(&self) -> Result<(), InvoiceError> {
        if self.invoice.amount == 0 {
            return Err(InvoiceError::ZeroAmount);
        }
        self.invoice
            .payee
            .verify(Tag::Invoice, &self.invoice.to_bytes(), &self.sig)
            .map_err(InvoiceError::BadSignature)
    }

    /// Whether a payer on `chain_id` going through `hub` may pay this at unix time `now`.
    pub fn check_payable(
        &self,
        chain_id: ChainId,
        hub: &Address,
        now: u64,
    ) -> Result<(), InvoiceError> {
        let inv = &self.invoice;
        if inv.chain_id != chain_id {
            return Err(InvoiceError::WrongChain {
                expected: chain_id,
                got: inv.chain_id,
            });
        }
        if inv.hub != *hub {
            return Err(InvoiceError::WrongHub);
        }
        if now >= inv.expires_at {
            return Err(InvoiceError::Expired(inv.expires_at));
        }
        Ok(())
    }
}

/// The invoice inside a `sluice:` URI (scheme in either case, as URI schemes are), or `s` itself.
fn strip_scheme(s: &str) -> &str {
    match s.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case(URI_SCHEME) => rest,
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    fn payee() -> Keypair {
        Keypair::from_secret(&[4; 32]).unwrap()
    }

    fn invoice() -> SignedInvoice {
        Invoice {
            chain_id: 1,
            hub: Address([9; 32]),
            payee: payee().address(),
            amount: 1_500,
            hashlock: sha256(&[1; 32]),
            expires_at: 2_000_000_000,
            memo: "coffee".into(),
        }
        .sign(&payee())
        .unwrap()
    }

    #[test]
    fn string_and_uri_round_trip_in_either_case() {
        let inv = invoice();
        let s = inv.encode_string().unwrap();
        assert!(
            s.starts_with("slinv1") && s.len() <= MAX_INVOICE_STR_LEN,
            "{s}"
        );
        let uri = inv.to_uri().unwrap();
        assert_eq!(uri, format!("sluice:{s}"));
        assert_eq!(inv.to_qr_uri().unwrap(), uri.to_uppercase());
        for t in [s.clone(), s.to_uppercase(), uri.clone(), uri.to_uppercase()] {
            assert_eq!(SignedInvoice::parse(&t), Ok(inv.clone()), "{t}");
        }
    }

    #[test]
    fn mixed_case_and_foreign_schemes_are_refused() {
        let s = invoice().encode_string().unwrap();
        let mixed = format!("{}{}", &s[..20].to_uppercase(), &s[20..]);
        assert_eq!(SignedInvoice::parse(&mixed), Err(InvoiceError::MixedCase));
        let other = format!("bitcoin:{s}");
        assert!(matches!(
            SignedInvoice::parse(&other),
            Err(InvoiceError::BadPrefix(_))
        ));
    }

    #[test]
    fn the_longest_invoice_fits_the_bound() {
        let mut i = invoice().invoice;
        i.memo = "x".repeat(MAX_MEMO_LEN);
        let s = i.sign(&payee()).unwrap().encode_string().unwrap();
        assert_eq!(s.len(), MAX_INVOICE_STR_LEN);
        assert!(SignedInvoice::parse(&s).is_ok());
    }

    #[test]
    fn an_unsignable_memo_is_not_encoded() {
        let mut inv = invoice();
        inv.invoice.memo = "x".repeat(MAX_MEMO_LEN + 1);
        assert_eq!(inv.encode_string(), Err(InvoiceError::MemoTooLong));
    }

    #[test]
    fn forged_signature_is_rejected_even_with_valid_checksum() {
        let mut inv = invoice();
        inv.invoice.amount = 1;
        let s = inv.encode_string().unwrap();
        assert!(matches!(
            SignedInvoice::parse(&s),
            Err(InvoiceError::BadSignature(_))
        ));
        assert_eq!(SignedInvoice::parse_unverified(&s), Ok(inv));
    }

    #[test]
    fn payability_checks_chain_hub_and_expiry() {
        let inv = invoice();
        let hub = Address([9; 32]);
        assert_eq!(inv.check_payable(1, &hub, 0), Ok(()));
        assert_eq!(
            inv.check_payable(2, &hub, 0),
            Err(InvoiceError::WrongChain {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            inv.check_payable(1, &Address([8; 32]), 0),
            Err(InvoiceError::WrongHub)
        );
        assert_eq!(
            inv.check_payable(1, &hub, 2_000_000_000),
            Err(InvoiceError::Expired(2_000_000_000))
        );
    }

    #[test]
    fn long_memo_and_zero_amount_cannot_be_signed() {
        let mut i = invoice().invoice;
        i.memo = "x".repeat(MAX_MEMO_LEN + 1);
        assert_eq!(i.clone().sign(&payee()), Err(InvoiceError::MemoTooLong));
        i.memo.clear();
        i.amount = 0;
        assert_eq!(i.sign(&payee()), Err(InvoiceError::ZeroAmount));
    }
}
