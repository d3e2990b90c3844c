//! Malachite's `Signer`/`Verifier` with the validators' own secp256k1 keys (BIP-340 Schnorr).
//!
//! Every consensus signature is over `SHA256(SHA256(tag)‖SHA256(tag)‖chain_id‖fields)` with one
//! tag per message kind, so a vote can never be replayed as a proposal, on another chain, or as
//! a transaction signature (which uses `sluice/tx`).

use super::context::{BlockId, ConsensusSig, Proposal, SluiceContext, ValidatorAddress, Vote};
use async_trait::async_trait;
use malachitebft_core_types::{
    NilOrVal, Round, SignedMessage, ValidatorProof, VoteExtensionScope, VoteType,
};
use malachitebft_signing::{Error as SignError, Signer, VerificationResult, Verifier};
use sha2::{Digest, Sha256};
use sluice_protocol::{Address, ChainId, Hash32, Keypair, Signature};

/// Domain tags of consensus signatures.
#[derive(Clone, Copy)]
pub enum ConsensusTag {
    Vote,
    Proposal,
    Extension,
    ValidatorProof,
    ProposalParts,
}

impl ConsensusTag {
    fn as_str(self) -> &'static str {
        match self {
            ConsensusTag::Vote => "sluice/vote",
            ConsensusTag::Proposal => "sluice/proposal",
            ConsensusTag::Extension => "sluice/vote-extension",
            ConsensusTag::ValidatorProof => "sluice/validator-proof",
            ConsensusTag::ProposalParts => "sluice/proposal-parts",
        }
    }
}

/// The tagged hash a consensus signature covers.
pub fn digest(tag: ConsensusTag, chain_id: ChainId, body: &[u8]) -> Hash32 {
    let t = Sha256::digest(tag.as_str().as_bytes());
    let mut h = Sha256::new();
    h.update(t);
    h.update(t);
    h.update(chain_id.to_be_bytes());
    h.update(body);
    Hash32(h.finalize().into())
}

fn round_bytes(r: Round) -> [u8; 8] {
    r.as_i64().to_be_bytes()
}

fn nil_or_val(v: &NilOrVal<BlockId>, out: &mut Vec<u8>) {
    match v {
        NilOrVal::Nil => out.push(0),
        NilOrVal::Val(id) => {
            out.push(1);
            out.extend_from_slice(&id.0);
        }
    }
}

/// Signed bytes of a vote (its extension is signed separately).
pub fn vote_body(v: &Vote) -> Vec<u8> {
    let mut b = Vec::with_capacity(90);
    b.push(match v.vote_type {
        VoteType::Prevote => 0,
        VoteType::Precommit => 1,
    });
    b.extend_from_slice(&v.height.0.to_be_bytes());
    b.extend_from_slice(&round_bytes(v.round));
    nil_or_val(&v.value, &mut b);
    b.extend_from_slice(&v.voter.0);
    b
}

pub fn proposal_body(p: &Proposal) -> Vec<u8> {
    let mut b = Vec::with_capacity(90);
    b.extend_from_slice(&p.height.0.to_be_bytes());
    b.extend_from_slice(&round_bytes(p.round));
    b.extend_from_slice(&round_bytes(p.pol_round));
    b.extend_from_slice(&p.value.0 .0);
    b.extend_from_slice(&p.proposer.0);
    b
}

fn scope_body(s: &VoteExtensionScope<SluiceContext>) -> Vec<u8> {
    let mut b = Vec::with_capacity(80);
    b.extend_from_slice(&s.height.0.to_be_bytes());
    b.extend_from_slice(&round_bytes(s.round));
    b.extend_from_slice(&s.value_id.0);
    b.extend_from_slice(&s.validator_address.0);
    b
}

/// Signed bytes binding a streamed block to its proposer, height and round.
pub fn parts_body(height: u64, round: Round, block: &Hash32) -> Vec<u8> {
    let mut b = Vec::with_capacity(48);
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(&round_bytes(round));
    b.extend_from_slice(&block.0);
    b
}

fn check(key: &ValidatorAddress, d: &Hash32, sig: &ConsensusSig) -> VerificationResult {
    VerificationResult::from_bool(Address(key.0).verify_hash(d, &Signature(sig.0)).is_ok())
}

/// Verifies consensus signatures; needs no secret, so full nodes use it too.
#[derive(Clone)]
pub struct SchnorrVerifier {
    pub chain_id: ChainId,
}

#[async_trait]
impl Verifier<SluiceContext> for SchnorrVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &ConsensusSig,
        public_key: &ValidatorAddress,
    ) -> Result<VerificationResult, SignError> {
        let d = digest(ConsensusTag::Vote, self.chain_id, &vote_body(vote));
        Ok(check(public_key, &d, signature))
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &ConsensusSig,
        public_key: &ValidatorAddress,
    ) -> Result<VerificationResult, SignError> {
        let d = digest(
            ConsensusTag::Proposal,
            self.chain_id,
            &proposal_body(proposal),
        );
        Ok(check(public_key, &d, signature))
    }

    async fn verify_signed_vote_extension(
        &self,
        scope: &VoteExtensionScope<SluiceContext>,
        _extension: &(),
        signature: &ConsensusSig,
        public_key: &ValidatorAddress,
    ) -> Result<VerificationResult, SignError> {
        let d = digest(ConsensusTag::Extension, self.chain_id, &scope_body(scope));
        Ok(check(public_key, &d, signature))
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<SluiceContext>,
    ) -> Result<VerificationResult, SignError> {
        let Ok(key) = <[u8; 32]>::try_from(proof.public_key.as_slice()) else {
            return Ok(VerificationResult::Invalid);
        };
        let d = digest(
            ConsensusTag::ValidatorProof,
            self.chain_id,
            &proof.preimage(),
        );
        Ok(check(&ValidatorAddress(key), &d, &proof.signature))
    }
}

/// Signs with this validator's key.
pub struct SchnorrSigner {
    pub chain_id: ChainId,
    pub key: Keypair,
}

impl SchnorrSigner {
    pub fn sign(&self, tag: ConsensusTag, body: &[u8]) -> ConsensusSig {
        ConsensusSig(self.key.sign_hash(&digest(tag, self.chain_id, body)).0)
    }
}

#[async_trait]
impl Signer<SluiceContext> for SchnorrSigner {
    async fn sign_vote(&self, vote: Vote) -> Result<SignedMessage<SluiceContext, Vote>, SignError> {
        let sig = self.sign(ConsensusTag::Vote, &vote_body(&vote));
        Ok(SignedMessage::new(vote, sig))
    }

    async fn sign_proposal(
        &self,
        proposal: Proposal,
    ) -> Result<SignedMessage<SluiceContext, Proposal>, SignError> {
        let sig = self.sign(ConsensusTag::Proposal, &proposal_body(&proposal));
        Ok(SignedMessage::new(proposal, sig))
    }

    async fn sign_vote_extension(
        &self,
        scope: VoteExtensionScope<SluiceContext>,
        extension: (),
    ) -> Result<SignedMessage<SluiceContext, ()>, SignError> {
        let sig = self.sign(ConsensusTag::Extension, &scope_body(&scope));
        Ok(SignedMessage::new(extension, sig))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<SluiceContext>, SignError> {
        let pre = ValidatorProof::<SluiceContext>::signing_bytes(&public_key, &peer_id);
        let sig = self.sign(ConsensusTag::ValidatorProof, &pre);
        Ok(ValidatorProof::new(public_key, peer_id, sig))
    }
}
