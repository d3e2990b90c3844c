//! Live client sessions by key: one per client key; a newer login replaces the older session.

use sluice_protocol::wire::hub::SessionMsg;
use sluice_protocol::{Address, Hash32};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// How to reach one session: its bounded outgoing queue and a switch that ends it.
#[derive(Clone)]
pub struct SessionHandle {
    pub id: u64,
    pub tx: mpsc::Sender<SessionMsg>,
    pub kick: Arc<Notify>,
    /// Per channel, the latest version the hub proposed on this session.
    proposed: Arc<Mutex<HashMap<Hash32, u64>>>,
}

impl SessionHandle {
    pub fn new(id: u64, tx: mpsc::Sender<SessionMsg>) -> Self {
        SessionHandle {
            id,
            tx,
            kick: Arc::new(Notify::new()),
            proposed: Arc::default(),
        }
    }

    /// Notes that the hub's proposal of `version` on `channel` goes out on this session.
    pub fn note_proposal(&self, channel: Hash32, version: u64) {
        let mut map = self.proposed.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(channel, version);
    }

    /// Whether the hub's proposal of `version` on `channel` went out on this session: the
    /// client's resync (sent when the session starts) then predates it and cannot speak for it.
    pub fn proposed_here(&self, channel: &Hash32, version: u64) -> bool {
        let map = self.proposed.lock().unwrap_or_else(|p| p.into_inner());
        map.get(channel) == Some(&version)
    }

    /// Queues a frame without waiting; a session whose queue is full is too slow and is ended,
    /// so it never holds up anyone else.
    pub fn send(&self, msg: SessionMsg) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(session = self.id, error = %e, "session queue full or closed; ending it");
                self.kick.notify_one();
                false
            }
        }
    }
}

#[derive(Default)]
pub struct Registry {
    next_id: AtomicU64,
    sessions: Mutex<HashMap<Address, SessionHandle>>,
}

impl Registry {
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers `handle` for `who`, ending the session it replaces.
    pub fn insert(&self, who: Address, handle: SessionHandle) {
        let old = self.lock().insert(who, handle);
        if let Some(old) = old {
            tracing::info!(client = %who, old = old.id, "newer session replaces older one");
            old.kick.notify_one();
        }
    }

    /// Removes `who`'s entry if it is still session `id`.
    pub fn remove(&self, who: &Address, id: u64) {
        let mut map = self.lock();
        if map.get(who).is_some_and(|h| h.id == id) {
            map.remove(who);
        }
    }

    pub fn get(&self, who: &Address) -> Option<SessionHandle> {
        self.lock().get(who).cloned()
    }

    pub fn is_current(&self, who: &Address, id: u64) -> bool {
        self.lock().get(who).is_some_and(|h| h.id == id)
    }

    /// Ends every session (a stopping hub); clients reconnect to the next one.
    pub fn end_all(&self) {
        for handle in self.lock().values() {
            handle.kick.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Address, SessionHandle>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
