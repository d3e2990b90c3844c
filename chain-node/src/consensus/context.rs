//! The types Malachite is generic over, instantiated for Sluice.
//!
//! Consensus keys are the validators' secp256k1 keys from genesis: an address is the 32-byte
//! x-only public key and every vote, proposal and validator proof is a BIP-340 Schnorr
//! signature over a tagged hash (see [`super::signing`]). Malachite is generic over the signing
//! scheme, so no second key type (Ed25519) is needed for consensus.
//!
//! The consensus *value* is only the block hash: the block itself travels as a stream of
//! [`BlockPart`]s and every validator re-executes it before it votes.

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types as mc;
use mc::{LinearTimeouts, NilOrVal, Round, SignedExtension, VoteType};
use sluice_protocol::{hex, Address, Hash32};
use std::fmt;

/// A block height as consensus counts it: block 0 is genesis, consensus decides 1, 2, ….
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);
    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }
    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }
    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address and consensus public key: the x-only secp256k1 key from genesis.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct ValidatorAddress(pub [u8; 32]);

impl ValidatorAddress {
    pub fn to_address(self) -> Address {
        Address(self.0)
    }
}

impl From<Address> for ValidatorAddress {
    fn from(a: Address) -> Self {
        ValidatorAddress(a.0)
    }
}

impl fmt::Display for ValidatorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for ValidatorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl mc::Address for ValidatorAddress {}

/// The decided value's id: the block header hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct BlockId(pub [u8; 32]);

impl BlockId {
    pub fn hash(self) -> Hash32 {
        Hash32(self.0)
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// The consensus value: a reference to a block this node holds in full.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct BlockValue(pub BlockId);

impl mc::Value for BlockValue {
    type Id = BlockId;
    fn id(&self) -> BlockId {
        self.0
    }
}

/// A Schnorr signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct ConsensusSig(pub [u8; 64]);

impl fmt::Debug for ConsensusSig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

/// The signing scheme marker: BIP-340 Schnorr over secp256k1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schnorr;

/// Why bytes are not a signature or a public key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyDecodeError {
    #[error("expected {expected} bytes, got {got}")]
    Length { expected: usize, got: usize },
    #[error("not a point on the curve")]
    NotOnCurve,
}

/// The secret half is never handed to the engine; signing goes through [`super::signing`].
#[derive(Clone)]
pub struct NoPrivateKey;

impl mc::SigningScheme for Schnorr {
    type DecodingError = KeyDecodeError;
    type Signature = ConsensusSig;
    type PublicKey = ValidatorAddress;
    type PrivateKey = NoPrivateKey;

    fn decode_signature(bytes: &[u8]) -> Result<ConsensusSig, KeyDecodeError> {
        let arr: [u8; 64] = bytes.try_into().map_err(|_| KeyDecodeError::Length {
            expected: 64,
            got: bytes.len(),
        })?;
        Ok(ConsensusSig(arr))
    }
    fn encode_signature(signature: &ConsensusSig) -> Vec<u8> {
        signature.0.to_vec()
    }
    fn decode_public_key(bytes: &[u8]) -> Result<ValidatorAddress, KeyDecodeError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyDecodeError::Length {
            expected: 32,
            got: bytes.len(),
        })?;
        if !Address(arr).is_valid_key() {
            return Err(KeyDecodeError::NotOnCurve);
        }
        Ok(ValidatorAddress(arr))
    }
    fn encode_public_key(public_key: &ValidatorAddress) -> Vec<u8> {
        public_key.0.to_vec()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub value: BlockValue,
    pub pol_round: Round,
    pub proposer: ValidatorAddress,
}

