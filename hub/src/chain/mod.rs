//! Following the chain for the hub's own channels: learn channels opened toward the hub and
//! their deposits, track closes, challenge stale ones, settle, and keep collateral funded.
//! Events are applied with the persisted cursor; every write is idempotent, so a restart that
//! replays the cursor's height changes nothing twice.

pub(crate) mod collateral;
#[cfg(test)]
mod fixtures;
mod guard;
mod reclaim;
mod responder;
mod secrets;
mod watcher;

use crate::shared::Shared;
use responder::Responder;
use sluice_chain_client::follow;
use std::sync::Arc;
use std::time::Duration;

pub fn spawn(sh: Arc<Shared>) {
    let Some(chain) = sh.chain.clone() else {
        return;
    };
    let g = &sh.cfg.guard;
    let every = Duration::from_secs(g.resubmit_secs.max(1));
    let responder = Arc::new(Responder::new(
        chain.clone(),
        sh.cfg.tx_fee,
        g.max_fee,
        every,
    ));
    let channels = watcher::Channels {
        sh: sh.clone(),
        responder: responder.clone(),
    };
    let client = chain.client().clone();
    tokio::spawn(async move { follow(&client, &channels).await });
    let secrets = secrets::Secrets::new(sh.clone());
    let client = chain.client().clone();
    tokio::spawn(async move { follow(&client, &secrets).await });
    tokio::spawn(collateral::run(sh.clone()));
    tokio::spawn(guard::run(sh, responder));
}
