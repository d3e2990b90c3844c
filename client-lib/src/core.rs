//! What every part of a running wallet shares: its key, config, store, chain client, the
//! transaction sender and the event channel.

use crate::config::WalletConfig;
use crate::events::WalletEvent;
use crate::store::Store;
use sluice_chain_client::{ChainClient, TxSender};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::{Address, ChainId, Keypair};
use std::sync::RwLock;
use tokio::sync::broadcast;

pub(crate) struct Core {
    pub key: Keypair,
    pub config: WalletConfig,
    pub chain_id: ChainId,
    pub store: Store,
    pub chain: ChainClient,
    /// TLS for a `wss://` hub: the webpki roots and the config's `ca_file`.
    pub hub_tls: tokio_tungstenite::Connector,
    pub sender: TxSender,
    pub events: broadcast::Sender<WalletEvent>,
    /// The hub's terms from its latest `Welcome`.
    pub terms: RwLock<Option<RoutingTerms>>,
    /// Held while a withdrawal is submitted, so the caller and the guard never race the same
    /// one to the chain.
    pub withdrawing: tokio::sync::Mutex<()>,
}

impl Core {
    pub fn me(&self) -> Address {
        self.key.address()
    }

    pub fn hub(&self) -> Address {
        self.config.hub_key
    }

    pub fn emit(&self, event: WalletEvent) {
        tracing::debug!(?event, "wallet event");
        let _ = self.events.send(event);
    }

    pub fn terms(&self) -> Option<RoutingTerms> {
        self.terms.read().ok().and_then(|t| *t)
    }

    pub fn set_terms(&self, terms: RoutingTerms) {
        if let Ok(mut t) = self.terms.write() {
            *t = Some(terms);
        }
    }
}
