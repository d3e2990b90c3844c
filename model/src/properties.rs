//! What must hold in every reachable state (DESIGN.md §4, "Versions" and "Why nobody can be
//! robbed"), and what must be reachable at all, so that the check cannot pass vacuously.

use crate::channel::{ChannelModel, World};
use crate::fixture::{DEPOSIT_A, DEPOSIT_B};
use crate::honest::Honest;
use sluice_protocol::{Direction, Party, Position, Snapshot};
use stateright::Property;

pub const NO_FORK: &str = "an honest party never signs two states at one version";
pub const FINAL_IS_LAST: &str = "an honest party signs nothing after a final state";
pub const PAYOUT: &str = "an honest party's payout and withdrawals cover its latest co-signed \
     balance and withdrawals less its own locks in doubt";
pub const CONSERVED: &str = "payouts and withdrawals sum to the deposits";
pub const SETTLES: &str = "the channel settles";
pub const CHALLENGED: &str = "a challenge replaces a stale close and the channel settles";
pub const IN_DOUBT_ENFORCED: &str = "a state the honest party holds only in doubt is enforced";
pub const WITHDRAWN_SETTLES: &str = "a withdrawal is paid and the channel settles later";
pub const IN_DOUBT_WITHDRAWN: &str =
    "A's withdrawal it holds only in doubt is paid, and the channel settles";

pub fn all() -> Vec<Property<ChannelModel>> {
    vec![
        Property::always(NO_FORK, |_, w: &World| {
            w.honest_parties().iter().all(|h| no_fork(h))
        }),
        Property::always(FINAL_IS_LAST, |_, w: &World| {
            w.honest_parties().iter().all(|h| final_is_last(h))
        }),
        Property::always(PAYOUT, |_, w: &World| {
            w.honest_parties().iter().all(|h| payout_covers(w, h))
        }),
        Property::always(CONSERVED, |_, w: &World| {
            w.chain.payouts().is_none_or(|(a, b)| {
                let paid = w.chain.withdrawn(Party::A) + w.chain.withdrawn(Party::B);
                u128::from(a) + u128::from(b) + u128::from(paid)
                    == u128::from(DEPOSIT_A + DEPOSIT_B)
            })
        }),
        Property::sometimes(SETTLES, |_, w: &World| w.chain.payouts().is_some()),
        Property::sometimes(CHALLENGED, |_, w: &World| {
            w.chain.challenged && w.chain.payouts().is_some()
        }),
        Property::sometimes(IN_DOUBT_ENFORCED, |_, w: &World| {
            w.chain.payouts().is_some()
                && w.chain
                    .settled_version
                    .is_some_and(|v| v > w.a.store.latest.state().version)
        }),
        Property::sometimes(WITHDRAWN_SETTLES, |_, w: &World| {
            w.chain.payouts().is_some() && w.chain.record.withdrawn.version > 0
        }),
        Property::sometimes(IN_DOUBT_WITHDRAWN, |_, w: &World| {
            w.chain.payouts().is_some()
                && w.chain.record.withdrawn.version > w.a.store.latest.state().version
                && w.chain.withdrawn(Party::A) > 0
        }),
    ]
}

/// Every state it signed has its own version.
pub fn no_fork(h: &Honest) -> bool {
    let s: Vec<&Position> = h.signed_positions().collect();
    s.iter().enumerate().all(|(i, p)| {
        s[i + 1..]
            .iter()
            .all(|q| q.state.version != p.state.version)
    })
}

/// No state it signed lies above a final state it signed.
pub fn final_is_last(h: &Honest) -> bool {
    let Some(f) = h
        .signed_positions()
        .filter(|p| p.state.is_final)
        .map(|p| p.state.version)
        .min()
    else {
        return true;
    };
    h.signed_positions().all(|p| p.state.version <= f)
}

/// What `latest` says `p` owns: its derived balance, which leaves out every pending lock
/// (its own outgoing ones are spent unless they come back; incoming ones it may never claim),
/// plus what it withdrew (paid already, or owed at settlement).
pub fn owned(p: Party, latest: &Snapshot) -> i128 {
    let state = latest.state();
    let (a, b) = state
        .balances(DEPOSIT_A, DEPOSIT_B)
        .expect("a co-signed state has non-negative balances");
    i128::from(match p {
        Party::A => a,
        Party::B => b,
    }) + i128::from(state.withdrawn(p))
}

/// `p`'s own locks in doubt: the locks from `p` that some state `p` signed above its latest
/// co-signed one holds and the latest does not. The peer holds that signature and may enforce
/// that state; nothing `p` can do on chain beats it, and these locks are what it may lose.
pub fn in_doubt(p: Party, h: &Honest) -> i128 {
    let latest = &h.store.latest;
    let mut locks = Vec::new();
    for Position { state, locks: held } in h.signed_positions() {
        if state.version <= latest.state().version {
            continue;
        }
        for l in held {
            if l.direction == Direction::from_sender(p)
                && !latest.locks.contains(l)
                && !locks.contains(l)
            {
                locks.push(*l);
            }
        }
    }
    locks.iter().map(|l| i128::from(l.amount)).sum()
}

/// Once settled: `payout(p) + withdrawn(p) >= owned(p, latest) - in_doubt(p)`, with `latest`
/// the honest party's latest co-signed state (in its store) and `withdrawn(p)` what the chain
/// paid `p` before, whatever state the chain settled and whichever withdrawals it paid.
pub fn payout_covers(w: &World, h: &Honest) -> bool {
    let Some((a, b)) = w.chain.payouts() else {
        return true;
    };
    let paid = i128::from(match h.me {
        Party::A => a,
        Party::B => b,
    }) + i128::from(w.chain.withdrawn(h.me));
    paid >= owned(h.me, &h.store.latest) - in_doubt(h.me, h)
}
