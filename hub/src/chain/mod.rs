//! Following the chain for the hub's own channels: learn channels opened toward the hub and
//! their deposits, track closes, challenge stale ones, settle, and keep collateral funded.
//! Events are applied with the persisted cursor; every write is idempotent, so a restart that
//! replays the cursor's height changes nothing twice.

mod collateral;
mod guard;
mod responder;
mod secrets;
mod watcher;

use crate::shared::Shared;
use responder::Responder;
use std::sync::Arc;
use std::time::Duration;

pub fn spawn(sh: Arc<Shared>) {
    let Some(chain) = sh.chain.clone() else {
        return;
    };
    let g = &sh.cfg.guard;
    let every = Duration::from_secs(g.resubmit_secs.max(1));
    let responder = Arc::new(Responder::new(chain, sh.cfg.tx_fee, g.max_fee, every));
    tokio::spawn(watcher::run(sh.clone(), responder.clone()));
    tokio::spawn(watcher::follow_heads(sh.clone()));
    tokio::spawn(collateral::run(sh.clone()));
    tokio::spawn(secrets::run(sh.clone()));
    tokio::spawn(guard::run(sh, responder));
}
