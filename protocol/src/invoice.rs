//! Invoices: a payee's signed request to be paid, shared as a `sluice1…` string (hex of the
//! canonical bytes and signature, plus a 4-byte checksum so typos and truncation are caught
//! before any signature work).

use crate::amount::Amount;
use crate::encoding::{Canonical, DecodeError, Reader, Writer};
use crate::hash::{sha256, Hash32, Tag};
use crate::hex::{self, HexError};
use crate::keys::{Address, KeyError, Keypair, Signature};
use crate::ChainId;
use serde::{Deserialize, Serialize};

pub const INVOICE_PREFIX: &str = "sluice1";
/// Longest memo, in bytes.
pub const MAX_MEMO_LEN: usize = 256;
/// Longest invoice string any parser accepts.
pub const MAX_INVOICE_STR_LEN: usize =
    2 * (8 + 32 + 32 + 8 + 32 + 8 + 4 + MAX_MEMO_LEN + 64 + 4) + 7;

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
    #[error("invoice must start with \"{INVOICE_PREFIX}\"")]
    BadPrefix,
    #[error("invoice is not valid hex: {0}")]
    Hex(#[from] HexError),
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

fn checksum(payload: &[u8]) -> [u8; 4] {
    let h = sha256(payload).0;
    [h[0], h[1], h[2], h[3]]
}

impl SignedInvoice {
    /// The shareable `sluice1…` string.
    pub fn encode_string(&self) -> String {
        let mut bytes = self.to_bytes();
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        format!("{INVOICE_PREFIX}{}", hex::encode(&bytes))
    }

    /// Parses a `sluice1…` string and checks the payee's signature. Any tampering or truncation
    /// fails the checksum or the signature.
    pub fn parse(s: &str) -> Result<Self, InvoiceError> {
        if s.len() > MAX_INVOICE_STR_LEN {
            return Err(InvoiceError::TooLong(s.len()));
        }
        let body = s
            .strip_prefix(INVOICE_PREFIX)
            .ok_or(InvoiceError::BadPrefix)?;
        let bytes = hex::decode(body)?;
        if bytes.len() < 4 {
            return Err(InvoiceError::BadChecksum);
        }
        let (payload, sum) = bytes.split_at(bytes.len() - 4);
        if checksum(payload) != sum {
            return Err(InvoiceError::BadChecksum);
        }
        let signed = SignedInvoice::from_bytes(payload)?;
        signed.verify()?;
        Ok(signed)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn string_round_trips() {
        let inv = invoice();
        let s = inv.encode_string();
        assert!(s.starts_with("sluice1"));
        assert_eq!(SignedInvoice::parse(&s), Ok(inv));
    }

    #[test]
    fn any_single_character_change_is_rejected() {
        let s = invoice().encode_string();
        for i in INVOICE_PREFIX.len()..s.len() {
            let mut b = s.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(b).unwrap();
            assert!(
                SignedInvoice::parse(&t).is_err(),
                "tampered at {i} accepted"
            );
        }
    }

    #[test]
    fn truncation_is_rejected() {
        let s = invoice().encode_string();
        for cut in [s.len() - 1, s.len() - 2, s.len() / 2, 8, 7, 0] {
            assert!(
                SignedInvoice::parse(&s[..cut]).is_err(),
                "truncated to {cut} accepted"
            );
        }
    }

    #[test]
    fn bad_prefix_and_oversize_are_typed() {
        assert_eq!(
            SignedInvoice::parse("lnbc1abc"),
            Err(InvoiceError::BadPrefix)
        );
        let long = "sluice1".to_string() + &"0".repeat(MAX_INVOICE_STR_LEN);
        assert!(matches!(
            SignedInvoice::parse(&long),
            Err(InvoiceError::TooLong(_))
        ));
    }

    #[test]
    fn forged_signature_is_rejected_even_with_valid_checksum() {
        let mut inv = invoice();
        inv.invoice.amount = 1;
        let s = inv.encode_string();
        assert!(matches!(
            SignedInvoice::parse(&s),
            Err(InvoiceError::BadSignature(_))
        ));
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
