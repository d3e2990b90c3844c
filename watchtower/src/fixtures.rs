//! Building blocks for tests and benchmarks: channels with two local keys playing client and hub,
//! co-signed appointments, and signed requests, all made with the protocol crate.

use sluice_protocol::wire::tower::{Appointment, AppointmentRequest, RegisterRequest, UserAuth};
use sluice_protocol::{
    channel_id, Address, Amount, ChainId, ChannelState, CoSigned, Hash32, Keypair, Snapshot,
};

/// 32 fresh random bytes (from the OS generator behind key generation): a request nonce.
pub fn random_nonce() -> Hash32 {
    Hash32(Keypair::generate().secret_bytes())
}

/// A channel between two keys the caller holds.
#[derive(Debug, Clone)]
pub struct TestChannel {
    pub chain_id: ChainId,
    pub a: Keypair,
    pub b: Keypair,
    pub salt: Hash32,
}

impl TestChannel {
    pub fn new(chain_id: ChainId, a: Keypair, b: Keypair, salt: Hash32) -> Self {
        TestChannel {
            chain_id,
            a,
            b,
            salt,
        }
    }

    /// A channel between two fresh random keys.
    pub fn random(chain_id: ChainId) -> Self {
        Self::new(
            chain_id,
            Keypair::generate(),
            Keypair::generate(),
            random_nonce(),
        )
    }

    pub fn id(&self) -> Hash32 {
        channel_id(
            self.chain_id,
            &self.a.address(),
            &self.b.address(),
            &self.salt,
        )
    }

    /// Version `version` with `sent_a` paid from a to b and no locks, signed by both.
    pub fn snapshot(&self, version: u64, sent_a: Amount) -> Snapshot {
        self.snapshot_paid(version, sent_a, 0)
    }

    /// Version `version` with `sent_a` paid a→b and `sent_b` paid b→a, signed by both.
    pub fn snapshot_paid(&self, version: u64, sent_a: Amount, sent_b: Amount) -> Snapshot {
        let mut state = ChannelState::opening(self.chain_id, self.id());
        state.version = version;
        state.sent_a = sent_a;
        state.sent_b = sent_b;
        let cosigned = CoSigned {
            state,
            sig_a: state.sign(&self.a),
            sig_b: state.sign(&self.b),
        };
        Snapshot {
            cosigned,
            locks: vec![],
        }
    }

    pub fn appointment(&self, version: u64, sent_a: Amount) -> Appointment {
        self.appointment_of(self.snapshot(version, sent_a))
    }

    pub fn appointment_of(&self, snapshot: Snapshot) -> Appointment {
        Appointment {
            a: self.a.address(),
            b: self.b.address(),
            salt: self.salt,
            snapshot,
        }
    }
}

/// A request nonce stamped with the current time, as the tower requires.
pub fn fresh_nonce() -> Hash32 {
    crate::nonces::fresh()
}

pub fn auth(
    key: &Keypair,
    chain_id: ChainId,
    tower: &Address,
    action: &str,
    body: &Hash32,
) -> UserAuth {
    UserAuth::sign(key, chain_id, tower, action, fresh_nonce(), body)
}

pub fn register_request(key: &Keypair, chain_id: ChainId, tower: &Address) -> RegisterRequest {
    RegisterRequest {
        auth: auth(key, chain_id, tower, "register", &Hash32::default()),
    }
}

pub fn appointment_request(
    key: &Keypair,
    chain_id: ChainId,
    tower: &Address,
    appointment: Appointment,
) -> AppointmentRequest {
    AppointmentRequest {
        auth: auth(key, chain_id, tower, "appointment", &appointment.digest()),
        appointment,
    }
}
