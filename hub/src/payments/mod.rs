//! Routed payments A → hub → B (DESIGN.md §4, Payments): the life cycle as one pure decision
//! ([`lifecycle`]), and its two drivers: [`router`] drives a payment live, from the payer's lock
//! to the claim or the release; [`recovery`] carries on payments no task drives (after a
//! restart, a timeout, or when another hub process started them). Both gather the facts from
//! the store and the chain, ask [`lifecycle::next_step`], and execute the step. [`handoff`]
//! passes a payment between hub processes when its payer and payee are on different ones.

pub mod handoff;
pub mod lifecycle;
pub mod recovery;
pub mod router;
