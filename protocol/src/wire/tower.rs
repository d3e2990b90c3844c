//! The watchtower HTTP API (DESIGN.md §6): signed registration, appointments carrying the latest
//! co-signed state, and receipts the tower signs only after storing the appointment.

use crate::channel::{channel_id, Snapshot, StateError};
use crate::encoding::Writer;
use crate::hash::{Hash32, Tag};
use crate::keys::{Address, KeyError, Keypair, Signature};
use crate::{ChainId, Height};
use serde::{Deserialize, Serialize};

/// Largest request body the tower accepts.
pub const MAX_TOWER_BODY: usize = 128 * 1024;

/// A user's proof of its key for one action: `sig` over
/// `auth_bytes(chain_id, tower, action, nonce, user, body_digest)` under `sluice/auth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAuth {
    pub user: Address,
    /// Fresh per request (e.g. random); the tower refuses a nonce it has seen.
    pub nonce: Hash32,
    pub sig: Signature,
}

impl UserAuth {
    pub fn sign(
        key: &Keypair,
        chain_id: ChainId,
        tower: &Address,
        action: &str,
        nonce: Hash32,
        body: &Hash32,
    ) -> Self {
        let user = key.address();
        let sig = key.sign(
            Tag::Auth,
            &super::auth_bytes(chain_id, tower, action, &nonce, &user, body),
        );
        UserAuth { user, nonce, sig }
    }

    pub fn verify(
        &self,
        chain_id: ChainId,
        tower: &Address,
        action: &str,
        body: &Hash32,
    ) -> Result<(), KeyError> {
        let bytes = super::auth_bytes(chain_id, tower, action, &self.nonce, &self.user, body);
        self.user.verify(Tag::Auth, &bytes, &self.sig)
    }
}

/// A request nonce stamped with its time: the first 8 bytes are `unix_secs` (big-endian), the
/// rest comes from `random`. A tower accepts nonces only near its own clock, so it needs to
/// remember spent nonces for a bounded window only.
pub fn stamped_nonce(unix_secs: u64, random: &Hash32) -> Hash32 {
    let mut n = random.0;
    n[..8].copy_from_slice(&unix_secs.to_be_bytes());
    Hash32(n)
}

/// The unix seconds a [`stamped_nonce`] claims.
pub fn nonce_time(nonce: &Hash32) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&nonce.0[..8]);
    u64::from_be_bytes(b)
}

/// `POST /register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub auth: UserAuth,
}

/// An appointment: enough to verify the channel id and both signatures without the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    pub a: Address,
    pub b: Address,
    pub salt: Hash32,
    pub snapshot: Snapshot,
}

impl Appointment {
    pub fn channel_id(&self, chain_id: ChainId) -> Hash32 {
        channel_id(chain_id, &self.a, &self.b, &self.salt)
    }

    /// Checks chain, channel id, both signatures and the locks.
    pub fn verify(&self, chain_id: ChainId) -> Result<Hash32, StateError> {
        let id = self.channel_id(chain_id);
        self.snapshot.verify(chain_id, &id, &self.a, &self.b)?;
        Ok(id)
    }

    /// What the user's [`UserAuth`] covers for this appointment.
    pub fn digest(&self) -> Hash32 {
        self.snapshot.cosigned.state.signing_hash()
    }
}

/// `POST /appointments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentRequest {
    pub auth: UserAuth,
    pub appointment: Appointment,
}

/// The tower's signed promise that it stored `version` of `channel_id` at chain height `height`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub chain_id: ChainId,
    pub tower: Address,
    pub channel_id: Hash32,
    pub version: u64,
    pub height: Height,
    pub sig: Signature,
}

fn receipt_bytes(
    chain_id: ChainId,
    tower: &Address,
    channel_id: &Hash32,
    version: u64,
    height: Height,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(chain_id)
        .address(tower)
        .hash(channel_id)
        .u64(version)
        .u64(height);
    w.into_bytes()
}

impl Receipt {
    pub fn sign(
        key: &Keypair,
        chain_id: ChainId,
        channel_id: Hash32,
        version: u64,
        height: Height,
    ) -> Self {
        let tower = key.address();
        let sig = key.sign(
            Tag::Receipt,
            &receipt_bytes(chain_id, &tower, &channel_id, version, height),
        );
        Receipt {
            chain_id,
            tower,
            channel_id,
            version,
            height,
            sig,
        }
    }

    pub fn verify(&self) -> Result<(), KeyError> {
        let bytes = receipt_bytes(
            self.chain_id,
            &self.tower,
            &self.channel_id,
            self.version,
            self.height,
        );
        self.tower.verify(Tag::Receipt, &bytes, &self.sig)
    }
}

/// An HTTP error body from the tower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TowerError {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{ChannelState, CoSigned};

    fn keys() -> (Keypair, Keypair, Keypair) {
        let k = |n| Keypair::from_secret(&[n; 32]).unwrap();
        (k(1), k(2), k(3))
    }

    fn appointment(chain: ChainId) -> Appointment {
        let (ka, kb, _) = keys();
        let salt = Hash32([5; 32]);
        let id = channel_id(chain, &ka.address(), &kb.address(), &salt);
        let mut state = ChannelState::opening(chain, id);
        state.version = 3;
        let cosigned = CoSigned {
            state,
            sig_a: state.sign(&ka),
            sig_b: state.sign(&kb),
        };
        Appointment {
            a: ka.address(),
            b: kb.address(),
            salt,
            snapshot: Snapshot {
                cosigned,
                locks: vec![],
            },
        }
    }

    #[test]
    fn appointment_verifies_only_on_its_chain_and_with_its_parties() {
        let ap = appointment(1);
        assert!(ap.verify(1).is_ok());
        assert!(ap.verify(2).is_err());
        let mut swapped = ap.clone();
        std::mem::swap(&mut swapped.a, &mut swapped.b);
        assert!(swapped.verify(1).is_err());
        let mut wrong_salt = ap;
        wrong_salt.salt = Hash32([6; 32]);
        assert_eq!(wrong_salt.verify(1), Err(StateError::WrongChannel));
    }

    #[test]
    fn receipts_verify_and_resist_tampering() {
        let (_, _, tower) = keys();
        let r = Receipt::sign(&tower, 1, Hash32([1; 32]), 4, 10);
        assert_eq!(r.verify(), Ok(()));
        let bumped = Receipt { version: 5, ..r };
        assert_eq!(bumped.verify(), Err(KeyError::BadSignature));
    }

    #[test]
    fn stamped_nonces_carry_their_time_and_keep_their_randomness() {
        let n = stamped_nonce(1_800_000_000, &Hash32([7; 32]));
        assert_eq!(nonce_time(&n), 1_800_000_000);
        assert_eq!(&n.0[8..], &[7u8; 24][..]);
    }

    #[test]
    fn user_auth_is_bound_to_action_tower_and_body() {
        let (ka, _, tower) = keys();
        let body = Hash32([7; 32]);
        let auth = UserAuth::sign(&ka, 1, &tower.address(), "register", Hash32([0; 32]), &body);
        assert_eq!(auth.verify(1, &tower.address(), "register", &body), Ok(()));
        assert!(auth.verify(1, &tower.address(), "delete", &body).is_err());
        assert!(auth.verify(1, &ka.address(), "register", &body).is_err());
        assert!(auth.verify(2, &tower.address(), "register", &body).is_err());
        assert!(auth
            .verify(1, &tower.address(), "register", &Hash32([8; 32]))
            .is_err());
    }
}
