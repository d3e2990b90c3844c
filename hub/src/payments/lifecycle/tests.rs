//! One test per transition of the payment life cycle, including the races that earlier fixes
//! covered in the drivers (a router that died between two steps, a payee answering with nobody
//! waiting, a resync below a forward, a payee that co-signs and then rejects).

use super::*;
use sluice_protocol::Address;

const E_OUT: Height = 100;
const SECRET: Hash32 = Hash32([7; 32]);

fn pay(state: PaymentState) -> PaymentRecord {
    PaymentRecord {
        hashlock: sluice_protocol::sha256(&SECRET.0),
        payer: Address([1; 32]),
        payee: Address([2; 32]),
        channel_in: Hash32([3; 32]),
        channel_out: Some(Hash32([4; 32])),
        amount: 100,
        amount_in: 101,
        expiry_in: E_OUT + 20,
        expiry_out: Some(E_OUT),
        state,
        reason: None,
        secret: (state == PaymentState::SecretKnown).then_some(SECRET),
        created_at: 0,
        updated_at: 0,
    }
}

fn step(state: PaymentState, outgoing: Outgoing, registry: Registry, height: Height) -> Step {
    let p = pay(state);
    next_step(&Facts {
        pay: &p,
        outgoing,
        registry,
        height,
    })
}

use Outgoing::*;
use PaymentState::*;

const DOUBT: Outgoing = InDoubt { live: false };
const LIVE: Outgoing = InDoubt { live: true };

fn registered(height: Height) -> Registry {
    Registry::Registered {
        secret: SECRET,
        height,
    }
}

#[test]
fn a_known_secret_is_claimed_from_the_payer() {
    assert_eq!(
        step(SecretKnown, Held(E_OUT), Registry::Unknown, 10),
        Step::Claim(SECRET)
    );
}

#[test]
fn ended_payments_need_nothing() {
    assert_eq!(step(Completed, Absent, Registry::Unknown, 10), Step::Wait);
    assert_eq!(step(Failed, Absent, Registry::Unknown, 10), Step::Wait);
}

#[test]
fn a_forward_never_signed_fails_as_interrupted() {
    // The router died between the payer's commit and the forward (commit 92daf4c).
    assert_eq!(
        step(Pending, Absent, Registry::Unknown, 10),
        Step::Fail(FailReason::Interrupted)
    );
}

#[test]
fn a_forward_the_payee_completed_in_its_resync_is_marked_forwarded() {
    assert_eq!(
        step(Pending, Held(E_OUT), Registry::Unknown, 10),
        Step::MarkForwarded
    );
    assert_eq!(
        step(Forwarded, Held(E_OUT), Registry::Unknown, 10),
        Step::Wait
    );
}

#[test]
fn a_forward_whose_proposer_still_waits_is_left_alone() {
    // Another hub process (or this one) still waits for the payee's answer.
    assert_eq!(step(Pending, LIVE, Registry::Unknown, 10), Step::Wait);
}

#[test]
fn a_forward_in_doubt_is_buried_not_released() {
    // The payee co-signed and rejected, or went silent, or resynced below it (F1a, 20074f3):
    // the payer's lock stays; the hub proposes a Bump above the forward.
    assert_eq!(step(Pending, DOUBT, Registry::Unknown, 10), Step::Bury);
}

#[test]
fn an_expired_forward_in_doubt_needs_the_registry() {
    assert_eq!(
        step(Pending, DOUBT, Registry::Unknown, E_OUT),
        Step::ReadRegistry
    );
}

#[test]
fn an_expired_forward_in_doubt_unclaimed_is_dead() {
    assert_eq!(
        step(Pending, DOUBT, Registry::Absent, E_OUT),
        Step::DropDeadForward
    );
    assert_eq!(
        step(Pending, DOUBT, registered(E_OUT), E_OUT),
        Step::DropDeadForward,
        "a registration at the expiry is too late"
    );
}

#[test]
fn a_forward_claimed_on_chain_in_time_is_claimed_from_the_payer() {
    // F2: the payee registered the secret before the expiry instead of unlocking.
    assert_eq!(
        step(Pending, DOUBT, registered(E_OUT - 1), E_OUT),
        Step::RecordSecret(SECRET)
    );
    assert_eq!(
        step(Forwarded, Held(E_OUT), registered(E_OUT - 1), E_OUT + 5),
        Step::RecordSecret(SECRET)
    );
    // Learnt before the forward expires (the chain follower): claimed at once.
    assert_eq!(
        step(Forwarded, Held(E_OUT), registered(E_OUT - 9), E_OUT - 8),
        Step::RecordSecret(SECRET)
    );
    assert_eq!(
        step(Pending, LIVE, registered(E_OUT - 9), E_OUT - 8),
        Step::RecordSecret(SECRET)
    );
    // A forward that is dead (buried or removed) cannot be claimed on chain: nothing owed.
    assert_eq!(
        step(Forwarded, Absent, registered(E_OUT - 9), E_OUT - 8),
        Step::Fail(FailReason::NotTaken)
    );
}

#[test]
fn a_registration_owes_the_hub_only_before_the_forward_expires() {
    assert!(owed_after_registration(&pay(Forwarded), E_OUT - 1));
    assert!(owed_after_registration(&pay(Pending), 0));
    assert!(!owed_after_registration(&pay(Forwarded), E_OUT));
    assert!(!owed_after_registration(&pay(Failed), 0));
    assert!(!owed_after_registration(&pay(SecretKnown), 0));
}

#[test]
fn an_expired_held_forward_unclaimed_is_removed_then_failed() {
    assert_eq!(
        step(Forwarded, Held(E_OUT), Registry::Absent, E_OUT),
        Step::RemoveExpiredForward
    );
    assert_eq!(
        step(Forwarded, Absent, Registry::Absent, E_OUT),
        Step::Fail(FailReason::Expired)
    );
}

#[test]
fn a_forward_the_payee_removed_fails_as_not_taken() {
    // The payee answered the hub's lock by removing it, with nobody waiting (579b705).
    assert_eq!(
        step(Forwarded, Absent, Registry::Unknown, 10),
        Step::Fail(FailReason::NotTaken)
    );
}

#[test]
fn the_payer_may_not_remove_a_lock_the_hub_is_owed() {
    assert_eq!(
        payer_removes_expired(&pay(SecretKnown), Registry::Unknown),
        Err(RemovalRefusal::SecretKnown)
    );
    assert_eq!(
        payer_removes_expired(&pay(Forwarded), registered(E_OUT - 1)),
        Err(RemovalRefusal::ClaimedOnChain)
    );
    assert_eq!(
        payer_removes_expired(&pay(Forwarded), Registry::Unknown),
        Err(RemovalRefusal::RegistryUnread)
    );
}

#[test]
fn the_payer_may_remove_an_expired_lock_nobody_claimed() {
    assert_eq!(
        payer_removes_expired(&pay(Forwarded), Registry::Absent),
        Ok(true)
    );
    assert_eq!(
        payer_removes_expired(&pay(Pending), registered(E_OUT)),
        Ok(true)
    );
    assert_eq!(
        payer_removes_expired(&pay(Failed), Registry::Unknown),
        Ok(false)
    );
}
