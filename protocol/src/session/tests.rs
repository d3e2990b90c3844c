//! One test per rule of the machine, each between two real machines (or one and a hand-made
//! peer message where the peer must misbehave).

use super::*;
use crate::channel::{Direction, Lock};
use crate::hash::sha256;
use crate::update::Policy;

const H: u64 = 100;

fn ctx() -> Context {
    Context {
        deposit_a: 1_000,
        deposit_b: 1_000,
        height: H,
        policy: Policy::default(),
    }
}

fn key(n: u8) -> Keypair {
    Keypair::from_secret(&[n; 32]).unwrap()
}

fn pair() -> (ChannelSession, ChannelSession) {
    let (ka, kb) = (key(1), key(2));
    let open = Snapshot::opening(7, Hash32([9; 32]));
    let a = ChannelSession::new(
        Party::A,
        ka.clone(),
        kb.address(),
        open.clone(),
        Signed::default(),
    );
    let b = ChannelSession::new(Party::B, kb, ka.address(), open, Signed::default());
    (a, b)
}

fn lock(dir: Direction, amount: u64, n: u8) -> Change {
    Change::AddLock {
        lock: Lock {
            direction: dir,
            amount,
            hashlock: sha256(&[n; 32]),
            expiry: H + 50,
        },
    }
}

fn proposal(out: &[Output]) -> Proposal {
    match out.last() {
        Some(Output::Send(m)) => match m.as_ref() {
            SessionMsg::Propose(p) => p.clone(),
            other => panic!("not a proposal: {other:?}"),
        },
        other => panic!("no send: {other:?}"),
    }
}

fn accept_sig(out: &[Output]) -> (u64, Signature) {
    match out.last() {
        Some(Output::Send(m)) => match m.as_ref() {
            SessionMsg::Accept { version, sig, .. } => (*version, *sig),
            other => panic!("not an accept: {other:?}"),
        },
        other => panic!("no send: {other:?}"),
    }
}

/// `from` proposes `change`, `to` co-signs, `from` commits: one full round.
fn round(from: &mut ChannelSession, to: &mut ChannelSession, change: Change) -> u64 {
    let p = proposal(&from.propose(change, &ctx(), None).unwrap());
    let checked = to.on_proposal(&p, &ctx()).unwrap();
    let (v, sig) = accept_sig(&to.accept(checked).unwrap());
    from.on_accept(v, sig).unwrap();
    v
}

#[test]
fn a_proposal_is_persisted_as_signed_before_it_is_sent() {
    let (mut a, _) = pair();
    let out = a
        .propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
        .unwrap();
    assert_eq!(
        out[0],
        Output::PersistSigned(Signed {
            version: 1,
            is_final: false
        })
    );
    assert!(matches!(out[1], Output::Send(_)));
}

#[test]
fn an_accepted_round_leaves_both_at_one_co_signed_state() {
    let (mut a, mut b) = pair();
    assert_eq!(round(&mut a, &mut b, lock(Direction::AtoB, 10, 1)), 1);
    assert_eq!(a.latest(), b.latest());
    assert_eq!(a.latest().state().locked_a, 10);
    assert!(a.in_flight().is_none());
}

#[test]
fn the_receiver_commits_before_it_sends_its_accept() {
    let (mut a, mut b) = pair();
    let p = proposal(
        &a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
            .unwrap(),
    );
    let out = b
        .accept(b.clone().on_proposal(&p, &ctx()).unwrap())
        .unwrap();
    assert!(matches!(out[0], Output::Commit(_)));
    assert!(matches!(out[1], Output::Send(_)));
}

#[test]
fn a_rejected_proposal_burns_its_version() {
    let (mut a, mut b) = pair();
    let p = proposal(
        &a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
            .unwrap(),
    );
    // The peer co-signs for itself, then answers Reject.
    let kept = b
        .clone()
        .accept(b.on_proposal(&p, &ctx()).unwrap())
        .unwrap();
    a.on_reject(1, 0).unwrap();
    assert_eq!(a.signed().version, 1);
    // The next state goes to version 2, which beats the kept version 1 on chain.
    let v = round(&mut a, &mut b, lock(Direction::AtoB, 20, 2));
    assert_eq!(v, 2);
    assert!(matches!(&kept[0], Output::Commit(c) if c.snapshot.state().version == 1));
}

