//! The payment through the hub: the honest hub, deciding with the real life-cycle rule, is never
//! robbed by a Byzantine payer or payee, and the planted old rule ("release the payer's lock when
//! the forward is rejected") is caught with a readable trace.

use sluice_model::payment::{BURIED, COMPLETES, HUB_RECOVERS, HUB_WHOLE, PAYEE_CLAIMS};
use sluice_model::{check_payment_of, check_payment_planted, Depth, Outcome, Villain};

fn show(what: &str, o: &Outcome) {
    println!(
        "{what}: {} states, max depth {}, {:.1} s",
        o.states, o.max_depth, o.secs
    );
    for (name, lines) in &o.failures {
        println!("counterexample to \"{name}\":");
        for l in lines {
            println!("{l}");
        }
    }
}

fn holds(villain: Villain) {
    let o = check_payment_of(villain, Depth::Short);
    show(&format!("payment, Byzantine {villain:?}"), &o);
    assert!(o.failures.is_empty(), "a property failed (trace above)");
    assert!(o.unreached.is_empty(), "never reached: {:?}", o.unreached);
    for p in [COMPLETES, BURIED, PAYEE_CLAIMS, HUB_RECOVERS] {
        assert!(!o.unreached.contains(&p));
    }
}

#[test]
fn the_hub_holds_against_a_byzantine_payer() {
    holds(Villain::Payer);
}

#[test]
fn the_hub_holds_against_a_byzantine_payee() {
    holds(Villain::Payee);
}

#[test]
fn the_planted_old_payment_rule_is_caught() {
    let o = check_payment_planted(Depth::Short);
    show(
        "planted \"release the payer's lock when the forward is rejected\"",
        &o,
    );
    let trace = o
        .failure(HUB_WHOLE)
        .expect("the planted rule's hub loss went unnoticed");
    assert!(trace.iter().any(|l| l.contains("Reject")));
}
