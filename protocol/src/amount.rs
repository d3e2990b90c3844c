//! Amounts in base units. Every amount fits Postgres `BIGINT`, so the ceiling is `i64::MAX`, and
//! every sum is checked: an overflow is a rejected input, never a wrap or a panic.

/// An amount in base units, `0..=MAX_AMOUNT`.
pub type Amount = u64;

/// The largest amount anything may hold or move.
pub const MAX_AMOUNT: Amount = i64::MAX as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount {0} exceeds the maximum {MAX_AMOUNT}")]
    TooLarge(u64),
    #[error("amount arithmetic overflowed")]
    Overflow,
    #[error("amount arithmetic went below zero")]
    Underflow,
}

/// Rejects amounts above [`MAX_AMOUNT`].
pub fn check(amount: u64) -> Result<Amount, AmountError> {
    if amount > MAX_AMOUNT {
        Err(AmountError::TooLarge(amount))
    } else {
        Ok(amount)
    }
}

/// `a + b`, staying within [`MAX_AMOUNT`].
pub fn add(a: Amount, b: Amount) -> Result<Amount, AmountError> {
    a.checked_add(b)
        .filter(|s| *s <= MAX_AMOUNT)
        .ok_or(AmountError::Overflow)
}

/// `a - b`, never below zero.
pub fn sub(a: Amount, b: Amount) -> Result<Amount, AmountError> {
    a.checked_sub(b).ok_or(AmountError::Underflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_above_max() {
        assert_eq!(
            check(MAX_AMOUNT + 1),
            Err(AmountError::TooLarge(MAX_AMOUNT + 1))
        );
        assert_eq!(check(MAX_AMOUNT), Ok(MAX_AMOUNT));
    }

    #[test]
    fn add_overflow_is_an_error() {
        assert_eq!(add(MAX_AMOUNT, 1), Err(AmountError::Overflow));
        assert_eq!(add(u64::MAX, u64::MAX), Err(AmountError::Overflow));
        assert_eq!(add(2, 3), Ok(5));
    }

    #[test]
    fn sub_underflow_is_an_error() {
        assert_eq!(sub(1, 2), Err(AmountError::Underflow));
        assert_eq!(sub(3, 2), Ok(1));
    }
}
