//! Holds back the first height until this validator can reach its fellow validators.
//!
//! The engine asks for the first height as soon as its P2P listener is bound, before any peer
//! has connected. Gossip published then reaches no one (`NoPeersSubscribedToTopic`): the
//! round-0 proposal and the proposer's votes are lost for good, every validator waits out the
//! propose timeout and prevotes nil, and a freshly started network spends whole rounds, each
//! longer than the last, before it decides anything. Waiting here until the other validators
//! are connected (with a verified validator proof) lets round 0 be decided.

use super::context::{ValidatorAddress, ValidatorSet};
use arc_malachitebft_app_channel::NetworkRequest;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often the network is asked who is connected.
const POLL: Duration = Duration::from_millis(50);
/// With a quorum connected but not every validator, how long to wait for the rest: a stopped
/// validator must not delay a restart by more than this.
const QUORUM_GRACE: Duration = Duration::from_secs(2);
/// Start regardless after this long: the rounds' own timeouts then take over.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Who this validator waits for before its first height.
pub struct StartupGate {
    /// The other validators, by consensus address.
    others: Vec<(ValidatorAddress, u64)>,
    /// Our own voting power (counted towards the quorum).
    own_power: u64,
    total_power: u64,
}

impl StartupGate {
    /// `me`: this validator's address; `None` for a full node, which never waits.
    pub fn new(validators: &ValidatorSet, me: Option<ValidatorAddress>) -> Option<Self> {
        let me = me?;
        let own_power = validators
            .validators
            .iter()
            .find(|v| v.address == me)?
            .power;
        let others = validators
            .validators
            .iter()
            .filter(|v| v.address != me)
            .map(|v| (v.address, v.power))
            .collect();
        let total_power = validators.validators.iter().map(|v| v.power).sum();
        Some(StartupGate {
            others,
            own_power,
            total_power,
        })
    }

    /// Returns once every other validator is connected, or a quorum is and the grace has
    /// passed, or after [`MAX_WAIT`].
    pub async fn wait(&self, net: &mpsc::Sender<NetworkRequest>) {
        let started = Instant::now();
        let mut quorum_since: Option<Instant> = None;
        loop {
            let connected = connected_validators(net).await;
            let (count, power) = self.reachable(&connected);
            let waited = started.elapsed();
            if count == self.others.len() {
                tracing::info!(
                    peers = count,
                    waited_ms = waited.as_millis() as u64,
                    "every validator connected; starting the first height"
                );
                return;
            }
            if self.is_quorum(power) {
                let since = *quorum_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= QUORUM_GRACE {
                    tracing::info!(
                        peers = count,
                        of = self.others.len(),
                        "a quorum of validators connected; starting the first height"
                    );
                    return;
                }
            }
            if waited >= MAX_WAIT {
                tracing::warn!(
                    peers = count,
                    of = self.others.len(),
                    "validators still unreachable; starting the first height anyway"
                );
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// How many other validators, and how much power with ours, are in `connected`.
    fn reachable(&self, connected: &HashSet<[u8; 32]>) -> (usize, u64) {
        self.others
            .iter()
            .filter(|(a, _)| connected.contains(&a.0))
            .fold((0, self.own_power), |(n, p), (_, power)| (n + 1, p + power))
    }

    /// More than two thirds of the voting power: enough to decide without the rest.
    fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power) * 2
    }
}

/// Consensus keys of the connected peers whose validator proof verified. Empty when the
/// network cannot answer yet; the caller polls again.
async fn connected_validators(net: &mpsc::Sender<NetworkRequest>) -> HashSet<[u8; 32]> {
    let Ok(Some(dump)) = NetworkRequest::dump_state(net).await else {
        return HashSet::new();
    };
    dump.peers
        .values()
        .filter_map(|p| p.consensus_public_key.as_deref())
        .filter_map(|k| <[u8; 32]>::try_from(k).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::context::Validator;

    fn set(n: u8) -> ValidatorSet {
        ValidatorSet {
            validators: (1..=n)
                .map(|i| Validator {
                    address: ValidatorAddress([i; 32]),
                    power: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn a_full_node_does_not_wait() {
        assert!(StartupGate::new(&set(4), None).is_none());
        assert!(StartupGate::new(&set(4), Some(ValidatorAddress([9; 32]))).is_none());
    }

    #[test]
    fn two_of_three_peers_make_a_quorum_of_four() {
        let gate = StartupGate::new(&set(4), Some(ValidatorAddress([1; 32]))).expect("validator");
        let one: HashSet<_> = [[2; 32]].into();
        let two: HashSet<_> = [[2; 32], [3; 32]].into();
        assert!(!gate.is_quorum(gate.reachable(&one).1));
        assert_eq!(gate.reachable(&two), (2, 3));
        assert!(gate.is_quorum(3));
    }
}