impl mc::Proposal<SluiceContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &BlockValue {
        &self.value
    }
    fn take_value(self) -> BlockValue {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &ValidatorAddress {
        &self.proposer
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    pub vote_type: VoteType,
    pub height: Height,
    pub round: Round,
    pub value: NilOrVal<BlockId>,
    pub voter: ValidatorAddress,
    pub extension: Option<SignedExtension<SluiceContext>>,
}

impl mc::Vote<SluiceContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.vote_type
    }
    fn validator_address(&self) -> &ValidatorAddress {
        &self.voter
    }
    fn extension(&self) -> Option<&SignedExtension<SluiceContext>> {
        self.extension.as_ref()
    }
    fn take_extension(&mut self) -> Option<SignedExtension<SluiceContext>> {
        self.extension.take()
    }
    fn extend(self, extension: SignedExtension<SluiceContext>) -> Self {
        Vote {
            extension: Some(extension),
            ..self
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub address: ValidatorAddress,
    pub power: u64,
}

impl mc::Validator<SluiceContext> for Validator {
    fn address(&self) -> &ValidatorAddress {
        &self.address
    }
    fn public_key(&self) -> &ValidatorAddress {
        &self.address
    }
    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// The genesis validator set, in genesis order (every node derives the same order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    pub validators: Vec<Validator>,
}

impl ValidatorSet {
    pub fn from_genesis(g: &crate::genesis::Genesis) -> Self {
        ValidatorSet {
            validators: g
                .validators
                .iter()
                .map(|v| Validator {
                    address: v.address.into(),
                    power: v.power,
                })
                .collect(),
        }
    }

    pub fn contains(&self, a: &ValidatorAddress) -> bool {
        self.validators.iter().any(|v| v.address == *a)
    }

    /// Round-robin by height and round, so a silent proposer costs one round, not a height.
    pub fn proposer(&self, height: Height, round: Round) -> Option<&Validator> {
        let n = self.validators.len() as u64;
        if n == 0 {
            return None;
        }
        let r = round.as_u32().unwrap_or(0) as u64;
        let i = (height.0.wrapping_sub(1).wrapping_add(r)) % n;
        self.validators.get(i as usize)
    }
}

impl mc::ValidatorSet<SluiceContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> u64 {
        self.validators.iter().map(|v| v.power).sum()
    }
    fn get_by_address(&self, address: &ValidatorAddress) -> Option<&Validator> {
        self.validators.iter().find(|v| v.address == *address)
    }
    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// One piece of a streamed block proposal: `Init`, zero or more `Txs`, then `Fin`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum BlockPart {
    Init(BlockInit),
    /// Canonical `SignedTx` bytes, in block order.
    Txs(Vec<Vec<u8>>),
    /// The proposer's signature over (chain, height, round, block hash).
    Fin(ConsensusSig),
}

/// The header fields a receiver needs to rebuild and check the block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockInit {
    pub height: Height,
    pub round: Round,
    pub pol_round: Round,
    pub proposer: ValidatorAddress,
    pub parent: [u8; 32],
    pub state_root: [u8; 32],
    pub time_ms: u64,
    pub tx_count: u32,
}

impl mc::ProposalPart<SluiceContext> for BlockPart {
    fn is_first(&self) -> bool {
        matches!(self, BlockPart::Init(_))
    }
    fn is_last(&self) -> bool {
        matches!(self, BlockPart::Fin(_))
    }
}

/// A whole block on the sync wire: header fields plus the transactions.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireBlock {
    pub height: u64,
    pub parent: [u8; 32],
    pub state_root: [u8; 32],
    pub time_ms: u64,
    pub proposer: [u8; 32],
    pub txs: Vec<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct SluiceContext {
    pub timeouts: LinearTimeouts,
}

impl mc::Context for SluiceContext {
    type Address = ValidatorAddress;
    type Height = Height;
    type ProposalPart = BlockPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockValue;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Schnorr;

    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        // Genesis validation guarantees a non-empty set, and the engine never asks before it
        // has one; an empty set is a programming error the engine cannot recover from.
        #[allow(clippy::expect_used)]
        validator_set
            .proposer(height, round)
            .expect("validator set is never empty")
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockValue,
        pol_round: Round,
        address: ValidatorAddress,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: ValidatorAddress,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Prevote,
            height,
            round,
            value: value_id,
            voter: address,
            extension: None,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: ValidatorAddress,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Precommit,
            height,
            round,
            value: value_id,
            voter: address,
            extension: None,
        }
    }
}
