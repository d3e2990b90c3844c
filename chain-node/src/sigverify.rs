//! Decoding and signature checking of submitted transactions, spread over every core.
//!
//! A [`VerifiedTx`] can only be made by checking its signature, so code that holds one (the
//! mempool, execution) never needs to check it again.

use sluice_protocol::encoding::{Canonical, DecodeError};
use sluice_protocol::{Hash32, KeyError, SignedTx};

/// A decoded transaction whose signature verified.
#[derive(Debug, Clone)]
pub struct VerifiedTx {
    pub id: Hash32,
    pub tx: SignedTx,
    /// The canonical bytes it was decoded from (what the ledger stores).
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("transaction of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("undecodable transaction: {0}")]
    Decode(#[from] DecodeError),
    #[error("bad signature: {0}")]
    Signature(#[from] KeyError),
}

impl VerifiedTx {
    /// Decodes canonical `SignedTx` bytes (at most `max_bytes`) and checks the signature.
    pub fn check(bytes: Vec<u8>, max_bytes: usize) -> Result<Self, VerifyError> {
        if bytes.len() > max_bytes {
            return Err(VerifyError::TooLarge {
                len: bytes.len(),
                max: max_bytes,
            });
        }
        let tx = SignedTx::from_bytes(&bytes)?;
        let id = tx.id();
        tx.tx.from.verify_hash(&id, &tx.sig)?;
        Ok(VerifiedTx { id, tx, bytes })
    }
}

/// Checks many transactions at once, one chunk per core, preserving order.
pub fn check_all(batch: Vec<Vec<u8>>, max_bytes: usize) -> Vec<Result<VerifiedTx, VerifyError>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Below this, thread start-up costs more than it saves.
    const MIN_PER_THREAD: usize = 32;
    let threads = cores.min(batch.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return batch
            .into_iter()
            .map(|b| VerifiedTx::check(b, max_bytes))
            .collect();
    }
    let chunk = batch.len().div_ceil(threads);
    let mut inputs: Vec<Vec<Vec<u8>>> = Vec::with_capacity(threads);
    let mut it = batch.into_iter();
    for _ in 0..threads {
        inputs.push(it.by_ref().take(chunk).collect());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .into_iter()
            .map(|part| {
                let len = part.len();
                let handle = s.spawn(move || {
                    part.into_iter()
                        .map(|b| VerifiedTx::check(b, max_bytes))
                        .collect::<Vec<_>>()
                });
                (len, handle)
            })
            .collect();
        // A panicked worker (none is expected) still yields one result per input, in order.
        handles
            .into_iter()
            .flat_map(|(len, h)| {
                h.join().unwrap_or_else(|_| {
                    vec![Err(VerifyError::Signature(KeyError::BadSignature)); len]
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::{Address, Keypair, Transaction, TxKind};

    fn tx(n: u64) -> Vec<u8> {
        let key = Keypair::from_secret(&[7; 32]).unwrap();
        Transaction {
            chain_id: 1,
            from: key.address(),
            nonce: n,
            fee: 1,
            kind: TxKind::Transfer {
                to: Address([2; 32]),
                amount: 1,
            },
        }
        .sign(&key)
        .to_bytes()
    }

    #[test]
    fn parallel_check_keeps_order_and_flags_bad_ones() {
        let mut batch: Vec<Vec<u8>> = (0..200).map(tx).collect();
        let last = batch[150].len() - 1;
        batch[150][last] ^= 1;
        batch[10].truncate(5);
        let out = check_all(batch, 1 << 16);
        assert_eq!(out.len(), 200);
        for (i, r) in out.iter().enumerate() {
            match i {
                150 => assert!(matches!(r, Err(VerifyError::Signature(_)))),
                10 => assert!(matches!(r, Err(VerifyError::Decode(_)))),
                _ => assert_eq!(r.as_ref().unwrap().tx.tx.nonce, i as u64),
            }
        }
    }
}
