//! Readable lines for a path the checker found: each step says who did what, and what it
//! changed (commits, signed records, messages sent, the chain).

use crate::channel::{Action, ChannelModel, Forgery, World};
use crate::fixture::{all_locks, DEPOSIT_A, DEPOSIT_B, LATER};
use crate::network::Envelope;
use sluice_protocol::onchain::ChannelStatus;
use sluice_protocol::wire::hub::SessionMsg;
use sluice_protocol::{Change, ChannelState, Direction, Lock, Party, Snapshot};
use stateright::{Model, Path};

fn party(p: Party) -> &'static str {
    match p {
        Party::A => "A",
        Party::B => "B",
    }
}

fn lock_text(l: &Lock) -> String {
    match l.direction {
        Direction::AtoB => format!("{} A→B", l.amount),
        Direction::BtoA => format!("{} B→A", l.amount),
    }
}

pub fn change_text(c: &Change) -> String {
    match c {
        Change::AddLock { lock } => format!("AddLock {}", lock_text(lock)),
        Change::Unlock { secret } => match all_locks().iter().find(|l| l.opens_with(secret)) {
            Some(l) => format!("Unlock {}", lock_text(l)),
            None => "Unlock ?".into(),
        },
        Change::RemoveLock { hashlock } => {
            match all_locks().iter().find(|l| l.hashlock == *hashlock) {
                Some(l) => format!("RemoveLock {}", lock_text(l)),
                None => "RemoveLock ?".into(),
            }
        }
        Change::Finalize => "Finalize".into(),
        Change::Bump => "Bump".into(),
        Change::Withdraw { party, amount } => format!("Withdraw {amount} by {party:?}"),
    }
}

pub fn snapshot_text(s: &Snapshot) -> String {
    position_text(s.state(), &s.locks)
}

/// A state as a reader wants it: version, derived balances, locks, finality.
pub fn position_text(st: &ChannelState, locks: &[Lock]) -> String {
    let balances = match st.balances(DEPOSIT_A, DEPOSIT_B) {
        Ok((a, b)) => format!("A {a}, B {b}"),
        Err(e) => format!("invalid: {e}"),
    };
    let locks: Vec<String> = locks.iter().map(lock_text).collect();
    let locks = match locks.is_empty() {
        true => String::new(),
        false => format!(", locks {}", locks.join(" + ")),
    };
    let fin = if st.is_final { ", final" } else { "" };
    format!("v{} ({balances}{locks}{fin})", st.version)
}

pub fn message_text(m: &SessionMsg) -> String {
    match m {
        SessionMsg::Propose(p) => {
            format!("Propose v{} [{}]", p.state.version, change_text(&p.change))
        }
        SessionMsg::Accept { version, .. } => format!("Accept v{version}"),
        SessionMsg::Reject { version, code, .. } => format!("Reject v{version} ({code:?})"),
        SessionMsg::Sync {
            snapshot, signed, ..
        } => format!("Sync {} signed up to v{signed}", snapshot_text(snapshot)),
        other => format!("{other:?}"),
    }
}

fn envelope_text(e: &Envelope) -> String {
    format!("{}'s {}", party(e.to.other()), message_text(&e.msg))
}

