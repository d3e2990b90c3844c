//! Payments between hub processes on one Postgres. Each process proposes only to the clients
//! whose sessions it holds, so a payment whose payer and payee are on different processes is
//! handed from one to the other, with Postgres itself as the bus (`LISTEN`/`NOTIFY`):
//!
//! - the payer's process commits the payer's lock and the payment, then tells the process
//!   holding the payee to [`Kick::Forward`] it (`router::route`);
//! - that process forwards the lock, takes the payee's answer (the secret, or a removal) into
//!   the store, and tells the payer's process to [`Kick::Settle`]: claim the payer's lock, or
//!   release it.
//!
//! A kick carries only the payment's key; what to do is read from the store, so a kick lost,
//! late or repeated changes nothing: the sweeps of `recovery` carry on any payment the kicks
//! left where it stood. Which process holds a client comes from `client_presence`, counted
//! while its process beats (`hub_processes`).

use crate::payments::{recovery, router};
use crate::shared::Shared;
use crate::store::{now_ms, PaymentKey, PaymentState};
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;

/// The Postgres notification channel every hub process listens on.
const CHANNEL: &str = "sluice_hub_payments";
/// How often a process says it is alive…
const HEARTBEAT: Duration = Duration::from_secs(1);
/// …and how long after its last beat its clients still count as online.
pub const ALIVE_FOR_MS: u64 = 5_000;

/// What one process asks of the others about a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// The process holding the payee forwards the hub's lock to it.
    Forward(PaymentKey),
    /// The process holding the payer claims its lock (secret known) or releases it (failed).
    Settle(PaymentKey),
}

/// A notification payload that is not a kick.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a payment kick: {0:?}")]
pub struct BadKick(String);

impl Kick {
    pub fn encode(&self) -> String {
        let (verb, k) = match self {
            Kick::Forward(k) => ("forward", k),
            Kick::Settle(k) => ("settle", k),
        };
        format!("{verb} {} {}", k.payee, k.hashlock)
    }

    pub fn decode(s: &str) -> Result<Kick, BadKick> {
        let bad = || BadKick(s.chars().take(200).collect());
        let mut parts = s.split(' ');
        let (Some(verb), Some(payee), Some(hashlock), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let key = PaymentKey {
            payee: payee.parse().map_err(|_| bad())?,
            hashlock: hashlock.parse().map_err(|_| bad())?,
        };
        match verb {
            "forward" => Ok(Kick::Forward(key)),
            "settle" => Ok(Kick::Settle(key)),
            _ => Err(bad()),
        }
    }
}

/// Tells the other processes; a failure is logged, the sweeps then carry the payment on.
pub async fn kick(sh: &Shared, kick: Kick) {
    let Some(pool) = sh.store.pg() else {
        return;
    };
    let sent = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(kick.encode())
        .execute(pool)
        .await;
    match sent {
        Ok(_) => tracing::debug!(?kick, "kicked the other hub processes"),
        Err(e) => tracing::warn!(?kick, error = %e, "cannot kick the other hub processes"),
    }
}

/// Whether another live hub process holds `client`'s session.
pub async fn held_elsewhere(
    sh: &Shared,
    client: &sluice_protocol::Address,
) -> Result<bool, crate::store::StoreError> {
    let alive_after = now_ms().saturating_sub(ALIVE_FOR_MS);
    let at = sh.store.held_elsewhere(client, &sh.process, alive_after);
    Ok(at.await?.is_some())
}

/// Beats and listens for kicks for the life of the process (Postgres only).
pub async fn run(sh: Arc<Shared>) {
    let Some(pool) = sh.store.pg().cloned() else {
        return;
    };
    tokio::spawn(heartbeat(sh.clone()));
    loop {
        match listen(&sh, &pool).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "payment kicks: listener lost; listening again"),
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

async fn heartbeat(sh: Arc<Shared>) {
    let long_dead = now_ms().saturating_sub(60 * ALIVE_FOR_MS);
    if let Err(e) = sh.store.forget_dead_processes(long_dead).await {
        tracing::warn!(error = %e, "cannot forget dead hub processes");
    }
    loop {
        if let Err(e) = sh.store.heartbeat(&sh.process, now_ms()).await {
            tracing::warn!(error = %e, "cannot record this hub process's heartbeat");
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

async fn listen(sh: &Arc<Shared>, pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    tracing::info!(process = %sh.process, "listening for payments from other hub processes");
    loop {
        let note = listener.recv().await?;
        match Kick::decode(note.payload()) {
            Ok(k) => {
                let busy = sh.work.enter();
                let sh = sh.clone();
                tokio::spawn(async move {
                    on_kick(sh, k).await;
                    drop(busy);
                });
            }
            Err(e) => tracing::warn!(error = %e, "ignored a notification"),
        }
    }
}

/// Does this process's part of a kick, if it holds the client concerned.
async fn on_kick(sh: Arc<Shared>, kick: Kick) {
    let (key, forward) = match kick {
        Kick::Forward(k) => (k, true),
        Kick::Settle(k) => (k, false),
    };
    let pay = match sh.store.payment(&key).await {
        Ok(Some(p)) => p,
        Ok(None) => return tracing::warn!(%key, "kick for an unknown payment"),
        Err(e) => return tracing::warn!(%key, error = %e, "cannot read a kicked payment"),
    };
    let holds = |c| sh.sessions.get(c).is_some();
    match (forward, pay.state) {
        (true, PaymentState::Pending) if holds(&pay.payee) => router::route(sh, pay, None).await,
        (false, PaymentState::SecretKnown) if holds(&pay.payer) => recovery::settle(sh, pay).await,
        (false, PaymentState::Failed) if holds(&pay.payer) => router::released(&sh, &pay).await,
        _ => tracing::debug!(%key, ?kick, state = ?pay.state, "kick not for this process"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::{Address, Hash32};

    #[test]
    fn a_kick_round_trips_and_garbage_is_refused() {
        let key = PaymentKey {
            payee: Address([3; 32]),
            hashlock: Hash32([9; 32]),
        };
        for k in [Kick::Forward(key), Kick::Settle(key)] {
            assert_eq!(Kick::decode(&k.encode()), Ok(k));
        }
        let good = Kick::Forward(key).encode();
        for bad in [
            String::new(),
            "forward".into(),
            good.replace("forward", "claim"),
            format!("{good} extra"),
            good[..good.len() - 2].to_string(),
            good.replace(' ', "  "),
        ] {
            assert!(Kick::decode(&bad).is_err(), "{bad:?} was taken");
        }
    }
}
