//! The bounded check `cargo test` runs: the real machine keeps every property against a
//! Byzantine and against an honest peer, and the planted old rule is caught. The deep bound is
//! `cargo test --release -p sluice-model -- --ignored` (minutes).

use sluice_model::properties::{NO_FORK, PAYOUT};
use sluice_model::{check, check_planted, run, ChannelModel, Depth, Outcome, Peer, Report};

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

fn holds(peer: Peer) {
    let o = check(ChannelModel::new(peer, Depth::Short.bounds(peer), false));
    show(&format!("real machine, {peer:?} peer"), &o);
    assert!(o.failures.is_empty(), "a property failed (trace above)");
    assert!(o.unreached.is_empty(), "never reached: {:?}", o.unreached);
}

#[test]
fn the_real_machine_holds_against_a_byzantine_peer() {
    holds(Peer::Byzantine);
}

#[test]
fn the_real_machine_holds_between_honest_parties() {
    holds(Peer::Honest);
}

#[test]
fn the_planted_old_rule_is_caught() {
    let o = check_planted(Depth::Short);
    show("planted \"a reject frees the version\"", &o);
    assert!(
        o.failure(NO_FORK).is_some(),
        "the planted rule's fork went unnoticed"
    );
    assert!(
        o.failure(PAYOUT).is_some(),
        "the planted rule's robbery went unnoticed"
    );
}

#[test]
fn the_report_is_the_bench_line() {
    let r = Report {
        bench: "model",
        states: 7,
        max_depth: 3,
        secs: 1.5,
        properties_held: true,
        old_rule_counterexample: true,
    };
    let line = serde_json::to_string(&r).expect("a report serializes");
    let want = concat!(
        r#"{"bench":"model","states":7,"max_depth":3,"secs":1.5,"#,
        r#""properties_held":true,"old_rule_counterexample":true}"#
    );
    assert_eq!(line, want);
}

#[test]
#[ignore = "minutes in a release build"]
fn the_deep_bound_holds() {
    let r = run(Depth::Deep);
    println!(
        "{}",
        serde_json::to_string(&r).expect("a report serializes")
    );
    assert!(r.properties_held && r.old_rule_counterexample);
}
