//! The Byzantine B. It sees every message A sends the moment A sends it (stronger than a B
//! that waits for the network), so it holds every signature A ever gave, and with its own key
//! it turns any state A signed into a co-signed snapshot. It keeps no machine of its own: an
//! honest B's every move is among its moves (propose on A's latest state at the lowest
//! version A takes, co-sign, refuse), and so are the deviations: propose at the version of
//! A's proposal in flight, co-sign and answer `Reject`, answer nothing, replay an old
//! proposal, `Sync` any co-signed snapshot, enforce any of them on chain. What it sends to A
//! still crosses the lossy network. An honest B's proposals on an older state than A's latest
//! are among the replays; A refuses them all the same.

use crate::channel::{Action, Caches, Forgery};
use crate::fixture::{ctx, fixture, key, menu, opening};
use crate::honest::Honest;
use crate::memo::Cache;
use crate::network::Envelope;
use crate::world::World;
use sluice_protocol::wire::hub::{ErrorCode, Proposal, SessionMsg};
use sluice_protocol::{
    apply_at, Canonical, Change, ChannelState, CoSigned, Party, Signature, Snapshot,
};

/// Signatures by party and the bytes of the state signed (signing is deterministic, so a
/// cached signature is the one the party's machine made or would make).
pub type Signatures = Cache<(Party, Vec<u8>), Signature>;

/// What the Byzantine B keeps that A's messages do not already give it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Byzantine {
    /// Its own proposals, to replay (kept only while it may still forge messages).
    pub proposals: Vec<Envelope>,
}

/// `p`'s signature over `state`.
pub fn sign(p: Party, state: &ChannelState, sigs: &Signatures) -> Signature {
    let bytes = state.to_bytes();
    sigs.get((p, bytes), || state.sign(key(p)))
}

/// Every co-signed snapshot B can make: the opening state and each state A signed.
pub fn snapshots(a: &Honest, sigs: &Signatures) -> Vec<Snapshot> {
    let mut out = vec![opening()];
    for (p, sig_a) in &a.ever_signed {
        out.push(Snapshot {
            cosigned: CoSigned {
                state: p.state,
                sig_a: *sig_a,
                sig_b: sign(Party::B, &p.state, sigs),
            },
            locks: p.locks.clone(),
        });
    }
    out
}

/// The versions B proposes at: the lowest A takes, and while A has a proposal in flight, the
/// version of that proposal (crossing it: A must refuse, both burnt).
pub fn versions(a: &Honest) -> Vec<u64> {
    let floor = a.session.floor();
    let mut out = vec![floor.saturating_add(1)];
    if a.session.in_flight().is_some() {
        out.push(floor);
    }
    out
}

/// B's proposal of `change` on A's latest co-signed state at version `at`; `None` if the
/// change does not apply there.
pub fn propose(a: &Honest, change: &Change, at: u64, sigs: &Signatures) -> Option<SessionMsg> {
    let next = apply_at(&a.session.position(), change, Party::B, &ctx(), at).ok()?;
    Some(SessionMsg::Propose(Proposal {
        channel_id: fixture().channel_id,
        change: change.clone(),
        state: next.state,
        sig: sign(Party::B, &next.state, sigs),
        invoice: None,
    }))
}

/// B's `Accept` of a state A signed.
pub fn accept(state: &ChannelState, sigs: &Signatures) -> SessionMsg {
    SessionMsg::Accept {
        channel_id: fixture().channel_id,
        version: state.version,
        sig: sign(Party::B, state, sigs),
    }
}

/// B's `Reject` of A's proposal at `version`, hiding that it signed anything.
pub fn reject(version: u64) -> SessionMsg {
    SessionMsg::Reject {
        channel_id: fixture().channel_id,
        version,
        code: ErrorCode::InvalidUpdate,
        reason: "refused".into(),
        signed: 0,
    }
}

/// Whether `msg` answers A's proposal at `version`.
pub fn answers(msg: &SessionMsg, version: u64) -> bool {
    match msg {
        SessionMsg::Accept { version: v, .. } | SessionMsg::Reject { version: v, .. } => {
            *v == version
        }
        _ => false,
    }
}

/// Keeps one of B's proposals, to replay.
pub fn note_proposal(b: &mut Byzantine, msg: &SessionMsg) {
    let e = Envelope::new(Party::A, msg.clone());
    if !b.proposals.contains(&e) {
        b.proposals.push(e);
    }
}

/// Every message the Byzantine B may send A now.
pub fn moves(w: &World, b: &Byzantine, caches: &Caches, out: &mut Vec<Action>) {
    let sigs = &caches.signatures;
    if w.left.proposals > 0 {
        for at in versions(&w.a) {
            for change in menu(Party::B) {
                let key = (w.a.key, at, change.to_bytes());
                let proposal = caches
                    .proposals
                    .get(key, || propose(&w.a, &change, at, sigs));
                if let Some(msg) = proposal {
                    out.push(Action::Forge {
                        msg,
                        kind: Forgery::Propose,
                    });
                }
            }
        }
    }
    // One answer per proposal of A (more are the network's duplicates).
    if let Some(state) = w.a_in_flight() {
        let answered = w.net.items().iter().any(|e| answers(&e.msg, state.version));
        if !answered {
            out.push(Action::Forge {
                msg: accept(&state, sigs),
                kind: Forgery::Accept,
            });
            out.push(Action::Forge {
                msg: reject(state.version),
                kind: Forgery::Reject,
            });
        }
    }
    if w.left.forgeries > 0 {
        // Only a newer snapshot does anything to A: an older one it ignores.
        let latest = w.a.store.latest.state().version;
        for snapshot in snapshots(&w.a, sigs)
            .into_iter()
            .filter(|s| s.state().version > latest)
        {
            let msg = SessionMsg::Sync {
                channel_id: fixture().channel_id,
                signed: snapshot.state().version,
                snapshot,
            };
            out.push(Action::Forge {
                msg,
                kind: Forgery::Sync,
            });
        }
        for e in &b.proposals {
            out.push(Action::Forge {
                msg: e.msg.clone(),
                kind: Forgery::Replay,
            });
        }
    }
}
