//! The hub's routing terms, as pure rules both sides compute the same way: the fee a payer adds
//! and how the hub's outgoing lock relates to the incoming one (DESIGN.md §4, Payments).

use crate::amount::{self, Amount, AmountError};
use crate::channel::Lock;
use crate::{Height, Policy};
use serde::{Deserialize, Serialize};

/// What the hub charges and how much time it keeps to claim upstream after learning a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingTerms {
    pub fee_base: Amount,
    /// Parts per million of the payment amount.
    pub fee_ppm: u64,
    /// `E_out ≤ E_in − reveal_margin`: blocks the hub keeps to register a secret on chain.
    pub reveal_margin: Height,
    /// The hub's limits on locks it co-signs.
    pub policy: Policy,
    /// The shortest challenge period (blocks) of a channel the hub serves: a shorter one
    /// leaves it too little time to answer a stale close. Announced at login.
    #[serde(default = "default_min_challenge_period")]
    pub min_challenge_period: Height,
}

/// Forty blocks: twenty seconds at half-second blocks, several rounds of resubmission.
pub const DEFAULT_MIN_CHALLENGE_PERIOD: Height = 40;

fn default_min_challenge_period() -> Height {
    DEFAULT_MIN_CHALLENGE_PERIOD
}

impl Default for RoutingTerms {
    fn default() -> Self {
        RoutingTerms {
            fee_base: 1,
            fee_ppm: 1_000,
            reveal_margin: 20,
            policy: Policy::default(),
            min_challenge_period: DEFAULT_MIN_CHALLENGE_PERIOD,
        }
    }
}

/// The most of a hub's terms a wallet puts up with: the terms come from the hub, and a hub
/// could ask a fee of the whole balance, or a lock lifetime that freezes funds for years
/// (ATTACKS F7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsCaps {
    pub fee_base: Amount,
    /// Parts per million.
    pub fee_ppm: u64,
    /// Blocks a lock of ours may stay open (the terms' `max_expiry_delta`).
    pub lock_blocks: Height,
}

impl Default for TermsCaps {
    /// Well above the default terms, far below anything that hurts.
    fn default() -> Self {
        TermsCaps {
            fee_base: 1_000,
            fee_ppm: 10_000,
            lock_blocks: 5_000,
        }
    }
}

/// Which of a hub's terms is beyond the wallet's caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TermsRefusal {
    #[error("hub fee base {got} is above this wallet's cap {max}")]
    FeeBase { got: Amount, max: Amount },
    #[error("hub fee rate {got} ppm is above this wallet's cap {max} ppm")]
    FeeRate { got: u64, max: u64 },
    #[error("hub lock lifetime of {got} blocks is above this wallet's cap {max}")]
    LockLifetime { got: Height, max: Height },
}

