//! JSON messages on the wire (hub WebSocket session, watchtower HTTP API). Every frame carries
//! the protocol version; every decoder bounds the input size before parsing.

pub mod hub;
pub mod tower;

use crate::encoding::Writer;
use crate::hash::Hash32;
use crate::keys::Address;
use crate::ChainId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The wire protocol version this code speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// A versioned frame around a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame<M> {
    pub v: u16,
    pub msg: M,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("unsupported protocol version {0} (this side speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u16),
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Serializes `msg` in a frame of the current version.
pub fn encode<M: Serialize>(msg: &M) -> String {
    #[derive(Serialize)]
    struct Out<'a, M> {
        v: u16,
        msg: &'a M,
    }
    // Serializing our own types to a String cannot fail: no maps with non-string keys.
    serde_json::to_string(&Out {
        v: PROTOCOL_VERSION,
        msg,
    })
    .unwrap_or_default()
}

/// Parses a frame of at most `max` bytes and of the current version.
pub fn decode<M: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<M, WireError> {
    if bytes.len() > max {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    #[derive(Deserialize)]
    struct Version {
        v: u16,
    }
    let v = serde_json::from_slice::<Version>(bytes)
        .map_err(|e| WireError::Malformed(e.to_string()))?
        .v;
    if v != PROTOCOL_VERSION {
        return Err(WireError::UnsupportedVersion(v));
    }
    serde_json::from_slice::<Frame<M>>(bytes)
        .map(|f| f.msg)
        .map_err(|e| WireError::Malformed(e.to_string()))
}

/// The bytes a user signs (under `sluice/auth`) to prove its key to a server: bound to the
/// chain, the server's key, the action, a fresh nonce and the request body's digest.
pub fn auth_bytes(
    chain_id: ChainId,
    server: &Address,
    action: &str,
    nonce: &Hash32,
    user: &Address,
    body: &Hash32,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(chain_id)
        .address(server)
        .bytes(action.as_bytes())
        .hash(nonce)
        .address(user)
        .hash(body);
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Ping {
        n: u32,
    }

    #[test]
    fn round_trip() {
        let s = encode(&Ping { n: 3 });
        assert_eq!(s, r#"{"v":1,"msg":{"n":3}}"#);
        assert_eq!(decode::<Ping>(s.as_bytes(), 100), Ok(Ping { n: 3 }));
    }

    #[test]
    fn rejects_oversized_before_parsing() {
        let r = decode::<Ping>(&[b' '; 101], 100);
        assert_eq!(r, Err(WireError::TooLarge { len: 101, max: 100 }));
    }

    #[test]
    fn rejects_other_versions_and_garbage() {
        assert_eq!(
            decode::<Ping>(br#"{"v":2,"msg":{"n":3}}"#, 100),
            Err(WireError::UnsupportedVersion(2))
        );
        assert!(matches!(
            decode::<Ping>(b"{", 100),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode::<Ping>(br#"{"v":1,"msg":{"n":-1}}"#, 100),
            Err(WireError::Malformed(_))
        ));
    }
}
