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
        DecodedTx::decode(bytes, max_bytes)?.verify()
    }
}

/// A transaction decoded and hashed whose signature is not checked yet: enough to look its id
/// up (a duplicate or an already-verified transaction costs no signature check).
#[derive(Debug, Clone)]
pub struct DecodedTx {
    pub id: Hash32,
    pub tx: SignedTx,
    pub bytes: Vec<u8>,
}

impl DecodedTx {
    /// Decodes canonical `SignedTx` bytes (at most `max_bytes`) without checking the signature.
    pub fn decode(bytes: Vec<u8>, max_bytes: usize) -> Result<Self, VerifyError> {
        if bytes.len() > max_bytes {
            return Err(VerifyError::TooLarge {
                len: bytes.len(),
                max: max_bytes,
            });
        }
        let tx = SignedTx::from_bytes(&bytes)?;
        Ok(DecodedTx {
            id: tx.id(),
            tx,
            bytes,
        })
    }

    /// The only way from a decoded transaction to a [`VerifiedTx`]: check the signature.
    pub fn verify(self) -> Result<VerifiedTx, VerifyError> {
        self.tx.tx.from.verify_hash(&self.id, &self.tx.sig)?;
        Ok(VerifiedTx {
            id: self.id,
            tx: self.tx,
            bytes: self.bytes,
        })
    }
}

/// Checks many transactions at once, one chunk per core, preserving order.
pub fn check_all(batch: Vec<Vec<u8>>, max_bytes: usize) -> Vec<Result<VerifiedTx, VerifyError>> {
    par_map(batch, move |b| VerifiedTx::check(b, max_bytes))
}

/// Checks the signatures of decoded transactions, one chunk per core, preserving order.
pub fn verify_all(batch: Vec<DecodedTx>) -> Vec<Result<VerifiedTx, VerifyError>> {
    par_map(batch, DecodedTx::verify)
}

/// `f` over `items` on every core, in order. A panicked worker (none is expected) still yields
/// one result per input: a bad-signature error, so nothing unchecked ever passes.
fn par_map<T: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> Result<VerifiedTx, VerifyError> + Sync,
) -> Vec<Result<VerifiedTx, VerifyError>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Below this, thread start-up costs more than it saves.
    const MIN_PER_THREAD: usize = 32;
    let threads = cores.min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return items.into_iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut inputs: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut it = items.into_iter();
    for _ in 0..threads {
        inputs.push(it.by_ref().take(chunk).collect());
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .into_iter()
            .map(|part| {
                let len = part.len();
                let handle = s.spawn(move || part.into_iter().map(f).collect::<Vec<_>>());
                (len, handle)
            })
            .collect();
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
