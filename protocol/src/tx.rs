//! Settlement-chain transactions (DESIGN.md §3): `{chain_id, from, nonce, fee, kind}` signed by
//! `from` over the transaction id, the tagged hash of the canonical encoding.

use crate::amount::{self, Amount, AmountError};
use crate::channel::{CoSigned, Lock, MAX_LOCKS};
use crate::encoding::{Canonical, DecodeError, Reader, Writer};
use crate::hash::{tagged_hash, Hash32, Tag};
use crate::keys::{Address, KeyError, Keypair, Signature};
use crate::{ChainId, Height};
use serde::{Deserialize, Serialize};

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TxKind {
    Transfer {
        to: Address,
        amount: Amount,
    },
    OpenChannel {
        counterparty: Address,
        deposit: Amount,
        challenge_period: Height,
        salt: Hash32,
    },
    Deposit {
        channel_id: Hash32,
        amount: Amount,
    },
    CooperativeClose {
        cosigned: CoSigned,
    },
    Close {
        cosigned: CoSigned,
        locks: Vec<Lock>,
    },
    Challenge {
        cosigned: CoSigned,
        locks: Vec<Lock>,
    },
    RegisterSecret {
        secret: Hash32,
    },
    Settle {
        channel_id: Hash32,
    },
    /// Pays out of an open channel what `cosigned` withdraws beyond earlier withdrawals.
    Withdraw {
        cosigned: CoSigned,
    },
}

impl TxKind {
    /// A short name for logs, metrics and receipts.
    pub fn name(&self) -> &'static str {
        match self {
            TxKind::Transfer { .. } => "transfer",
            TxKind::OpenChannel { .. } => "open_channel",
            TxKind::Deposit { .. } => "deposit",
            TxKind::CooperativeClose { .. } => "cooperative_close",
            TxKind::Close { .. } => "close",
            TxKind::Challenge { .. } => "challenge",
            TxKind::RegisterSecret { .. } => "register_secret",
            TxKind::Settle { .. } => "settle",
            TxKind::Withdraw { .. } => "withdraw",
        }
    }

    /// The amount the sender pays out of its account besides the fee.
    pub fn outflow(&self) -> Amount {
        match self {
            TxKind::Transfer { amount, .. } | TxKind::Deposit { amount, .. } => *amount,
            TxKind::OpenChannel { deposit, .. } => *deposit,
            _ => 0,
        }
    }
}

impl Canonical for TxKind {
    fn encode(&self, w: &mut Writer) {
        match self {
            TxKind::Transfer { to, amount } => {
                w.u8(0).address(to).u64(*amount);
            }
            TxKind::OpenChannel {
                counterparty,
                deposit,
                challenge_period,
                salt,
            } => {
                w.u8(1)
                    .address(counterparty)
                    .u64(*deposit)
                    .u64(*challenge_period)
                    .hash(salt);
            }
            TxKind::Deposit { channel_id, amount } => {
                w.u8(2).hash(channel_id).u64(*amount);
            }
            TxKind::CooperativeClose { cosigned } => {
                w.u8(3);
                cosigned.encode(w);
            }
            TxKind::Close { cosigned, locks } => {
                w.u8(4);
                cosigned.encode(w);
                w.list(locks);
            }
            TxKind::Challenge { cosigned, locks } => {
                w.u8(5);
                cosigned.encode(w);
                w.list(locks);
            }
            TxKind::RegisterSecret { secret } => {
                w.u8(6).hash(secret);
            }
            TxKind::Settle { channel_id } => {
                w.u8(7).hash(channel_id);
            }
            TxKind::Withdraw { cosigned } => {
                w.u8(8);
                cosigned.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => TxKind::Transfer {
                to: r.address()?,
                amount: r.amount()?,
            },
            1 => TxKind::OpenChannel {
                counterparty: r.address()?,
                deposit: r.amount()?,
                challenge_period: r.u64()?,
                salt: r.hash()?,
            },
            2 => TxKind::Deposit {
                channel_id: r.hash()?,
                amount: r.amount()?,
            },
            3 => TxKind::CooperativeClose {
                cosigned: CoSigned::decode(r)?,
            },
            4 => TxKind::Close {
                cosigned: CoSigned::decode(r)?,
                locks: r.list(MAX_LOCKS)?,
            },
            5 => TxKind::Challenge {
                cosigned: CoSigned::decode(r)?,
                locks: r.list(MAX_LOCKS)?,
            },
            6 => TxKind::RegisterSecret { secret: r.hash()? },
            7 => TxKind::Settle {
                channel_id: r.hash()?,
            },
            8 => TxKind::Withdraw {
                cosigned: CoSigned::decode(r)?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "transaction kind",
                    tag,
                })
            }
        })
    }
}

