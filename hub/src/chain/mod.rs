//! Following the chain for the hub's own channels: learn channels opened toward the hub and
//! their deposits, track closes, challenge stale ones, settle, and keep collateral funded.
//! Events are applied with the persisted cursor; every write is idempotent, so a restart that
//! replays the cursor's height changes nothing twice.

mod collateral;
mod guard;
mod watcher;

use crate::shared::Shared;
use std::sync::Arc;

pub fn spawn(sh: Arc<Shared>) {
    tokio::spawn(watcher::run(sh.clone()));
    tokio::spawn(watcher::follow_heads(sh.clone()));
    tokio::spawn(collateral::run(sh.clone()));
    tokio::spawn(guard::run(sh));
}