impl TermsCaps {
    pub fn check(&self, t: &RoutingTerms) -> Result<(), TermsRefusal> {
        if t.fee_base > self.fee_base {
            return Err(TermsRefusal::FeeBase {
                got: t.fee_base,
                max: self.fee_base,
            });
        }
        if t.fee_ppm > self.fee_ppm {
            return Err(TermsRefusal::FeeRate {
                got: t.fee_ppm,
                max: self.fee_ppm,
            });
        }
        if t.policy.max_expiry_delta > self.lock_blocks {
            return Err(TermsRefusal::LockLifetime {
                got: t.policy.max_expiry_delta,
                max: self.lock_blocks,
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("incoming lock of {got} does not cover amount plus fee {needed}")]
    FeeNotCovered { needed: Amount, got: Amount },
    #[error("incoming lock expires at {e_in}; too soon to route (needs at least {min})")]
    ExpiryTooSoon { e_in: Height, min: Height },
    #[error(transparent)]
    Amount(#[from] AmountError),
}

impl RoutingTerms {
    /// `fee_base + amount × fee_ppm / 1e6`, rounded up, checked.
    pub fn fee(&self, amount: Amount) -> Result<Amount, AmountError> {
        let prop = (amount as u128 * self.fee_ppm as u128).div_ceil(1_000_000);
        let prop = u64::try_from(prop).map_err(|_| AmountError::Overflow)?;
        amount::add(self.fee_base, amount::check(prop)?)
    }

    /// What the payer must lock toward the hub to pay `amount`.
    pub fn incoming_amount(&self, amount: Amount) -> Result<Amount, AmountError> {
        amount::add(amount, self.fee(amount)?)
    }

    /// The expiry a payer should give its lock at `height`: the most the policy allows, so the
    /// hub has room for its own margin.
    pub fn incoming_expiry(&self, height: Height) -> Height {
        height.saturating_add(self.policy.max_expiry_delta)
    }

    /// Checks an incoming lock pays for `amount` and leaves room for the outgoing lock; returns
    /// the outgoing lock's expiry `E_out = E_in − reveal_margin`, which must itself satisfy the
    /// minimum expiry at `height`.
    pub fn outgoing_expiry(
        &self,
        incoming: &Lock,
        amount: Amount,
        height: Height,
    ) -> Result<Height, RoutingError> {
        let needed = self.incoming_amount(amount)?;
        if incoming.amount < needed {
            return Err(RoutingError::FeeNotCovered {
                needed,
                got: incoming.amount,
            });
        }
        let min = height
            .saturating_add(self.policy.min_expiry_delta)
            .saturating_add(self.reveal_margin);
        if incoming.expiry < min {
            return Err(RoutingError::ExpiryTooSoon {
                e_in: incoming.expiry,
                min,
            });
        }
        Ok(incoming.expiry - self.reveal_margin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Direction;
    use crate::Hash32;

    fn terms() -> RoutingTerms {
        RoutingTerms {
            fee_base: 2,
            fee_ppm: 10_000,
            reveal_margin: 20,
            policy: Policy::default(),
            min_challenge_period: DEFAULT_MIN_CHALLENGE_PERIOD,
        }
    }

    fn lock(amount: Amount, expiry: Height) -> Lock {
        Lock {
            direction: Direction::AtoB,
            amount,
            hashlock: Hash32([1; 32]),
            expiry,
        }
    }

    #[test]
    fn fee_is_base_plus_rounded_up_proportion() {
        assert_eq!(terms().fee(100), Ok(3));
        assert_eq!(terms().fee(1_000), Ok(12));
        assert_eq!(terms().incoming_amount(1_000), Ok(1_012));
    }

    #[test]
    fn terms_beyond_a_wallets_caps_are_refused() {
        let caps = TermsCaps::default();
        assert_eq!(caps.check(&RoutingTerms::default()), Ok(()));
        let greedy = RoutingTerms {
            fee_base: 1_000_001,
            ..terms()
        };
        assert!(matches!(
            caps.check(&greedy),
            Err(TermsRefusal::FeeBase { .. })
        ));
        let rate = RoutingTerms {
            fee_ppm: 500_000,
            ..terms()
        };
        assert!(matches!(
            caps.check(&rate),
            Err(TermsRefusal::FeeRate { .. })
        ));
        let mut frozen = terms();
        frozen.policy.max_expiry_delta = 1_000_000_000;
        assert!(matches!(
            caps.check(&frozen),
            Err(TermsRefusal::LockLifetime { .. })
        ));
    }

    #[test]
    fn fee_overflow_is_an_error() {
        let t = RoutingTerms {
            fee_ppm: u64::MAX,
            ..terms()
        };
        assert!(t.fee(crate::MAX_AMOUNT).is_err());
        assert!(terms().incoming_amount(crate::MAX_AMOUNT).is_err());
    }

    #[test]
    fn outgoing_expiry_keeps_the_margin() {
        assert_eq!(
            terms().outgoing_expiry(&lock(1_012, 500), 1_000, 100),
            Ok(480)
        );
    }

    #[test]
    fn underpaid_or_short_lived_incoming_locks_are_refused() {
        let r = terms().outgoing_expiry(&lock(1_011, 500), 1_000, 100);
        assert_eq!(
            r,
            Err(RoutingError::FeeNotCovered {
                needed: 1_012,
                got: 1_011
            })
        );
        let r = terms().outgoing_expiry(&lock(1_012, 129), 1_000, 100);
        assert_eq!(
            r,
            Err(RoutingError::ExpiryTooSoon {
                e_in: 129,
                min: 130
            })
        );
    }
}