/// An unsigned transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub chain_id: ChainId,
    pub from: Address,
    pub nonce: u64,
    pub fee: Amount,
    pub kind: TxKind,
}

impl Canonical for Transaction {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.chain_id)
            .address(&self.from)
            .u64(self.nonce)
            .u64(self.fee);
        self.kind.encode(w);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Transaction {
            chain_id: r.u64()?,
            from: r.address()?,
            nonce: r.u64()?,
            fee: r.amount()?,
            kind: TxKind::decode(r)?,
        })
    }
}

impl Transaction {
    /// The transaction id: `tagged_hash("sluice/tx", canonical bytes)`. It is what `from` signs.
    pub fn id(&self) -> Hash32 {
        tagged_hash(Tag::Tx, &self.to_bytes())
    }

    /// Signs with `key`, which must be `from`'s key for the result to verify.
    pub fn sign(self, key: &Keypair) -> SignedTx {
        let sig = key.sign_hash(&self.id());
        SignedTx { tx: self, sig }
    }

    /// `amount + fee`, the most this transaction can take from `from`'s balance.
    pub fn total_cost(&self) -> Result<Amount, AmountError> {
        amount::add(self.kind.outflow(), self.fee)
    }
}

/// A transaction with its sender's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    pub tx: Transaction,
    pub sig: Signature,
}

impl SignedTx {
    pub fn id(&self) -> Hash32 {
        self.tx.id()
    }

    /// Checks the signature against `tx.from`.
    pub fn verify(&self) -> Result<(), KeyError> {
        self.tx.from.verify_hash(&self.tx.id(), &self.sig)
    }
}

impl Canonical for SignedTx {
    fn encode(&self, w: &mut Writer) {
        self.tx.encode(w);
        w.signature(&self.sig);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedTx {
            tx: Transaction::decode(r)?,
            sig: r.signature()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Keypair {
        Keypair::from_secret(&[5; 32]).unwrap()
    }

    fn transfer(chain_id: ChainId) -> Transaction {
        Transaction {
            chain_id,
            from: key().address(),
            nonce: 0,
            fee: 1,
            kind: TxKind::Transfer {
                to: Address([2; 32]),
                amount: 10,
            },
        }
    }

    #[test]
    fn signed_tx_verifies_and_round_trips() {
        let stx = transfer(1).sign(&key());
        assert_eq!(stx.verify(), Ok(()));
        assert_eq!(SignedTx::from_bytes(&stx.to_bytes()), Ok(stx));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let mut stx = transfer(1).sign(&key());
        stx.tx.nonce = 1;
        assert_eq!(stx.verify(), Err(KeyError::BadSignature));
    }

    #[test]
    fn signature_does_not_carry_to_another_chain() {
        let stx = transfer(1).sign(&key());
        let moved = SignedTx {
            tx: transfer(2),
            sig: stx.sig,
        };
        assert_eq!(moved.verify(), Err(KeyError::BadSignature));
    }

    #[test]
    fn unknown_kind_and_truncation_are_errors() {
        let mut bytes = transfer(1).to_bytes();
        bytes[56] = 99;
        assert!(matches!(
            Transaction::from_bytes(&bytes),
            Err(DecodeError::UnknownTag { .. })
        ));
        let bytes = transfer(1).sign(&key()).to_bytes();
        assert_eq!(
            SignedTx::from_bytes(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn overflowing_cost_is_an_error() {
        let mut tx = transfer(1);
        tx.fee = crate::MAX_AMOUNT;
        assert_eq!(tx.total_cost(), Err(AmountError::Overflow));
    }
}