/// One action, without context.
pub fn action_line(a: &Action) -> String {
    match a {
        Action::Propose { by, change } => {
            format!("{} proposes {}", party(*by), change_text(change))
        }
        Action::Deliver { env, take, .. } => {
            let verdict = match (&env.msg, take) {
                (SessionMsg::Propose(_), true) => ", co-signs it if the machine agrees",
                (SessionMsg::Propose(_), false) => ", its policy refuses it",
                _ => "",
            };
            format!("{} takes {}{verdict}", party(env.to), envelope_text(env))
        }
        Action::Forge { msg, kind } => match kind {
            Forgery::Propose => format!("B sends {}", message_text(msg)),
            Forgery::Accept => format!("B co-signs A's proposal and sends {}", message_text(msg)),
            Forgery::Reject => format!(
                "B co-signs A's proposal (keeps it) and sends {}",
                message_text(msg)
            ),
            Forgery::Sync => format!("B sends {}", message_text(msg)),
            Forgery::Replay => format!("B replays its old {}", message_text(msg)),
        },
        Action::Lose { env, .. } => format!("the network loses {}", envelope_text(env)),
        Action::Duplicate { env, .. } => {
            format!("the network duplicates {}", envelope_text(env))
        }
        Action::Crash(p) => format!("{} crashes and restarts from its store", party(*p)),
        Action::Reconnect => {
            "the connection drops and comes back: each honest side drops its proposal in \
             flight and sends its Sync"
                .into()
        }
        Action::Close { by, snapshot } => format!(
            "{} closes on chain with co-signed {}",
            party(*by),
            snapshot_text(snapshot)
        ),
        Action::Challenge { by, snapshot } => format!(
            "{} challenges with co-signed {}",
            party(*by),
            snapshot_text(snapshot)
        ),
        Action::Withdraw { by, snapshot } => format!(
            "{} has the chain pay the withdrawals of co-signed {}",
            party(*by),
            snapshot_text(snapshot)
        ),
        Action::CooperativeClose { by, snapshot } => format!(
            "{} closes cooperatively with final {}",
            party(*by),
            snapshot_text(snapshot)
        ),
        Action::Settle { registered } => {
            let who = match registered.as_slice() {
                [] => "nobody registers a secret".to_string(),
                [p] => format!("{} registers its secret in time", party(*p)),
                _ => "A and B register their secrets in time".to_string(),
            };
            format!(
                "{who}; the chain reaches height {LATER} (window over, every lock expired) and \
                 the channel settles"
            )
        }
    }
}

/// What a step changed, as short clauses.
fn effects(before: &World, after: &World) -> Vec<String> {
    let mut out = Vec::new();
    for p in [Party::A, Party::B] {
        let (Some(x), Some(y)) = (before.honest(p), after.honest(p)) else {
            continue;
        };
        if x.store.latest != y.store.latest {
            out.push(format!(
                "{} stores {}",
                party(p),
                snapshot_text(&y.store.latest)
            ));
        }
        if x.store.signed != y.store.signed {
            let fin = if y.store.signed.is_final {
                " (final)"
            } else {
                ""
            };
            out.push(format!(
                "{} records it signed up to v{}{fin}",
                party(p),
                y.store.signed.version
            ));
        }
    }
    let mut old: Vec<&Envelope> = before.net.items().iter().collect();
    for e in after.net.items() {
        match old.iter().position(|o| *o == e) {
            Some(i) => {
                old.remove(i);
            }
            None => out.push(format!(
                "{} sends {}",
                party(e.to.other()),
                message_text(&e.msg)
            )),
        }
    }
    if before.chain.record.status != after.chain.record.status {
        out.push(match &after.chain.record.status {
            ChannelStatus::Open => "the channel is open".into(),
            ChannelStatus::Closing { stored, .. } => {
                format!("the chain stores {}", snapshot_text(stored))
            }
            ChannelStatus::Settled { payout_a, payout_b } => {
                format!("paid out: A {payout_a}, B {payout_b}")
            }
        });
    }
    out
}

/// The numbered lines of a path.
pub fn explain(model: &ChannelModel, path: &Path<World, Action>) -> Vec<String> {
    let steps = path.clone().into_vec();
    let mut lines = Vec::new();
    for (n, (state, action)) in steps.iter().enumerate() {
        let Some(action) = action else { continue };
        let mut line = format!("{:>2}. {}", n + 1, action_line(action));
        if let Some(next) = model.next_state(state, action.clone()) {
            let mut fx = effects(state, &next);
            if let Action::Forge { .. } = action {
                fx.retain(|f| !f.starts_with("B sends")); // the line says what it sent
            }
            if let Action::Crash(p) = action {
                if let Some(h) = next.honest(*p) {
                    fx.push(format!(
                        "it comes back with latest {} and signed up to v{}",
                        snapshot_text(&h.store.latest),
                        h.store.signed.version
                    ));
                }
            }
            if !fx.is_empty() {
                line.push_str(&format!(" → {}", fx.join("; ")));
            }
        }
        lines.push(line);
    }
    let a = &path.last_state().a;
    let mut signed: Vec<_> = a.signed_positions().collect();
    signed.sort_by_key(|p| p.state.version);
    let signed: Vec<String> = signed
        .iter()
        .map(|p| position_text(&p.state, &p.locks))
        .collect();
    lines.push(format!(
        "    A's store: latest co-signed {}, signed up to v{}; A signed: {}",
        snapshot_text(&a.store.latest),
        a.store.signed.version,
        signed.join(", ")
    ));
    lines
}
