//! The wire and WAL codec for every engine message: borsh (Malachite ships borsh encodings for
//! its own types behind the `borsh` feature; ours derive it), behind a hard size limit.
//!
//! Peer input is untrusted: a message over the limit or one that does not decode is refused
//! with a typed error and a log line before the engine ever sees it.

use super::context::{BlockId, BlockPart, ConsensusSig, Height, SluiceContext, ValidatorAddress};
use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use malachitebft_codec::{Codec, HasEncodedLen};
use malachitebft_core_consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
use malachitebft_core_types::{
    ExtendedCommitCertificate, ExtendedCommitSignature, PolkaCertificate, Round, SignedExtension,
    ValidatorProof,
};
use malachitebft_engine::util::streaming::StreamMessage;
use malachitebft_sync as sync;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("undecodable {what}: {detail}")]
    Decode { what: &'static str, detail: String },
    #[error("encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
}

/// Stream-id prefix the rogue fault uses for a part whose bytes are garbage.
#[cfg(any(test, feature = "test-fixtures"))]
pub const JUNK_STREAM: &[u8] = b"fault:junk:";
/// Stream-id prefix the rogue fault uses for a part of [`HUGE_LEN`] bytes.
#[cfg(any(test, feature = "test-fixtures"))]
pub const HUGE_STREAM: &[u8] = b"fault:huge:";
/// Oversized for a peer with a small limit (tests use 64 KiB), yet well under the gossip layer's own limit, so
/// it reaches the peer's codec.
#[cfg(any(test, feature = "test-fixtures"))]
pub const HUGE_LEN: usize = 256 * 1024;

/// Borsh with a size limit. Cheap to clone; one per engine component.
#[derive(Clone, Copy, Debug)]
pub struct WireCodec {
    pub max_bytes: usize,
    /// Test-only fault injection (`SLUICE_FAULT_ROGUE_PROPOSALS`): proposal parts on a
    /// [`JUNK_STREAM`] or [`HUGE_STREAM`] go out as garbage bytes. Never set outside tests.
    pub junk_streams: bool,
}

impl WireCodec {
    fn decode_as<T: BorshDeserialize>(
        &self,
        what: &'static str,
        bytes: &[u8],
    ) -> Result<T, CodecError> {
        if bytes.len() > self.max_bytes {
            tracing::warn!(
                what,
                len = bytes.len(),
                max = self.max_bytes,
                "dropping oversized peer message"
            );
            return Err(CodecError::TooLarge {
                len: bytes.len(),
                max: self.max_bytes,
            });
        }
        borsh::from_slice(bytes).map_err(|e| {
            tracing::warn!(what, len = bytes.len(), error = %e, "dropping undecodable peer message");
            CodecError::Decode {
                what,
                detail: e.to_string(),
            }
        })
    }

    fn encode_as<T: BorshSerialize>(
        &self,
        what: &'static str,
        msg: &T,
    ) -> Result<Bytes, CodecError> {
        borsh::to_vec(msg)
            .map(Bytes::from)
            .map_err(|e| CodecError::Encode {
                what,
                detail: e.to_string(),
            })
    }
}

macro_rules! borsh_codec {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl Codec<$t> for WireCodec {
            type Error = CodecError;
            fn decode(&self, bytes: Bytes) -> Result<$t, CodecError> {
                self.decode_as($what, &bytes)
            }
            fn encode(&self, msg: &$t) -> Result<Bytes, CodecError> {
                self.encode_as($what, msg)
            }
        }
    )*};
}

borsh_codec!(
    BlockPart => "proposal part",
    SignedConsensusMsg<SluiceContext> => "consensus message",
    LivenessMsg<SluiceContext> => "liveness message",
    ProposedValue<SluiceContext> => "proposed value",
    PolkaCertificate<SluiceContext> => "polka certificate",
    sync::Status<SluiceContext> => "sync status",
    sync::Request<SluiceContext> => "sync request",
);

impl Codec<StreamMessage<BlockPart>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, bytes: Bytes) -> Result<StreamMessage<BlockPart>, CodecError> {
        self.decode_as("proposal stream message", &bytes)
    }
    fn encode(&self, msg: &StreamMessage<BlockPart>) -> Result<Bytes, CodecError> {
        #[cfg(feature = "test-fixtures")]
        if self.junk_streams {
            let id = msg.stream_id.to_bytes();
            if id.starts_with(JUNK_STREAM) {
                // A length prefix of 4 GiB: no borsh decoder accepts it.
                return Ok(Bytes::from(vec![0xff; 512]));
            }
            if id.starts_with(HUGE_STREAM) {
                return Ok(Bytes::from(vec![0xab; HUGE_LEN]));
            }
        }
        self.encode_as("proposal stream message", msg)
    }
}