#[test]
fn the_receiver_of_a_rejected_proposal_also_goes_above_it() {
    let (mut a, mut b) = pair();
    let p = proposal(
        &a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
            .unwrap(),
    );
    b.on_proposal(&p, &ctx()).unwrap();
    let why = Refusal::Lock(LockRefusal::NoInvoice);
    assert!(matches!(b.refuse(1, &why), Output::Send(_)));
    a.on_reject(1, 0).unwrap();
    // b saw a's signature at 1: its own next proposal goes above it (a version left free).
    assert_eq!(round(&mut b, &mut a, lock(Direction::BtoA, 5, 3)), 3);
}

#[test]
fn a_proposal_at_a_burnt_version_is_refused() {
    let (mut a, mut b) = pair();
    let p1 = proposal(
        &a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
            .unwrap(),
    );
    b.on_proposal(&p1, &ctx()).unwrap();
    a.on_reject(1, 0).unwrap();
    // A forged second proposal at version 1 (as a forking peer would send) is refused.
    let mut other = a.clone();
    other.signed = Signed::default();
    other.peer_signed = 0;
    let p2 = proposal(
        &other
            .propose(lock(Direction::AtoB, 30, 2), &ctx(), None)
            .unwrap(),
    );
    assert_eq!(p2.state.version, 1);
    assert_eq!(
        b.on_proposal(&p2, &ctx()),
        Err(Refusal::Update(UpdateError::VersionBurnt {
            floor: 1,
            got: 1
        }))
    );
}

#[test]
fn proposals_crossing_on_the_wire_leave_the_hubs_above_and_it_wins() {
    let (mut a, mut b) = pair();
    let pa = proposal(
        &a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
            .unwrap(),
    );
    let pb = proposal(
        &b.propose(lock(Direction::BtoA, 10, 2), &ctx(), None)
            .unwrap(),
    );
    assert!(
        pb.state.version > pa.state.version,
        "the hub leaves a version free"
    );
    // The hub refuses the client's; the client gives its own up and co-signs the hub's above it.
    assert_eq!(b.on_proposal(&pa, &ctx()), Err(Refusal::Busy));
    let checked = a.on_proposal(&pb, &ctx()).unwrap();
    assert!(a.in_flight().is_none());
    let (v, sig) = accept_sig(&a.accept(checked).unwrap());
    b.on_accept(v, sig).unwrap();
    assert_eq!(a.latest(), b.latest());
    assert!(
        a.on_reject(pa.state.version, 0).is_err(),
        "nothing of ours is in flight"
    );
    // The client goes again above both.
    assert_eq!(round(&mut a, &mut b, lock(Direction::AtoB, 10, 1)), 3);
}

#[test]
fn an_abandoned_proposal_keeps_its_version_across_a_restart() {
    let (mut a, mut b) = pair();
    a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
        .unwrap();
    a.abandon();
    // Restarted from what was persisted: the latest snapshot and the signed record.
    let mut a = ChannelSession::new(
        Party::A,
        key(1),
        key(2).address(),
        a.latest().clone(),
        a.signed(),
    );
    assert_eq!(round(&mut a, &mut b, lock(Direction::AtoB, 10, 2)), 2);
}

#[test]
fn after_signing_a_finalize_nothing_else_is_signed() {
    let (mut a, mut b) = pair();
    let p = proposal(&a.propose(Change::Finalize, &ctx(), None).unwrap());
    a.on_reject(p.state.version, 0).unwrap();
    assert_eq!(
        a.propose(lock(Direction::AtoB, 1, 1), &ctx(), None),
        Err(Refusal::FinalSigned)
    );
    let pb = proposal(
        &b.propose(lock(Direction::BtoA, 1, 2), &ctx(), None)
            .unwrap(),
    );
    assert_eq!(a.on_proposal(&pb, &ctx()), Err(Refusal::FinalSigned));
}

#[test]
fn a_proposal_for_another_channel_is_refused() {
    let (mut a, mut b) = pair();
    let mut p = proposal(
        &a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
            .unwrap(),
    );
    p.channel_id = Hash32([1; 32]);
    assert!(matches!(
        b.on_proposal(&p, &ctx()),
        Err(Refusal::WrongChannel { .. })
    ));
}

