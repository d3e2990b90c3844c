//! The hub session: connect and log in, resync, run the update protocol, and reconnect with
//! backoff when the connection drops.

mod command;
mod connect;
mod effects;
mod engine;
pub(crate) mod vet;

pub(crate) use command::UpdateCmd;

use crate::core::Core;
use crate::error::{Result, WalletError};
use crate::events::WalletEvent;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Commands waiting for the session task.
const COMMAND_CAPACITY: usize = 64;
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The API's handle on the running session.
#[derive(Clone)]
pub(crate) struct SessionHandle {
    tx: mpsc::Sender<UpdateCmd>,
    connected: watch::Receiver<bool>,
}

impl SessionHandle {
    /// Sends an update and waits for its co-signed result.
    pub async fn update(
        &self,
        mut cmd: UpdateCmd,
        timeout: Duration,
    ) -> Result<sluice_protocol::Snapshot> {
        let (reply, rx) = oneshot::channel();
        cmd.reply = Some(reply);
        self.tx.send(cmd).await.map_err(|_| WalletError::Shutdown)?;
        tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| WalletError::Timeout("the hub's answer".into()))?
            .map_err(|_| WalletError::NotConnected)?
    }

    /// Whether the session is logged in right now.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }
}

/// Connects (the first attempt's error goes to the caller), then keeps the session alive.
pub(crate) async fn start(core: Arc<Core>) -> Result<(SessionHandle, JoinHandle<()>)> {
    let opened = connect::connect(&core).await?;
    // The terms are needed by the first `pay` right after `connect` returns, before the
    // session task has run at all.
    core.set_terms(opened.terms);
    let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
    let (up, connected) = watch::channel(false);
    let task = tokio::spawn(run(core, opened, rx, up));
    Ok((SessionHandle { tx, connected }, task))
}

async fn run(
    core: Arc<Core>,
    mut opened: connect::Opened,
    mut cmds: mpsc::Receiver<UpdateCmd>,
    up: watch::Sender<bool>,
) {
    loop {
        core.set_terms(opened.terms);
        let _ = up.send(true);
        core.emit(WalletEvent::Connected);
        tracing::info!(hub = %core.hub(), "hub session up");
        let why =
            engine::Engine::run(&core, opened.ws, opened.channels, opened.terms, &mut cmds).await;
        let _ = up.send(false);
        if matches!(why, WalletError::Shutdown) {
            return;
        }
        tracing::warn!(error = %why, "hub session lost; reconnecting");
        core.emit(WalletEvent::Disconnected {
            reason: why.to_string(),
        });
        match reconnect(&core, &mut cmds).await {
            Some(o) => opened = o,
            None => return,
        }
    }
}

/// Retries with exponential backoff; commands arriving meanwhile are told we are offline.
async fn reconnect(core: &Core, cmds: &mut mpsc::Receiver<UpdateCmd>) -> Option<connect::Opened> {
    let mut backoff = BACKOFF_MIN;
    loop {
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => cmd.answer(Err(WalletError::NotConnected)),
                    None => return None,
                },
            }
        }
        match connect::connect(core).await {
            Ok(o) => return Some(o),
            Err(e) => {
                tracing::debug!(error = %e, "reconnect failed");
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}
