//! Invoices this wallet issued, with their secrets. A secret is stored before its invoice is
//! shown to anyone, so a payment can never arrive for a secret the wallet forgot.

use super::{amount, now, parse, Store};
use crate::error::Result;
use sluice_protocol::{Amount, Hash32};

/// An invoice this wallet issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRow {
    /// `sha256(secret)`.
    pub hashlock: Hash32,
    /// The preimage, revealed to the hub to take the payment.
    pub secret: Hash32,
    /// Requested amount.
    pub amount: Amount,
    /// Free text.
    pub memo: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// The `slinv1…` string.
    pub encoded: String,
    /// Whether it has been paid.
    pub paid: bool,
}

#[derive(sqlx::FromRow)]
struct Raw {
    hashlock: String,
    secret: String,
    amount: i64,
    memo: String,
    expires_at: i64,
    encoded: String,
    paid: i64,
}

impl Raw {
    fn into_row(self) -> Result<InvoiceRow> {
        Ok(InvoiceRow {
            hashlock: parse("hashlock", &self.hashlock)?,
            secret: parse("secret", &self.secret)?,
            amount: amount("invoice amount", self.amount)?,
            memo: self.memo,
            expires_at: amount("expiry", self.expires_at)?,
            encoded: self.encoded,
            paid: self.paid != 0,
        })
    }
}

impl Store {
    /// Stores a new invoice with its secret.
    pub async fn insert_invoice(&self, row: &InvoiceRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO invoices (hashlock, secret, amount, memo, expires_at, encoded, paid, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
        )
        .bind(row.hashlock.to_string())
        .bind(row.secret.to_string())
        .bind(row.amount as i64)
        .bind(&row.memo)
        .bind(row.expires_at.min(i64::MAX as u64) as i64)
        .bind(&row.encoded)
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The invoice with this hashlock, if this wallet issued it.
    pub async fn invoice(&self, hashlock: &Hash32) -> Result<Option<InvoiceRow>> {
        let raw: Option<Raw> = sqlx::query_as(
            "SELECT hashlock, secret, amount, memo, expires_at, encoded, paid FROM invoices \
             WHERE hashlock = ?",
        )
        .bind(hashlock.to_string())
        .fetch_optional(self.pool())
        .await?;
        raw.map(Raw::into_row).transpose()
    }
}
