//! The genesis file (chain id, funded accounts, validator set, channel rules, fees, limits) and
//! the validator key file that `sluice-node init` writes.

use crate::state::StateWrites;
use serde::{Deserialize, Serialize};
use sluice_protocol::amount::{self, Amount};
use sluice_protocol::onchain::ChannelLimits;
use sluice_protocol::rpc::Account;
use sluice_protocol::{Address, ChainId, Hash32, Height, Keypair};
use std::collections::BTreeSet;
use std::path::Path;

pub const GENESIS_FILE: &str = "genesis.json";
pub const VALIDATOR_KEY_FILE: &str = "validator.key";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisAccount {
    pub address: Address,
    pub balance: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    pub address: Address,
    pub power: u64,
}

/// Consensus-level limits every node must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLimits {
    /// Largest canonical transaction accepted, in bytes.
    pub max_tx_bytes: usize,
    /// Most transactions one block may carry.
    pub max_block_txs: usize,
}

impl Default for ChainLimits {
    fn default() -> Self {
        ChainLimits {
            max_tx_bytes: 64 * 1024,
            max_block_txs: 20_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub chain_id: ChainId,
    pub genesis_time_ms: u64,
    pub accounts: Vec<GenesisAccount>,
    pub validators: Vec<Validator>,
    pub default_challenge_period: Height,
    pub channel_limits: ChannelLimits,
    pub min_fee: Amount,
    pub limits: ChainLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("invalid genesis: {0}")]
    Invalid(String),
    #[error("invalid validator key file: {0}")]
    Key(String),
}

impl Genesis {
    /// Checks the rules a genesis must satisfy before any node starts from it.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |m: String| Err(GenesisError::Invalid(m));
        if self.validators.is_empty() {
            return bad("the validator set is empty".into());
        }
        for v in &self.validators {
            if !v.address.is_valid_key() || v.power == 0 {
                return bad(format!("validator {} is not a usable key", v.address));
            }
        }
        let mut seen = BTreeSet::new();
        let mut total: Amount = 0;
        for a in &self.accounts {
            if !seen.insert(a.address) {
                return bad(format!("account {} is funded twice", a.address));
            }
            total = amount::add(total, a.balance)
                .map_err(|_| GenesisError::Invalid("total supply exceeds the maximum".into()))?;
        }
        let l = &self.channel_limits;
        if l.min_challenge_period > l.max_challenge_period
            || self.default_challenge_period < l.min_challenge_period
            || self.default_challenge_period > l.max_challenge_period
        {
            return bad("challenge periods are inconsistent".into());
        }
        if self.limits.max_block_txs == 0 || self.limits.max_tx_bytes < 128 {
            return bad("limits are too small".into());
        }
        Ok(())
    }

    /// Sum of all genesis balances: the supply that the chain conserves forever.
    pub fn total_supply(&self) -> Amount {
        self.accounts.iter().map(|a| a.balance).sum()
    }

    /// The state writes of block 0.
    pub fn writes(&self) -> StateWrites {
        let mut w = StateWrites::default();
        for a in &self.accounts {
            w.accounts.insert(
                a.address,
                Account {
                    balance: a.balance,
                    nonce: 0,
                },
            );
        }
        w
    }

    /// Identifies this genesis; the ledger refuses to open under a different one.
    pub fn hash(&self) -> Hash32 {
        sluice_protocol::sha256(&serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let text = read(path)?;
        let g: Genesis = serde_json::from_str(&text).map_err(|source| GenesisError::Json {
            path: path.display().to_string(),
            source,
        })?;
        g.validate()?;
        Ok(g)
    }

    pub fn save(&self, path: &Path) -> Result<(), GenesisError> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        write(path, &text)
    }
}

/// Writes the validator's signing key (the one key-file format: `sluice_home::keyfile`),
/// replacing an older one: `init --force` re-creates a home.
pub fn save_validator_key(path: &Path, key: &Keypair) -> Result<(), GenesisError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(GenesisError::Io {
                path: path.display().to_string(),
                source: e,
            })
        }
        _ => {}
    }
    sluice_home::keyfile::write_secret(path, &key.secret_bytes())
        .map_err(|e| GenesisError::Key(e.to_string()))
}

pub fn load_validator_key(path: &Path) -> Result<Keypair, GenesisError> {
    sluice_home::keyfile::load(path).map_err(|e| GenesisError::Key(e.to_string()))
}

fn read(path: &Path) -> Result<String, GenesisError> {
    std::fs::read_to_string(path).map_err(|source| GenesisError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn write(path: &Path, text: &str) -> Result<(), GenesisError> {
    std::fs::write(path, text).map_err(|source| GenesisError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesis() -> Genesis {
        Genesis {
            chain_id: 1,
            genesis_time_ms: 0,
            accounts: vec![GenesisAccount {
                address: Address([1; 32]),
                balance: 10,
            }],
            validators: vec![Validator {
                address: Keypair::from_secret(&[1; 32]).unwrap().address(),
                power: 1,
            }],
            default_challenge_period: 10,
            channel_limits: ChannelLimits::default(),
            min_fee: 1,
            limits: ChainLimits::default(),
        }
    }

    #[test]
    fn validates() {
        assert!(genesis().validate().is_ok());
        let mut g = genesis();
        g.accounts.push(g.accounts[0].clone());
        assert!(g.validate().is_err());
        let mut g = genesis();
        g.accounts[0].balance = sluice_protocol::MAX_AMOUNT;
        g.accounts.push(GenesisAccount {
            address: Address([2; 32]),
            balance: 1,
        });
        assert!(g.validate().is_err());
        let mut g = genesis();
        g.validators.clear();
        assert!(g.validate().is_err());
    }
}
