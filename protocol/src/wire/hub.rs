//! The hub session over WebSocket (DESIGN.md §4, §5). The hub opens with a `Challenge`; the client
//! answers with `Auth`; then both sides exchange `Sync` for each channel and run the update
//! protocol with `Propose` / `Accept` / `Reject`.

use crate::channel::{ChannelState, Snapshot};
use crate::hash::Hash32;
use crate::keys::{Address, Signature};
use crate::routing::RoutingTerms;
use crate::update::Change;
use crate::ChainId;
use serde::{Deserialize, Serialize};

/// Largest session frame either side accepts.
pub const MAX_SESSION_FRAME: usize = 256 * 1024;
/// The action name signed in the session login.
pub const AUTH_ACTION: &str = "hub-session";
/// What the hub signs in `Welcome`: proof that the key the client expects is at the other end.
pub const WELCOME_ACTION: &str = "hub-welcome";

/// The bytes the hub signs in `Welcome`: the client's `challenge` from its `Auth`, for this
/// client, chain and hub.
pub fn welcome_bytes(
    chain_id: ChainId,
    hub: &Address,
    challenge: &Hash32,
    client: &Address,
) -> Vec<u8> {
    super::auth_bytes(
        chain_id,
        hub,
        WELCOME_ACTION,
        challenge,
        client,
        &Hash32::default(),
    )
}

/// A proposed update: `state` must equal `apply_at(latest, change, version)`, with `version`
/// above every version either side signed (see `session`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub channel_id: Hash32,
    pub change: Change,
    pub state: ChannelState,
    /// The proposer's signature over `state`.
    pub sig: Signature,
    /// For an `AddLock` toward the hub: the invoice the hub should route the payment to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
}

/// Where a routed payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Completed,
    Failed,
}

/// Machine-readable reasons for errors and rejections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Malformed,
    TooLarge,
    UnsupportedVersion,
    Unauthenticated,
    BadSignature,
    UnknownChannel,
    InvalidUpdate,
    Busy,
    RateLimited,
    PaymentFailed,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionMsg {
    /// Hub → client, first frame: sign this to log in.
    Challenge {
        chain_id: ChainId,
        hub: Address,
        nonce: Hash32,
    },
    /// Client → hub: `sig` over `auth_bytes(chain_id, hub, AUTH_ACTION, nonce, address, 0)`,
    /// and a fresh `challenge` of the client's own for the hub to sign in `Welcome`.
    Auth {
        address: Address,
        sig: Signature,
        #[serde(default)]
        challenge: Hash32,
    },
    /// Hub → client: logged in; the channels the hub knows with this client and its terms.
    /// `sig` is the hub's over [`welcome_bytes`] of the client's challenge: an impostor that
    /// only announces the hub's address cannot make it.
    Welcome {
        channels: Vec<Hash32>,
        terms: RoutingTerms,
        sig: Signature,
    },
    /// Either way: my latest co-signed position for this channel, and the highest version I
    /// have signed on it (the next state goes above it; see `session`).
    Sync {
        channel_id: Hash32,
        snapshot: Snapshot,
        #[serde(default)]
        signed: u64,
    },
    Propose(Proposal),
    /// The receiver's signature over the proposed state, sent only after it stored the state.
    Accept {
        channel_id: Hash32,
        version: u64,
        sig: Signature,
    },
    /// The receiver will not co-sign. It may have signed anyway: the version stays burnt.
    Reject {
        channel_id: Hash32,
        version: u64,
        code: ErrorCode,
        reason: String,
        /// The highest version the sender has signed on the channel, so the next proposal
        /// goes above it.
        #[serde(default)]
        signed: u64,
    },
    /// Hub → client: progress of a payment this client sent, by hashlock.
    Payment {
        hashlock: Hash32,
        status: PaymentStatus,
        reason: Option<String>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode, encode, WireError};

    #[test]
    fn messages_round_trip_with_hex_bytes() {
        let m = SessionMsg::Challenge {
            chain_id: 1,
            hub: Address([0xab; 32]),
            nonce: Hash32([1; 32]),
        };
        let s = encode(&m);
        assert!(s.contains(&"ab".repeat(32)));
        assert_eq!(decode::<SessionMsg>(s.as_bytes(), MAX_SESSION_FRAME), Ok(m));
    }

    #[test]
    fn unknown_type_is_malformed() {
        let r = decode::<SessionMsg>(br#"{"v":1,"msg":{"type":"steal"}}"#, MAX_SESSION_FRAME);
        assert!(matches!(r, Err(WireError::Malformed(_))));
    }

    #[test]
    fn bad_hex_is_malformed() {
        let r = decode::<SessionMsg>(
            br#"{"v":1,"msg":{"type":"auth","address":"zz","sig":"00"}}"#,
            MAX_SESSION_FRAME,
        );
        assert!(matches!(r, Err(WireError::Malformed(_))));
    }
}
