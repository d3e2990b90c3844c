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

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Health {
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

    pub fn health(&self, appointments: u64) -> Health {
        let (tip, processed) = (self.tip(), self.processed());
        Health {
            connected: self.connected(),
            tip_height: tip,
            processed_height: processed,
            behind: tip.saturating_sub(processed),
            appointments,
        }
    }
}
