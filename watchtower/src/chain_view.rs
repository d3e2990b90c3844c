//! The tower's view of the chain, shared by the monitor (which updates it), the API (receipt
//! heights, `/health`) and the responder.

use serde::Serialize;
use sluice_protocol::Height;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Default)]
pub struct ChainView {
    tip: AtomicU64,
    processed: AtomicU64,
    connected: AtomicBool,
}

/// `GET /health`: `ok` is false (and the status 503) while the tower cannot watch: not
/// connected to its node, or more than the allowed blocks behind the tip (`reason` says which).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Health {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub connected: bool,
    pub tip_height: Height,
    pub processed_height: Height,
    pub behind: Height,
    pub appointments: u64,
}

impl ChainView {
    pub fn new(processed: Height) -> Self {
        let v = ChainView::default();
        v.processed.store(processed, Ordering::Relaxed);
        v.tip.store(processed, Ordering::Relaxed);
        v
    }

    pub fn tip(&self) -> Height {
        self.tip.load(Ordering::Relaxed)
    }

    pub fn processed(&self) -> Height {
        self.processed.load(Ordering::Relaxed)
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn set_tip(&self, h: Height) {
        self.tip.fetch_max(h, Ordering::Relaxed);
    }

    pub fn set_processed(&self, h: Height) {
        self.processed.store(h, Ordering::Relaxed);
        self.set_tip(h);
    }

    pub fn set_connected(&self, c: bool) {
        self.connected.store(c, Ordering::Relaxed);
    }

    /// The tower's health, lagging at most `max_behind` blocks to count as watching.
    pub fn health(&self, appointments: u64, max_behind: Height) -> Health {
        let (tip, processed) = (self.tip(), self.processed());
        let behind = tip.saturating_sub(processed);
        let reason = match (self.connected(), behind > max_behind) {
            (false, _) => Some("not connected to the chain node".to_string()),
            (true, true) => Some(format!(
                "{behind} blocks behind the tip (at most {max_behind})"
            )),
            (true, false) => None,
        };
        Health {
            ok: reason.is_none(),
            reason,
            connected: self.connected(),
            tip_height: tip,
            processed_height: processed,
            behind,
            appointments,
        }
    }
}