#[test]
fn a_proposal_with_a_bad_signature_is_refused() {
    let (mut a, mut b) = pair();
    let mut p = proposal(
        &a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
            .unwrap(),
    );
    p.sig = p.state.sign(&key(3));
    assert_eq!(b.on_proposal(&p, &ctx()), Err(Refusal::BadSignature));
    assert_eq!(b.floor(), 0, "an unverified signature proves nothing");
}

#[test]
fn a_proposal_whose_state_apply_does_not_produce_is_refused() {
    let (mut a, mut b) = pair();
    let mut p = proposal(
        &a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
            .unwrap(),
    );
    p.state.sent_b = 1;
    p.sig = p.state.sign(&key(1));
    assert_eq!(
        b.on_proposal(&p, &ctx()),
        Err(Refusal::Update(UpdateError::StateMismatch))
    );
}

#[test]
fn a_proposal_skipping_too_far_is_refused() {
    let (_, mut b) = pair();
    let far = crate::update::MAX_VERSION_SKIP + 1;
    let state = apply_at(
        &b.position(),
        &lock(Direction::AtoB, 10, 1),
        Party::A,
        &ctx(),
        crate::update::MAX_VERSION_SKIP,
    )
    .unwrap()
    .state;
    let mut state = state;
    state.version = far;
    let p = Proposal {
        channel_id: b.channel_id(),
        change: lock(Direction::AtoB, 10, 1),
        state,
        sig: state.sign(&key(1)),
        invoice: None,
    };
    assert!(matches!(
        b.on_proposal(&p, &ctx()),
        Err(Refusal::Update(UpdateError::VersionTooFar { .. }))
    ));
}

#[test]
fn an_answer_for_nothing_in_flight_is_refused() {
    let (mut a, _) = pair();
    assert!(matches!(
        a.on_accept(1, Signature::default()),
        Err(Refusal::UnexpectedAnswer {
            expected: None,
            got: 1
        })
    ));
    assert!(a.on_reject(1, 0).is_err());
}

#[test]
fn an_accept_with_a_bad_signature_commits_nothing() {
    let (mut a, _) = pair();
    a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
        .unwrap();
    assert_eq!(
        a.on_accept(1, Signature::default()),
        Err(Refusal::BadSignature)
    );
    assert!(a.in_flight().is_some());
    assert_eq!(a.latest().state().version, 0);
}

#[test]
fn a_sync_with_a_newer_state_is_adopted_and_resolves_our_proposal() {
    let (mut a, mut b) = pair();
    let p = proposal(
        &a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
            .unwrap(),
    );
    let checked = b.on_proposal(&p, &ctx()).unwrap();
    b.accept(checked).unwrap();
    // a never saw the Accept; b's Sync brings the co-signed state.
    let SessionMsg::Sync {
        snapshot, signed, ..
    } = b.sync_msg()
    else {
        unreachable!()
    };
    let synced = a.on_sync(&snapshot, signed).unwrap();
    assert!(synced.commit.is_some());
    assert!(synced.resolved.is_some());
    assert_eq!(a.latest(), b.latest());
}

#[test]
fn a_sync_raises_the_floor_to_what_the_peer_signed() {
    let (mut a, b) = pair();
    a.on_sync(b.latest(), 5).unwrap();
    assert_eq!(a.floor(), 5);
    let p = proposal(
        &a.propose(lock(Direction::AtoB, 10, 1), &ctx(), None)
            .unwrap(),
    );
    assert_eq!(p.state.version, 6);
}

#[test]
fn a_forged_sync_changes_nothing() {
    let (mut a, mut b) = pair();
    round(&mut a, &mut b, lock(Direction::AtoB, 10, 1));
    let mut forged = b.latest().clone();
    forged.cosigned.state.version = 9;
    assert!(matches!(a.on_sync(&forged, 9), Err(Refusal::Snapshot(_))));
    assert_eq!(a.floor(), 1);
    assert_eq!(a.latest().state().version, 1);
}

#[test]
fn refusals_carry_a_code_for_the_peer() {
    assert_eq!(Refusal::Busy.code(), ErrorCode::Busy);
    assert_eq!(Refusal::BadSignature.code(), ErrorCode::BadSignature);
    assert_eq!(
        Refusal::Lock(LockRefusal::AlreadyPaid).code(),
        ErrorCode::PaymentFailed
    );
    assert_eq!(Refusal::FinalSigned.code(), ErrorCode::InvalidUpdate);
}