/// Sync responses by hand: upstream has no borsh encoding of the extended commit certificate.
#[derive(BorshSerialize, BorshDeserialize)]
struct ResponseWire {
    start_height: Height,
    values: Vec<DecidedWire>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct DecidedWire {
    value_bytes: Vec<u8>,
    height: Height,
    round: Round,
    value_id: BlockId,
    signatures: Vec<(
        ValidatorAddress,
        ConsensusSig,
        Option<SignedExtension<SluiceContext>>,
    )>,
}

fn response_wire(msg: &sync::Response<SluiceContext>) -> ResponseWire {
    let sync::Response::ValueResponse(r) = msg;
    ResponseWire {
        start_height: r.start_height,
        values: r
            .values
            .iter()
            .map(|v| DecidedWire {
                value_bytes: v.value_bytes.to_vec(),
                height: v.certificate.height,
                round: v.certificate.round,
                value_id: v.certificate.value_id,
                signatures: v
                    .certificate
                    .commit_signatures
                    .iter()
                    .map(|s| (s.address, s.signature, s.extension.clone()))
                    .collect(),
            })
            .collect(),
    }
}

impl Codec<sync::Response<SluiceContext>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, bytes: Bytes) -> Result<sync::Response<SluiceContext>, CodecError> {
        let w: ResponseWire = self.decode_as("sync response", &bytes)?;
        let values = w
            .values
            .into_iter()
            .map(|v| sync::RawDecidedValue {
                value_bytes: Bytes::from(v.value_bytes),
                certificate: ExtendedCommitCertificate {
                    height: v.height,
                    round: v.round,
                    value_id: v.value_id,
                    commit_signatures: v
                        .signatures
                        .into_iter()
                        .map(|(address, signature, extension)| ExtendedCommitSignature {
                            address,
                            signature,
                            extension,
                        })
                        .collect(),
                },
            })
            .collect();
        Ok(sync::Response::ValueResponse(sync::ValueResponse {
            start_height: w.start_height,
            values,
        }))
    }
    fn encode(&self, msg: &sync::Response<SluiceContext>) -> Result<Bytes, CodecError> {
        self.encode_as("sync response", &response_wire(msg))
    }
}

impl HasEncodedLen<sync::Response<SluiceContext>> for WireCodec {
    fn encoded_len(&self, msg: &sync::Response<SluiceContext>) -> Result<usize, CodecError> {
        borsh::object_length(&response_wire(msg)).map_err(|e| CodecError::Encode {
            what: "sync response",
            detail: e.to_string(),
        })
    }
}

/// `ValidatorProof` has no borsh encoding upstream: three length-prefixed fields by hand.
#[derive(BorshSerialize, BorshDeserialize)]
struct ProofWire {
    public_key: Vec<u8>,
    peer_id: Vec<u8>,
    signature: ConsensusSig,
}

impl Codec<ValidatorProof<SluiceContext>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, bytes: Bytes) -> Result<ValidatorProof<SluiceContext>, CodecError> {
        let w: ProofWire = self.decode_as("validator proof", &bytes)?;
        Ok(ValidatorProof::new(w.public_key, w.peer_id, w.signature))
    }
    fn encode(&self, p: &ValidatorProof<SluiceContext>) -> Result<Bytes, CodecError> {
        self.encode_as(
            "validator proof",
            &ProofWire {
                public_key: p.public_key.clone(),
                peer_id: p.peer_id.clone(),
                signature: p.signature,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_oversized_input_is_an_error_not_a_panic() {
        let c = WireCodec {
            max_bytes: 1024,
            junk_streams: false,
        };
        for junk in [vec![], vec![0xff; 7], vec![3; 300], vec![0; 2048]] {
            let r: Result<SignedConsensusMsg<SluiceContext>, _> =
                c.decode(Bytes::from(junk.clone()));
            assert!(r.is_err());
            let r: Result<StreamMessage<BlockPart>, _> = c.decode(Bytes::from(junk.clone()));
            assert!(r.is_err());
            let r: Result<sync::Response<SluiceContext>, _> = c.decode(Bytes::from(junk));
            assert!(r.is_err());
        }
        assert!(matches!(
            Codec::<BlockPart>::decode(&c, Bytes::from(vec![1u8; 4096])),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn parts_round_trip() {
        let c = WireCodec {
            max_bytes: 1 << 20,
            junk_streams: false,
        };
        let p = BlockPart::Txs(vec![vec![1, 2, 3], vec![]]);
        let b = c.encode(&p).unwrap();
        assert_eq!(Codec::<BlockPart>::decode(&c, b).unwrap(), p);
    }
}
