//! Keys and BIP-340 Schnorr signatures. An address is a 32-byte x-only public key; a signature
//! always covers a tagged hash, never raw bytes, so its purpose is part of what is signed.

use crate::hash::{tagged_hash, Hash32, Tag};
use secp256k1::{schnorr, XOnlyPublicKey, SECP256K1};

/// An account or channel party: its 32-byte x-only public key. Hex on the wire and in logs
/// (`Display`, serde); people see and type its checksummed `sl1…` text ([`crate::text`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 32]);
crate::hex_newtype!(Address, 32);

/// A 64-byte BIP-340 Schnorr signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);
crate::hex_newtype!(Signature, 64);

impl Default for Signature {
    fn default() -> Self {
        Signature([0; 64])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a valid secret key")]
    InvalidSecretKey,
    #[error("not a valid public key")]
    InvalidPublicKey,
    #[error("signature does not verify")]
    BadSignature,
}

/// A signing key with its address. Signing is deterministic (no auxiliary randomness), which keeps
/// the committed test vectors stable and needs no RNG inside the protocol core.
#[derive(Clone)]
pub struct Keypair {
    inner: secp256k1::Keypair,
    address: Address,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({})", self.address)
    }
}

impl Keypair {
    /// A key from 32 secret bytes.
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, KeyError> {
        let inner = secp256k1::Keypair::from_seckey_slice(SECP256K1, secret)
            .map_err(|_| KeyError::InvalidSecretKey)?;
        let address = Address(inner.x_only_public_key().0.serialize());
        Ok(Keypair { inner, address })
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        let inner = secp256k1::Keypair::new(SECP256K1, &mut secp256k1::rand::thread_rng());
        let address = Address(inner.x_only_public_key().0.serialize());
        Keypair { inner, address }
    }

    /// The 32 secret bytes, for the owner's key file.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.inner.secret_bytes()
    }

    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs `tagged_hash(tag, bytes)`.
    pub fn sign(&self, tag: Tag, bytes: &[u8]) -> Signature {
        self.sign_hash(&tagged_hash(tag, bytes))
    }

    /// Signs a digest that is already a tagged hash (e.g. a transaction id).
    pub fn sign_hash(&self, digest: &Hash32) -> Signature {
        Signature(
            SECP256K1
                .sign_schnorr_no_aux_rand(&digest.0, &self.inner)
                .to_byte_array(),
        )
    }
}

impl Address {
    /// Checks that `sig` is this key's signature over `tagged_hash(tag, bytes)`.
    pub fn verify(&self, tag: Tag, bytes: &[u8], sig: &Signature) -> Result<(), KeyError> {
        self.verify_hash(&tagged_hash(tag, bytes), sig)
    }

    /// Checks a signature over a digest that is already a tagged hash.
    pub fn verify_hash(&self, digest: &Hash32, sig: &Signature) -> Result<(), KeyError> {
        let pk = parsed_key(self)?;
        let sig = schnorr::Signature::from_byte_array(sig.0);
        SECP256K1
            .verify_schnorr(&sig, &digest.0, &pk)
            .map_err(|_| KeyError::BadSignature)
    }

    /// Whether these bytes are a point on the curve (a key that could ever sign).
    pub fn is_valid_key(&self) -> bool {
        parsed_key(self).is_ok()
    }
}

/// Parsed keys kept, at most; the cache starts over when full (a flood of one-time keys then
/// costs what it would without it).
const KEY_CACHE: usize = 16_384;

/// `a` as a curve point. Parsing lifts the x coordinate with a square root, about a third of a
/// verification; the same few keys (channel parties, busy senders) sign most of what a daemon
/// checks, so parsed keys are kept. Safe: parsing is a pure function of the 32 bytes, and only
/// keys that parsed are kept.
fn parsed_key(a: &Address) -> Result<XOnlyPublicKey, KeyError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], XOnlyPublicKey>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    // A poisoned lock only means another thread panicked mid-lookup; the map is still whole.
    let hit = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&a.0)
        .copied();
    if let Some(pk) = hit {
        return Ok(pk);
    }
    let pk = XOnlyPublicKey::from_byte_array(&a.0).map_err(|_| KeyError::InvalidPublicKey)?;
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= KEY_CACHE {
        map.clear();
    }
    map.insert(a.0, pk);
    Ok(pk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Keypair {
        Keypair::from_secret(&[n; 32]).unwrap()
    }

    #[test]
    fn sign_and_verify() {
        let k = key(1);
        let sig = k.sign(Tag::Tx, b"hello");
        assert_eq!(k.address().verify(Tag::Tx, b"hello", &sig), Ok(()));
    }

    #[test]
    fn a_cached_key_still_checks_every_signature_and_a_bad_key_is_never_cached() {
        let k = key(3);
        let sig = k.sign(Tag::Tx, b"once");
        for _ in 0..2 {
            assert_eq!(k.address().verify(Tag::Tx, b"once", &sig), Ok(()));
            assert_eq!(
                k.address().verify(Tag::Tx, b"twice", &sig),
                Err(KeyError::BadSignature)
            );
        }
        // x = 5 is not on the curve (5^3 + 7 = 132 is not a square mod p).
        let mut off = [0u8; 32];
        off[31] = 5;
        for _ in 0..2 {
            assert_eq!(
                Address(off).verify(Tag::Tx, b"once", &sig),
                Err(KeyError::InvalidPublicKey)
            );
        }
    }

    #[test]
    fn wrong_tag_message_or_key_fails() {
        let k = key(1);
        let sig = k.sign(Tag::Tx, b"hello");
        assert_eq!(
            k.address().verify(Tag::State, b"hello", &sig),
            Err(KeyError::BadSignature)
        );
        assert_eq!(
            k.address().verify(Tag::Tx, b"hellp", &sig),
            Err(KeyError::BadSignature)
        );
        assert_eq!(
            key(2).address().verify(Tag::Tx, b"hello", &sig),
            Err(KeyError::BadSignature)
        );
    }

    #[test]
    fn invalid_keys_are_typed_errors() {
        assert_eq!(
            Keypair::from_secret(&[0; 32]).err(),
            Some(KeyError::InvalidSecretKey)
        );
        let bad = Address([0xff; 32]);
        assert!(!bad.is_valid_key());
        assert_eq!(
            bad.verify(Tag::Tx, b"x", &Signature::default()),
            Err(KeyError::InvalidPublicKey)
        );
    }

    #[test]
    fn bip340_official_vector_0_verifies() {
        // BIP-340 test vector 0: secret key 3, message and aux all zero.
        let pk: Address = "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"
            .parse()
            .unwrap();
        let sig: Signature = "e907831f80848d1069a5371b402410364bdf1c5f8307b0084c55f1ce2dca821525f66a4a85ea8b71e482a74f382d2ce5ebeee8fdb2172f477df4900d310536c0".parse().unwrap();
        assert_eq!(pk.verify_hash(&Hash32([0; 32]), &sig), Ok(()));
        let mut secret = [0u8; 32];
        secret[31] = 3;
        assert_eq!(Keypair::from_secret(&secret).unwrap().address(), pk);
    }

    #[test]
    fn secret_round_trips() {
        let k = Keypair::generate();
        let again = Keypair::from_secret(&k.secret_bytes()).unwrap();
        assert_eq!(k.address(), again.address());
    }

    #[test]
    fn address_hex_round_trips_through_json() {
        let a = key(3).address();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), a);
        assert!(serde_json::from_str::<Address>("\"abcd\"").is_err());
    }
}
